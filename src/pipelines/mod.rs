//! Pipelines (issue 19): copy rows from one client's table or view to
//! another's, optionally aggregated on the way. The steps are the gateway's
//! own engines: the source is a fetch (`plan::fetch_query`: the same
//! validation and quoting as `/gateway/fetch`), read in one read-only
//! REPEATABLE READ transaction through a portal, 500 rows per fetch (one
//! snapshot, no OFFSET; a copy of any size runs at flat memory);
//! the transform is the fetch post-processing (`postprocess::summarize`,
//! merged across pages); the sink inserts through `write.rs` in one
//! transaction per 500 rows, and a batch that fails is retried row by row so
//! `errors[] {index, error}` names the bad rows and the good ones land.
//!
//! Templates: boot YAML (`pipelines:` of the `ATHENA_CONFIG` file,
//! read-only) merged with `pipeline_templates` rows (mutable).

use crate::api::models;
use crate::db::tenants::Tenant;
use crate::db::Pool;
use crate::domain::identifier::{qualified_table, Ident};
use crate::domain::DomainError;
use crate::gateway::postprocess::{self, Key};
use crate::gateway::read::{self, Order, ReadQuery};
use crate::gateway::sql::db_error;
use crate::gateway::write::{self, InsertQuery, Write};
use crate::gateway::{plan, service::Gateway};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// Rows per source page and per sink transaction.
pub const BATCH: usize = 500;
/// At most this many rows are echoed in `data`.
pub const DATA_ECHO: usize = 1000;
/// Groups a transform may build (more is refused, 400: the groups are held
/// in memory until the sink).
pub const MAX_GROUPS: usize = 100_000;
/// `errors[]` entries answered; the rest are only counted
/// (`errors_truncated`).
pub const MAX_ERRORS: usize = 100;
/// A run stops after this many batches in a row where no row landed.
pub const MAX_FAILED_BATCHES: u32 = 10;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub eq_column: String,
    pub eq_value: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_granularity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_dedup: Option<bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub column_aliases: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sink {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// A pipeline: what a template stores and a request runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<Transform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<Sink>,
}

/// A run request: a template name and/or an inline definition (its fields
/// override the template's), and `dry_run`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(default)]
    pub source: Option<Value>,
    #[serde(default)]
    pub transform: Option<Value>,
    #[serde(default)]
    pub sink: Option<Value>,
}

impl RunRequest {
    pub fn from_model(body: &models::PostPipelinesRequest) -> Result<RunRequest, DomainError> {
        Self::from_value(plan::to_value(body)?)
    }

    pub fn from_value(v: Value) -> Result<RunRequest, DomainError> {
        serde_json::from_value(v).map_err(|e| DomainError::Invalid(format!("pipeline body: {e}")))
    }
}

/// `overrides` over `base`, field by field (a null override is absent).
fn merge(base: Option<Value>, overrides: Option<Value>) -> Option<Value> {
    match (base, overrides) {
        (Some(Value::Object(mut b)), Some(Value::Object(o))) => {
            for (k, v) in o {
                if !v.is_null() {
                    b.insert(k, v);
                }
            }
            Some(Value::Object(b))
        }
        (b, None | Some(Value::Null)) => b,
        (_, o) => o,
    }
}

