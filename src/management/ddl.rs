//! The closed grammar of management DDL (`/management/*`): names, column
//! types, default expressions, and the statements built from them. Nothing
//! a caller sends reaches SQL unless it matched here; names are always
//! written quoted, types and defaults are re-spelled from what was parsed.
//! Caller SQL (function DDL, view queries) is PARSED with sqlparser and
//! checked (`checked_function_ddl`, `checked_view_query`), never pasted
//! unread (security.md §12).

use crate::domain::DomainError;
use sqlparser::ast::{FunctionSecurity, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};
use std::fmt;

/// Postgres truncates identifiers at NAMEDATALEN-1 bytes; longer is refused.
pub const MAX_NAME_BYTES: usize = 63;

/// Index access methods a caller may name.
pub const INDEX_METHODS: &[&str] = &["btree", "hash", "gin", "gist", "brin"];

/// The column types a caller may name (each also as an array, `type[]`);
/// `(n)`, `(p)`, `(p,s)` take bounded integers (`column_type`).
pub const COLUMN_TYPES: &[&str] = &[
    "text",
    "varchar(n)",
    "char(n)",
    "smallint",
    "integer",
    "bigint",
    "smallserial",
    "serial",
    "bigserial",
    "numeric",
    "numeric(p)",
    "numeric(p,s)",
    "real",
    "double precision",
    "boolean",
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "uuid",
    "json",
    "jsonb",
    "bytea",
    "inet",
    "cidr",
    "macaddr",
];

/// A checked SQL name (`^[A-Za-z_][A-Za-z0-9_$]*$`, at most 63 bytes);
/// `Display` writes it double-quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// `field` names the input in the 400 (`table_name`, `columns[2].name`).
    pub fn parse(field: &str, raw: &str) -> Result<Name, DomainError> {
        let bad = |why: &str| DomainError::invalid_field(field, why);
        if raw.is_empty() {
            return Err(bad("must not be empty"));
        }
        if raw.len() > MAX_NAME_BYTES {
            return Err(bad("is longer than 63 bytes"));
        }
        let mut chars = raw.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            return Err(bad(
                "must match ^[A-Za-z_][A-Za-z0-9_$]*$ (letters, digits, `_`, `$`)",
            ));
        }
        Ok(Name(raw.to_string()))
    }

    /// A schema a write may target: not Postgres' own (`pg_*`,
    /// `information_schema`) nor Athena's (`athena_gateway`).
    pub fn writable_schema(field: &str, raw: &str) -> Result<Name, DomainError> {
        let name = Name::parse(field, raw)?;
        if crate::db::tenants::is_system_schema(&name.0)
            || crate::db::migrate::is_gateway_schema(&name.0)
        {
            return Err(DomainError::invalid_field(
                field,
                format!(
                    "`{raw}` is a system or Athena schema; management writes are refused there"
                ),
            ));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The grammar admits no `"`: quoting needs no escaping.
        write!(f, "\"{}\"", self.0)
    }
}

/// A table a write may target: a writable schema and not one of the
/// gateway's own tables (`crate::db::migrate::is_gateway_table`).
pub fn writable_table(schema: &Name, field: &str, raw: &str) -> Result<Name, DomainError> {
    let table = Name::parse(field, raw)?;
    if crate::db::migrate::is_gateway_table(schema.as_str(), table.as_str()) {
        return Err(DomainError::invalid_field(
            field,
            "is one of Athena's own tables; management writes are refused there",
        ));
    }
    Ok(table)
}

/// `schema_name` of a body, `public` when empty.
pub fn schema_or_public(field: &str, raw: &str) -> Result<Name, DomainError> {
    let raw = raw.trim();
    Name::writable_schema(field, if raw.is_empty() { "public" } else { raw })
}

