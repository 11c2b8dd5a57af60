//! The bridge between the contract's request bodies and the gateway's
//! domain: a body (typed by the generated models) becomes a planned read
//! or write here, and a result becomes the answer body the contract and
//! the SDK read. Shared by the canonical routes, their aliases (REST,
//! `/data`), public routes, transactions and the deferred worker, so every
//! path plans and answers the same way.

use super::filter::{Cond, Filter, FilterValue, Operator};
use super::read::Order;
use super::read::ReadQuery;
use super::rpc::{function_name, Call};
use super::sql::split_columns;
use super::write::{self, Conflict, ConflictAction, WriteResult};
use super::{cond, postprocess};
use crate::api::models;
use crate::domain::identifier::qualified_table;
use crate::domain::DomainError;
use serde_json::{json, Map, Value};

pub use crate::domain::success;

pub fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, DomainError> {
    serde_json::to_value(v).map_err(|e| DomainError::Internal(format!("re-encoding body: {e}")))
}

/// `columns` as a RETURNING/SELECT list: `"a,b"`, `["a","b"]`, `"*"`.
fn columns_of(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(split_columns(s)),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        _ => None,
    }
}

fn insert_columns(c: &Option<models::PutGatewayInsertRequestColumns>) -> Option<Vec<String>> {
    match c.as_ref()? {
        models::PutGatewayInsertRequestColumns::String(s) => Some(split_columns(s)),
        models::PutGatewayInsertRequestColumns::Array(cols) => Some(cols.clone()),
    }
}

/// `conditions` plus `resource_id` (→ `id = $n`).
fn mutation_filters(
    conditions: &Value,
    resource_id: Option<&Value>,
) -> Result<Vec<Cond>, DomainError> {
    let mut filters = cond::conditions(conditions)?;
    if let Some(id) = resource_id.filter(|v| !v.is_null()) {
        if id.is_object() || id.is_array() {
            return Err(DomainError::Invalid(
                "resource_id must be a string or a number".into(),
            ));
        }
        filters.push(
            Filter::new(
                "id",
                Operator::Eq,
                FilterValue::from_json(Operator::Eq, id)?,
            )
            .into(),
        );
    }
    Ok(filters)
}

/// The insert query of a body (`X-Strip-Nulls` given) and whether
/// `insert_body` was one object (answered as an object).
pub fn insert_plan(
    body: &models::PutGatewayInsertRequest,
    strip_header: Option<bool>,
) -> Result<(write::InsertQuery, bool), DomainError> {
    let (schema, table) = qualified_table(&body.table_name, body.schema_name.as_deref())?;
    let (rows, single) = match &body.insert_body {
        models::PutGatewayInsertRequestInsertBody::Object(row) => (vec![row.clone()], true),
        models::PutGatewayInsertRequestInsertBody::Array(rows) => (rows.clone(), false),
    };
    let on_conflict = match (&body.on_conflict, body.update_body.is_empty()) {
        (None, true) => None,
        (target, no_update) => Some(Conflict {
            columns: match target {
                None => Vec::new(),
                Some(models::PutGatewayInsertRequestOnConflict::String(s)) => split_columns(s),
                Some(models::PutGatewayInsertRequestOnConflict::Array(cols)) => cols.clone(),
            },
            action: if no_update {
                ConflictAction::Merge
            } else {
                ConflictAction::Set(body.update_body.clone())
            },
        }),
    };
    if rows.is_empty() {
        return Err(DomainError::Invalid("insert_body has no rows".into()));
    }
    let q = write::InsertQuery {
        schema,
        table,
        rows,
        returning: insert_columns(&body.columns),
        on_conflict,
        default_to_null: body.default_to_null.unwrap_or(false),
        columns: None,
        strip_nulls: strip_header.unwrap_or(false),
    };
    Ok((q, single))
}

pub fn insert_answer(
    result: WriteResult,
    single: bool,
    table_name: &str,
    count: bool,
) -> Map<String, Value> {
    let affected = result.affected;
    let data = if single {
        result
            .rows
            .into_iter()
            .next()
            .map(Value::Object)
            .unwrap_or(Value::Null)
    } else {
        Value::Array(result.rows.into_iter().map(Value::Object).collect())
    };
    let mut out = success(format!("Inserted {affected} rows"));
    out.insert("data".into(), data);
    affected_fields(&mut out, affected);
    out.insert("table_name".into(), json!(table_name));
    if count {
        out.insert("count".into(), json!(affected));
    }
    out
}

