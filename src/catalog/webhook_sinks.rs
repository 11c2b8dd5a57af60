//! Webhook sinks (`athena_webhook_sinks`, migration 0011; issue 15): the
//! record behind `/admin/webhook-sinks*`, its body, and the delivery log
//! (`gateway_webhook_sink_deliveries`). The body is defined in
//! `openapi/CHANGES.md` ("Webhook sinks (issue 15)"): camelCase fields with
//! snake_case aliases `{name, sourceClientName, routeKey, sourceTableName?,
//! targetClientName, targetSchema?, targetTable, columnMap, onConflict?,
//! enabled?, maxAttempts?}`. This module checks the shape; the target's
//! table and columns are checked against the target's schema by
//! `events::sinks::check_target` before a save.

use crate::catalog::clients;
use crate::db::Pool;
use crate::domain::DomainError;
use crate::events::{self, Subscription};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

pub const DEFAULT_MAX_ATTEMPTS: i32 = 5;
pub const MAX_ATTEMPTS: i32 = 10;
/// Most columns one sink writes.
const MAX_COLUMNS: usize = 200;

/// What `ON CONFLICT` does for a sink.
#[derive(Debug, Clone, PartialEq)]
pub struct OnConflict {
    /// The conflict target; empty = the target table's primary key.
    pub columns: Vec<String>,
    /// `merge` (update the mapped columns) or `nothing`.
    pub action: String,
}

impl OnConflict {
    pub fn to_json(&self) -> Value {
        json!({"columns": self.columns, "action": self.action})
    }

    fn from_json(v: &Value) -> Option<OnConflict> {
        let columns = v
            .get("columns")?
            .as_array()?
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        let action = v.get("action")?.as_str()?.to_string();
        Some(OnConflict { columns, action })
    }

    /// `"id"`, `"a,b"`, `["a","b"]`, `true` (the primary key) or
    /// `{columns?, action?: merge|nothing}`.
    pub fn parse(v: &Value) -> Result<Option<OnConflict>, DomainError> {
        let bad = || {
            DomainError::invalid_field(
                "onConflict",
                "must be column names (`\"id\"`, `[\"a\",\"b\"]`), true (the primary key) or {columns, action: merge|nothing}",
            )
        };
        let names = |list: Vec<&str>| -> Result<Vec<String>, DomainError> {
            list.into_iter()
                .map(str::trim)
                .map(|c| {
                    if c.is_empty() || c.len() > 63 {
                        Err(bad())
                    } else {
                        Ok(c.to_string())
                    }
                })
                .collect()
        };
        let merge = |columns| {
            Ok(Some(OnConflict {
                columns,
                action: "merge".into(),
            }))
        };
        match v {
            Value::Null | Value::Bool(false) => Ok(None),
            Value::Bool(true) => merge(Vec::new()),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => merge(names(s.split(',').collect())?),
            Value::Array(a) => {
                let list: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
                merge(names(list.ok_or_else(bad)?)?)
            }
            Value::Object(m) => {
                let columns = match m.get("columns") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::String(s)) => names(s.split(',').collect())?,
                    Some(Value::Array(a)) => {
                        let list: Option<Vec<&str>> = a.iter().map(Value::as_str).collect();
                        names(list.ok_or_else(bad)?)?
                    }
                    Some(_) => return Err(bad()),
                };
                let action = match m.get("action").and_then(Value::as_str) {
                    None => "merge",
                    Some(a @ ("merge" | "nothing")) => a,
                    Some("update") => "merge",
                    Some(_) => return Err(bad()),
                };
                if m.keys().any(|k| k != "columns" && k != "action") {
                    return Err(bad());
                }
                Ok(Some(OnConflict {
                    columns,
                    action: action.into(),
                }))
            }
            _ => Err(bad()),
        }
    }
}

