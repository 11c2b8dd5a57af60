//! `GET /debug/schema` (issue 16): the tables the logging store should
//! hold, read from our own catalog migrations (`migrations/*.sql`), against
//! what it holds.
//!
//! The expected set is derived, not hand-kept: every `CREATE TABLE` of the
//! migrations (with the comment above it as its purpose), then each
//! `ALTER TABLE … ADD|DROP|RENAME COLUMN` and `DROP TABLE`, in migration
//! order (`DO` blocks included). What exists is one `pg_catalog` query.
//! When the logging store is the catalog (the default) every catalog table
//! is expected; a separate store (`ATHENA_LOGGING_DATABASE_URL`) only holds
//! the audit tables of `0011_ddl_audit_log`.

use super::Pool;
use crate::domain::DomainError;
use serde_json::{json, Value};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
use std::collections::BTreeMap;

/// A relation the migrations create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub schema: String,
    pub name: String,
    /// `table` or `view` (`materialized_view`).
    pub relation_type: &'static str,
    pub required: bool,
    pub purpose: String,
    pub columns: Vec<String>,
}

/// The relations `migrations` (in order) leave behind, by `schema.name`.
pub fn expected(migrations: &[&str]) -> Vec<Expected> {
    let mut out: BTreeMap<(String, String), Expected> = BTreeMap::new();
    for sql in migrations {
        apply(sql, &mut out);
    }
    out.into_values().collect()
}

/// The expected set of the server's store: every catalog migration, or
/// only the audit log's for a separate logging store.
pub fn expected_for_store(separate: bool) -> Vec<Expected> {
    if separate {
        return expected(&[crate::audit::ddl::SCHEMA]);
    }
    let sqls: Vec<&str> = super::migrate::MIGRATIONS
        .iter()
        .map(|(_, _, sql)| *sql)
        .collect();
    expected(&sqls)
}

/// One migration's statements applied to `out`.
fn apply(sql: &str, out: &mut BTreeMap<(String, String), Expected>) {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        return;
    };
    let mut comment: Vec<String> = Vec::new();
    let mut statement: Vec<Token> = Vec::new();
    let mut purpose = String::new();
    for token in tokens {
        match token {
            Token::Whitespace(Whitespace::SingleLineComment { comment: c, .. }) => {
                if statement.is_empty() {
                    comment.push(c.trim().to_string());
                }
            }
            Token::Whitespace(_) => {}
            Token::SemiColon => {
                statement_effect(&statement, &purpose, out);
                statement.clear();
                comment.clear();
            }
            token => {
                if statement.is_empty() {
                    purpose = comment.join(" ");
                }
                statement.push(token);
            }
        }
    }
    statement_effect(&statement, &purpose, out);
}

fn word(t: Option<&Token>) -> Option<String> {
    match t {
        Some(Token::Word(w)) => Some(match w.quote_style {
            Some(_) => w.value.clone(),
            None => w.value.to_ascii_lowercase(),
        }),
        _ => None,
    }
}

