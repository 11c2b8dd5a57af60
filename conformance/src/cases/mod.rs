//! Test cases: specific ones per family (one module each) and the generic
//! fallback for every operation of the contract without a specific case.

pub mod admin;
pub mod backups;
pub mod billing;
pub mod chat;
pub mod client_configs;
pub mod d1;
pub mod deferred;
pub mod enforced;
pub mod gateway;
pub mod health;
pub mod integrations;
pub mod ip_policy;
pub mod management;
pub mod pipelines_stats;
pub mod provision;
pub mod public;
pub mod query;
pub mod registry;
pub mod rest;
pub mod rest_grammar;
pub mod rest_ranges;
pub mod rest_shape;
pub mod rest_writes;
pub mod routing;
pub mod rpc;
pub mod schema_discovery;
pub mod storage;
pub mod storage_files;
pub mod storage_s3;
pub mod webhook_sinks;
pub mod webhooks;

use crate::http::{Request, Response};
use athena_codegen::Contract;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Verifies the effect of a request beyond the common response checks.
pub type Check = Arc<dyn Fn(&Response) -> Result<(), String> + Send + Sync>;

/// A check over JSON (rows read from the tenant database, a body).
pub type JsonCheck = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// A read after the case's request that proves its effect (or its absence):
/// the case fails when the read does not show what the request claimed.
/// Requests and SQL may carry `{{N.field}}` placeholders (setup step N) and
/// `{{r.field}}` (the case's own response).
#[derive(Clone)]
pub enum After {
    /// A request through the API that must answer `status`, then pass `check`.
    Api {
        request: Request,
        status: u16,
        check: Option<Check>,
    },
    /// A query on the tenant database (`--tenant-db-url`); `check` gets its
    /// rows as a JSON array of objects.
    Db { sql: String, check: JsonCheck },
}

/// The fixture table created by `--tenant-db-url` setup.
pub const TABLE: &str = "conformance_items";

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Exactly this status.
    Status(u16),
    /// One of these statuses.
    AnyOf(Vec<u16>),
    /// Generic fallback: any documented status (or a project-wide extra).
    Documented,
}

/// When a case runs. Phases run one after another; cases in one phase run
/// concurrently. Reads of fixtures run first, generic cases (which may
/// mutate state once their operation is implemented) last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Specific,
    /// After every other specific case (e.g. metrics that must have seen traffic).
    Late,
    /// Turns global API-key enforcement on (the fixtures are reset first).
    EnforceOn,
    /// The data-plane cases once more, each with a key of its own.
    Enforced,
    /// Turns enforcement off again.
    EnforceOff,
    Generic,
}

#[derive(Clone)]
pub struct Case {
    /// Operation name (`post_gateway_fetch`).
    pub op: String,
    pub name: String,
    pub request: Request,
    pub expect: Expect,
    pub check: Option<Check>,
    pub specific: bool,
    pub phase: Phase,
    /// Requests sent first, in order, by the same task; each must answer
    /// 2xx (e.g. create the client a freeze case then freezes).
    pub setup: Vec<Request>,
    /// Reads after the request that prove its effect.
    pub after: Vec<After>,
    /// The rights the request needs when API keys are enforced; `None`:
    /// the operation's right (`crate::rights::for_operation`).
    pub rights: Option<Vec<&'static str>>,
}

impl Case {
    pub fn new(op: &str, name: &str, request: Request, expect: u16) -> Case {
        Case {
            op: op.to_string(),
            name: name.to_string(),
            request,
            expect: Expect::Status(expect),
            check: None,
            specific: true,
            phase: Phase::Specific,
            setup: Vec::new(),
            after: Vec::new(),
            rights: None,
        }
    }

    /// Adds a setup step: the case's request comes *after* it.
    pub fn after(mut self, setup: Request) -> Case {
        self.setup.push(setup);
        self
    }

    /// Reads through the API after the request: it must answer `status` and
    /// pass `check`.
    pub fn then(
        mut self,
        request: Request,
        status: u16,
        check: impl Fn(&Response) -> Result<(), String> + Send + Sync + 'static,
    ) -> Case {
        self.after.push(After::Api {
            request,
            status,
            check: Some(Arc::new(check)),
        });
        self
    }

    /// Like `then`, with a check over the JSON body.
    pub fn then_json(
        self,
        request: Request,
        status: u16,
        check: impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
    ) -> Case {
        self.then(request, status, move |r| check(&r.json()?))
    }

    /// A request after the case's one that must answer `status` (its body
    /// an error envelope when `status` is an error).
    pub fn then_status(self, request: Request, status: u16) -> Case {
        if status >= 400 {
            self.then(request, status, envelope)
        } else {
            self.then(request, status, |_| Ok(()))
        }
    }

