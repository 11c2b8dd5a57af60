//! Conformance suite for the Athena gateway: every operation of
//! `openapi/openapi.yaml` gets at least one case (specific cases per family,
//! a generic spec-built fallback otherwise); the outcome is ratcheted by
//! `passing.txt` (may only grow) and `uncovered.txt` (may only shrink).

mod cases;
mod check;
mod cli;
mod db;
mod fixtures;
mod generic;
mod http;
mod integrations_fake;
mod ratchet;
mod rights;
mod runner;

use athena_codegen::Contract;
use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(msg) => {
            eprintln!("conformance: {msg}");
            ExitCode::from(2)
        }
    }
}

/// `Ok(false)`: the ratchet broke.
async fn run(args: cli::Args) -> Result<bool, String> {
    let contract = Contract::load(&args.spec).map_err(|e| e.to_string())?;
    let db = match &args.tenant_db_url {
        Some(url) => {
            let db = db::Db::connect(url).await?;
            fixtures::setup(&db).await?;
            Some(std::sync::Arc::new(db))
        }
        None => None,
    };
    if args.admin_key.is_none() {
        eprintln!("warning: no --admin-key: admin operations can only answer 401");
    }
    let ctx = cases::Ctx::new(
        args.admin_key.clone(),
        args.client.clone(),
        args.tenant_db_url.clone(),
        &contract,
    );
    // The SDK-only operations (openapi/sdk-overlay.yaml) are judged
    // against the schemas the overlay declares; they are outside the
    // contract's count and its ratchet, and every one must pass.
    let server = athena_codegen::overlay::server_contract(&contract)?;
    let mut cases = cases::all_cases(&contract, &ctx)?;
    let mut sdk_cases = cases::storage_s3::sdk_only_cases(&ctx);
    sdk_cases.extend(cases::billing::sdk_only_cases(&ctx));
    sdk_cases.extend(cases::chat::sdk_only_cases(&ctx));
    for case in &sdk_cases {
        if !server
            .operations
            .iter()
            .any(|o| o.name == case.op && o.sdk_only)
        {
            return Err(format!("SDK case {} names no SDK-only operation", case.op));
        }
    }
    cases.extend(sdk_cases);
    let client = http::HttpClient::new(&args.base_url);
    if let Some(key) = &args.admin_key {
        // A run cut short inside the enforced pass leaves enforcement on:
        // every run starts from it off (its flip is a case of its own).
        let reset = http::Request::new("put", "/admin/api-key-config")
            .header("X-Athena-Key", key)
            .json(serde_json::json!({"enforce_api_keys": false}));
        match client.send(&reset).await {
            Ok(r) if r.status == 200 => {}
            Ok(r) => eprintln!(
                "warning: turning API-key enforcement off answered {}",
                r.status
            ),
            Err(e) => eprintln!("warning: turning API-key enforcement off: {e}"),
        }
    }
    let results = runner::run(&client, &cases, db).await;
    let catalog_ok = match &args.admin_key {
        Some(key) => error_codes_are_catalogued(&client, key, &results).await,
        None => true,
    };

    let ops: BTreeMap<&str, _> = server
        .operations
        .iter()
        .map(|o| (o.name.as_str(), o))
        .collect();
    let mut validators = check::Validators::new(&server.component_schemas());
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut specific: BTreeSet<String> = BTreeSet::new();
    for (case, result) in cases.iter().zip(&results) {
        let op = ops[case.op.as_str()];
        if case.specific {
            specific.insert(case.op.clone());
        }
        let verdict = runner::judge(case, op, result, &mut validators);
        if args.verbose {
            let status = result
                .response
                .as_ref()
                .map(|r| r.status.to_string())
                .unwrap_or_else(|e| e.clone());
            let outcome = match &verdict {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("FAIL {e}"),
            };
            eprintln!(
                "case {} [{}] {} {} -> {status}: {outcome}",
                case.op,
                case.name,
                case.request.method,
                case.request.path_and_query()
            );
        }
        if let Err(reason) = verdict {
            let reason = if case.specific {
                format!("[{}] {reason}", case.name)
            } else {
                reason
            };
            failures.entry(case.op.clone()).or_default().push(reason);
        }
    }

    // Generic cases that "pass" with a 4xx were rejected before reaching a
    // handler (e.g. `{}` fails body validation): they say little about it.
    let rejected: BTreeSet<&str> = cases
        .iter()
        .zip(&results)
        .filter(|(c, r)| {
            !c.specific
                && !failures.contains_key(&c.op)
                && r.response
                    .as_ref()
                    .is_ok_and(|r| (400..500).contains(&r.status))
        })
        .map(|(c, _)| c.op.as_str())
        .collect();
    if !rejected.is_empty() {
        eprintln!(
            "note: {} generic case(s) pass with a 4xx (request rejected before the handler, e.g. `{{}}` body)",
            rejected.len()
        );
    }

    let with_case: BTreeSet<&str> = cases.iter().map(|c| c.op.as_str()).collect();
    let mut passing = BTreeSet::new();
    let mut uncovered = BTreeSet::new();
    for op in &contract.operations {
        if !specific.contains(&op.name) {
            uncovered.insert(op.name.clone());
        }
        match failures.get(&op.name) {
            Some(reasons) => {
                println!("FAIL {} {} ({}): {}", op.method.to_uppercase(), op.path, op.name, reasons.join("; "))
            }
            // Only an operation with a case of its own can pass: a generic
            // request rejected before the handler proves nothing about it.
            None if specific.contains(&op.name) => {
                passing.insert(op.name.clone());
            }
            None if with_case.contains(op.name.as_str()) => println!(
                "FAIL {} {} ({}): uncovered (only the generic request, which the server answered as documented)",
                op.method.to_uppercase(),
                op.path,
                op.name
            ),
            None => println!("FAIL {} {} ({}): no case", op.method.to_uppercase(), op.path, op.name),
        }
    }

    let mut sdk_ok = true;
    let sdk_only: Vec<_> = server.operations.iter().filter(|o| o.sdk_only).collect();
    let mut sdk_passing = 0;
    for op in &sdk_only {
        match failures.get(&op.name) {
            Some(reasons) => {
                sdk_ok = false;
                println!(
                    "FAIL {} {} ({}, SDK-only): {}",
                    op.method.to_uppercase(),
                    op.path,
                    op.name,
                    reasons.join("; ")
                );
            }
            None if specific.contains(&op.name) => sdk_passing += 1,
            None => {
                sdk_ok = false;
                println!(
                    "FAIL {} {} ({}, SDK-only): no case",
                    op.method.to_uppercase(),
                    op.path,
                    op.name
                );
            }
        }
    }

    let recorded_passing = ratchet::read_list(&args.passing)?;
    let recorded_uncovered = ratchet::read_list(&args.uncovered)?;
    let mut ok = true;
    if args.update {
        if let Some(prev) = &recorded_passing {
            for op in prev.difference(&passing) {
                eprintln!(
                    "warning: {op} no longer passes; dropped from {}",
                    args.passing.display()
                );
            }
        }
        ratchet::write_list(&args.uncovered, &uncovered)?;
        ratchet::write_list(&args.passing, &passing)?;
        eprintln!(
            "updated {} and {}",
            args.uncovered.display(),
            args.passing.display()
        );
    } else {
        if recorded_uncovered.is_none() {
            println!(
                "RATCHET: {} does not exist (run with --update to create it)",
                args.uncovered.display()
            );
        }
        let violations = ratchet::violations(
            &recorded_passing.unwrap_or_default(),
            recorded_uncovered.as_ref().unwrap_or(&BTreeSet::new()),
            &passing,
            &uncovered,
        );
        for v in &violations {
            match v {
                ratchet::Violation::Regressed(op) => {
                    let why = failures
                        .get(op)
                        .map(|r| r.join("; "))
                        .unwrap_or_else(|| "not an operation of the contract any more".into());
                    println!(
                        "RATCHET: {op} is listed in {} but fails now: {why}",
                        args.passing.display()
                    );
                }
                ratchet::Violation::NewlyUncovered(op) => println!(
                    "RATCHET: {op} has no specific case and is not listed in {} (add a case)",
                    args.uncovered.display()
                ),
            }
        }
        ok = violations.is_empty();
        if let Some(recorded) = &recorded_uncovered {
            let stale = ratchet::stale_uncovered(recorded, &uncovered);
            if !stale.is_empty() {
                eprintln!(
                    "note: {} covered op(s) still listed in {}; run with --update to shrink it",
                    stale.len(),
                    args.uncovered.display()
                );
            }
        }
        if let Some(recorded) = ratchet::read_list(&args.passing)? {
            let new = passing.difference(&recorded).count();
            if new > 0 {
                eprintln!(
                    "note: {new} op(s) pass but are not in {}; run with --update",
                    args.passing.display()
                );
            }
        }
    }
    println!(
        "conformance: {}/{} operations pass, {} uncovered",
        passing.len(),
        contract.operations.len(),
        uncovered.len()
    );
    println!(
        "conformance: {sdk_passing}/{} SDK-only operations pass (openapi/sdk-overlay.yaml; all must)",
        sdk_only.len()
    );
    Ok(ok && sdk_ok && catalog_ok)
}

