//! Runs cases (phase by phase, bounded concurrency) and judges responses.

use crate::cases::{Case, Expect};
use crate::check::{check_response, Validators};
use crate::http::{HttpClient, Response};
use athena_codegen::spec::Operation;
use std::sync::Arc;
use tokio::sync::Semaphore;

pub const CONCURRENCY: usize = 8;

/// Sends every case; results come back in case order.
pub async fn run(client: &HttpClient, cases: &[Case]) -> Vec<Result<Response, String>> {
    let mut results: Vec<Option<Result<Response, String>>> = vec![None; cases.len()];
    let mut phases: Vec<_> = cases.iter().map(|c| c.phase).collect();
    phases.sort();
    phases.dedup();
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    for phase in phases {
        let mut tasks = Vec::new();
        for (i, case) in cases.iter().enumerate().filter(|(_, c)| c.phase == phase) {
            let client = client.clone();
            let request = case.request.clone();
            let setup = case.setup.clone();
            let permits = permits.clone();
            tasks.push((
                i,
                tokio::spawn(async move {
                    let _permit = permits
                        .acquire_owned()
                        .await
                        .expect("semaphore is never closed");
                    for step in &setup {
                        let r = client.send(step).await?;
                        if !(200..300).contains(&r.status) {
                            return Err(format!(
                                "setup {} {} answered {}: {}",
                                step.method,
                                step.path,
                                r.status,
                                r.snippet()
                            ));
                        }
                    }
                    client.send(&request).await
                }),
            ));
        }
        for (i, task) in tasks {
            results[i] = Some(
                task.await
                    .unwrap_or_else(|e| Err(format!("task failed: {e}"))),
            );
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every case ran"))
        .collect()
}

/// Judges one case: the expected status, the checks every response gets,
/// then the case's own check.
pub fn judge(
    case: &Case,
    op: &Operation,
    result: &Result<Response, String>,
    validators: &mut Validators,
) -> Result<(), String> {
    let resp = result.as_ref().map_err(Clone::clone)?;
    if resp.status == 501 {
        return Err("not implemented".into());
    }
    match &case.expect {
        Expect::Status(s) if resp.status != *s => {
            return Err(format!(
                "expected {s}, got {}: {}",
                resp.status,
                resp.snippet()
            ))
        }
        Expect::AnyOf(list) if !list.contains(&resp.status) => {
            return Err(format!(
                "expected one of {list:?}, got {}: {}",
                resp.status,
                resp.snippet()
            ))
        }
        Expect::Documented
            if resp.status == 401 && op.admin && case.request.has_header("X-Athena-Key") =>
        {
            return Err(format!("the admin key was rejected: {}", resp.snippet()))
        }
        _ => {}
    }
    check_response(op, resp, validators)?;
    if let Some(check) = &case.check {
        check(resp)?;
    }
    Ok(())
}
