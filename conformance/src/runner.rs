//! Runs cases (phase by phase, bounded concurrency), the reads after them,
//! and judges responses.

use crate::cases::{After, Case, Expect};
use crate::check::{check_response, Validators};
use crate::db::Db;
use crate::http::{HttpClient, Request, Response};
use athena_codegen::spec::Operation;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Semaphore;

pub const CONCURRENCY: usize = 8;

/// What a case produced: its response (or why there is none) and the
/// verdict of the reads after it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub response: Result<Response, String>,
    pub after: Result<(), String>,
}

/// Sends every case; outcomes come back in case order. `db` is the tenant
/// database, for the reads after cases that look there.
pub async fn run(client: &HttpClient, cases: &[Case], db: Option<Arc<Db>>) -> Vec<Outcome> {
    let mut results: Vec<Option<Outcome>> = vec![None; cases.len()];
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
            let after = case.after.clone();
            let permits = permits.clone();
            let db = db.clone();
            tasks.push((
                i,
                tokio::spawn(async move {
                    let _permit = permits
                        .acquire_owned()
                        .await
                        .expect("semaphore is never closed");
                    run_case(&client, db.as_deref(), request, &setup, &after).await
                }),
            ));
        }
        for (i, task) in tasks {
            results[i] = Some(task.await.unwrap_or_else(|e| Outcome {
                response: Err(format!("task failed: {e}")),
                after: Ok(()),
            }));
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every case ran"))
        .collect()
}

async fn run_case(
    client: &HttpClient,
    db: Option<&Db>,
    request: Request,
    setup: &[Request],
    after: &[After],
) -> Outcome {
    let failed = |e: String| Outcome {
        response: Err(e),
        after: Ok(()),
    };
    let mut outputs = Vec::with_capacity(setup.len());
    for step in setup {
        let step = match fill_request(step.clone(), &outputs, None) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let r = match client.send(&step).await {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        if !(200..300).contains(&r.status) {
            return failed(format!(
                "setup {} {} answered {}: {}",
                step.method,
                step.path,
                r.status,
                r.snippet()
            ));
        }
        outputs.push(r.json().unwrap_or(Value::Null));
    }
    let response = match fill_request(request, &outputs, None) {
        Ok(request) => client.send(&request).await,
        Err(e) => Err(e),
    };
    let after = match &response {
        Ok(r) => {
            let own = r.json().unwrap_or(Value::Null);
            run_after(client, db, after, &outputs, &own).await
        }
        Err(_) => Ok(()),
    };
    Outcome { response, after }
}

/// Runs the reads after a case, in order; the first that fails is the
/// verdict.
async fn run_after(
    client: &HttpClient,
    db: Option<&Db>,
    after: &[After],
    outputs: &[Value],
    own: &Value,
) -> Result<(), String> {
    for (n, step) in after.iter().enumerate() {
        let n = n + 1;
        match step {
            After::Api {
                request,
                status,
                check,
            } => {
                let request = fill_request(request.clone(), outputs, Some(own))?;
                let r = client.send(&request).await.map_err(|e| {
                    format!("read-back {n} {} {}: {e}", request.method, request.path)
                })?;
                if r.status != *status {
                    return Err(format!(
                        "read-back {n} {} {} answered {}, want {status}: {}",
                        request.method,
                        request.path_and_query(),
                        r.status,
                        r.snippet()
                    ));
                }
                if let Some(check) = check {
                    check(&r).map_err(|e| {
                        format!(
                            "read-back {n} {} {}: {e}",
                            request.method,
                            request.path_and_query()
                        )
                    })?;
                }
            }
            After::Db { sql, check } => {
                let db = db.ok_or("reading the tenant database needs --tenant-db-url")?;
                let sql = fill(sql, outputs, Some(own))?;
                let rows = db.rows(&sql).await?;
                check(&rows).map_err(|e| format!("read-back {n} `{sql}`: {e}"))?;
            }
        }
    }
    Ok(())
}

/// Judges one case: the expected status, the checks every response gets,
/// then the case's own check.
pub fn judge(
    case: &Case,
    op: &Operation,
    outcome: &Outcome,
    validators: &mut Validators,
) -> Result<(), String> {
    let resp = outcome.response.as_ref().map_err(Clone::clone)?;
    // A 501 is an unbuilt operation, unless the case expects exactly that
    // (an S3 store lacking a feature: its check reads who said so) and the
    // operation documents it.
    let store_501 = resp.status == 501 && case.expect == Expect::AnyOf(vec![501]);
    if resp.status == 501 && !store_501 {
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
    if store_501 {
        if !crate::check::status_allowed(op, 501) {
            return Err("501 is not documented for this operation".into());
        }
    } else if crate::cases::rest_shape::is_bare(&case.request) {
        // PostgREST's bare shape (issue 14): its own rules, not the
        // contract's schemas (openapi/CHANGES.md).
        crate::cases::rest_shape::check_bare(resp)?;
    } else {
        check_response(op, resp, validators)?;
    }
    if let Some(check) = &case.check {
        check(resp)?;
    }
    outcome.after.clone()
}

/// Replaces `{{N.field.field}}` in the path, query, headers and body strings
/// with the value at that path in setup step N's JSON response (e.g. the id
/// of the record the setup created), and `{{r.field}}` with the value in the
/// case's own response (`own`, for the reads after it). Dots, not slashes,
/// so a placeholder stays one path segment.
pub fn fill_request(
    mut request: Request,
    outputs: &[Value],
    own: Option<&Value>,
) -> Result<Request, String> {
    request.path = fill(&request.path, outputs, own)?;
    for (_, v) in request.query.iter_mut().chain(request.headers.iter_mut()) {
        *v = fill(v, outputs, own)?;
    }
    if let Some(body) = request.body.take() {
        request.body = Some(fill_value(body, outputs, own)?);
    }
    Ok(request)
}

fn fill_value(v: Value, outputs: &[Value], own: Option<&Value>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(fill(&s, outputs, own)?),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|v| fill_value(v, outputs, own))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| fill_value(v, outputs, own).map(|v| (k, v)))
                .collect::<Result<_, _>>()?,
        ),
        other => other,
    })
}

pub fn fill(template: &str, outputs: &[Value], own: Option<&Value>) -> Result<String, String> {
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
        let value = if step == "r" {
            own.ok_or_else(|| format!("placeholder {spec}: no response yet"))?
                .pointer(&pointer)
                .ok_or_else(|| format!("the response has nothing at {pointer}"))?
        } else {
            let step: usize = step
                .parse()
                .map_err(|_| format!("placeholder {spec}: bad step"))?;
            outputs
                .get(step)
                .and_then(|o| o.pointer(&pointer))
                .ok_or_else(|| format!("setup step {step} has nothing at {pointer}"))?
        };
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
        let r = fill_request(r.header("X-Athena-Key", "{{0.record.id}}"), &outputs, None).unwrap();
        assert_eq!(r.path, "/admin/api-keys/abc");
        assert_eq!(r.body, Some(json!({"a": ["3"]})));
        assert!(r.headers.contains(&("X-Athena-Key".into(), "abc".into())));
        assert!(fill("/x/{{1.id}}", &outputs, None).is_err());
        assert!(fill("/x/{{0.missing}}", &outputs, None).is_err());
        assert!(fill("/x/{{r.id}}", &outputs, None).is_err());
        let own = json!({"id": 7});
        assert_eq!(fill("/x/{{r.id}}", &outputs, Some(&own)).unwrap(), "/x/7");
    }
}