/// A sink as stored.
#[derive(Debug, Clone)]
pub struct Sink {
    pub id: i64,
    pub name: String,
    pub source_client_name: String,
    pub route_key: String,
    pub source_table_name: Option<String>,
    pub target_client_name: String,
    pub target_schema: String,
    pub target_table: String,
    /// Target column → JSON pointer, in the stored order.
    pub column_map: Map<String, Value>,
    pub on_conflict: Option<OnConflict>,
    pub enabled: bool,
    pub max_attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, source_client_name, route_key, source_table_name, \
    target_client_name, target_schema, target_table, column_map, on_conflict, enabled, \
    max_attempts, created_at, updated_at";

fn from_row(r: &tokio_postgres::Row) -> Sink {
    Sink {
        id: r.get(0),
        name: r.get(1),
        source_client_name: r.get(2),
        route_key: r.get(3),
        source_table_name: r.get(4),
        target_client_name: r.get(5),
        target_schema: r.get(6),
        target_table: r.get(7),
        column_map: match r.get::<_, Value>(8) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        on_conflict: r
            .get::<_, Option<Value>>(9)
            .as_ref()
            .and_then(OnConflict::from_json),
        enabled: r.get(10),
        max_attempts: r.get(11),
        created_at: r.get(12),
        updated_at: r.get(13),
    }
}

impl Sink {
    /// The record as answered: camelCase fields first, the snake_case
    /// twins alongside (what a caller posted either way reads back).
    pub fn to_json(&self) -> Value {
        let on_conflict = self.on_conflict.as_ref().map(OnConflict::to_json);
        json!({
            "id": self.id,
            "name": self.name,
            "sourceClientName": self.source_client_name,
            "routeKey": self.route_key,
            "sourceTableName": self.source_table_name,
            "targetClientName": self.target_client_name,
            "targetSchema": self.target_schema,
            "targetTable": self.target_table,
            "columnMap": self.column_map,
            "onConflict": on_conflict,
            "enabled": self.enabled,
            "maxAttempts": self.max_attempts,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "source_client_name": self.source_client_name,
            "route_key": self.route_key,
            "source_table_name": self.source_table_name,
            "target_client_name": self.target_client_name,
            "target_schema": self.target_schema,
            "target_table": self.target_table,
            "column_map": self.column_map,
            "on_conflict": on_conflict,
            "max_attempts": self.max_attempts,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// What a POST or PATCH sets. `None` = not given (PATCH keeps the value).
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub source_client_name: Option<String>,
    pub route_key: Option<String>,
    /// `Some(None)`: cleared.
    pub source_table_name: Option<Option<String>>,
    pub target_client_name: Option<String>,
    pub target_schema: Option<String>,
    pub target_table: Option<String>,
    pub column_map: Option<Map<String, Value>>,
    /// `Some(None)`: cleared (plain inserts).
    pub on_conflict: Option<Option<OnConflict>>,
    pub enabled: Option<bool>,
    pub max_attempts: Option<i32>,
}

/// The fields a body may carry: camelCase and the snake_case alias.
const FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("name", "name"),
    ("sourceClientName", "source_client_name"),
    ("routeKey", "route_key"),
    ("sourceTableName", "source_table_name"),
    ("targetClientName", "target_client_name"),
    ("targetSchema", "target_schema"),
    ("targetTable", "target_table"),
    ("columnMap", "column_map"),
    ("onConflict", "on_conflict"),
    ("enabled", "enabled"),
    ("maxAttempts", "max_attempts"),
];

/// Read-only fields of the record a client may echo back.
const IGNORED: &[&str] = &["createdAt", "updatedAt", "created_at", "updated_at"];

/// Whether `p` is a JSON pointer (RFC 6901): empty, or `/`-separated
/// tokens where `~` is only followed by `0` or `1`.
pub fn pointer_ok(p: &str) -> bool {
    if p.is_empty() {
        return true;
    }
    if !p.starts_with('/') || p.len() > 1024 {
        return false;
    }
    let b = p.as_bytes();
    b.iter()
        .enumerate()
        .all(|(i, c)| *c != b'~' || matches!(b.get(i + 1), Some(b'0') | Some(b'1')))
}

impl Changes {
    pub fn parse(body: &Map<String, Value>) -> Result<Changes, DomainError> {
        for key in body.keys() {
            let known =
                FIELDS.iter().any(|(c, s)| key == c || key == s) || IGNORED.contains(&key.as_str());
            if !known {
                return Err(DomainError::invalid_field(
                    key.as_str(),
                    "is not a webhook sink field (name, sourceClientName, routeKey, sourceTableName, targetClientName, targetSchema, targetTable, columnMap, onConflict, enabled, maxAttempts)",
                ));
            }
        }
        let get = |field: &str| -> Option<&Value> {
            let (camel, snake) = FIELDS.iter().find(|(c, _)| *c == field).expect("listed");
            body.get(*camel).or_else(|| body.get(*snake))
        };
        let text = |field: &str, max: usize| -> Result<Option<String>, DomainError> {
            match get(field) {
                None => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
                    Ok(Some(s.trim().to_string()))
                }
                Some(_) => Err(DomainError::invalid_field(
                    field,
                    format!("must be a non-empty string of at most {max} characters"),
                )),
            }
        };
        let mut c = Changes {
            id: match get("id") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_i64().filter(|n| *n > 0).ok_or_else(|| {
                    DomainError::invalid_field("id", "must be a positive integer")
                })?),
            },
            name: text("name", 200)?,
            source_client_name: text("sourceClientName", 200)?,
            route_key: text("routeKey", 100)?,
            target_client_name: text("targetClientName", 200)?,
            target_schema: text("targetSchema", 63)?,
            target_table: text("targetTable", 63)?,
            ..Changes::default()
        };
        if let Some(key) = &c.route_key {
            if !events::known(key) {
                return Err(DomainError::invalid_field(
                    "routeKey",
                    format!("`{key}` is not an event (GET /admin/webhook-sinks/events lists them)"),
                ));
            }
        }
        c.source_table_name = match get("sourceTableName") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) if s.trim().is_empty() => Some(None),
            Some(Value::String(s)) if s.trim().len() <= 127 => Some(Some(s.trim().to_string())),
            Some(_) => {
                return Err(DomainError::invalid_field(
                    "sourceTableName",
                    "must be `table` or `schema.table`",
                ))
            }
        };
        c.column_map = match get("columnMap") {
            None => None,
            Some(Value::Object(m)) if !m.is_empty() && m.len() <= MAX_COLUMNS => {
                for (column, pointer) in m {
                    if column.is_empty() || column.len() > 63 {
                        return Err(DomainError::invalid_field(
                            "columnMap",
                            format!("`{column}` is not a column name"),
                        ));
                    }
                    match pointer.as_str() {
                        Some(p) if pointer_ok(p) => {}
                        _ => {
                            return Err(DomainError::invalid_field(
                                format!("columnMap.{column}"),
                                "must be a JSON pointer string such as \"/data/rows/0/id\" or \"/row/id\"",
                            ))
                        }
                    }
                }
                Some(m.clone())
            }
            Some(_) => {
                return Err(DomainError::invalid_field(
                    "columnMap",
                    format!("must be an object of 1-{MAX_COLUMNS} target columns to JSON pointers"),
                ))
            }
        };
        c.on_conflict = match get("onConflict") {
            None => None,
            Some(v) => Some(OnConflict::parse(v)?),
        };
        c.enabled = match get("enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(DomainError::invalid_field("enabled", "must be a boolean")),
        };
        c.max_attempts = match get("maxAttempts") {
            None => None,
            Some(v) => match v.as_i64() {
                Some(n) if (1..=MAX_ATTEMPTS as i64).contains(&n) => Some(n as i32),
                _ => {
                    return Err(DomainError::invalid_field(
                        "maxAttempts",
                        format!("must be an integer from 1 to {MAX_ATTEMPTS}"),
                    ))
                }
            },
        };
        Ok(c)
    }

    /// The sink these changes make of `old` (or of nothing): every required
    /// field present. `id` is the old one (0 for a new sink).
    pub fn merged(&self, old: Option<&Sink>) -> Result<Sink, DomainError> {
        let required = |v: &Option<String>, was: Option<&String>, field: &str| {
            v.clone()
                .or_else(|| was.cloned())
                .ok_or_else(|| DomainError::invalid_field(field, "is required"))
        };
        let now = Utc::now();
        Ok(Sink {
            id: old.map(|o| o.id).unwrap_or(0),
            name: required(&self.name, old.map(|o| &o.name), "name")?,
            source_client_name: required(
                &self.source_client_name,
                old.map(|o| &o.source_client_name),
                "sourceClientName",
            )?,
            route_key: required(&self.route_key, old.map(|o| &o.route_key), "routeKey")?,
            source_table_name: match &self.source_table_name {
                Some(t) => t.clone(),
                None => old.and_then(|o| o.source_table_name.clone()),
            },
            target_client_name: required(
                &self.target_client_name,
                old.map(|o| &o.target_client_name),
                "targetClientName",
            )?,
            target_schema: self
                .target_schema
                .clone()
                .or_else(|| old.map(|o| o.target_schema.clone()))
                .unwrap_or_else(|| "public".into()),
            target_table: required(
                &self.target_table,
                old.map(|o| &o.target_table),
                "targetTable",
            )?,
            column_map: self
                .column_map
                .clone()
                .or_else(|| old.map(|o| o.column_map.clone()))
                .ok_or_else(|| DomainError::invalid_field("columnMap", "is required"))?,
            on_conflict: match &self.on_conflict {
                Some(c) => c.clone(),
                None => old.and_then(|o| o.on_conflict.clone()),
            },
            enabled: self.enabled.or(old.map(|o| o.enabled)).unwrap_or(true),
            max_attempts: self
                .max_attempts
                .or(old.map(|o| o.max_attempts))
                .unwrap_or(DEFAULT_MAX_ATTEMPTS),
            created_at: old.map(|o| o.created_at).unwrap_or(now),
            updated_at: now,
        })
    }
}

