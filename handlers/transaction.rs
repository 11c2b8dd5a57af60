//! `POST /gateway/transaction` (and `/db/gateway/transaction`): the
//! official SDK's atomic transactions (`athena.db.transaction(...)`,
//! ../shared/docs/athena-js-sdk.md §3.8). Not in the contract, so it is a
//! compatibility route outside the generated dispatch; each operation is
//! authorized exactly as its own route (`gateway.fetch.execute`, …) and
//! planned by the same code.
//!
//! Request: `{idempotency_key?, operations: [{id?, kind, payload}],
//! options?: {isolation_level?, read_only?, deferrable?}}` with `kind` one
//! of fetch | insert | update | delete and `payload` the body that route
//! takes. Answer: `results` (positional `{id, ok, status, data, count,
//! error}`) at the top level and in `data`, with `data.committed`. When an
//! operation fails, nothing is kept and the status is that operation's
//! error status, with the standard envelope plus the same `data`.

use super::Handlers;
use crate::api::models;
use crate::api::operations::Operation;
use crate::auth::Auth;
use crate::domain::DomainError;
use crate::gateway::plan::{
    delete_answer, delete_plan, fetch_query, insert_answer, insert_plan, update_answer, update_plan,
};
use crate::gateway::service::{DirectUri, Target};
use crate::gateway::transaction::{self, Op, OpResult, Options, Outcome};
use crate::gateway::write::Write;
use crate::http::{ApiError, ApiResult, HttpResponse};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

/// How an operation's result is answered (what its own route puts in
/// `data`).
enum Shape {
    Fetch,
    Insert {
        single: bool,
        table_name: String,
    },
    Rows,
    Delete {
        table_name: String,
        resource_id: Option<Value>,
    },
}

/// An operation's id (echoed in its result) and answer shape.
struct Planned {
    id: Value,
    shape: Shape,
}