/// The definition a request runs: its template (when named) under its
/// inline fields.
pub fn resolve(template: Option<&Definition>, req: &RunRequest) -> Result<Definition, DomainError> {
    let base = template.map(|t| serde_json::to_value(t).unwrap_or(Value::Null));
    let part = |name: &str| base.as_ref().and_then(|b| b.get(name)).cloned();
    let merged = json!({
        "source": merge(part("source"), req.source.clone()),
        "transform": merge(part("transform"), req.transform.clone()),
        "sink": merge(part("sink"), req.sink.clone()),
    });
    parse_definition(&strip_nulls(merged))
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

/// A stored or sent definition, typed (unknown fields refused).
pub fn parse_definition(v: &Value) -> Result<Definition, DomainError> {
    serde_json::from_value(v.clone())
        .map_err(|e| DomainError::Invalid(format!("pipeline definition: {e}")))
}

/// What a definition will run, validated before anything runs.
pub struct Plan {
    pub query: ReadQuery,
    pub limit: Option<i64>,
    pub transform: Option<(postprocess::Spec, BTreeMap<String, String>)>,
    pub aliases: BTreeMap<String, String>,
    pub sink: Option<(Ident, Ident)>,
    pub source_client: Option<String>,
    pub sink_client: Option<String>,
}

/// Validates `def` (identifiers like fetch, closed enums, `limit`);
/// `need_sink`: a run needs a sink table, a simulation does not.
pub fn validate(def: &Definition, need_sink: bool) -> Result<Plan, DomainError> {
    let source = def
        .source
        .as_ref()
        .ok_or_else(|| DomainError::Invalid("source is required".into()))?;
    if source.table_name.is_some() == source.view_name.is_some() {
        return Err(DomainError::Invalid(
            "source needs exactly one of table_name and view_name".into(),
        ));
    }
    if source.limit.is_some_and(|l| l < 1) {
        return Err(DomainError::invalid_field(
            "source.limit",
            "must be at least 1",
        ));
    }
    for c in &source.columns {
        Ident::parse("column", c)?;
    }
    let fetch: models::PostGatewayFetchRequest = serde_json::from_value(json!({
        "table_name": source.table_name,
        "view_name": source.view_name,
        "columns": (!source.columns.is_empty()).then_some(&source.columns),
        "conditions": source.conditions.iter().map(|c| {
            Ident::parse("column", &c.eq_column).map(|_| json!({"eq_column": c.eq_column, "eq_value": c.eq_value}))
        }).collect::<Result<Vec<_>, _>>()?,
    }))
    .map_err(|e| DomainError::Invalid(format!("source: {e}")))?;
    let query = plan::fetch_query(&fetch, None)?;
    let mut aliases = BTreeMap::new();
    let transform = match &def.transform {
        None => None,
        Some(t) => {
            let granularity = match t.time_granularity.as_deref() {
                None => None,
                Some("day") => Some(postprocess::Granularity::Day),
                Some("hour") => Some(postprocess::Granularity::Hour),
                Some("minute") => Some(postprocess::Granularity::Minute),
                Some(other) => {
                    return Err(DomainError::invalid_field(
                        "transform.time_granularity",
                        format!("{other:?} is not one of day, hour, minute"),
                    ))
                }
            };
            let cumulative = match t.aggregation_strategy.as_deref() {
                None => false,
                Some("cumulative_sum") => true,
                Some(other) => {
                    return Err(DomainError::invalid_field(
                        "transform.aggregation_strategy",
                        format!("{other:?} is not cumulative_sum"),
                    ))
                }
            };
            for (from, to) in &t.column_aliases {
                Ident::parse("column", from)?;
                Ident::parse("column", to)?;
            }
            aliases = t.column_aliases.clone();
            let spec = postprocess::Spec {
                group_by: t.group_by.clone(),
                time_granularity: granularity,
                aggregation_column: t.aggregation_column.clone(),
                cumulative_sum: cumulative,
                dedup: t.aggregation_dedup.unwrap_or(false),
            };
            spec.validate()?;
            // Without a group there is nothing to aggregate into: the run
            // would insert nothing and answer success.
            if spec.aggregation_column.is_some() && spec.group_by.is_none() {
                return Err(DomainError::invalid_field(
                    "transform.group_by",
                    "is required with transform.aggregation_column",
                ));
            }
            for c in [&spec.group_by, &spec.aggregation_column]
                .into_iter()
                .flatten()
            {
                Ident::parse("column", c)?;
            }
            match spec.is_empty() {
                true => None,
                false => Some((spec, t.column_aliases.clone())),
            }
        }
    };
    let sink = match def.sink.as_ref().and_then(|s| s.table_name.as_deref()) {
        Some(t) => Some(qualified_table(t, None)?),
        None if need_sink => {
            return Err(DomainError::Invalid("sink.table_name is required".into()))
        }
        None => None,
    };
    let nonempty = |c: &Option<String>| {
        c.as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
    };
    Ok(Plan {
        query,
        limit: source.limit,
        transform,
        aliases,
        sink,
        source_client: nonempty(&source.client),
        sink_client: def.sink.as_ref().and_then(|s| nonempty(&s.client)),
    })
}

/// A run's answer and its step counters.
pub struct Outcome {
    pub run_id: uuid::Uuid,
    pub rows_fetched: u64,
    pub candidates: u64,
    pub rows_inserted: u64,
    pub data: Vec<Value>,
    pub data_truncated: bool,
    pub errors: Vec<Value>,
    /// Failed rows past [`MAX_ERRORS`] (not listed in `errors`).
    pub errors_truncated: u64,
    /// Why the run stopped early ([`MAX_FAILED_BATCHES`]).
    pub stopped: Option<String>,
    pub timings_ms: [i64; 3],
}

fn rename(mut row: Map<String, Value>, aliases: &BTreeMap<String, String>) -> Map<String, Value> {
    if aliases.is_empty() {
        return row;
    }
    let mut out = Map::with_capacity(row.len());
    for (k, v) in std::mem::take(&mut row) {
        match aliases.get(&k) {
            Some(to) => out.insert(to.clone(), v),
            None => out.insert(k, v),
        };
    }
    out
}

/// Groups merged across pages: key order as the fetch post-processing.
#[derive(Default)]
struct Groups {
    by_key: BTreeMap<Key, (Value, u64, f64)>,
}

impl Groups {
    fn add(
        &mut self,
        spec: &postprocess::Spec,
        rows: &[Map<String, Value>],
    ) -> Result<(), DomainError> {
        let page = postprocess::Spec {
            cumulative_sum: false,
            ..spec.clone()
        };
        let summary = postprocess::summarize(&page, rows)?;
        for g in summary["groups"].as_array().into_iter().flatten() {
            let key = g["key"].clone();
            let e = self.by_key.entry(Key::of(&key)).or_insert((key, 0, 0.0));
            e.1 += g["count"].as_u64().unwrap_or(0);
            e.2 += g["sum"].as_f64().unwrap_or(0.0);
        }
        if self.by_key.len() > MAX_GROUPS {
            return Err(DomainError::invalid_field(
                "transform.group_by",
                format!("makes more than {MAX_GROUPS} groups"),
            ));
        }
        Ok(())
    }

    /// One sink row per group: the group column (the bucket for a time
    /// granularity), and the aggregation column holding the running total
    /// (`cumulative_sum`) or the group's sum; `count` without one.
    fn rows(self, spec: &postprocess::Spec) -> Vec<Map<String, Value>> {
        let group_by = spec.group_by.clone().unwrap_or_else(|| "group".into());
        let mut running = 0.0;
        self.by_key
            .into_values()
            .map(|(key, count, sum)| {
                let mut row = Map::new();
                row.insert(group_by.clone(), key);
                match &spec.aggregation_column {
                    Some(col) => {
                        running += sum;
                        let v = if spec.cumulative_sum { running } else { sum };
                        row.insert(col.clone(), postprocess::number(v));
                    }
                    None => {
                        row.insert("count".into(), json!(count));
                    }
                }
                row
            })
            .collect()
    }
}

/// The sink side: batches of 500, each one transaction; a failed batch is
/// retried row by row.
struct SinkWriter<'a> {
    tenant: Option<&'a Tenant>,
    table: Option<&'a (Ident, Ident)>,
    pending: Vec<Map<String, Value>>,
    next_index: u64,
    failed_in_a_row: u32,
    out: &'a mut Outcome,
}