    /// Reads the tenant database after the request; `check` gets the rows.
    pub fn then_db(
        mut self,
        sql: impl Into<String>,
        check: impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
    ) -> Case {
        self.after.push(After::Db {
            sql: sql.into(),
            check: Arc::new(check),
        });
        self
    }

    /// The rights the request needs under enforcement, when they are not
    /// just the operation's right (an upsert also needs update).
    pub fn rights(mut self, rights: &[&'static str]) -> Case {
        self.rights = Some(rights.to_vec());
        self
    }

    pub fn any_of(mut self, statuses: &[u16]) -> Case {
        self.expect = Expect::AnyOf(statuses.to_vec());
        self
    }

    pub fn check(
        mut self,
        f: impl Fn(&Response) -> Result<(), String> + Send + Sync + 'static,
    ) -> Case {
        self.check = Some(Arc::new(f));
        self
    }

    /// A check over the JSON body.
    pub fn check_json(
        self,
        f: impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static,
    ) -> Case {
        self.check(move |r| f(&r.json()?))
    }

    pub fn late(mut self) -> Case {
        self.phase = Phase::Late;
        self
    }

    pub fn in_phase(mut self, phase: Phase) -> Case {
        self.phase = phase;
        self
    }
}

/// What cases may know about the run.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub admin_key: Option<String>,
    pub client: String,
    /// The tenant database (for cases that register clients).
    pub tenant_db_url: Option<String>,
    /// The table write cases write to (one of `fixtures::WRITES_TABLES`):
    /// each build of the data-plane cases that runs alongside another gets
    /// its own, so their rows never meet.
    pub writes: String,
    /// Every operation name of the contract.
    pub op_names: Arc<BTreeSet<String>>,
}

impl Ctx {
    pub fn new(
        admin_key: Option<String>,
        client: String,
        tenant_db_url: Option<String>,
        contract: &Contract,
    ) -> Ctx {
        let op_names = contract.operations.iter().map(|o| o.name.clone()).collect();
        Ctx {
            admin_key,
            client,
            tenant_db_url,
            writes: crate::fixtures::WRITES_TABLES[0].to_string(),
            op_names: Arc::new(op_names),
        }
    }

    /// The same run, writing to another table.
    pub fn writing_to(&self, table: &str) -> Ctx {
        Ctx {
            writes: table.to_string(),
            ..self.clone()
        }
    }

    /// The rows of the writes table with these names (ordered by name):
    /// `columns` of them, for the reads that prove a write.
    pub fn written(&self, columns: &str, names: &[&str]) -> String {
        let names: Vec<String> = names
            .iter()
            .map(|n| format!("'{}'", n.replace('\'', "''")))
            .collect();
        format!(
            "SELECT {columns} FROM {} WHERE name IN ({}) ORDER BY name",
            self.writes,
            names.join(", ")
        )
    }

    /// `X-Athena-Key` (when an admin key is known) and `X-Athena-Client`.
    pub fn standard_headers(&self, mut req: Request) -> Request {
        if let Some(key) = &self.admin_key {
            req = req.header("X-Athena-Key", key);
        }
        req.header("X-Athena-Client", &self.client)
    }

    /// A request with the standard headers.
    pub fn request(&self, method: &str, path: &str) -> Request {
        self.standard_headers(Request::new(method, path))
    }

    #[cfg(test)]
    pub fn for_tests() -> Ctx {
        Ctx::new(
            Some("k".into()),
            "conformance".into(),
            None,
            &crate::tests::contract(),
        )
    }
}

/// All specific cases, family by family, then the enforced pass.
pub fn specific_cases(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(admin::cases(ctx));
    cases.extend(ip_policy::cases(ctx));
    cases.extend(client_configs::cases(ctx));
    cases.extend(health::cases(ctx));
    cases.extend(registry::cases(ctx));
    cases.extend(management::cases(ctx));
    cases.extend(provision::cases(ctx));
    cases.extend(schema_discovery::cases(ctx));
    cases.extend(public::admin_cases(ctx));
    cases.extend(routing::cases(ctx));
    cases.extend(storage::cases(ctx));
    cases.extend(storage_s3::cases(ctx));
    cases.extend(webhooks::cases(ctx));
    cases.extend(billing::cases(ctx));
    cases.extend(chat::cases(ctx));
    cases.extend(webhook_sinks::cases(ctx));
    cases.extend(pipelines_stats::cases(ctx));
    cases.extend(backups::cases(ctx));
    cases.extend(integrations::cases(ctx));
    cases.extend(data_plane_cases(ctx));
    cases.extend(enforced::cases(ctx));
    cases
}

