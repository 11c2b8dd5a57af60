//! Writes: INSERT (with upsert), UPDATE and DELETE, one statement each, with
//! `RETURNING` rows aggregated to JSON by Postgres (numerics stay numbers)
//! and the affected-row count. Identifiers are resolved in the schema cache
//! and quoted; every value is a bind parameter cast to the column's catalog
//! type (`$n::text::<type>`). Updates and deletes without a filter are
//! refused.

use super::filter::Cond;
use super::read::{self, ReadQuery};
use super::sql::{self, column_ident, json_rows, projection, value_expr, Statement};
use crate::db::schema_cache::Table;
use crate::db::tenants::Tenant;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use serde_json::{Map, Value};

/// What `ON CONFLICT` does.
#[derive(Debug, Clone, PartialEq)]
pub enum ConflictAction {
    /// `DO UPDATE SET` these values (`update_body`).
    Set(Map<String, Value>),
    /// `DO UPDATE SET c = EXCLUDED.c` for every inserted non-key column.
    Merge,
    /// `DO NOTHING`.
    Nothing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// Conflict target; empty = the table's primary key.
    pub columns: Vec<String>,
    pub action: ConflictAction,
}

#[derive(Debug, Clone)]
pub struct InsertQuery {
    pub schema: Ident,
    pub table: Ident,
    pub rows: Vec<Map<String, Value>>,
    /// `None` or `["*"]` returns every column.
    pub returning: Option<Vec<String>>,
    pub on_conflict: Option<Conflict>,
    /// Missing keys become NULL instead of the column default.
    pub default_to_null: bool,
    pub strip_nulls: bool,
    /// The inserted columns (`/rest/v1`'s `?columns=a,b`): other keys of
    /// the rows are ignored, a listed column a row lacks is NULL (DEFAULT
    /// unless `default_to_null`). `None`: the union of the rows' keys.
    pub columns: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct UpdateQuery {
    pub schema: Ident,
    pub table: Ident,
    pub set: Map<String, Value>,
    pub filters: Vec<Cond>,
    pub returning: Option<Vec<String>>,
    pub strip_nulls: bool,
}

#[derive(Debug, Clone)]
pub struct DeleteQuery {
    pub schema: Ident,
    pub table: Ident,
    pub filters: Vec<Cond>,
    pub returning: Option<Vec<String>>,
    pub strip_nulls: bool,
}

/// A validated write, ready to run on a tenant (inline, deferred, in a
/// transaction or an insert window).
pub enum Write {
    Insert(InsertQuery),
    Update(UpdateQuery),
    Delete(DeleteQuery),
}

impl Write {
    /// The rights this write needs (rights.rs names them): an insert that
    /// updates the rows it conflicts with (`on_conflict` with
    /// `update_body` or a merge, `Prefer: resolution=merge-duplicates`)
    /// overwrites existing rows, so it needs the update right as well;
    /// `DO NOTHING` only inserts.
    pub fn rights(&self) -> &'static [crate::auth::rights::Right] {
        use crate::auth::rights::{DELETE, INSERT, UPDATE};
        match self {
            Write::Insert(InsertQuery {
                on_conflict: Some(Conflict { action, .. }),
                ..
            }) if *action != ConflictAction::Nothing => &[INSERT, UPDATE],
            Write::Insert(_) => &[INSERT],
            Write::Update(_) => &[UPDATE],
            Write::Delete(_) => &[DELETE],
        }
    }

    /// The table written.
    pub fn target(&self) -> (&Ident, &Ident) {
        match self {
            Write::Insert(q) => (&q.schema, &q.table),
            Write::Update(q) => (&q.schema, &q.table),
            Write::Delete(q) => (&q.schema, &q.table),
        }
    }
}

#[derive(Debug, Default)]
pub struct WriteResult {
    pub rows: Vec<Map<String, Value>>,
    pub affected: i64,
    /// The written rows as the table holds them (`RETURNING *`) when `rows`
    /// is the caller's rendering of them (`/rest/v1` `?select=`): what
    /// events carry, never the caller's projection. `None`: `rows` are.
    pub written: Option<Vec<Map<String, Value>>>,
}