/// Reads the sink `id` (for a PATCH/POST by id: the record changes apply to).
pub async fn get(pool: &Pool, id: i64) -> Result<Option<Sink>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM athena_webhook_sinks WHERE id = $1");
    Ok(conn.query_opt(&sql, &[&id]).await?.map(|r| from_row(&r)))
}

/// The sink of `source_client` named `name` (provisioning upserts by it).
pub async fn by_name(
    pool: &Pool,
    source_client: &str,
    name: &str,
) -> Result<Option<Sink>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM athena_webhook_sinks WHERE source_client_name = $1 AND name = $2"
    );
    Ok(conn
        .query_opt(&sql, &[&source_client, &name])
        .await?
        .map(|r| from_row(&r)))
}

/// Stores a checked sink: a new one (`s.id == 0`) or the replacement of
/// `s.id` (`None` when it no longer exists). A replacement equal to the
/// stored record changes nothing (not even `updated_at`). The saved
/// record and whether anything changed.
pub async fn store(pool: &Pool, s: &Sink) -> Result<Option<(Sink, bool)>, DomainError> {
    if clients::get(pool, &s.source_client_name).await?.is_none() {
        return Err(DomainError::invalid_field(
            "sourceClientName",
            format!("`{}` is not a registered client", s.source_client_name),
        ));
    }
    let conn = pool.get().await?;
    let map = Value::Object(s.column_map.clone());
    let conflict = s.on_conflict.as_ref().map(OnConflict::to_json);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
        &s.name,
        &s.source_client_name,
        &s.route_key,
        &s.source_table_name,
        &s.target_client_name,
        &s.target_schema,
        &s.target_table,
        &map,
        &conflict,
        &s.enabled,
        &s.max_attempts,
    ];
    let outcome = if s.id == 0 {
        let sql = format!(
            "INSERT INTO athena_webhook_sinks
                 (name, source_client_name, route_key, source_table_name, target_client_name,
                  target_schema, target_table, column_map, on_conflict, enabled, max_attempts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             RETURNING {COLUMNS}"
        );
        conn.query_one(&sql, &params)
            .await
            .map(|r| Some((from_row(&r), true)))
    } else {
        let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params.to_vec();
        all.push(&s.id);
        let sql = format!(
            "WITH changed AS (
                UPDATE athena_webhook_sinks
                   SET name = $1, source_client_name = $2, route_key = $3,
                       source_table_name = $4, target_client_name = $5, target_schema = $6,
                       target_table = $7, column_map = $8, on_conflict = $9, enabled = $10,
                       max_attempts = $11, updated_at = now()
                 WHERE id = $12
                   AND (name, source_client_name, route_key, source_table_name,
                        target_client_name, target_schema, target_table, column_map,
                        on_conflict, enabled, max_attempts)
                       IS DISTINCT FROM
                       ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                RETURNING {COLUMNS})
             SELECT {COLUMNS}, true FROM changed
             UNION ALL
             SELECT {COLUMNS}, false FROM athena_webhook_sinks
              WHERE id = $12 AND NOT EXISTS (SELECT 1 FROM changed)"
        );
        conn.query_opt(&sql, &all)
            .await
            .map(|r| r.map(|r| (from_row(&r), r.get::<_, bool>(14))))
    };
    outcome.map_err(|e| {
        if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            DomainError::invalid_field(
                "name",
                format!(
                    "`{}` is already the name of a sink of `{}`",
                    s.name, s.source_client_name
                ),
            )
        } else {
            e.into()
        }
    })
}