/// The cases of the data plane (the operations API keys guard), built
/// afresh on every call: the enforced pass runs them once more.
pub fn data_plane_cases(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(gateway::cases(ctx));
    cases.extend(rest::cases(ctx));
    cases.extend(rest_ranges::cases(ctx));
    cases.extend(rest_grammar::cases(ctx));
    cases.extend(rest_writes::cases(ctx));
    cases.extend(rest_shape::cases(ctx));
    cases.extend(query::cases(ctx));
    cases.extend(rpc::cases(ctx));
    cases.extend(public::public_cases(ctx));
    cases.extend(deferred::cases(ctx));
    cases.extend(d1::cases(ctx));
    cases
}

/// Whether a concrete path fits a path template (`/rest/v1/{table}`).
pub fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

/// Specific cases plus a generic case for every uncovered operation.
/// Fails when a specific case names an operation the contract lacks or a
/// request that does not fit its operation.
pub fn all_cases(contract: &Contract, ctx: &Ctx) -> Result<Vec<Case>, String> {
    let mut cases = specific_cases(ctx);
    let ops: BTreeMap<&str, _> = contract
        .operations
        .iter()
        .map(|o| (o.name.as_str(), o))
        .collect();
    for case in &cases {
        let op = ops
            .get(case.op.as_str())
            .ok_or_else(|| format!("case {:?} names unknown operation {}", case.name, case.op))?;
        if !case.request.method.eq_ignore_ascii_case(&op.method)
            || !path_matches(&op.path, &case.request.path)
        {
            return Err(format!(
                "case {:?}: {} {} does not fit {} {}",
                case.name, case.request.method, case.request.path, op.method, op.path
            ));
        }
    }
    let covered: BTreeSet<String> = cases.iter().map(|c| c.op.clone()).collect();
    for op in &contract.operations {
        if op.admin {
            // Admin operations fail closed: no key, no entry.
            cases.push(Case {
                op: op.name.clone(),
                name: "admin key required".into(),
                request: crate::generic::without_credentials(crate::generic::build(op, ctx), op),
                expect: Expect::Status(401),
                check: Some(Arc::new(envelope)),
                specific: false,
                phase: Phase::Generic,
                setup: Vec::new(),
                after: Vec::new(),
                rights: None,
            });
        }
        if !covered.contains(&op.name) {
            cases.push(Case {
                op: op.name.clone(),
                name: "generic".into(),
                request: crate::generic::build(op, ctx),
                expect: Expect::Documented,
                check: None,
                specific: false,
                phase: Phase::Generic,
                setup: Vec::new(),
                after: Vec::new(),
                rights: None,
            });
        }
    }
    Ok(cases)
}

// Small helpers for checks.

pub fn rows(body: &Value) -> Result<&Vec<Value>, String> {
    body.get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| "body has no `data` array".to_string())
}

pub fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter()
        .filter_map(|r| r.get("id").and_then(Value::as_i64))
        .collect()
}

pub fn expect_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: T,
    want: T,
) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// Like `expect_eq`, printing JSON values as JSON.
pub fn expect_json<T: serde::Serialize + PartialEq>(
    what: &str,
    got: T,
    want: T,
) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        let show = |v: &T| serde_json::to_string(v).unwrap_or_default();
        Err(format!("{what}: got {}, want {}", show(&got), show(&want)))
    }
}

/// A check that the rows read back are exactly `want`.
pub fn rows_are(want: Value) -> impl Fn(&Value) -> Result<(), String> + Send + Sync + 'static {
    move |got| expect_json("rows read back", got, &want)
}

/// The error envelope (for error cases' own checks).
pub fn envelope(r: &Response) -> Result<(), String> {
    crate::check::check_envelope(&r.json()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates_match() {
        assert!(path_matches(
            "/rest/v1/{table}",
            "/rest/v1/conformance_items"
        ));
        assert!(!path_matches("/rest/v1/{table}", "/rest/v1/"));
        assert!(!path_matches("/rest/v1/{table}", "/rest/v2/x"));
        assert!(path_matches("/", "/"));
    }

    #[test]
    fn every_operation_gets_a_case_and_specific_cases_fit() {
        let c = crate::tests::contract();
        let cases = all_cases(&c, &Ctx::for_tests()).expect("cases fit the contract");
        let with_case: BTreeSet<_> = cases.iter().map(|c| c.op.clone()).collect();
        assert_eq!(with_case.len(), c.operations.len());
        let guard = cases
            .iter()
            .find(|c| c.op == "get_admin_clients" && c.expect == Expect::Status(401))
            .expect("admin ops get a no-key case");
        assert!(!guard.request.has_header("X-Athena-Key"));
        assert!(!guard.request.has_header("apikey"));
        assert!(cases
            .iter()
            .any(|c| c.op == "post_gateway_fetch" && c.specific));
        assert!(!cases
            .iter()
            .any(|c| c.op == "post_gateway_fetch" && !c.specific));
    }
}