impl Handlers {
    pub async fn gateway_transaction(
        &self,
        auth: &Auth,
        origin: &crate::auth::ip_policy::Origin,
        headers: &HeaderMap,
        query: &[(String, String)],
        body: Bytes,
    ) -> ApiResult<HttpResponse> {
        let request: Map<String, Value> = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!("the transaction body must be a JSON object: {e}"))
        })?;
        let operations = request
            .get("operations")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::bad_request("operations must be an array"))?;
        if operations.is_empty() {
            return Err(ApiError::bad_request("operations must not be empty"));
        }
        if operations.len() > transaction::MAX_OPERATIONS {
            return Err(ApiError::bad_request(format!(
                "a transaction carries at most {} operations",
                transaction::MAX_OPERATIONS
            )));
        }
        // Credentials first, per kind, exactly as the operation's own route.
        let mut kinds = Vec::with_capacity(operations.len());
        let mut caller = None;
        for (i, op) in operations.iter().enumerate() {
            let kind = op.get("kind").and_then(Value::as_str).unwrap_or_default();
            let operation = match kind {
                "fetch" | "select" => Operation::PostGatewayFetch,
                "insert" => Operation::PutGatewayInsert,
                "update" => Operation::PostGatewayUpdate,
                "delete" => Operation::DeleteGatewayDelete,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "operations[{i}].kind `{other}` is not one of fetch, insert, update, delete"
                    )))
                }
            };
            if !kinds.contains(&operation) {
                let principal = auth
                    .authorize(operation.meta(), headers, query, origin)
                    .await?;
                caller.get_or_insert(principal);
                kinds.push(operation);
            }
        }
        // The admission limiter counts the transaction once (never deferred).
        if let Some(admission) = auth.admission() {
            let subject = crate::admission::Subject {
                method: "POST",
                route: "/gateway/transaction",
                client: crate::auth::header_client(headers),
                direct: false,
                deferrable: false,
                defer_requested: false,
                is_query_route: false,
                request_bytes: body.len(),
                count_global: true,
            };
            Box::pin(admission.admit(&subject)).await?;
        }
        let options = options(request.get("options"))?;
        let key = match request.get("idempotency_key") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) if !k.is_empty() && k.len() <= transaction::MAX_KEY_LEN => {
                Some(k.as_str())
            }
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "idempotency_key must be a string of 1 to {} characters",
                    transaction::MAX_KEY_LEN
                )))
            }
        };
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().map(str::to_string).map_err(|_| name.to_string()))
                .transpose()
                .map_err(|name| ApiError::invalid_parameter(&name, "header is not visible ASCII"))
        };
        let target = Target {
            client: header("x-athena-client")?,
            direct: DirectUri {
                pg_uri: header("x-pg-uri")?,
                athena_jdbc_url: header("x-athena-jdbc-url")?,
                jdbc_url: header("x-jdbc-url")?,
            },
            ..Default::default()
        };
        let tenant = self.gateway.target(&target).await?;
        let strip = super::header_bool(headers, "x-strip-nulls");
        let mut planned = Vec::with_capacity(operations.len());
        let mut ops = Vec::with_capacity(operations.len());
        for (i, op) in operations.iter().enumerate() {
            let (p, op) = plan(op, strip).map_err(|e| at(i, e.into()))?;
            // An upsert needs the update right too, as on its own route.
            if let (Op::Write(write), Some(caller)) = (&op, &caller) {
                caller
                    .require_all(write.rights(), crate::auth::header_client(headers))
                    .map_err(|e| at(i, e))?;
            }
            planned.push(p);
            ops.push(op);
        }
        // Keys are the caller's own: another caller reusing one never gets
        // these results replayed (nor blocks this caller's transaction).
        let key = key.map(|k| transaction::scoped_key(caller.as_ref(), &tenant.name, k));
        let outcome =
            transaction::run(&tenant, &ops, options, key.as_deref(), self.config.max_rows)
                .await
                .map_err(|(i, e)| match i {
                    Some(i) => at(i, e.into()),
                    None => e.into(),
                })?;
        match outcome {
            Outcome::Committed { results, replayed } => {
                if !replayed {
                    let mut seen = Vec::new();
                    for table in ops.iter().filter_map(Op::written) {
                        if !seen.contains(&table) {
                            seen.push(table);
                            self.gateway
                                .cache
                                .invalidate(&tenant.name, Some(table))
                                .await;
                        }
                    }
                    // Committed: each write's event, as on its own route
                    // (a replay published them the first time).
                    self.gateway
                        .publish_transaction(&target, &tenant.name, &ops, &results)
                        .await?;
                }
                let results: Vec<Value> = planned
                    .iter()
                    .zip(results)
                    .map(|(p, r)| success(p, r))
                    .collect();
                let n = results.len();
                let mut out = crate::domain::success(if replayed {
                    format!("Transaction already committed under this idempotency key ({n} operations); results replayed")
                } else {
                    format!("Transaction committed ({n} operations)")
                });
                out.insert(
                    "data".into(),
                    json!({"committed": true, "replayed": replayed, "results": results}),
                );
                out.insert("results".into(), Value::Array(results));
                out.insert("committed".into(), json!(true));
                Ok(respond(StatusCode::OK, Value::Object(out)))
            }
            Outcome::RolledBack {
                done,
                failed,
                error,
            } => {
                let error: ApiError = error.into();
                let status = error.status();
                let mut results: Vec<Value> = Vec::with_capacity(planned.len());
                for (i, p) in planned.iter().enumerate() {
                    results.push(match done.get(i) {
                        // Ran, then rolled back with the rest.
                        Some(_) => json!({"id": p.id, "ok": false, "status": 409, "data": null, "count": null,
                                          "error": "rolled back: a later operation failed"}),
                        None if i == failed => json!({"id": p.id, "ok": false, "status": status.as_u16(),
                                                      "data": null, "count": null, "error": error.detail,
                                                      "code": error.code.as_str()}),
                        None => json!({"id": p.id, "ok": false, "status": 424, "data": null, "count": null,
                                       "error": "not executed: an earlier operation failed"}),
                    });
                }
                let mut out = serde_json::to_value(error.envelope())
                    .unwrap_or_else(|_| json!({"status": "error"}));
                if let Value::Object(map) = &mut out {
                    map.insert(
                        "message".into(),
                        json!(format!(
                            "Transaction rolled back: operation {failed} failed"
                        )),
                    );
                    map.insert(
                        "data".into(),
                        json!({"committed": false, "failed_operation": failed, "results": results}),
                    );
                    map.insert("results".into(), Value::Array(results));
                    map.insert("committed".into(), json!(false));
                }
                Ok(respond(status, out))
            }
        }
    }
}

