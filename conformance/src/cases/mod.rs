//! Test cases: specific ones per family (one module each) and the generic
//! fallback for every operation of the contract without a specific case.

pub mod admin;
pub mod d1;
pub mod deferred;
pub mod gateway;
pub mod health;
pub mod public;
pub mod query;
pub mod registry;
pub mod rest;
pub mod rpc;

use crate::http::{Request, Response};
use athena_codegen::Contract;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Verifies the effect of a request beyond the common response checks.
pub type Check = Arc<dyn Fn(&Response) -> Result<(), String> + Send + Sync>;

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
        }
    }

    pub fn after(mut self, setup: Request) -> Case {
        self.setup.push(setup);
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
}

/// What cases may know about the run.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub admin_key: Option<String>,
    pub client: String,
    /// The tenant database (for cases that register clients).
    pub tenant_db_url: Option<String>,
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
            op_names: Arc::new(op_names),
        }
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

/// All specific cases, family by family.
pub fn specific_cases(ctx: &Ctx) -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(admin::cases(ctx));
    cases.extend(health::cases(ctx));
    cases.extend(registry::cases(ctx));
    cases.extend(gateway::cases(ctx));
    cases.extend(rest::cases(ctx));
    cases.extend(query::cases(ctx));
    cases.extend(rpc::cases(ctx));
    cases.extend(public::cases(ctx));
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