impl WriteResult {
    /// The rows an event of this write carries.
    pub fn table_rows(&self) -> &[Map<String, Value>] {
        self.written.as_deref().unwrap_or(&self.rows)
    }
}

/// A write's answer row: `(rows json text, count[, written rows json text])`.
fn decode(row: &tokio_postgres::Row) -> Result<WriteResult, DomainError> {
    let (text, affected) = sql::json_columns(row);
    let parse = |text: &str| {
        serde_json::from_str(text)
            .map_err(|e| DomainError::Internal(format!("decoding RETURNING rows: {e}")))
    };
    let rows = parse(text)?;
    let written = match row.len() > 2 {
        true => Some(parse(row.get(2))?),
        false => None,
    };
    Ok(WriteResult {
        rows,
        affected,
        written,
    })
}

fn wrap(st: &mut Statement, dml: String, strip_nulls: bool) {
    st.sql = format!(
        "WITH athena_w AS ({dml}) SELECT {}, count(*) FROM athena_w",
        json_rows("athena_w.*", strip_nulls)
    );
}

/// Builds the INSERT. `primary_key` is the conflict target used when the
/// request names none.
pub fn build_insert(
    q: &InsertQuery,
    table: &Table,
    primary_key: &[String],
) -> Result<Statement, DomainError> {
    let mut st = Statement::new();
    let dml = insert_dml(&mut st, q, table, primary_key)?;
    wrap(&mut st, dml, q.strip_nulls);
    Ok(st)
}

/// The `INSERT … RETURNING` text, its values bound into `st` (which may
/// already hold other parameters: insert windows put several in one
/// statement).
pub fn insert_dml(
    st: &mut Statement,
    q: &InsertQuery,
    table: &Table,
    primary_key: &[String],
) -> Result<String, DomainError> {
    if q.rows.is_empty() {
        return Err(DomainError::Invalid("insert_body has no rows".into()));
    }
    // Columns: the listed ones, else the union of the rows' keys, in
    // first-seen order.
    let mut names: Vec<&String> = Vec::new();
    match &q.columns {
        Some(listed) => {
            for name in listed {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        None => {
            for row in &q.rows {
                for key in row.keys() {
                    if !names.contains(&key) {
                        names.push(key);
                    }
                }
            }
        }
    }
    let mut cols = Vec::with_capacity(names.len());
    for n in &names {
        cols.push(column_ident(table, n)?);
    }
    let target = format!("{}.{}", q.schema, q.table);
    let mut dml = if cols.is_empty() && q.rows.len() == 1 {
        format!("INSERT INTO {target} DEFAULT VALUES")
    } else if cols.is_empty() {
        let first = table
            .columns
            .first()
            .ok_or_else(|| DomainError::Invalid("the table has no columns".into()))?;
        let ident = Ident::parse("column", &first.name)?;
        let values = vec!["(DEFAULT)"; q.rows.len()].join(", ");
        format!("INSERT INTO {target} ({ident}) VALUES {values}")
    } else {
        let list: Vec<String> = cols.iter().map(|(i, _)| i.to_string()).collect();
        let mut tuples = Vec::with_capacity(q.rows.len());
        for row in &q.rows {
            let mut values = Vec::with_capacity(cols.len());
            for (name, (_, col)) in names.iter().zip(&cols) {
                values.push(match row.get(*name) {
                    Some(v) => value_expr(st, col, v),
                    None if q.default_to_null => "NULL".to_string(),
                    None => "DEFAULT".to_string(),
                });
            }
            tuples.push(format!("({})", values.join(", ")));
        }
        format!(
            "INSERT INTO {target} ({}) VALUES {}",
            list.join(", "),
            tuples.join(", ")
        )
    };
    if let Some(conflict) = &q.on_conflict {
        let keys: Vec<String> = if conflict.columns.is_empty() {
            primary_key.to_vec()
        } else {
            conflict.columns.clone()
        };
        if keys.is_empty() {
            return Err(DomainError::Invalid(
                "upsert needs on_conflict columns (the table has no primary key)".into(),
            ));
        }
        let mut key_idents = Vec::with_capacity(keys.len());
        for k in &keys {
            key_idents.push(column_ident(table, k)?.0.to_string());
        }
        let action = match &conflict.action {
            ConflictAction::Nothing => "DO NOTHING".to_string(),
            ConflictAction::Set(set) if !set.is_empty() => {
                let mut parts = Vec::with_capacity(set.len());
                for (name, v) in set {
                    let (ident, col) = column_ident(table, name)?;
                    parts.push(format!("{ident} = {}", value_expr(st, &col, v)));
                }
                format!("DO UPDATE SET {}", parts.join(", "))
            }
            ConflictAction::Set(_) | ConflictAction::Merge => {
                let parts: Vec<String> = cols
                    .iter()
                    .filter(|(_, c)| !keys.contains(&c.name))
                    .map(|(i, _)| format!("{i} = EXCLUDED.{i}"))
                    .collect();
                if parts.is_empty() {
                    "DO NOTHING".to_string()
                } else {
                    format!("DO UPDATE SET {}", parts.join(", "))
                }
            }
        };
        dml.push_str(&format!(
            " ON CONFLICT ({}) {action}",
            key_idents.join(", ")
        ));
    }
    dml.push_str(&format!(
        " RETURNING {}",
        projection(table, q.returning.as_deref())?
    ));
    Ok(dml)
}

/// better-auth-athena's retry shape `update_body: {data: {…}, set: {…}}`
/// (SDK doc §7) means the inner object, unless the table really has columns
/// named `data`/`set`.
fn unwrap_set<'a>(set: &'a Map<String, Value>, table: &Table) -> &'a Map<String, Value> {
    let wrapped = !set.is_empty()
        && set
            .iter()
            .all(|(k, v)| (k == "data" || k == "set") && v.is_object())
        && !table
            .columns
            .iter()
            .any(|c| c.name == "data" || c.name == "set");
    if !wrapped {
        return set;
    }
    set.get("set")
        .or_else(|| set.get("data"))
        .and_then(Value::as_object)
        .unwrap_or(set)
}

