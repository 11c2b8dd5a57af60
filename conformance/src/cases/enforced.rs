//! The enforced pass. Global API-key enforcement is turned on (a flip, read
//! back, and proven by a keyless request that is refused), every data-plane
//! case runs once more with a key of its own holding exactly the rights the
//! request needs, every successful one once more per needed right with a
//! key lacking just that right (403), and enforcement is turned off again
//! (read back, and proven by a keyless request that passes).
//!
//! Each variant comes from a build of the cases of its own, writing to a
//! table of its own (`Ctx::writing_to`), so variants running side by side
//! never see each other's rows, route keys or deferred writes.

use super::{envelope, expect_eq, Case, Ctx, Expect, Phase, TABLE};
use crate::fixtures::WRITES_TABLES;
use crate::http::Request;
use crate::rights::{self, DATA_PLANE};
use serde_json::{json, Value};

const CONFIG: &str = "put_admin_api_key_config";

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let mut out = vec![enforce(ctx, true), enforce(ctx, false)];
    // With a key holding exactly the rights needed.
    for case in super::data_plane_cases(&ctx.writing_to(WRITES_TABLES[1])) {
        let needed = needed(&case);
        if needed.is_empty() {
            continue;
        }
        let label = format!("key with exactly {}", needed.join(" + "));
        out.push(with_key(ctx, case, &needed, &label));
    }
    // The successful ones with a key lacking the n-th right needed.
    for (n, table) in WRITES_TABLES[2..].iter().enumerate() {
        for case in super::data_plane_cases(&ctx.writing_to(table)) {
            if let Some(missing) = needed(&case).get(n) {
                if succeeds(&case.expect) {
                    out.push(without(ctx, case, missing));
                }
            }
        }
    }
    out
}

/// The rights a case's request needs under enforcement.
fn needed(case: &Case) -> Vec<&'static str> {
    case.rights
        .clone()
        .or_else(|| rights::for_operation(&case.op).map(|r| vec![r]))
        .unwrap_or_default()
}

fn succeeds(expect: &Expect) -> bool {
    match expect {
        Expect::Status(s) => (200..300).contains(s),
        Expect::AnyOf(list) => list.iter().all(|s| (200..300).contains(s)),
        Expect::Documented => false,
    }
}

/// The case with a key of its own (created by an extra setup step) holding
/// `held`, in place of the admin key; setup steps and reads after keep the
/// admin key (it opens the data plane under enforcement too).
fn with_key(ctx: &Ctx, mut case: Case, held: &[&str], label: &str) -> Case {
    let step = case.setup.len();
    case.setup.push(
        ctx.request("post", "/admin/api-keys")
            .json(json!({"name": format!("conf-enforced-{}", case.op), "rights": held})),
    );
    case.request = case
        .request
        .without_header("X-Athena-Key")
        .header("X-Athena-Key", &format!("{{{{{step}.api_key}}}}"));
    case.name = format!("enforced, {label}: {}", case.name);
    case.phase = Phase::Enforced;
    case
}

/// The case with a key holding every data-plane right but `missing`: 403,
/// and none of the reads after (nothing was to happen).
fn without(ctx: &Ctx, case: Case, missing: &str) -> Case {
    let held: Vec<&str> = DATA_PLANE
        .iter()
        .copied()
        .filter(|r| *r != missing)
        // The read right may run the SDK's own lookup SELECTs through
        // `/gateway/query` (documented): a key lacking the raw-SQL right
        // must lack the read right too for a refusal to be due.
        .filter(|r| !(missing == rights::QUERY && *r == rights::FETCH))
        .collect();
    let mut case = with_key(ctx, case, &held, &format!("key without {missing}"));
    case.expect = Expect::Status(403);
    // The bare shape (issue 14) refuses with PostgREST's error JSON.
    case.check = match super::rest_shape::is_bare(&case.request) {
        true => Some(std::sync::Arc::new(super::rest_shape::check_bare)),
        false => Some(std::sync::Arc::new(envelope)),
    };
    case.after.clear();
    case
}

/// Flips global enforcement (its opposite is written first, so the value
/// changes), reads it back, and proves it with a keyless data-plane request.
fn enforce(ctx: &Ctx, on: bool) -> Case {
    let put = |v: bool| {
        ctx.request("put", "/admin/api-key-config")
            .json(json!({"enforce_api_keys": v}))
    };
    let keyless = ctx
        .request("post", "/gateway/fetch")
        .without_header("X-Athena-Key")
        .json(json!({"table_name": TABLE, "columns": ["id"], "limit": 1}));
    let global = move |b: &Value| {
        expect_eq(
            "global.enforce_api_keys",
            &b["global"]["enforce_api_keys"],
            &json!(on),
        )
    };
    let case = Case::new(
        CONFIG,
        if on {
            "turn global enforcement on"
        } else {
            "turn global enforcement off"
        },
        put(on),
        200,
    )
    .after(put(!on))
    .check_json(global)
    .then_json(ctx.request("get", "/admin/api-key-config"), 200, global);
    if on {
        case.then_status(keyless, 401)
            .then_status(keyless_with(ctx, "an-invalid-key"), 401)
            .in_phase(Phase::EnforceOn)
    } else {
        case.then_status(keyless, 200).in_phase(Phase::EnforceOff)
    }
}

fn keyless_with(ctx: &Ctx, key: &str) -> Request {
    ctx.request("post", "/gateway/fetch")
        .header("X-Athena-Key", key)
        .json(json!({"table_name": TABLE, "columns": ["id"], "limit": 1}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_needed_right_has_a_table_for_its_negative() {
        for case in crate::cases::data_plane_cases(&Ctx::for_tests()) {
            assert!(
                needed(&case).len() <= WRITES_TABLES.len() - 2,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn every_data_plane_case_runs_enforced_with_and_without_its_right() {
        let ctx = Ctx::for_tests();
        let cases = cases(&ctx);
        let fetch: Vec<&Case> = cases
            .iter()
            .filter(|c| c.op == "post_gateway_fetch" && c.phase == Phase::Enforced)
            .collect();
        assert!(fetch.iter().any(|c| c.expect == Expect::Status(403)));
        for c in &fetch {
            assert!(c
                .request
                .headers
                .iter()
                .any(|(n, v)| n == "X-Athena-Key" && v.starts_with("{{")));
        }
        let upsert_negatives = cases
            .iter()
            .filter(|c| {
                c.op == "put_gateway_insert" && c.name.contains("without gateway.update.execute")
            })
            .count();
        assert!(upsert_negatives >= 1);
        assert_eq!(
            cases.iter().filter(|c| c.op == CONFIG).count(),
            2,
            "one flip on, one off"
        );
    }
}