/// A page of sinks (optionally of one source client) and the total.
pub async fn list(
    pool: &Pool,
    client: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Sink>, i64), DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM athena_webhook_sinks
          WHERE ($1::text IS NULL OR source_client_name = $1)
          ORDER BY id LIMIT $2 OFFSET $3"
    );
    let rows = conn.query(&sql, &[&client, &limit, &offset]).await?;
    let total: i64 = conn
        .query_one(
            "SELECT count(*) FROM athena_webhook_sinks
              WHERE ($1::text IS NULL OR source_client_name = $1)",
            &[&client],
        )
        .await?
        .get(0);
    Ok((rows.iter().map(from_row).collect(), total))
}

/// Deletes a sink (its delivery log goes with it; its queued jobs fail when
/// claimed). The deleted record, `None` when unknown.
pub async fn delete(pool: &Pool, id: i64) -> Result<Option<Sink>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("DELETE FROM athena_webhook_sinks WHERE id = $1 RETURNING {COLUMNS}");
    Ok(conn.query_opt(&sql, &[&id]).await?.map(|r| from_row(&r)))
}

/// The enabled sinks as event subscriptions (`events::Source`).
pub struct SinkSource;

impl events::Source for SinkSource {
    fn load<'a>(
        &'a self,
        catalog: &'a Pool,
    ) -> events::BoxFuture<'a, Result<Vec<Subscription>, DomainError>> {
        Box::pin(async move {
            let conn = catalog.get().await?;
            let rows = conn
                .query(
                    "SELECT id, source_client_name, route_key, source_table_name
                       FROM athena_webhook_sinks WHERE enabled",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| Subscription {
                    kind: "sink",
                    id: r.get::<_, i64>(0).to_string(),
                    client_name: r.get(1),
                    route_key: r.get(2),
                    table_name: r.get(3),
                })
                .collect())
        })
    }
}