pub fn build_update(q: &UpdateQuery, table: &Table) -> Result<Statement, DomainError> {
    let mut st = Statement::new();
    let dml = update_dml(&mut st, q, table)?;
    wrap(&mut st, dml, q.strip_nulls);
    Ok(st)
}

/// The `UPDATE … RETURNING` text, its values bound into `st`.
fn update_dml(st: &mut Statement, q: &UpdateQuery, table: &Table) -> Result<String, DomainError> {
    let set = unwrap_set(&q.set, table);
    if set.is_empty() {
        return Err(DomainError::Invalid(
            "update payload required: update_body has no columns".into(),
        ));
    }
    let mut parts = Vec::with_capacity(set.len());
    for (name, v) in set {
        let (ident, col) = column_ident(table, name)?;
        parts.push(format!("{ident} = {}", value_expr(st, &col, v)));
    }
    let w = sql::where_clause(st, &q.filters, table)?.ok_or_else(|| {
        DomainError::Invalid(
            "an update needs a filter (conditions or resource_id); refusing to update every row"
                .into(),
        )
    })?;
    Ok(format!(
        "UPDATE {}.{} SET {} WHERE {w} RETURNING {}",
        q.schema,
        q.table,
        parts.join(", "),
        projection(table, q.returning.as_deref())?
    ))
}

pub fn build_delete(q: &DeleteQuery, table: &Table) -> Result<Statement, DomainError> {
    let mut st = Statement::new();
    let dml = delete_dml(&mut st, q, table)?;
    wrap(&mut st, dml, q.strip_nulls);
    Ok(st)
}

/// The `DELETE … RETURNING` text, its values bound into `st`.
fn delete_dml(st: &mut Statement, q: &DeleteQuery, table: &Table) -> Result<String, DomainError> {
    let w = sql::where_clause(st, &q.filters, table)?.ok_or_else(|| {
        DomainError::Invalid(
            "a delete needs a filter (conditions or resource_id); refusing to delete every row"
                .into(),
        )
    })?;
    Ok(format!(
        "DELETE FROM {}.{} WHERE {w} RETURNING {}",
        q.schema,
        q.table,
        projection(table, q.returning.as_deref())?
    ))
}