/// A column type from the allowlist (`COLUMN_TYPES`), re-spelled.
pub fn column_type(field: &str, raw: &str) -> Result<String, DomainError> {
    let bad = || {
        DomainError::invalid_field(
            field,
            format!(
                "`{}` is not an allowed type (allowed: {}, each optionally with [])",
                raw.chars().take(64).collect::<String>(),
                COLUMN_TYPES.join(", ")
            ),
        )
    };
    let lowered = raw.trim().to_ascii_lowercase();
    let words: Vec<&str> = lowered.split_ascii_whitespace().collect();
    let mut text = words.join(" ");
    let array = text.ends_with("[]");
    if array {
        text.truncate(text.len() - 2);
        text = text.trim_end().to_string();
    }
    let (base, args) = match text.split_once('(') {
        Some((base, rest)) => {
            let inner = rest.strip_suffix(')').ok_or_else(bad)?;
            let args = inner
                .split(',')
                .map(|a| a.trim().parse::<u32>().map_err(|_| bad()))
                .collect::<Result<Vec<u32>, _>>()?;
            (base.trim_end().to_string(), args)
        }
        None => (text, Vec::new()),
    };
    let spelled = match (base.as_str(), args.as_slice()) {
        ("text", []) => "text".to_string(),
        ("varchar" | "character varying", []) => "character varying".to_string(),
        ("varchar" | "character varying", [n]) if (1..=10_485_760).contains(n) => {
            format!("character varying({n})")
        }
        ("char" | "character", [n]) if (1..=10_485_760).contains(n) => format!("character({n})"),
        ("smallint" | "int2", []) => "smallint".into(),
        ("integer" | "int" | "int4", []) => "integer".into(),
        ("bigint" | "int8", []) => "bigint".into(),
        ("smallserial" | "serial2", []) if !array => "smallserial".into(),
        ("serial" | "serial4", []) if !array => "serial".into(),
        ("bigserial" | "serial8", []) if !array => "bigserial".into(),
        ("numeric" | "decimal", []) => "numeric".into(),
        ("numeric" | "decimal", [p]) if (1..=1000).contains(p) => format!("numeric({p})"),
        ("numeric" | "decimal", [p, s]) if (1..=1000).contains(p) && s <= p => {
            format!("numeric({p},{s})")
        }
        ("real" | "float4", []) => "real".into(),
        ("double precision" | "float8", []) => "double precision".into(),
        ("boolean" | "bool", []) => "boolean".into(),
        ("date", []) => "date".into(),
        ("time" | "time without time zone", []) => "time".into(),
        ("timetz" | "time with time zone", []) => "time with time zone".into(),
        ("timestamp" | "timestamp without time zone", []) => "timestamp".into(),
        ("timestamptz" | "timestamp with time zone", []) => "timestamp with time zone".into(),
        ("interval", []) => "interval".into(),
        ("uuid", []) => "uuid".into(),
        ("json", []) => "json".into(),
        ("jsonb", []) => "jsonb".into(),
        ("bytea", []) => "bytea".into(),
        ("inet", []) => "inet".into(),
        ("cidr", []) => "cidr".into(),
        ("macaddr", []) => "macaddr".into(),
        _ => return Err(bad()),
    };
    Ok(if array {
        format!("{spelled}[]")
    } else {
        spelled
    })
}

/// A default expression in the closed grammar: a number, a single-quoted
/// string (re-escaped), `true`/`false`/`null`, `now()`,
/// `current_timestamp`, `current_date`, `gen_random_uuid()`, each
/// optionally cast (`::type`, an allowed type). Re-spelled.
pub fn default_expression(field: &str, raw: &str) -> Result<String, DomainError> {
    let bad = |why: &str| {
        DomainError::invalid_field(
            field,
            format!(
                "{why}; allowed: a number, a 'string', true, false, null, now(), current_timestamp, \
                 current_date, gen_random_uuid(), optionally followed by ::type"
            ),
        )
    };
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 1024 {
        return Err(bad("empty or longer than 1024 bytes"));
    }
    if raw.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    // The value, then what follows it (only `::type` may).
    let (value, rest) = if let Some(body) = raw.strip_prefix('\'') {
        let mut content = String::new();
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if matches!(chars.peek(), Some((_, '\''))) {
                    chars.next();
                    content.push('\'');
                    continue;
                }
                end = Some(i + 1);
                break;
            }
            content.push(c);
        }
        let end = end.ok_or_else(|| bad("unterminated string"))?;
        (
            format!("'{}'", content.replace('\'', "''")),
            body[end..].trim(),
        )
    } else {
        let (head, rest) = match raw.find("::") {
            Some(i) => (raw[..i].trim(), raw[i..].trim()),
            None => (raw, ""),
        };
        let lowered = head.to_ascii_lowercase();
        let value = match lowered.as_str() {
            "true" | "false" | "null" | "current_timestamp" | "current_date" => lowered,
            "now()" | "gen_random_uuid()" => lowered,
            n if is_number(n) => n.to_string(),
            _ => return Err(bad("not an allowed default")),
        };
        (value, rest)
    };
    if rest.is_empty() {
        return Ok(value);
    }
    let cast = rest
        .strip_prefix("::")
        .ok_or_else(|| bad("unexpected text after the value"))?;
    let cast = column_type(field, cast)?;
    if cast.contains("serial") {
        return Err(bad("cannot cast to a serial type"));
    }
    Ok(format!("{value}::{cast}"))
}