/// Every error `code` the server answered during the run is listed by its
/// own registry (`GET /admin/errors/catalog`); prints the ones that are not.
async fn error_codes_are_catalogued(
    client: &http::HttpClient,
    key: &str,
    results: &[runner::Outcome],
) -> bool {
    let seen: BTreeSet<String> = results
        .iter()
        .filter_map(|r| r.response.as_ref().ok())
        .filter(|r| r.status >= 400)
        .filter_map(|r| r.json().ok())
        // Envelopes only: PostgREST's error JSON of the bare shape (issue
        // 14, `cases/rest_shape.rs`) carries PostgREST's codes.
        .filter(|v| v.get("status").is_some())
        .filter_map(|v| v.get("code")?.as_str().map(str::to_string))
        .collect();
    let request = http::Request::new("get", "/admin/errors/catalog").header("X-Athena-Key", key);
    let listed: BTreeSet<String> = match client.send(&request).await.and_then(|r| r.json()) {
        Ok(v) => v["data"]["errors"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|e| e["code"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) => {
            println!("FAIL the error catalog could not be read: {e}");
            return false;
        }
    };
    let missing: Vec<&String> = seen.difference(&listed).collect();
    if !missing.is_empty() {
        println!("FAIL error codes answered but not in /admin/errors/catalog: {missing:?}");
        return false;
    }
    println!(
        "conformance: {} error codes answered in the run, all in the error catalog ({} listed)",
        seen.len(),
        listed.len()
    );
    true
}

#[cfg(test)]
mod tests {
    use athena_codegen::Contract;
    use std::sync::OnceLock;

    /// The project contract, loaded once per test binary.
    pub fn contract() -> Contract {
        static TEXT: OnceLock<String> = OnceLock::new();
        let text =
            TEXT.get_or_init(|| std::fs::read_to_string(crate::cli::default_spec()).unwrap());
        Contract::parse(text).expect("the project contract loads")
    }
}