pub(crate) async fn table_of(
    tenant: &Tenant,
    schema: &Ident,
    table: &Ident,
) -> Result<std::sync::Arc<Table>, DomainError> {
    tenant.schema.table(&tenant.pool, schema, table).await
}

async fn execute(tenant: &Tenant, st: &Statement) -> Result<WriteResult, DomainError> {
    let mut conn = tenant.pool.get().await?;
    let rows = sql::run_cached(&mut conn, st).await?;
    decode(sql::single_row(&rows)?)
}

/// The primary-key columns of a table, in key order (the upsert target when
/// the request names none).
pub(crate) async fn primary_key(
    tenant: &Tenant,
    schema: &Ident,
    table: &Ident,
) -> Result<Vec<String>, DomainError> {
    let mut conn = tenant.pool.get().await?;
    // Prepared once per connection: one round trip per upsert, not two.
    let statement = conn
        .prepare_cached(
            "SELECT a.attname::text
               FROM pg_catalog.pg_index i
               JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
              WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary
              ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[],
        )
        .await
        .map_err(sql::db_error)?;
    let rows = conn
        .query(&statement, &[&schema.as_str(), &table.as_str()])
        .await
        .map_err(sql::db_error)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The statement of a write, resolved against the tenant's catalog (the
/// table's columns; its primary key for an upsert without a target).
pub async fn statement(tenant: &Tenant, w: &Write) -> Result<Statement, DomainError> {
    let (schema, table) = w.target();
    let meta = table_of(tenant, schema, table).await?;
    statement_on(tenant, w, &meta).await
}

/// `statement` with the table already resolved.
async fn statement_on(tenant: &Tenant, w: &Write, meta: &Table) -> Result<Statement, DomainError> {
    let (schema, table) = w.target();
    match w {
        Write::Insert(q) => {
            let pk = match &q.on_conflict {
                Some(c) if c.columns.is_empty() => primary_key(tenant, schema, table).await?,
                _ => Vec::new(),
            };
            build_insert(q, meta, &pk)
        }
        Write::Update(q) => build_update(q, meta),
        Write::Delete(q) => build_delete(q, meta),
    }
}

/// Runs a write on its own (autocommit).
pub async fn run(tenant: &Tenant, w: &Write) -> Result<WriteResult, DomainError> {
    execute(tenant, &statement(tenant, w).await?).await
}

/// Runs a write's statement in a transaction committed only when it touched
/// exactly one row (`Accept: application/vnd.pgrst.object+json`, issue 14):
/// otherwise it is rolled back and nothing changed. A transaction, not a
/// check before the write: a count first could race a concurrent writer,
/// and the statement's own `count(*)` is the number it really touched.
async fn execute_singular(tenant: &Tenant, st: &Statement) -> Result<WriteResult, DomainError> {
    let mut conn = tenant.pool.get().await?;
    // Dropped unfinished (an error, a cancelled request), the transaction
    // sends ROLLBACK before the connection is used again.
    let tx = conn.transaction().await.map_err(sql::db_error)?;
    let prepared = tx
        .prepare_typed(&st.sql, &st.types)
        .await
        .map_err(sql::db_error)?;
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = st
        .params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let rows = tx.query(&prepared, &params).await.map_err(sql::db_error)?;
    let result = decode(sql::single_row(&rows)?)?;
    if result.affected == 1 {
        tx.commit().await.map_err(sql::db_error)?;
    } else {
        tx.rollback().await.map_err(sql::db_error)?;
    }
    Ok(result)
}

/// Runs a write in a transaction that is committed only when `commit`
/// (webhook sinks, issue 15: a delivery commits, `test` rolls back and
/// answers what would have been written).
pub async fn run_in_transaction(
    tenant: &Tenant,
    w: &Write,
    commit: bool,
) -> Result<WriteResult, DomainError> {
    let st = statement(tenant, w).await?;
    let mut conn = tenant.pool.get().await?;
    let tx = conn.transaction().await.map_err(sql::db_error)?;
    let prepared = tx
        .prepare_typed(&st.sql, &st.types)
        .await
        .map_err(sql::db_error)?;
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = st
        .params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let rows = tx.query(&prepared, &params).await.map_err(sql::db_error)?;
    let (text, affected) = sql::json_columns(sql::single_row(&rows)?);
    let rows = serde_json::from_str(text)
        .map_err(|e| DomainError::Internal(format!("decoding RETURNING rows: {e}")))?;
    if commit {
        tx.commit().await.map_err(sql::db_error)?;
    } else {
        tx.rollback().await.map_err(sql::db_error)?;
    }
    // The sink's own insert (`RETURNING *`): the rows are the table's.
    Ok(WriteResult {
        rows,
        affected,
        written: None,
    })
}

// --- `/rest/v1` writes as PostgREST does them (issue 14, writes) ---

/// The name of the written rows inside a `/rest/v1` write with `?select=`.
const WRITTEN: &str = "athena_written";

/// How a `/rest/v1` write runs and answers.
pub struct RestWrite<'a> {
    /// `?select=` as a read of the written rows (columns and embeds,
    /// rendered by the read renderer over them); `None` answers the
    /// `RETURNING` rows as they are (the plain statement of `run`).
    pub select: Option<&'a ReadQuery>,
    /// `Accept: application/vnd.pgrst.object+json`: committed only when
    /// exactly one row was written (`execute_singular`'s transaction).
    pub singular: bool,
    /// The read cap the embeds of `select` use.
    pub max_rows: i64,
}