/// One delivery attempt as logged.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub sink_id: i64,
    pub outbox_id: Option<uuid::Uuid>,
    pub event_id: uuid::Uuid,
    pub route_key: String,
    pub attempt: i32,
    pub ok: bool,
    pub affected: i64,
    pub rows: Option<Value>,
    pub duration_ms: i32,
    pub error: Option<String>,
    pub test: bool,
}

const DELIVERY: &str = "id, sink_id, outbox_id, event_id, route_key, attempt, ok, affected, \
    rows, duration_ms, error, test, created_at";

fn delivery(r: &tokio_postgres::Row) -> Value {
    json!({
        "id": r.get::<_, i64>(0),
        "sink_id": r.get::<_, i64>(1),
        "outbox_id": r.get::<_, Option<uuid::Uuid>>(2),
        "event_id": r.get::<_, uuid::Uuid>(3),
        "route_key": r.get::<_, String>(4),
        "attempt": r.get::<_, i32>(5),
        "ok": r.get::<_, bool>(6),
        "affected": r.get::<_, i64>(7),
        "rows": r.get::<_, Option<Value>>(8),
        "duration_ms": r.get::<_, i32>(9),
        "error": r.get::<_, Option<String>>(10),
        "test": r.get::<_, bool>(11),
        "created_at": r.get::<_, DateTime<Utc>>(12),
    })
}