pub fn update_plan(
    body: &models::PostGatewayUpdateRequest,
    strip_header: Option<bool>,
) -> Result<write::UpdateQuery, DomainError> {
    let table_name = body
        .table_name
        .as_deref()
        .or(body.view_name.as_deref())
        .ok_or_else(|| DomainError::Invalid("table_name is required".into()))?;
    let (schema, table) = qualified_table(table_name, body.schema_name.as_deref())?;
    let filters = mutation_filters(&to_value(&body.conditions)?, body.resource_id.as_ref())?;
    // `update_body`, else the `set`/`data` spellings (SDK doc §7).
    let set = [&body.update_body, &body.set, &body.data]
        .into_iter()
        .find(|m| !m.is_empty())
        .cloned()
        .unwrap_or_default();
    // Checked here too (not only when the statement is built against the
    // table) so that a deferred update is refused before it is queued.
    if filters.is_empty() {
        return Err(DomainError::Invalid(
            "an update needs a filter (conditions or resource_id); refusing to update every row"
                .into(),
        ));
    }
    if set.is_empty() {
        return Err(DomainError::Invalid(
            "update payload required: update_body has no columns".into(),
        ));
    }
    Ok(write::UpdateQuery {
        schema,
        table,
        set,
        filters,
        returning: columns_of(&to_value(&body.columns)?),
        strip_nulls: body.strip_nulls.or(strip_header).unwrap_or(false),
    })
}

pub fn update_answer(result: WriteResult) -> Map<String, Value> {
    let (mut out, affected) = rows_body(result, "Updated");
    affected_fields(&mut out, affected);
    out
}

pub fn delete_plan(
    body: &models::DeleteGatewayDeleteRequest,
    strip_header: Option<bool>,
) -> Result<write::DeleteQuery, DomainError> {
    let (schema, table) = qualified_table(&body.table_name, body.schema_name.as_deref())?;
    let filters = mutation_filters(&to_value(&body.conditions)?, body.resource_id.as_ref())?;
    if filters.is_empty() {
        return Err(DomainError::Invalid(
            "a delete needs a filter (conditions or resource_id); refusing to delete every row"
                .into(),
        ));
    }
    Ok(write::DeleteQuery {
        schema,
        table,
        filters,
        returning: columns_of(&to_value(&body.columns)?),
        strip_nulls: strip_header.unwrap_or(false),
    })
}

pub fn delete_answer(
    result: WriteResult,
    table_name: &str,
    resource_id: Option<&Value>,
) -> Map<String, Value> {
    let (mut out, affected) = rows_body(result, "Deleted");
    affected_fields(&mut out, affected);
    out.insert("table_name".into(), json!(table_name));
    if let Some(id) = resource_id.filter(|v| !v.is_null()) {
        out.insert("resource_id".into(), id.clone());
    }
    out
}

/// The affected-row count under both spellings the SDK looks for (§0.8).
fn affected_fields(out: &mut Map<String, Value>, affected: i64) {
    out.insert("rows_affected".into(), json!(affected));
    out.insert("affected_rows".into(), json!(affected));
}