/// Runs a `/rest/v1` write: the plain statement of `run` without
/// `?select=` (the same single statement, no CTE added); with it, one
/// statement `WITH athena_written AS (<dml> RETURNING *) SELECT (<the read
/// renderer's select list and embeds over athena_written>), (SELECT
/// count(*) FROM athena_written)`. An insert of no rows writes nothing and
/// answers none (no statement touches the table, but the table and the
/// selected columns are still resolved).
pub async fn run_rest(
    tenant: &Tenant,
    w: &Write,
    how: RestWrite<'_>,
) -> Result<WriteResult, DomainError> {
    let (schema, table) = w.target();
    let meta = table_of(tenant, schema, table).await?;
    if let Write::Insert(q) = w {
        if q.rows.is_empty() {
            // Nothing to write; the table, `?select=` and `?columns=` are
            // still resolved (an unknown one is the same 400 as with rows).
            match how.select {
                Some(read) => drop(read::over_written(tenant, read, WRITTEN, how.max_rows).await?),
                None => drop(projection(&meta, q.returning.as_deref())?),
            }
            if let Some(cols) = &q.columns {
                for c in cols {
                    column_ident(&meta, c)?;
                }
            }
            return Ok(WriteResult::default());
        }
    }
    let st = match how.select {
        None => statement_on(tenant, w, &meta).await?,
        Some(read) => {
            let pk = match w {
                Write::Insert(InsertQuery {
                    on_conflict: Some(c),
                    ..
                }) if c.columns.is_empty() => primary_key(tenant, schema, table).await?,
                _ => Vec::new(),
            };
            let rows = read::over_written(tenant, read, WRITTEN, how.max_rows).await?;
            over_written(rows, w, &meta, &pk)?
        }
    };
    let result = match how.singular {
        true => execute_singular(tenant, &st).await,
        false => execute(tenant, &st).await,
    };
    result.map_err(|e| conflict_target_error(e, w))
}

/// `WITH athena_written AS (<dml> RETURNING *) SELECT (<rows>), (SELECT
/// count(*) FROM athena_written), (<the written rows>)`: `rows` is the read
/// renderer's statement over `athena_written` (its parameters first, the
/// write's bound after); the third column is the rows as written, what the
/// write's event carries (never the caller's `?select=`).
fn over_written(
    mut st: Statement,
    w: &Write,
    meta: &Table,
    primary_key: &[String],
) -> Result<Statement, DomainError> {
    let dml = match w {
        Write::Insert(q) => insert_dml(&mut st, q, meta, primary_key)?,
        Write::Update(q) => update_dml(&mut st, q, meta)?,
        Write::Delete(q) => delete_dml(&mut st, q, meta)?,
    };
    st.sql = format!(
        "WITH {WRITTEN} AS ({dml}) SELECT ({}), (SELECT count(*) FROM {WRITTEN}), \
         (SELECT coalesce(json_agg(w.*), '[]'::json)::text FROM {WRITTEN} w)",
        st.sql
    );
    Ok(st)
}

