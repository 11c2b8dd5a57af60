//! Runs cases (phase by phase, bounded concurrency) and judges responses.

use crate::cases::{Case, Expect};
use crate::check::{check_response, Validators};
use crate::http::{HttpClient, Request, Response};
use athena_codegen::spec::Operation;
use serde_json::Value;
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
                    let mut outputs = Vec::with_capacity(setup.len());
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
                        outputs.push(r.json().unwrap_or(Value::Null));
                    }
                    let request = fill_request(request, &outputs)?;
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

/// Replaces `{{N.field.field}}` in the path and in body strings with the
/// value at that path in setup step N's JSON response (e.g. the id of the
/// record the setup created). Dots, not slashes, so a placeholder stays one
/// path segment.
pub fn fill_request(mut request: Request, outputs: &[Value]) -> Result<Request, String> {
    request.path = fill(&request.path, outputs)?;
    if let Some(body) = request.body.take() {
        request.body = Some(fill_value(body, outputs)?);
    }
    Ok(request)
}

fn fill_value(v: Value, outputs: &[Value]) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(fill(&s, outputs)?),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|v| fill_value(v, outputs))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| fill_value(v, outputs).map(|v| (k, v)))
                .collect::<Result<_, _>>()?,
        ),
        other => other,
    })
}

fn fill(template: &str, outputs: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| format!("unclosed placeholder in {template}"))?
            + start;
        let spec = &rest[start + 2..end];
        let (step, path) = spec
            .split_once('.')
            .ok_or_else(|| format!("placeholder {spec} is not N.field"))?;
        let pointer = format!("/{}", path.replace('.', "/"));
        let step: usize = step
            .parse()
            .map_err(|_| format!("placeholder {spec}: bad step"))?;
        let value = outputs
            .get(step)
            .and_then(|o| o.pointer(&pointer))
            .ok_or_else(|| format!("setup step {step} has nothing at {pointer}"))?;
        match value {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod fill_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_take_values_from_setup_responses() {
        let outputs = vec![json!({"record": {"id": "abc", "n": 3}})];
        let r = Request::new("patch", "/admin/api-keys/{{0.record.id}}")
            .json(json!({"a": ["{{0.record.n}}"]}));
        let r = fill_request(r, &outputs).unwrap();
        assert_eq!(r.path, "/admin/api-keys/abc");
        assert_eq!(r.body, Some(json!({"a": ["3"]})));
        assert!(fill("/x/{{1.id}}", &outputs).is_err());
        assert!(fill("/x/{{0.missing}}", &outputs).is_err());
    }
}