fn is(t: Option<&Token>, kw: &str) -> bool {
    matches!(t, Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
}

/// Skips `words` at `*i` when they all follow.
fn skip(tokens: &[Token], i: &mut usize, words: &[&str]) -> bool {
    if words
        .iter()
        .enumerate()
        .all(|(k, w)| is(tokens.get(*i + k), w))
    {
        *i += words.len();
        true
    } else {
        false
    }
}

/// `name` or `schema.name` at `*i`.
fn relation_name(tokens: &[Token], i: &mut usize) -> Option<(String, String)> {
    let first = word(tokens.get(*i))?;
    if matches!(tokens.get(*i + 1), Some(Token::Period)) {
        let second = word(tokens.get(*i + 2))?;
        *i += 3;
        Some((first, second))
    } else {
        *i += 1;
        Some(("public".into(), first))
    }
}

/// Top-level comma-separated items of `tokens[from..]` up to the closing
/// parenthesis at depth 0 (or the end).
fn items(tokens: &[Token], from: usize, stop_at_paren: bool) -> Vec<&[Token]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, from);
    for (k, t) in tokens.iter().enumerate().skip(from) {
        match t {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 && stop_at_paren => {
                out.push(&tokens[start..k]);
                return out;
            }
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => {
                out.push(&tokens[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    out.push(&tokens[start..]);
    out
}

const TABLE_CONSTRAINTS: &[&str] = &[
    "constraint",
    "primary",
    "unique",
    "check",
    "foreign",
    "exclude",
    "like",
];

fn statement_effect(
    tokens: &[Token],
    purpose: &str,
    out: &mut BTreeMap<(String, String), Expected>,
) {
    // A `DO $$ … $$` block: its body's statements count too.
    if is(tokens.first(), "do") {
        for t in tokens {
            if let Token::DollarQuotedString(body) = t {
                apply(&body.value, out);
            }
        }
        return;
    }
    // The statement may follow plpgsql control words (`IF … THEN ALTER …`).
    let start = if ["create", "alter", "drop"]
        .iter()
        .any(|w| is(tokens.first(), w))
    {
        Some(0)
    } else {
        (0..tokens.len()).find(|&k| is(tokens.get(k), "alter") && is(tokens.get(k + 1), "table"))
    };
    let Some(start) = start else {
        return;
    };
    let mut i = start;
    if skip(tokens, &mut i, &["create"]) {
        skip(tokens, &mut i, &["or", "replace"]);
        skip(tokens, &mut i, &["unlogged"]);
        let relation_type = if skip(tokens, &mut i, &["table"]) {
            "table"
        } else if skip(tokens, &mut i, &["view"]) {
            "view"
        } else if skip(tokens, &mut i, &["materialized", "view"]) {
            "materialized_view"
        } else {
            return;
        };
        skip(tokens, &mut i, &["if", "not", "exists"]);
        let Some((schema, name)) = relation_name(tokens, &mut i) else {
            return;
        };
        let mut columns = Vec::new();
        if relation_type == "table" && matches!(tokens.get(i), Some(Token::LParen)) {
            for item in items(tokens, i + 1, true) {
                let first = word(item.first());
                if let Some(first) = first.filter(|f| !TABLE_CONSTRAINTS.contains(&f.as_str())) {
                    columns.push(first);
                }
            }
        }
        let purpose = purpose.split_once(". ").map_or(purpose, |(first, _)| first);
        out.entry((schema.clone(), name.clone()))
            .or_insert(Expected {
                schema,
                name,
                relation_type,
                required: true,
                purpose: purpose.trim_end_matches('.').to_string(),
                columns,
            });
    } else if skip(tokens, &mut i, &["alter", "table"]) {
        skip(tokens, &mut i, &["if", "exists"]);
        skip(tokens, &mut i, &["only"]);
        let Some(key) = relation_name(tokens, &mut i) else {
            return;
        };
        let Some(table) = out.get_mut(&key) else {
            return;
        };
        for clause in items(tokens, i, false) {
            let mut j = 0;
            if skip(clause, &mut j, &["add"]) {
                let column = skip(clause, &mut j, &["column"]);
                if !column
                    && TABLE_CONSTRAINTS.contains(&word(clause.get(j)).unwrap_or_default().as_str())
                {
                    continue;
                }
                skip(clause, &mut j, &["if", "not", "exists"]);
                if let Some(c) = word(clause.get(j)) {
                    if !table.columns.contains(&c) {
                        table.columns.push(c);
                    }
                }
            } else if skip(clause, &mut j, &["drop"]) {
                let column = skip(clause, &mut j, &["column"]);
                if !column && is(clause.get(j), "constraint") {
                    continue;
                }
                skip(clause, &mut j, &["if", "exists"]);
                if let Some(c) = word(clause.get(j)) {
                    table.columns.retain(|x| *x != c);
                }
            } else if skip(clause, &mut j, &["rename"]) {
                if skip(clause, &mut j, &["to"]) {
                    continue;
                }
                skip(clause, &mut j, &["column"]);
                if let (Some(from), true, Some(to)) = (
                    word(clause.get(j)),
                    is(clause.get(j + 1), "to"),
                    word(clause.get(j + 2)),
                ) {
                    for c in table.columns.iter_mut().filter(|c| **c == from) {
                        *c = to.clone();
                    }
                }
            }
        }
    } else if skip(tokens, &mut i, &["drop", "table"]) {
        skip(tokens, &mut i, &["if", "exists"]);
        while let Some(key) = relation_name(tokens, &mut i) {
            out.remove(&key);
            if !matches!(tokens.get(i), Some(Token::Comma)) {
                break;
            }
            i += 1;
        }
    }
}

/// `relkind` as the report names it.
const RELATION_TYPE: &str = "CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table'
    WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized_view' WHEN 'f' THEN 'foreign_table' END";

/// The report (`GET /debug/schema`'s body) for the store on `pool`,
/// named `logging_client`. A store that does not answer is 503.
pub async fn report(
    pool: &Pool,
    logging_client: &str,
    expected: &[Expected],
) -> Result<Value, DomainError> {
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "debug/schema: the logging store does not answer");
        DomainError::ServiceUnavailable(format!(
            "the logging store ({logging_client}) is not reachable"
        ))
    };
    let conn = pool.get().await.map_err(|e| unavailable(&e))?;
    // One query: every relation outside the system schemas with its columns.
    let sql = format!(
        "SELECT n.nspname, c.relname, {RELATION_TYPE},
                COALESCE(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum > 0), '{{}}')
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
            AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
          GROUP BY n.nspname, c.relname, c.relkind
          ORDER BY n.nspname, c.relname"
    );
    let rows = conn.query(&sql, &[]).await.map_err(|e| unavailable(&e))?;
    let observed: Vec<(String, String, String, Vec<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    Ok(build(logging_client, expected, &observed))
}

/// The report from the expected set and the observed relations
/// `(schema, name, relation_type, columns)`.
pub fn build(
    logging_client: &str,
    expected: &[Expected],
    observed: &[(String, String, String, Vec<String>)],
) -> Value {
    let mut tables = Vec::new();
    let (mut req_tables, mut opt_tables) = (Vec::new(), Vec::new());
    let (mut req_cols, mut opt_cols, mut mismatches) = (Vec::new(), Vec::new(), Vec::new());
    let mut found_count = 0;
    for e in expected {
        let qualified = format!("{}.{}", e.schema, e.name);
        let found = observed
            .iter()
            .find(|(s, n, _, _)| *s == e.schema && *n == e.name);
        let (found_type, found_columns) = match found {
            Some((_, _, t, cols)) => (Some(t.clone()), cols.clone()),
            None => (None, Vec::new()),
        };
        let matches = found_type.as_deref() == Some(e.relation_type);
        let missing: Vec<String> = match found {
            // A missing table's columns are counted with the table.
            None => Vec::new(),
            Some(_) => e
                .columns
                .iter()
                .filter(|c| !found_columns.contains(c))
                .cloned()
                .collect(),
        };
        let unexpected: Vec<String> = found_columns
            .iter()
            .filter(|c| !e.columns.contains(c))
            .cloned()
            .collect();
        if found.is_some() {
            found_count += 1;
            if !matches {
                mismatches.push(format!(
                    "{qualified} (expected {}, found {})",
                    e.relation_type,
                    found_type.as_deref().unwrap_or("none")
                ));
            }
        } else if e.required {
            req_tables.push(qualified.clone());
        } else {
            opt_tables.push(qualified.clone());
        }
        for c in &missing {
            if e.required {
                req_cols.push(format!("{qualified}.{c}"));
            } else {
                opt_cols.push(format!("{qualified}.{c}"));
            }
        }
        tables.push(json!({
            "table_schema": e.schema,
            "table_name": e.name,
            "expected_relation_type": e.relation_type,
            "required": e.required,
            "purpose": e.purpose,
            "expected_columns": e.columns,
            "found": found.is_some(),
            "found_relation_type": found_type,
            "relation_type_matches": matches,
            "found_columns": found_columns,
            "missing_columns": missing,
            "unexpected_columns": unexpected,
        }));
    }
    let mut reasons = Vec::new();
    let mut reason = |code: &str, severity: &str, count: usize, message: &str| {
        if count > 0 {
            reasons.push(
                json!({"code": code, "severity": severity, "count": count, "message": message}),
            );
        }
    };
    reason(
        "required_tables_missing",
        "critical",
        req_tables.len(),
        "required tables are missing: run the catalog migrations",
    );
    reason(
        "required_columns_missing",
        "critical",
        req_cols.len(),
        "required columns are missing from existing tables",
    );
    reason(
        "relation_type_mismatch",
        "warning",
        mismatches.len(),
        "relations exist with another type than expected",
    );
    reason(
        "optional_tables_missing",
        "warning",
        opt_tables.len(),
        "optional tables are missing",
    );
    reason(
        "optional_columns_missing",
        "warning",
        opt_cols.len(),
        "optional columns are missing",
    );
    let health = if !req_tables.is_empty() || !req_cols.is_empty() {
        "unhealthy"
    } else if reasons.is_empty() {
        "healthy"
    } else {
        "degraded"
    };
    let observed_tables: Vec<Value> = observed
        .iter()
        .map(|(s, n, t, cols)| json!({"table_schema": s, "table_name": n, "relation_type": t, "columns": cols}))
        .collect();
    json!({
        "logging_client": logging_client,
        "generated_at": chrono::Utc::now(),
        "summary": {
            "health": health,
            "health_reasons": reasons,
            "expected_table_count": expected.len(),
            "found_table_count": found_count,
            "required_missing_table_count": req_tables.len(),
            "optional_missing_table_count": opt_tables.len(),
            "required_missing_column_count": req_cols.len(),
            "optional_missing_column_count": opt_cols.len(),
            "relation_type_mismatch_count": mismatches.len(),
        },
        "expected_tables": tables,
        "still_needed": {
            "required_missing_tables": req_tables,
            "optional_missing_tables": opt_tables,
            "required_missing_columns": req_cols,
            "optional_missing_columns": opt_cols,
            "relation_type_mismatches": mismatches,
        },
        "observed_tables": observed_tables,
        "missing_required_tables": req_tables,
        "missing_optional_tables": opt_tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_set_follows_the_migrations() {
        let e = expected(&[
            "-- Things we keep. More prose.\nCREATE TABLE IF NOT EXISTS things (id bigint PRIMARY KEY, name text NOT NULL CHECK (name <> ''), old text, CONSTRAINT u UNIQUE (name));
             CREATE TABLE gone (x int);",
            "ALTER TABLE things ADD COLUMN IF NOT EXISTS extra jsonb DEFAULT '{}', ADD CONSTRAINT c CHECK (true), RENAME COLUMN name TO label;
             DROP TABLE IF EXISTS gone;
             DO $$ BEGIN IF true THEN ALTER TABLE things DROP COLUMN old; END IF; END $$;
             CREATE OR REPLACE VIEW v AS SELECT 1;",
        ]);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].name, "things");
        assert_eq!(e[0].purpose, "Things we keep");
        assert_eq!(e[0].columns, ["id", "label", "extra"]);
        assert_eq!((e[1].name.as_str(), e[1].relation_type), ("v", "view"));
    }

    #[test]
    fn the_catalog_set_is_complete() {
        let e = expected_for_store(false);
        let find = |n: &str| {
            e.iter()
                .find(|t| t.name == n)
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        assert!(find("athena_clients")
            .columns
            .contains(&"deleted_at".to_string()));
        // The DO block of 0006 moved these out of the key table.
        assert!(!find("athena_api_keys")
            .columns
            .contains(&"ip_whitelist".to_string()));
        assert!(find("database_audit_log")
            .columns
            .contains(&"statement".to_string()));
        assert!(find("function_ddl_audit_log")
            .columns
            .contains(&"previous_definition".to_string()));
        let separate = expected_for_store(true);
        assert_eq!(separate.len(), 2);
    }

    #[test]
    fn health() {
        let e = expected(&["CREATE TABLE a (x int, y int); CREATE TABLE b (z int);"]);
        let obs = |v: &[(&str, &str, &[&str])]| -> Vec<(String, String, String, Vec<String>)> {
            v.iter()
                .map(|(n, t, c)| {
                    (
                        "public".into(),
                        n.to_string(),
                        t.to_string(),
                        c.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect()
        };
        let r = build(
            "catalog",
            &e,
            &obs(&[("a", "table", &["x", "y"]), ("b", "table", &["z"])]),
        );
        assert_eq!(r["summary"]["health"], "healthy");
        let r = build(
            "catalog",
            &e,
            &obs(&[("a", "view", &["x", "y"]), ("b", "table", &["z", "w"])]),
        );
        assert_eq!(r["summary"]["health"], "degraded");
        assert_eq!(r["summary"]["relation_type_mismatch_count"], 1);
        assert_eq!(r["expected_tables"][1]["unexpected_columns"], json!(["w"]));
        let r = build("catalog", &e, &obs(&[("a", "table", &["x"])]));
        assert_eq!(r["summary"]["health"], "unhealthy");
        assert_eq!(
            r["still_needed"]["required_missing_tables"],
            json!(["public.b"])
        );
        assert_eq!(
            r["still_needed"]["required_missing_columns"],
            json!(["public.a.y"])
        );
        assert_eq!(r["summary"]["health_reasons"].as_array().unwrap().len(), 2);
    }
}