/// A deferred request's record as `GET` and requeue answer it: the record's
/// fields at the top level (`status` is the job's state) and again as `data`.
pub fn deferred_body(record: Value, requeued: Option<bool>) -> Map<String, Value> {
    let mut out = match record {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(requeued) = requeued {
        out.insert("requeued".into(), json!(requeued));
        let state = out
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        out.insert(
            "message".into(),
            json!(if requeued {
                "Deferred request requeued".to_string()
            } else {
                format!("Deferred request is {state}; not requeued")
            }),
        );
    }
    let data = Value::Object(out.clone());
    out.insert("data".into(), data);
    out
}

/// `{status, message, data: rows}` and the affected-row count.
fn rows_body(result: WriteResult, verb: &str) -> (Map<String, Value>, i64) {
    let mut out = success(format!("{verb} {} rows", result.affected));
    out.insert(
        "data".into(),
        Value::Array(result.rows.into_iter().map(Value::Object).collect()),
    );
    (out, result.affected)
}

/// The fetch body: `table_name` (optionally qualified or with
/// `schema_name`), `columns`/`select`, `conditions` (legacy `eq_column`/
/// `eq_value` and the SDK's operators), `where`, `where_filters`,
/// `sort_by`/`orderBy`, `limit`/`offset`/`current_page`/`page_size`.
pub fn fetch_query(
    body: &models::PostGatewayFetchRequest,
    strip_header: Option<bool>,
) -> Result<ReadQuery, DomainError> {
    let table = body
        .table_name
        .as_deref()
        .or(body.view_name.as_deref())
        .ok_or_else(|| DomainError::Invalid("table_name is required".into()))?;
    let (schema, table) = qualified_table(table, body.schema_name.as_deref())?;
    // `columns` wins over `select`; both strings take the PostgREST embed
    // grammar (`id,u:users(id,name)`), the object is the canonical nested
    // select (`{"id": true, "users": {"select": {…}}}`).
    let select = match (&body.columns, &body.select) {
        (Some(models::PostGatewayFetchRequestColumns::Array(cols)), _) => {
            Some(super::embed::Select {
                columns: cols
                    .iter()
                    .map(|c| super::embed::Field::plain(c.as_str()))
                    .collect(),
                embeds: Vec::new(),
            })
        }
        (Some(models::PostGatewayFetchRequestColumns::String(s)), _)
        | (None, Some(models::PostGatewayFetchRequestSelect::String(s))) => {
            Some(super::embed::parse(s)?)
        }
        (None, Some(models::PostGatewayFetchRequestSelect::Object(m))) => {
            Some(super::embed::from_object(m)?)
        }
        (None, None) => None,
    };
    let (columns, embeds) = match select {
        Some(s) => (Some(s.columns), s.embeds),
        None => (None, Vec::new()),
    };
    let mut filters = cond::conditions(&to_value(&body.conditions)?)?;
    filters.extend(cond::where_object(&body.where_)?);
    filters.extend(cond::where_filters(&to_value(&body.where_filters)?)?);
    let mut order = Vec::new();
    if let Some(s) = &body.sort_by {
        order.extend(cond::order(s)?);
    }
    if let Some(o) = &body.order_by {
        order.extend(cond::order(o)?);
    }
    for (name, v) in [
        ("limit", body.limit),
        ("offset", body.offset),
        ("page_size", body.page_size),
    ] {
        if v.is_some_and(|v| v < 0) {
            return Err(DomainError::Invalid(format!("{name} must not be negative")));
        }
    }
    let (mut limit, mut offset) = (body.limit, body.offset);
    if let Some(size) = body.page_size.filter(|s| *s > 0) {
        limit = limit.or(Some(size));
        if offset.is_none() {
            let page = body.current_page.unwrap_or(1).max(1);
            offset = Some((page - 1).saturating_mul(size));
        }
    }
    Ok(ReadQuery {
        schema,
        table,
        columns,
        embeds,
        filters,
        order,
        limit,
        offset,
        strip_nulls: body.strip_nulls.or(strip_header).unwrap_or(false),
    })
}

/// The fetch's post-processing request (`src/gateway/postprocess.rs`).
pub fn post_processing(body: &models::PostGatewayFetchRequest) -> postprocess::Spec {
    use models::PostGatewayFetchRequestTimeGranularity as G;
    postprocess::Spec {
        group_by: body.group_by.clone(),
        time_granularity: body.time_granularity.map(|g| match g {
            G::Day => postprocess::Granularity::Day,
            G::Hour => postprocess::Granularity::Hour,
            G::Minute => postprocess::Granularity::Minute,
        }),
        aggregation_column: body.aggregation_column.clone(),
        cumulative_sum: body.aggregation_strategy.is_some(),
        dedup: body.aggregation_dedup.unwrap_or(false),
    }
}

/// The structured RPC body (`/gateway/rpc`, wrapped `/rpc/{fn}`).
pub fn rpc_call(req: &models::GatewayRpcRequest) -> Result<Call, DomainError> {
    let name = req
        .function_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(&req.function);
    let schema = (!req.schema.is_empty()).then_some(req.schema.as_str());
    let (schema, function) = function_name(name, schema)?;
    let mut filters = Vec::with_capacity(req.filters.len());
    for f in &req.filters {
        let op = Operator::parse(&f.operator.to_string())?;
        let value = FilterValue::from_json(op, f.value.as_ref().unwrap_or(&Value::Null))?;
        filters.push(Cond::Filter(Filter::new(f.column.clone(), op, value)));
    }
    let order = req
        .order
        .as_ref()
        .map(|o| {
            vec![Order {
                column: o.column.clone(),
                descending: !o.ascending,
                nulls_first: None,
            }]
        })
        .unwrap_or_default();
    Ok(Call {
        schema,
        function,
        args: req.args.clone(),
        select: req.select.as_deref().map(split_list),
        filters,
        order,
        limit: req.limit,
        offset: req.offset,
        count_exact: req.count.as_deref() == Some("exact"),
    })
}

pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

pub fn number(name: &str, v: &str) -> Result<i64, DomainError> {
    v.trim()
        .parse()
        .map_err(|_| DomainError::Invalid(format!("{name} must be an integer")))
}

/// The SQL drivers this gateway runs: the PostgreSQL ones.
pub fn require_postgres_driver(
    driver: models::GatewaySqlExecutionRequestDriver,
) -> Result<(), DomainError> {
    use models::GatewaySqlExecutionRequestDriver as Driver;
    match driver {
        Driver::Athena | Driver::Postgresql | Driver::Supabase => Ok(()),
        Driver::D1 | Driver::CloudflareD1 | Driver::AthenaD1 => Err(DomainError::Invalid(format!(
            "driver `{driver}` is not available on this gateway (PostgreSQL drivers only)"
        ))),
    }
}

/// Raw SQL's answer, in the shape the SDK reads: `data` is the row array,
/// `meta` the counts.
pub fn raw_answer(out: super::raw::Outcome, max_rows: i64) -> Map<String, Value> {
    let mut body = success("Query executed");
    body.insert(
        "meta".into(),
        json!({
            "backend": "postgresql",
            "returned_row_count": out.rows.len(),
            "rows_affected": out.rows_affected,
            // One statement per request (`src/gateway/raw.rs`).
            "statement_count": 1,
            "truncated": out.truncated,
            "max_rows": max_rows,
        }),
    );
    body.insert(
        "data".into(),
        Value::Array(out.rows.into_iter().map(Value::Object).collect()),
    );
    body
}

/// The SDK's lookup SELECT on `/gateway/query`, run as a structured read.
pub fn structured_read_answer(rows: Vec<Map<String, Value>>) -> Map<String, Value> {
    let mut body = success("Query executed");
    body.insert(
        "meta".into(),
        json!({
            "backend": "postgresql",
            "returned_row_count": rows.len(),
            "rows_affected": 0,
            "statement_count": 1,
            "structured_read": true,
        }),
    );
    body.insert(
        "data".into(),
        Value::Array(rows.into_iter().map(Value::Object).collect()),
    );
    body
}

/// The answer to a queued write (`deferred` job): poll its request id.
pub fn queued_answer(
    job: &super::deferred::Enqueued,
    operation: &str,
    table_name: Value,
) -> Map<String, Value> {
    let id = job.id.to_string();
    let verb = match operation {
        "insert" => "Insert",
        "update" => "Update",
        _ => "Delete",
    };
    let mut out = success(format!("{verb} deferred: poll GET /gateway/deferred/{id}"));
    // `status` is the request's state, as the SDK polls it.
    out.insert("status".into(), json!("queued"));
    out.insert(
        "data".into(),
        json!({
            "request_id": id,
            "status": job.status,
            "operation": operation,
            "table_name": table_name,
            "deferred": true,
            "existing": job.existing,
        }),
    );
    out.insert("request_id".into(), json!(id));
    // The admission limiter's 202 names it so (`src/admission/`).
    out.insert("deferred_request_id".into(), json!(id));
    out.insert("deferred".into(), json!(true));
    out
}