impl SinkWriter<'_> {
    async fn push(&mut self, row: Map<String, Value>) -> Result<(), DomainError> {
        if self.out.stopped.is_some() {
            return Ok(());
        }
        self.out.candidates += 1;
        self.pending.push(row);
        if self.pending.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    fn echo(&mut self, rows: impl IntoIterator<Item = Map<String, Value>>) {
        for r in rows {
            if self.out.data.len() < DATA_ECHO {
                self.out.data.push(Value::Object(r));
            } else {
                self.out.data_truncated = true;
            }
        }
    }

    async fn flush(&mut self) -> Result<(), DomainError> {
        let rows = std::mem::take(&mut self.pending);
        if rows.is_empty() {
            return Ok(());
        }
        let first = self.next_index;
        self.next_index += rows.len() as u64;
        let (Some(tenant), Some((schema, table))) = (self.tenant, self.table) else {
            // Dry run: the candidates are the preview.
            self.echo(rows);
            return Ok(());
        };
        let insert = |rows: Vec<Map<String, Value>>| {
            Write::Insert(InsertQuery {
                schema: schema.clone(),
                table: table.clone(),
                rows,
                returning: None,
                on_conflict: None,
                default_to_null: false,
                strip_nulls: false,
                columns: None,
            })
        };
        match write::run_in_transaction(tenant, &insert(rows.clone()), true).await {
            Ok(r) => {
                self.out.rows_inserted += r.affected.max(0) as u64;
                self.echo(r.rows);
            }
            Err(_) => {
                let mut landed = false;
                for (i, row) in rows.into_iter().enumerate() {
                    match write::run_in_transaction(tenant, &insert(vec![row]), true).await {
                        Ok(r) => {
                            landed = true;
                            self.out.rows_inserted += r.affected.max(0) as u64;
                            self.echo(r.rows);
                        }
                        Err(_) if self.out.errors.len() >= MAX_ERRORS => {
                            self.out.errors_truncated += 1;
                        }
                        Err(e) => self.out.errors.push(json!({
                            "index": first + i as u64,
                            "error": e.to_string(),
                        })),
                    }
                }
                self.failed_in_a_row = match landed {
                    true => 0,
                    false => self.failed_in_a_row + 1,
                };
                if self.failed_in_a_row >= MAX_FAILED_BATCHES {
                    self.out.stopped = Some(format!(
                        "stopped after {MAX_FAILED_BATCHES} consecutive batches where no row could be inserted"
                    ));
                }
                return Ok(());
            }
        }
        self.failed_in_a_row = 0;
        Ok(())
    }
}

