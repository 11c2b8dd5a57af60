//! Webhook sink delivery: the `sink` target kind of the outbox.
//!
//! A sink projects an event of its source client into rows of a table of
//! its target client. Each target column takes the value a JSON pointer
//! (RFC 6901) finds in a document made of the event
//! `{event_id, route_key, client_name, table_name, occurred_at, data}` plus
//! `row`: one projected row per element of `data.rows` (the written rows of
//! a gateway/REST write), `row` being that element; an event without a
//! `data.rows` array gives one row with `row` = `data`. A pointer that
//! finds nothing gives NULL. The rows are inserted through the gateway
//! insert engine (`src/gateway/write.rs`: identifiers resolved in the
//! target's schema and quoted, values bound and cast to the column types;
//! `onConflict` → `ON CONFLICT … DO UPDATE`/`DO NOTHING`), in one
//! transaction. The target write publishes no event of its own (a sink
//! cannot feed a loop). Every attempt is logged in
//! `gateway_webhook_sink_deliveries`; a failed attempt (target client
//! unknown or unreachable, a value the column refuses) is retried with the
//! outbox backoff until `max_attempts`, then the job is `failed`.
//!
//! Delivery is at least once, like webhooks: a worker killed after the
//! target committed but before the outcome was recorded inserts again after
//! the takeover — a sink with `onConflict` on a key taken from the event
//! (`/event_id`, a source primary key) makes that replay a no-op.
//! `test` runs the same projection and insert in a transaction that is
//! rolled back, and answers the rows that would have been written.

use super::{BoxFuture, Deliverer, Delivery, Job};
use crate::catalog::webhook_sinks::{self, Attempt, Sink};
use crate::db::Pool;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use crate::gateway::service::Gateway;
use crate::gateway::write::{self, Conflict, ConflictAction, InsertQuery, Write};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Instant;

pub struct Sinks {
    catalog: Pool,
    gateway: Arc<Gateway>,
}

/// The documents the pointers of a sink are resolved in: one per projected
/// row (see the module notes).
pub fn documents(event: &Value) -> Vec<Value> {
    let with_row = |row: &Value| {
        let mut doc = event.clone();
        if let Value::Object(m) = &mut doc {
            m.insert("row".into(), row.clone());
        }
        doc
    };
    match event.pointer("/data/rows") {
        Some(Value::Array(rows)) => rows.iter().map(with_row).collect(),
        _ => vec![with_row(event.get("data").unwrap_or(&Value::Null))],
    }
}

/// The rows a sink writes for `event`: each mapped column's value, NULL
/// when its pointer finds nothing.
pub fn project(sink: &Sink, event: &Value) -> Vec<Map<String, Value>> {
    documents(event)
        .iter()
        .map(|doc| {
            sink.column_map
                .iter()
                .map(|(column, pointer)| {
                    let v = pointer
                        .as_str()
                        .and_then(|p| doc.pointer(p))
                        .cloned()
                        .unwrap_or(Value::Null);
                    (column.clone(), v)
                })
                .collect()
        })
        .collect()
}

/// The insert of `rows` into the sink's target.
fn insert(sink: &Sink, rows: Vec<Map<String, Value>>) -> Result<Write, DomainError> {
    let on_conflict = sink.on_conflict.as_ref().map(|c| Conflict {
        columns: c.columns.clone(),
        action: if c.action == "nothing" {
            ConflictAction::Nothing
        } else {
            ConflictAction::Merge
        },
    });
    Ok(Write::Insert(InsertQuery {
        schema: Ident::parse("schema", &sink.target_schema)?,
        table: Ident::parse("table", &sink.target_table)?,
        rows,
        returning: None,
        on_conflict,
        default_to_null: true,
        strip_nulls: false,
        columns: Some(sink.column_map.keys().cloned().collect()),
    }))
}