/// Logs an attempt; its row as answered.
pub async fn record(pool: &Pool, a: &Attempt) -> Result<Value, DomainError> {
    let conn = pool.get().await?;
    let r = conn
        .query_one(
            &format!(
                "INSERT INTO gateway_webhook_sink_deliveries
                     (sink_id, outbox_id, event_id, route_key, attempt, ok, affected, rows,
                      duration_ms, error, test)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 RETURNING {DELIVERY}"
            ),
            &[
                &a.sink_id,
                &a.outbox_id,
                &a.event_id,
                &a.route_key,
                &a.attempt,
                &a.ok,
                &a.affected,
                &a.rows,
                &a.duration_ms,
                &a.error,
                &a.test,
            ],
        )
        .await?;
    Ok(delivery(&r))
}

/// A page of a sink's attempts, newest first, and the total.
pub async fn deliveries(
    pool: &Pool,
    sink_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Value>, i64), DomainError> {
    let conn = pool.get().await?;
    let rows = conn
        .query(
            &format!(
                "SELECT {DELIVERY} FROM gateway_webhook_sink_deliveries WHERE sink_id = $1
                  ORDER BY id DESC LIMIT $2 OFFSET $3"
            ),
            &[&sink_id, &limit, &offset],
        )
        .await?;
    let total: i64 = conn
        .query_one(
            "SELECT count(*) FROM gateway_webhook_sink_deliveries WHERE sink_id = $1",
            &[&sink_id],
        )
        .await?
        .get(0);
    Ok((rows.iter().map(delivery).collect(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers() {
        for ok in ["", "/", "/data/rows/0/id", "/row/a~1b", "/x~0"] {
            assert!(pointer_ok(ok), "{ok}");
        }
        for bad in ["data", "/a~", "/a~2", "row/id"] {
            assert!(!pointer_ok(bad), "{bad}");
        }
    }

    #[test]
    fn on_conflict_forms() {
        let p = |v: Value| OnConflict::parse(&v).unwrap();
        assert_eq!(p(json!(null)), None);
        assert_eq!(p(json!("id")).unwrap().columns, vec!["id"]);
        assert_eq!(p(json!(["a", "b"])).unwrap().columns, vec!["a", "b"]);
        assert!(p(json!(true)).unwrap().columns.is_empty());
        assert_eq!(
            p(json!({"columns": "id", "action": "nothing"}))
                .unwrap()
                .action,
            "nothing"
        );
        assert!(OnConflict::parse(&json!({"action": "explode"})).is_err());
        assert!(OnConflict::parse(&json!(3)).is_err());
    }

    #[test]
    fn camel_and_snake_bodies() {
        let body = |v: Value| v.as_object().cloned().unwrap();
        let c = Changes::parse(&body(json!({
            "name": "n", "source_client_name": "a", "routeKey": "gateway.insert",
            "targetClientName": "b", "target_table": "t", "columnMap": {"id": "/row/id"}
        })))
        .unwrap();
        let s = c.merged(None).unwrap();
        assert_eq!(s.target_schema, "public");
        assert_eq!(s.source_client_name, "a");
        assert!(Changes::parse(&body(json!({"columnMap": {"id": "row/id"}}))).is_err());
        assert!(Changes::parse(&body(json!({"nope": 1}))).is_err());
        assert!(Changes::parse(&body(json!({"routeKey": "gateway.*"}))).is_err());
    }
}