/// Runs a validated plan. `sink` is `None` for dry runs and simulations.
pub async fn run(
    // Kept for the callers: the source is no longer paged by `max_rows`.
    _gateway: &Gateway,
    source: &Tenant,
    sink: Option<&Tenant>,
    plan: &Plan,
) -> Result<Outcome, DomainError> {
    let mut out = Outcome {
        run_id: uuid::Uuid::new_v4(),
        rows_fetched: 0,
        candidates: 0,
        rows_inserted: 0,
        data: Vec::new(),
        data_truncated: false,
        errors: Vec::new(),
        errors_truncated: 0,
        stopped: None,
        timings_ms: [0; 3],
    };
    // The sink table exists (a wrong name is the request's error, not one
    // per row).
    let sink_table = match (sink, &plan.sink) {
        (Some(t), Some((s, n))) => {
            write::table_of(t, s, n).await?;
            Some((s.clone(), n.clone()))
        }
        _ => None,
    };
    // The source is read in ONE read-only REPEATABLE READ transaction
    // through a portal, [`BATCH`] rows per fetch: every row of one snapshot
    // exactly once (no OFFSET: nothing skipped or read twice when the source
    // changes meanwhile, and each fetch costs the same however deep the copy
    // is), and only one batch in memory at a time. Ordered by the primary key
    // when the source has one (rows, and so `errors[].index`, in a stable
    // order; an index scan), else as stored (no sort of the whole source).
    let mut query = plan.query.clone();
    let pk = write::primary_key(source, &query.schema, &query.table)
        .await
        .unwrap_or_default();
    query.order = pk
        .into_iter()
        .map(|column| Order {
            column,
            descending: false,
            nulls_first: None,
        })
        .collect();
    query.limit = plan.limit;
    query.offset = None;
    let statement = read::each_row_statement(source, &query).await?;
    let mut conn = source.pool.get().await?;
    let tx = conn
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db_error)?;
    let prepared = tx
        .prepare_typed(&statement.sql, &statement.types)
        .await
        .map_err(db_error)?;
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = statement
        .params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let portal = tx.bind(&prepared, &params).await.map_err(db_error)?;
    let mut groups = Groups::default();
    let mut writer = SinkWriter {
        tenant: sink,
        table: sink_table.as_ref(),
        pending: Vec::with_capacity(BATCH),
        next_index: 0,
        failed_in_a_row: 0,
        out: &mut out,
    };
    let (mut fetch_ms, mut transform_ms, mut sink_ms) = (0i64, 0i64, 0i64);
    loop {
        let t = Instant::now();
        let batch = tx
            .query_portal(&portal, BATCH as i32)
            .await
            .map_err(db_error)?;
        let n = batch.len();
        let rows = batch
            .iter()
            .map(|r| {
                serde_json::from_str::<Map<String, Value>>(r.get::<_, &str>(0))
                    .map_err(|e| DomainError::Internal(format!("decoding a source row: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        drop(batch);
        fetch_ms += t.elapsed().as_millis() as i64;
        writer.out.rows_fetched += n as u64;
        let t = Instant::now();
        match &plan.transform {
            Some((spec, _)) => {
                groups.add(spec, &rows)?;
                transform_ms += t.elapsed().as_millis() as i64;
            }
            None => {
                for row in rows {
                    writer.push(rename(row, &plan.aliases)).await?;
                }
                sink_ms += t.elapsed().as_millis() as i64;
            }
        }
        if n < BATCH || writer.out.stopped.is_some() {
            break;
        }
    }
    // Read-only: nothing to keep; ends the snapshot and frees the portal.
    let _ = tx.rollback().await;
    drop(conn);
    let t = Instant::now();
    if let Some((spec, _)) = &plan.transform {
        let rows = std::mem::take(&mut groups).rows(spec);
        transform_ms += t.elapsed().as_millis() as i64;
        for row in rows {
            writer.push(rename(row, &plan.aliases)).await?;
        }
    }
    writer.flush().await?;
    sink_ms += t.elapsed().as_millis() as i64;
    out.timings_ms = [fetch_ms, transform_ms, sink_ms];
    Ok(out)
}

/// The three `pipeline_step_log` rows of a run.
pub async fn log_steps(
    pool: &Pool,
    name: Option<&str>,
    o: &Outcome,
    source: (&str, &str),
    sink: (&str, Option<&str>),
    dry_run: bool,
) -> Result<(), DomainError> {
    let conn = pool.get().await?;
    let errors = (o.errors.len() as u64 + o.errors_truncated).min(i32::MAX as u64) as i32;
    conn.execute(
        "INSERT INTO pipeline_step_log
           (pipeline_run_id, pipeline_name, step, client_name, table_name, rows_in, rows_out, errors, dry_run, duration_ms)
         VALUES ($1, $2, 'fetch', $3, $4, 0, $5, 0, $10, $11),
                ($1, $2, 'transform', $3, $4, $5, $6, 0, $10, $12),
                ($1, $2, 'sink', $7, $8, $6, $9, $13, $10, $14)",
        &[
            &o.run_id,
            &name,
            &source.0,
            &source.1,
            &(o.rows_fetched as i64),
            &(o.candidates as i64),
            &sink.0,
            &sink.1,
            &(o.rows_inserted as i64),
            &dry_run,
            &o.timings_ms[0],
            &o.timings_ms[1],
            &errors,
            &o.timings_ms[2],
        ],
    )
    .await?;
    Ok(())
}

// --- templates ---

/// A template as listed (`GET /pipelines/templates`).
pub fn template_json(name: &str, def: &Definition, from_yaml: bool) -> Value {
    let s = def.source.clone().unwrap_or_default();
    let k = def.sink.clone().unwrap_or_default();
    json!({
        "name": name,
        "source": if from_yaml { "yaml" } else { "database" },
        "mutable": !from_yaml,
        "has_transform": def.transform.is_some(),
        "source_table": s.table_name.clone().or(s.view_name.clone()).unwrap_or_default(),
        "source_client": s.client,
        "sink_table": k.table_name.clone().unwrap_or_default(),
        "sink_client": k.client,
        "definition": {
            "source": {
                "table_name": s.table_name.clone().unwrap_or_default(),
                "view_name": s.view_name,
                "columns": s.columns,
                "conditions": s.conditions,
                "limit": s.limit,
                "client": s.client,
            },
            "transform": def.transform,
            "sink": {"table_name": k.table_name.unwrap_or_default(), "client": k.client},
        },
    })
}

/// The `pipelines:` map of the `ATHENA_CONFIG` file, each definition
/// validated (a bad one stops the boot with its name).
pub fn yaml_templates(path: Option<&str>) -> Result<BTreeMap<String, Definition>, String> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        pipelines: BTreeMap<String, Value>,
    }
    let Some(path) = path else {
        return Ok(BTreeMap::new());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("ATHENA_CONFIG {path}: {e}"))?;
    let file: File =
        serde_yaml::from_str(&text).map_err(|e| format!("ATHENA_CONFIG {path}: {e}"))?;
    file.pipelines
        .into_iter()
        .map(|(name, v)| {
            let def =
                parse_definition(&v).map_err(|e| format!("ATHENA_CONFIG pipelines.{name}: {e}"))?;
            validate(&def, true).map_err(|e| format!("ATHENA_CONFIG pipelines.{name}: {e}"))?;
            Ok((name, def))
        })
        .collect()
}

/// A stored template row.
pub struct Stored {
    pub name: String,
    pub definition: Value,
    pub metadata: Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Stored {
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "definition": self.definition,
            "metadata": self.metadata,
            "source": "database",
            "mutable": true,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

fn stored(r: &tokio_postgres::Row) -> Stored {
    Stored {
        name: r.get(0),
        definition: r.get(1),
        metadata: r.get(2),
        created_at: r.get(3),
        updated_at: r.get(4),
    }
}

const COLUMNS: &str = "name, definition, metadata, created_at, updated_at";

pub async fn list(pool: &Pool) -> Result<Vec<Stored>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM pipeline_templates ORDER BY name");
    Ok(conn.query(&sql, &[]).await?.iter().map(stored).collect())
}

pub async fn get(pool: &Pool, name: &str) -> Result<Option<Stored>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM pipeline_templates WHERE name = $1");
    Ok(conn.query_opt(&sql, &[&name]).await?.as_ref().map(stored))
}

pub async fn put(
    pool: &Pool,
    name: &str,
    def: &Definition,
    metadata: &Value,
) -> Result<Stored, DomainError> {
    let conn = pool.get().await?;
    let definition = serde_json::to_value(def).map_err(|e| DomainError::Internal(e.to_string()))?;
    let sql = format!(
        "INSERT INTO pipeline_templates (name, definition, metadata) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, metadata = EXCLUDED.metadata,
           updated_at = now()
         RETURNING {COLUMNS}"
    );
    Ok(stored(
        &conn
            .query_one(&sql, &[&name, &definition, metadata])
            .await?,
    ))
}

pub async fn delete(pool: &Pool, name: &str) -> Result<Option<Stored>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("DELETE FROM pipeline_templates WHERE name = $1 RETURNING {COLUMNS}");
    Ok(conn.query_opt(&sql, &[&name]).await?.as_ref().map(stored))
}