/// `-?digits[.digits][e[+-]digits]`.
fn is_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    digits(int)
        && frac.is_none_or(digits)
        && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

/// A column definition: `"name" type [NOT NULL] [DEFAULT expr]`.
pub fn column_definition(
    field: &str,
    name: &str,
    data_type: &str,
    nullable: bool,
    default: Option<&str>,
) -> Result<(Name, String), DomainError> {
    let name = Name::parse(&format!("{field}.name"), name)?;
    let ty = column_type(&format!("{field}.data_type"), data_type)?;
    let mut sql = format!("{name} {ty}");
    if !nullable {
        sql.push_str(" NOT NULL");
    }
    if let Some(d) = default.map(str::trim).filter(|d| !d.is_empty()) {
        sql.push_str(" DEFAULT ");
        sql.push_str(&default_expression(
            &format!("{field}.default_expression"),
            d,
        )?);
    }
    Ok((name, sql))
}

/// The default index name: `{table}_{col1}_{col2}_idx`, cut to 63 bytes.
pub fn default_index_name(table: &Name, columns: &[Name]) -> String {
    let mut name = table.as_str().to_string();
    for c in columns {
        name.push('_');
        name.push_str(c.as_str());
    }
    name.push_str("_idx");
    // ASCII only (the grammar), so any byte is a character boundary.
    name.truncate(MAX_NAME_BYTES);
    name
}

/// An index method from `INDEX_METHODS` (default btree).
pub fn index_method(raw: &str) -> Result<&'static str, DomainError> {
    let lowered = raw.trim().to_ascii_lowercase();
    if lowered.is_empty() {
        return Ok("btree");
    }
    INDEX_METHODS
        .iter()
        .copied()
        .find(|m| *m == lowered)
        .ok_or_else(|| {
            DomainError::invalid_field(
                "method",
                format!("must be one of {}", INDEX_METHODS.join(", ")),
            )
        })
}

/// The pre-check every caller SQL text passes before it is parsed: no
/// `;` outside quotes and dollar quotes (one trailing `;` is dropped).
/// Returns the text without that trailing `;`.
pub fn single_statement<'a>(field: &str, sql: &'a str) -> Result<&'a str, DomainError> {
    let text = sql.trim();
    let text = text.strip_suffix(';').unwrap_or(text).trim_end();
    if text.is_empty() {
        return Err(DomainError::invalid_field(field, "must not be empty"));
    }
    if text.len() > 256 * 1024 {
        return Err(DomainError::invalid_field(field, "is longer than 256 KiB"));
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, text)
        .tokenize()
        .map_err(|e| DomainError::invalid_field(field, format!("cannot be read as SQL: {e}")))?;
    if tokens.iter().any(|t| matches!(t, Token::SemiColon)) {
        return Err(DomainError::invalid_field(
            field,
            "must be one statement: `;` outside quotes is refused",
        ));
    }
    Ok(text)
}

/// What a checked `CREATE FUNCTION` creates.
#[derive(Debug)]
pub struct FunctionDdl {
    /// The text to run (the caller's, checked; no trailing `;`).
    pub sql: String,
    pub schema: Name,
    pub name: Name,
    /// The argument types as written (for the previous definition's
    /// lookup, `to_regprocedure`).
    pub arg_types: Vec<String>,
}