/// Which operation a planning error belongs to.
fn at(i: usize, mut e: ApiError) -> ApiError {
    e.detail = format!("operations[{i}]: {}", e.detail);
    e
}

fn options(v: Option<&Value>) -> Result<Options, ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Options::default());
    };
    let o = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("options must be an object"))?;
    let flag = |name: &str| match o.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::bad_request(format!(
            "options.{name} must be a boolean"
        ))),
    };
    let isolation = match o.get("isolation_level").or_else(|| o.get("isolationLevel")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(transaction::isolation(s)?),
        Some(_) => {
            return Err(ApiError::bad_request(
                "options.isolation_level must be a string",
            ))
        }
    };
    Ok(Options {
        isolation,
        read_only: flag("read_only")? || flag("readOnly")?,
        deferrable: flag("deferrable")?,
    })
}

fn decode<T: serde::de::DeserializeOwned>(payload: &Value, kind: &str) -> Result<T, DomainError> {
    serde_json::from_value(payload.clone())
        .map_err(|e| DomainError::Invalid(format!("{kind} payload: {e}")))
}

fn plan(op: &Value, strip: Option<bool>) -> Result<(Planned, Op), DomainError> {
    let id = op.get("id").cloned().unwrap_or(Value::Null);
    let payload = op
        .get("payload")
        .filter(|p| p.is_object())
        .ok_or_else(|| DomainError::Invalid("payload must be an object".into()))?;
    let kind = op.get("kind").and_then(Value::as_str).unwrap_or_default();
    Ok(match kind {
        "fetch" | "select" => {
            let body: models::PostGatewayFetchRequest = decode(payload, kind)?;
            let query = fetch_query(&body, strip)?;
            (
                Planned {
                    id,
                    shape: Shape::Fetch,
                },
                Op::Fetch {
                    query,
                    count: body.count.as_deref().is_some_and(|c| !c.is_empty()),
                    head: body.head.unwrap_or(false),
                },
            )
        }
        "insert" => {
            let body: models::PutGatewayInsertRequest = decode(payload, kind)?;
            let (q, single) = insert_plan(&body, strip)?;
            let shape = Shape::Insert {
                single,
                table_name: body.table_name.clone(),
            };
            (Planned { id, shape }, Op::Write(Write::Insert(q)))
        }
        "update" => {
            let body: models::PostGatewayUpdateRequest = decode(payload, kind)?;
            (
                Planned {
                    id,
                    shape: Shape::Rows,
                },
                Op::Write(Write::Update(update_plan(&body, strip)?)),
            )
        }
        _ => {
            let body: models::DeleteGatewayDeleteRequest = decode(payload, kind)?;
            let shape = Shape::Delete {
                table_name: body.table_name.clone(),
                resource_id: body.resource_id.clone(),
            };
            (
                Planned { id, shape },
                Op::Write(Write::Delete(delete_plan(&body, strip)?)),
            )
        }
    })
}

/// One committed operation, as the SDK reads it: `{ok, status, data,
/// count}` where `data` is what the operation's own route answers in
/// `data`.
fn success(p: &Planned, r: OpResult) -> Value {
    use crate::gateway::write::WriteResult;
    let count = r.count;
    let write = || WriteResult {
        rows: r.rows.clone(),
        affected: count.unwrap_or(0),
        written: None,
    };
    let data = match &p.shape {
        Shape::Fetch => Value::Array(r.rows.iter().cloned().map(Value::Object).collect()),
        Shape::Insert { single, table_name } => insert_answer(write(), *single, table_name, false)
            .remove("data")
            .unwrap_or(Value::Null),
        Shape::Rows => update_answer(write()).remove("data").unwrap_or(Value::Null),
        Shape::Delete {
            table_name,
            resource_id,
        } => delete_answer(write(), table_name, resource_id.as_ref())
            .remove("data")
            .unwrap_or(Value::Null),
    };
    json!({"id": p.id, "ok": true, "status": 200, "data": data, "count": count, "error": null})
}

fn respond(status: StatusCode, body: Value) -> HttpResponse {
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = http::Response::new(http_body_util::Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