/// Checks a sink's target before it is saved: the target client resolves,
/// the table exists in its schema, every mapped and conflict column is a
/// column of it (400 naming the bad field).
pub async fn check_target(gateway: &Gateway, sink: &Sink) -> Result<(), DomainError> {
    let tenant = gateway
        .tenant(Some(&sink.target_client_name))
        .await
        .map_err(|e| match e {
            DomainError::NotFound { .. } => DomainError::invalid_field(
                "targetClientName",
                format!("`{}` is not a registered client", sink.target_client_name),
            ),
            DomainError::FrozenClient(_) => DomainError::invalid_field(
                "targetClientName",
                format!("`{}` is frozen", sink.target_client_name),
            ),
            other => other,
        })?;
    let schema = Ident::parse("schema", &sink.target_schema)
        .map_err(|e| DomainError::invalid_field("targetSchema", invalid_reason(e)))?;
    let table = Ident::parse("table", &sink.target_table)
        .map_err(|e| DomainError::invalid_field("targetTable", invalid_reason(e)))?;
    let meta = write::table_of(&tenant, &schema, &table)
        .await
        .map_err(|e| match e {
            DomainError::Unavailable(_) | DomainError::Timeout(_) | DomainError::Internal(_) => e,
            _ => DomainError::invalid_field(
                "targetTable",
                format!(
                    "`{}.{}` is not a table of `{}`",
                    sink.target_schema, sink.target_table, sink.target_client_name
                ),
            ),
        })?;
    for column in sink.column_map.keys() {
        if meta.column(column).is_err() {
            return Err(DomainError::invalid_field(
                format!("columnMap.{column}"),
                format!(
                    "`{column}` is not a column of `{}.{}`",
                    sink.target_schema, sink.target_table
                ),
            ));
        }
    }
    if let Some(c) = &sink.on_conflict {
        for column in &c.columns {
            if meta.column(column).is_err() {
                return Err(DomainError::invalid_field(
                    "onConflict",
                    format!(
                        "`{column}` is not a column of `{}.{}`",
                        sink.target_schema, sink.target_table
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn invalid_reason(e: DomainError) -> String {
    match e {
        DomainError::Invalid(m) => m,
        other => other.to_string(),
    }
}

impl Sinks {
    pub fn new(catalog: Pool, gateway: Arc<Gateway>) -> Sinks {
        Sinks { catalog, gateway }
    }

    /// Projects `event` and writes it into the target (committed unless
    /// `test`), logs the attempt; the logged row and whether it succeeded.
    pub async fn attempt(
        &self,
        sink: &Sink,
        event: &Value,
        attempt: i32,
        outbox_id: Option<uuid::Uuid>,
        test: bool,
    ) -> Result<(Value, bool), DomainError> {
        let event_id = event
            .get("event_id")
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .ok_or_else(|| DomainError::Internal("an outbox event has no event_id".into()))?;
        let started = Instant::now();
        let outcome = self.write(sink, event, test).await;
        let (ok, affected, rows, error) = match outcome {
            Ok(r) => (true, r.affected, Some(json!(r.rows)), None),
            Err(e) => (false, 0, None, Some(describe(&e))),
        };
        let row = webhook_sinks::record(
            &self.catalog,
            &Attempt {
                sink_id: sink.id,
                outbox_id,
                event_id,
                route_key: event["route_key"].as_str().unwrap_or_default().to_string(),
                attempt,
                ok,
                affected,
                rows,
                duration_ms: started.elapsed().as_millis().min(i32::MAX as u128) as i32,
                error,
                test,
            },
        )
        .await?;
        Ok((row, ok))
    }

    async fn write(
        &self,
        sink: &Sink,
        event: &Value,
        test: bool,
    ) -> Result<write::WriteResult, DomainError> {
        let rows = project(sink, event);
        if rows.is_empty() {
            return Ok(write::WriteResult::default());
        }
        let tenant = self.gateway.tenant(Some(&sink.target_client_name)).await?;
        let w = insert(sink, rows)?;
        let result = write::run_in_transaction(&tenant, &w, !test).await?;
        if !test {
            self.gateway
                .cache
                .invalidate(
                    &tenant.name,
                    Some((sink.target_schema.as_str(), sink.target_table.as_str())),
                )
                .await;
        }
        Ok(result)
    }

    /// `POST /admin/webhook-sinks/{id}/test`: a sample event (its `data`
    /// given or `{rows: [{}]}`) projected and inserted in a transaction
    /// that is rolled back; the attempt, with the rows that would have been
    /// written.
    pub async fn test(&self, id: i64, data: Option<Value>) -> Result<Option<Value>, DomainError> {
        let Some(sink) = webhook_sinks::get(&self.catalog, id).await? else {
            return Ok(None);
        };
        let event = super::Event::now(
            sink.route_key.clone(),
            sink.source_client_name.clone(),
            sink.source_table_name.clone(),
            data.unwrap_or_else(|| json!({"operation": "test", "rows": [{}], "affected": 1})),
        )
        .to_json();
        let (attempt, ok) = self.attempt(&sink, &event, 1, None, true).await?;
        Ok(Some(json!({
            "ok": ok,
            "rolled_back": true,
            "projected": project(&sink, &event),
            "attempt": attempt,
            "event": event,
        })))
    }
}

/// What a failed attempt says in the log (client-safe: no URIs, no SQL).
fn describe(e: &DomainError) -> String {
    match e {
        DomainError::NotFound { kind, key } => format!("{kind} `{key}` not found"),
        DomainError::FrozenClient(c) => format!("client `{c}` is frozen"),
        DomainError::InvalidField { field, reason } => format!("{field}: {reason}"),
        DomainError::Invalid(m) | DomainError::Conflict(m) => m.clone(),
        DomainError::UnknownColumn(c) => format!("column `{c}` not found"),
        DomainError::Unavailable(_) => "the target database is unavailable".into(),
        DomainError::Timeout(_) => "the target database did not answer in time".into(),
        DomainError::Internal(_) => "internal error".into(),
        other => format!("{other:?}").chars().take(300).collect(),
    }
}

impl Deliverer for Sinks {
    fn kind(&self) -> &'static str {
        "sink"
    }

    fn deliver<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Delivery> {
        Box::pin(async move {
            let Ok(id) = job.target_id.parse::<i64>() else {
                return Delivery::Failed(format!("`{}` is not a sink id", job.target_id));
            };
            let sink = match webhook_sinks::get(&self.catalog, id).await {
                Ok(Some(s)) => s,
                Ok(None) => return Delivery::Failed("the sink was deleted".into()),
                Err(e) => return Delivery::Retry(e.to_string()),
            };
            if !sink.enabled {
                return Delivery::Failed("the sink was disabled".into());
            }
            let attempt = self
                .attempt(
                    &sink,
                    &job.event,
                    job.lease.attempts,
                    Some(job.lease.id),
                    false,
                )
                .await;
            match attempt {
                Ok((row, true)) => Delivery::Delivered(row),
                Ok((row, false)) => {
                    let error = row["error"].as_str().unwrap_or("not written").to_string();
                    if job.lease.attempts >= sink.max_attempts {
                        Delivery::Failed(error)
                    } else {
                        Delivery::Retry(error)
                    }
                }
                Err(e) => Delivery::Retry(e.to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(map: Value) -> Sink {
        let c = webhook_sinks::Changes::parse(
            json!({
                "name": "s", "sourceClientName": "a", "routeKey": "gateway.insert",
                "targetClientName": "b", "targetTable": "t", "columnMap": map
            })
            .as_object()
            .unwrap(),
        )
        .unwrap();
        c.merged(None).unwrap()
    }

    #[test]
    fn projects_one_row_per_written_row_and_null_for_missing() {
        let s = sink(json!({"id": "/row/id", "ev": "/event_id", "gone": "/row/nope"}));
        let event = json!({"event_id": "e1", "data": {"rows": [{"id": 1}, {"id": 2}]}});
        let rows = project(&s, &event);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["id"], json!(2));
        assert_eq!(rows[0]["ev"], json!("e1"));
        assert_eq!(rows[0]["gone"], Value::Null);
        let ddl = json!({"event_id": "e2", "data": {"table": "x"}});
        let rows = project(&sink(json!({"t": "/row/table"})), &ddl);
        assert_eq!(rows, vec![json!({"t": "x"}).as_object().cloned().unwrap()]);
    }
}