/// Checks function DDL: one `CREATE [OR REPLACE] FUNCTION` (no
/// procedure, no `TEMPORARY`), language `sql` or `plpgsql`, never
/// `SECURITY DEFINER`, into a writable schema. `LANGUAGE c|internal` and
/// `SECURITY DEFINER` are also refused from the tokens, so a body the
/// parser reads differently cannot hide them.
pub fn checked_function_ddl(raw: &str) -> Result<FunctionDdl, DomainError> {
    let field = "ddl";
    let text = single_statement(field, raw)?;
    let bad = |why: String| DomainError::invalid_field(field, why);
    // Token pre-check, independent of how the parser reads the statement.
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, text)
        .tokenize()
        .map_err(|e| bad(format!("cannot be read as SQL: {e}")))?;
    let words: Vec<String> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.value.to_ascii_lowercase()),
            Token::SingleQuotedString(s) => Some(format!("'{}", s.to_ascii_lowercase())),
            _ => None,
        })
        .collect();
    for pair in words.windows(2) {
        match (pair[0].as_str(), pair[1].as_str()) {
            ("language", l)
                if l.trim_start_matches('\'') != "sql"
                    && l.trim_start_matches('\'') != "plpgsql" =>
            {
                return Err(bad(format!(
                    "LANGUAGE {} is refused: only sql and plpgsql",
                    l.trim_start_matches('\'')
                )))
            }
            ("security", "definer") => {
                return Err(bad("SECURITY DEFINER is refused".into()));
            }
            _ => {}
        }
    }
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, text)
        .map_err(|e| bad(format!("is not valid function DDL: {e}")))?;
    let [Statement::CreateFunction(f)] = statements.as_slice() else {
        return Err(bad(
            "must be exactly one CREATE [OR REPLACE] FUNCTION".into()
        ));
    };
    if f.temporary || f.or_alter {
        return Err(bad("TEMPORARY and OR ALTER functions are refused".into()));
    }
    if matches!(f.security, Some(FunctionSecurity::Definer)) {
        return Err(bad("SECURITY DEFINER is refused".into()));
    }
    match f.language.as_ref().map(|l| l.value.to_ascii_lowercase()) {
        Some(l) if l == "sql" || l == "plpgsql" => {}
        Some(l) => {
            return Err(bad(format!(
                "LANGUAGE {l} is refused: only sql and plpgsql"
            )))
        }
        None => return Err(bad("LANGUAGE sql or plpgsql is required".into())),
    }
    if f.using.is_some() || !f.set_params.is_empty() {
        return Err(bad("USING and SET clauses are refused".into()));
    }
    let parts: Vec<String> = f.name.0.iter().map(|p| p.to_string()).collect();
    let unquote = |s: &str| s.trim_matches('"').to_string();
    let (schema, name) = match parts.as_slice() {
        [name] => ("public".to_string(), unquote(name)),
        [schema, name] => (unquote(schema), unquote(name)),
        _ => {
            return Err(bad(
                "the function name must be `name` or `schema.name`".into()
            ))
        }
    };
    let schema = Name::writable_schema("ddl (function schema)", &schema)?;
    let name = Name::parse("ddl (function name)", &name)?;
    let arg_types = f
        .args
        .iter()
        .flatten()
        .filter(|a| !matches!(a.mode, Some(sqlparser::ast::ArgMode::Out)))
        .map(|a| a.data_type.to_string())
        .collect();
    Ok(FunctionDdl {
        sql: text.to_string(),
        schema,
        name,
        arg_types,
    })
}