/// Postgres' "no unique or exclusion constraint matching the ON CONFLICT
/// specification" (42P10) said in the request's terms: the `on_conflict`
/// columns are not a unique key.
fn conflict_target_error(e: DomainError, w: &Write) -> DomainError {
    let Write::Insert(InsertQuery {
        on_conflict: Some(c),
        ..
    }) = w
    else {
        return e;
    };
    match e {
        DomainError::Invalid(m) if m.contains("ON CONFLICT specification") => {
            let target = match c.columns.is_empty() {
                true => "the primary key".to_string(),
                false => format!("on_conflict={}", c.columns.join(",")),
            };
            DomainError::Invalid(format!(
                "{target} names no unique or primary key constraint of the table (an upsert needs a unique column set as its conflict target)"
            ))
        }
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::schema_cache::Column;
    use crate::gateway::filter::{Filter, FilterValue, Operator};
    use serde_json::json;

    fn table() -> Table {
        Table {
            columns: vec![
                Column {
                    name: "id".into(),
                    type_name: "integer".into(),
                },
                Column {
                    name: "na\"me".into(),
                    type_name: "text".into(),
                },
                Column {
                    name: "tags".into(),
                    type_name: "text[]".into(),
                },
            ],
        }
    }

    fn ids() -> (Ident, Ident) {
        (
            Ident::parse("schema", "public").unwrap(),
            Ident::parse("table", "t; drop").unwrap(),
        )
    }

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn insert_binds_every_value() {
        let (schema, table_id) = ids();
        let q = InsertQuery {
            schema,
            table: table_id,
            rows: vec![
                row(json!({"na\"me": "1; DROP TABLE x", "id": 1})),
                row(json!({"id": 2, "tags": ["a", "b"]})),
            ],
            returning: Some(vec!["id".into()]),
            on_conflict: Some(Conflict {
                columns: vec![],
                action: ConflictAction::Merge,
            }),
            default_to_null: false,
            columns: None,
            strip_nulls: false,
        };
        let st = build_insert(&q, &table(), &["id".into()]).unwrap();
        assert_eq!(
            st.sql,
            "WITH athena_w AS (INSERT INTO \"public\".\"t; drop\" (\"id\", \"na\"\"me\", \"tags\") VALUES \
             ($1::text::integer, $2::text::text, DEFAULT), ($3::text::integer, DEFAULT, \
             ARRAY(SELECT jsonb_array_elements_text($4::text::jsonb))::text[]) \
             ON CONFLICT (\"id\") DO UPDATE SET \"na\"\"me\" = EXCLUDED.\"na\"\"me\", \"tags\" = EXCLUDED.\"tags\" \
             RETURNING \"id\") SELECT coalesce(json_agg(athena_w.*), '[]'::json)::text, count(*) FROM athena_w"
        );
        assert_eq!(st.params.len(), 4);
        let bad = InsertQuery {
            rows: vec![row(json!({"nope": 1}))],
            on_conflict: None,
            ..q.clone()
        };
        assert!(matches!(
            build_insert(&bad, &table(), &[]),
            Err(DomainError::UnknownColumn(_))
        ));
        let empty = InsertQuery { rows: vec![], ..q };
        assert!(build_insert(&empty, &table(), &[]).is_err());
    }

    #[test]
    fn listed_columns_are_the_inserted_ones() {
        let (schema, table_id) = ids();
        let q = InsertQuery {
            schema,
            table: table_id,
            rows: vec![
                row(json!({"id": 1, "tags": ["x"]})),
                row(json!({"na\"me": "b"})),
            ],
            returning: None,
            on_conflict: None,
            default_to_null: true,
            strip_nulls: false,
            columns: Some(vec!["id".into(), "na\"me".into()]),
        };
        // `tags` is not listed: ignored; a listed key a row lacks is NULL.
        let st = build_insert(&q, &table(), &[]).unwrap();
        assert!(
            st.sql.contains(
                "(\"id\", \"na\"\"me\") VALUES ($1::text::integer, NULL), (NULL, $2::text::text)"
            ),
            "{}",
            st.sql
        );
        // DEFAULT instead with `missing=default`.
        let st = build_insert(
            &InsertQuery {
                default_to_null: false,
                ..q.clone()
            },
            &table(),
            &[],
        )
        .unwrap();
        assert!(st
            .sql
            .contains("VALUES ($1::text::integer, DEFAULT), (DEFAULT, $2::text::text)"));
        // An unknown listed column is refused even when no row has it.
        let bad = InsertQuery {
            columns: Some(vec!["nope".into()]),
            ..q
        };
        assert!(matches!(
            build_insert(&bad, &table(), &[]),
            Err(DomainError::UnknownColumn(_))
        ));
    }

    #[test]
    fn select_renders_the_written_rows_in_one_statement() {
        let (schema, table_id) = ids();
        let read = ReadQuery {
            columns: Some(vec!["id".into(), "na\"me".into()]),
            ..ReadQuery::table(schema.clone(), table_id.clone())
        };
        let rows = read::build_over_written(&read, &table(), &[], WRITTEN, 100).unwrap();
        let w = Write::Update(UpdateQuery {
            schema,
            table: table_id,
            set: row(json!({"id": 2})),
            filters: vec![Filter::new("id", Operator::Eq, FilterValue::Text("1".into())).into()],
            returning: None,
            strip_nulls: false,
        });
        let st = over_written(rows, &w, &table(), &[]).unwrap();
        assert_eq!(
            st.sql,
            "WITH athena_written AS (UPDATE \"public\".\"t; drop\" SET \"id\" = $1::text::integer \
             WHERE \"id\" = $2::text::integer RETURNING *) \
             SELECT (SELECT coalesce(json_agg(t.*), '[]'::json)::text FROM \
             (SELECT \"id\", \"na\"\"me\" FROM athena_written) t), \
             (SELECT count(*) FROM athena_written), \
             (SELECT coalesce(json_agg(w.*), '[]'::json)::text FROM athena_written w)"
        );
        assert_eq!(st.params.len(), 2);
        // An unknown selected column is refused before anything runs.
        let bad = ReadQuery {
            columns: Some(vec!["nope".into()]),
            ..read
        };
        assert!(read::build_over_written(&bad, &table(), &[], WRITTEN, 100).is_err());
    }

    #[test]
    fn update_and_delete_need_a_filter() {
        let (schema, table_id) = ids();
        let mut u = UpdateQuery {
            schema: schema.clone(),
            table: table_id.clone(),
            set: row(json!({"na\"me": "x"})),
            filters: vec![],
            returning: None,
            strip_nulls: true,
        };
        assert!(matches!(
            build_update(&u, &table()),
            Err(DomainError::Invalid(_))
        ));
        u.filters = vec![Filter::new("id", Operator::Eq, FilterValue::Text("1".into())).into()];
        let st = build_update(&u, &table()).unwrap();
        assert_eq!(
            st.sql,
            "WITH athena_w AS (UPDATE \"public\".\"t; drop\" SET \"na\"\"me\" = $1::text::text \
             WHERE \"id\" = $2::text::integer RETURNING *) \
             SELECT json_strip_nulls(coalesce(json_agg(athena_w.*), '[]'::json))::text, count(*) FROM athena_w"
        );
        u.set = Map::new();
        assert!(build_update(&u, &table()).is_err());
        let mut d = DeleteQuery {
            schema,
            table: table_id,
            filters: vec![],
            returning: Some(vec!["*".into()]),
            strip_nulls: false,
        };
        assert!(matches!(
            build_delete(&d, &table()),
            Err(DomainError::Invalid(_))
        ));
        d.filters = vec![Filter::new("id", Operator::Eq, FilterValue::Null).into()];
        assert!(build_delete(&d, &table())
            .unwrap()
            .sql
            .contains("WHERE \"id\" IS NULL RETURNING *"));
    }
}