/// Checks a view's query: one `SELECT`/`VALUES`/`WITH … SELECT` query,
/// nothing else. Returns the text to put after `AS`.
pub fn checked_view_query(raw: &str) -> Result<String, DomainError> {
    let field = "query";
    let text = single_statement(field, raw)?;
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, text)
        .map_err(|e| DomainError::invalid_field(field, format!("is not a valid query: {e}")))?;
    let [Statement::Query(q)] = statements.as_slice() else {
        return Err(DomainError::invalid_field(
            field,
            "must be exactly one SELECT query",
        ));
    };
    // A data-modifying WITH (`WITH x AS (DELETE …) SELECT …`) is not a view.
    if let Some(with) = &q.with {
        if with.cte_tables.iter().any(|c| {
            !matches!(
                *c.query.body,
                sqlparser::ast::SetExpr::Select(_)
                    | sqlparser::ast::SetExpr::Values(_)
                    | sqlparser::ast::SetExpr::Query(_)
                    | sqlparser::ast::SetExpr::SetOperation { .. }
            )
        }) {
            return Err(DomainError::invalid_field(
                field,
                "data-modifying WITH clauses are refused",
            ));
        }
    }
    if !matches!(
        *q.body,
        sqlparser::ast::SetExpr::Select(_)
            | sqlparser::ast::SetExpr::Values(_)
            | sqlparser::ast::SetExpr::Query(_)
            | sqlparser::ast::SetExpr::SetOperation { .. }
    ) {
        return Err(DomainError::invalid_field(
            field,
            "must be exactly one SELECT query",
        ));
    }
    if !q.locks.is_empty() {
        return Err(DomainError::invalid_field(
            field,
            "FOR UPDATE/SHARE is refused",
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_grammar() {
        for ok in ["users", "_x", "a$b", "T1", &"a".repeat(63)] {
            assert!(Name::parse("n", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "a\"b",
            "a;b",
            "a--b",
            "a b",
            "é",
            "naïve",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(Name::parse("n", bad).is_err(), "{bad}");
        }
        assert_eq!(Name::parse("n", "Users").unwrap().to_string(), "\"Users\"");
        for s in [
            "pg_catalog",
            "information_schema",
            "pg_toast",
            "athena_gateway",
            "PG_x",
            "athena_chat",
            "billing",
            "Billing",
        ] {
            assert!(Name::writable_schema("s", s).is_err(), "{s}");
        }
        assert!(Name::writable_schema("s", "public").is_ok());
    }

    #[test]
    fn column_types_come_from_the_allowlist() {
        let cases = [
            ("text", "text"),
            ("VARCHAR(20)", "character varying(20)"),
            ("numeric(10, 2)", "numeric(10,2)"),
            ("double   precision", "double precision"),
            ("timestamptz", "timestamp with time zone"),
            ("int[]", "integer[]"),
            ("jsonb []", "jsonb[]"),
            ("uuid", "uuid"),
        ];
        for (raw, spelled) in cases {
            assert_eq!(column_type("t", raw).unwrap(), spelled, "{raw}");
        }
        for bad in [
            "varchar(0)",
            "varchar(99999999)",
            "numeric(2,3)",
            "numeric(1001)",
            "text; drop table x",
            "serial[]",
            "int[][]",
            "pg_catalog.text",
            "varchar(-1)",
            "money",
            "",
        ] {
            assert!(column_type("t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_follow_the_closed_grammar() {
        let cases = [
            ("42", "42"),
            ("-1.5e3", "-1.5e3"),
            ("'it''s'", "'it''s'"),
            ("'a'::text", "'a'::text"),
            ("TRUE", "true"),
            ("null", "null"),
            ("now()", "now()"),
            ("CURRENT_TIMESTAMP", "current_timestamp"),
            ("gen_random_uuid()", "gen_random_uuid()"),
            ("'{}'::jsonb", "'{}'::jsonb"),
            ("0::bigint", "0::bigint"),
            ("'x;y--'", "'x;y--'"),
        ];
        for (raw, spelled) in cases {
            assert_eq!(default_expression("d", raw).unwrap(), spelled, "{raw}");
        }
        for bad in [
            "1; drop table x",
            "'a' || 'b'",
            "'unterminated",
            "pg_sleep(10)",
            "(select 1)",
            "now() + interval '1 day'",
            "'a'::text; x",
            "1::regclass",
            "--",
            "",
            "'a'b",
        ] {
            assert!(default_expression("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_index_names_are_cut_to_63_bytes() {
        let t = Name::parse("t", &"t".repeat(40)).unwrap();
        let c = [Name::parse("c", &"c".repeat(40)).unwrap()];
        assert_eq!(default_index_name(&t, &c).len(), 63);
        let t = Name::parse("t", "orders").unwrap();
        let c = [
            Name::parse("c", "a").unwrap(),
            Name::parse("c", "b").unwrap(),
        ];
        assert_eq!(default_index_name(&t, &c), "orders_a_b_idx");
    }

    #[test]
    fn function_ddl_is_one_checked_create_function() {
        let ok = "CREATE OR REPLACE FUNCTION public.add_one(x integer) RETURNS integer \
                  LANGUAGE sql AS $$ SELECT x + 1; $$;";
        let f = checked_function_ddl(ok).unwrap();
        assert_eq!(f.schema.as_str(), "public");
        assert_eq!(f.name.as_str(), "add_one");
        assert_eq!(f.arg_types, vec!["INTEGER".to_string()]);
        assert!(!f.sql.ends_with(';'));
        let plpgsql =
            "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END $body$ LANGUAGE plpgsql";
        assert!(checked_function_ddl(plpgsql).is_ok());
        for bad in [
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$; DROP TABLE x",
            "CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'lib', 'sym'",
            "CREATE FUNCTION f() RETURNS int LANGUAGE internal AS 'int4in'",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS $$ SELECT 1 $$",
            "CREATE FUNCTION pg_catalog.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
            "DROP TABLE x",
            "SELECT 1",
            "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$",
            "",
        ] {
            assert!(checked_function_ddl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn view_queries_are_one_select() {
        assert!(checked_view_query("SELECT id, name FROM t WHERE x = ';'").is_ok());
        assert!(checked_view_query("select 1;").is_ok());
        for bad in [
            "SELECT 1; DROP TABLE t",
            "DELETE FROM t",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "SELECT * FROM t FOR UPDATE",
            "",
        ] {
            assert!(checked_view_query(bad).is_err(), "{bad}");
        }
    }
}
