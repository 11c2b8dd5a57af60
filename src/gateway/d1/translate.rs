//! The translator: each statement rewritten on its tokens following the
//! contract's mapping (see the module documentation of `super`).

use super::lexer::*;
use super::Diagnostic;
use std::collections::HashMap;

#[derive(Default)]
pub(super) struct Diags {
    pub(super) warnings: Vec<Diagnostic>,
    pub(super) errors: Vec<Diagnostic>,
}

impl Diags {
    pub(super) fn warn(&mut self, code: &'static str, message: impl Into<String>) {
        let message = message.into();
        if !self
            .warnings
            .iter()
            .any(|w| w.code == code && w.message == message)
        {
            self.warnings.push(Diagnostic { code, message });
        }
    }
    pub(super) fn error(&mut self, code: &'static str, message: impl Into<String>) {
        let message = message.into();
        if !self
            .errors
            .iter()
            .any(|w| w.code == code && w.message == message)
        {
            self.errors.push(Diagnostic { code, message });
        }
    }
}

/// Types created earlier in the script, by lower-cased name.
#[derive(Default)]
pub(super) struct Schema {
    /// Enum labels (as SQL string literals).
    pub(super) enums: HashMap<String, Vec<String>>,
    /// Domains and other `CREATE TYPE`s.
    pub(super) customs: HashMap<String, ()>,
}

pub(super) fn statement(toks: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Option<Vec<Tok>> {
    if let Some(bad) = toks.iter().find(|t| t.k == K::Bad) {
        d.error("syntax.unterminated", bad.text.clone());
        return None;
    }
    let first = toks[0].upper();
    match first.as_str() {
        "CREATE" => create(toks, schema, d),
        "ALTER" => alter(toks, schema, d),
        "DROP" => drop_stmt(toks, d),
        "INSERT" | "UPDATE" | "DELETE" | "SELECT" | "WITH" | "VALUES" => {
            if first == "SELECT" && toks.iter().any(|t| t.is("set_config")) {
                d.warn(
                    "stmt.session",
                    "pg_catalog.set_config() has no D1 equivalent; skipped",
                );
                return None;
            }
            Some(general(toks, schema, d))
        }
        "TRUNCATE" => truncate(toks, d),
        "BEGIN" | "COMMIT" | "END" | "START" => {
            d.warn(
                "stmt.transaction",
                "transaction control skipped: D1 runs each request's statements as one batch",
            );
            None
        }
        "SET" | "RESET" => {
            d.warn(
                "stmt.session",
                format!("{first} has no D1 equivalent; skipped"),
            );
            None
        }
        "GRANT" | "REVOKE" => {
            d.warn("stmt.privilege", "D1 has no roles or privileges; skipped");
            None
        }
        "COMMENT" | "SECURITY" => {
            d.warn(
                "stmt.comment",
                format!("{first} has no D1 equivalent; skipped"),
            );
            None
        }
        "ANALYZE" | "VACUUM" => {
            d.warn(
                "stmt.maintenance",
                format!("{first} is not run on D1; skipped"),
            );
            None
        }
        _ => {
            let code = match first.as_str() {
                "COPY" => "unsupported.copy",
                "LISTEN" | "UNLISTEN" => "unsupported.listen",
                "NOTIFY" => "unsupported.notify",
                "DO" => "unsupported.do",
                "ROLLBACK" | "SAVEPOINT" | "RELEASE" => "unsupported.transaction_control",
                "CALL" => "unsupported.call",
                "LOCK" => "unsupported.lock",
                _ => "unsupported.statement",
            };
            d.error(code, format!("{first} statements are not supported by D1"));
            None
        }
    }
}

/// `CREATE …`: dispatch on the object kind.
pub(super) fn create(toks: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Option<Vec<Tok>> {
    let mut i = 1;
    let mut or_replace = false;
    let mut unique = false;
    while let Some(t) = toks.get(i) {
        if t.is("OR") && toks.get(i + 1).is_some_and(|t| t.is("REPLACE")) {
            or_replace = true;
            i += 2;
        } else if t.is("UNIQUE") {
            unique = true;
            i += 1;
        } else if t.is("TEMP")
            || t.is("TEMPORARY")
            || t.is("UNLOGGED")
            || t.is("GLOBAL")
            || t.is("LOCAL")
        {
            i += 1;
        } else {
            break;
        }
    }
    let kind = toks.get(i).map(Tok::upper).unwrap_or_default();
    match kind.as_str() {
        "TABLE" => create_table(toks, i, schema, d),
        "INDEX" if !or_replace => create_index(toks, schema, d),
        "VIEW" if !or_replace => Some(general(toks, schema, d)),
        "VIEW" => {
            d.error(
                "unsupported.create_or_replace",
                "CREATE OR REPLACE VIEW is not supported by D1 (DROP VIEW then CREATE VIEW)",
            );
            None
        }
        "TRIGGER" if !unique => {
            d.error(
                "unsupported.trigger",
                "PostgreSQL triggers call PL/pgSQL functions, which D1 cannot run",
            );
            None
        }
        "TYPE" => create_type(&toks, i, schema, d),
        "DOMAIN" => {
            if let Some(name) = toks.get(i + 1) {
                schema.customs.insert(unqualified(&toks, i + 1), ());
                d.warn(
                    "type.custom",
                    format!(
                        "domain {} becomes text in D1; its constraints are not carried over",
                        name.text
                    ),
                );
            }
            None
        }
        _ => {
            let code = match kind.as_str() {
                "EXTENSION" => "unsupported.extension",
                "PUBLICATION" => "unsupported.publication",
                "SUBSCRIPTION" => "unsupported.subscription",
                "ROLE" | "USER" | "GROUP" => "unsupported.role",
                "EVENT" => "unsupported.event_trigger",
                "SCHEMA" => "unsupported.schema",
                "SEQUENCE" => "unsupported.sequence",
                "FUNCTION" | "PROCEDURE" | "AGGREGATE" => "unsupported.function",
                "MATERIALIZED" => "unsupported.materialized_view",
                "POLICY" => "unsupported.policy",
                "RULE" => "unsupported.rule",
                "TRIGGER" => "unsupported.trigger",
                _ => "unsupported.statement",
            };
            d.error(code, format!("CREATE {kind} is not supported by D1"));
            None
        }
    }
}

/// The name at `i` without its schema (`public.t` → `t`), lower-cased.
pub(super) fn unqualified(toks: &[Tok], i: usize) -> String {
    if toks.get(i + 1).is_some_and(|t| t.punct(".")) {
        if let Some(t) = toks.get(i + 2) {
            return t.name_key();
        }
    }
    toks.get(i).map(Tok::name_key).unwrap_or_default()
}

pub(super) fn create_type(
    toks: &[Tok],
    i: usize,
    schema: &mut Schema,
    d: &mut Diags,
) -> Option<Vec<Tok>> {
    let name = unqualified(toks, i + 1);
    let as_at = toks.iter().position(|t| t.is("AS"));
    let is_enum = as_at.is_some_and(|a| toks.get(a + 1).is_some_and(|t| t.is("ENUM")));
    if is_enum {
        let labels = toks
            .iter()
            .skip(as_at.unwrap_or(0) + 2)
            .filter(|t| t.k == K::Str)
            .map(|t| t.text.clone())
            .collect();
        schema.enums.insert(name.clone(), labels);
        d.warn(
            "type.custom",
            format!("enum {name} becomes text in D1, with a CHECK on its labels in each column"),
        );
    } else {
        schema.customs.insert(name.clone(), ());
        d.warn(
            "type.custom",
            format!("type {name} becomes text in D1; the CREATE TYPE is skipped"),
        );
    }
    None
}

/// Keywords that start a column constraint.
pub(super) const COLUMN_CONSTRAINTS: &[&str] = &[
    "CONSTRAINT",
    "NOT",
    "NULL",
    "PRIMARY",
    "UNIQUE",
    "CHECK",
    "REFERENCES",
    "GENERATED",
    "COLLATE",
    "DEFAULT",
    "DEFERRABLE",
    "INITIALLY",
];

pub(super) fn create_table(
    toks: Vec<Tok>,
    kind_at: usize,
    schema: &mut Schema,
    d: &mut Diags,
) -> Option<Vec<Tok>> {
    if toks.iter().take(kind_at).any(|t| t.is("UNLOGGED")) {
        d.warn(
            "ddl.storage",
            "UNLOGGED dropped: D1 tables are always durable",
        );
    }
    if toks.iter().any(|t| t.is("PARTITION")) {
        d.error(
            "unsupported.partition",
            "table partitioning (PARTITION BY / PARTITION OF) is not supported by D1",
        );
        return None;
    }
    let Some(open) = toks.iter().position(|t| t.punct("(")) else {
        // CREATE TABLE … AS SELECT …
        return Some(general(toks, schema, d));
    };
    if toks[..open].iter().any(|t| t.is("AS") || t.is("OF")) {
        return Some(general(toks, schema, d));
    }
    let close = close_paren(&toks, open)?;
    let mut head: Vec<Tok> = toks[..open]
        .iter()
        .filter(|t| !t.is("UNLOGGED") && !t.is("GLOBAL") && !t.is("LOCAL"))
        .cloned()
        .collect();
    head = strip_schema(head, d);
    let elements = split_commas(&toks[open + 1..close]);
    // Single-column table primary keys, for serial columns declared apart.
    let table_pk: Option<String> = elements.iter().find_map(|el| {
        let p = el.iter().position(|t| t.is("PRIMARY"))?;
        if !matches!(el.first(), Some(t) if t.is("PRIMARY") || t.is("CONSTRAINT")) {
            return None;
        }
        let o = p + 2;
        let c = close_paren(el, o)?;
        (c == o + 2).then(|| el[o + 1].name_key())
    });
    let mut out_elements = Vec::new();
    for el in elements {
        if el.is_empty() {
            continue;
        }
        let first = el[0].upper();
        let constraint_kind = if first == "CONSTRAINT" {
            el.get(2).map(Tok::upper).unwrap_or_default()
        } else {
            first.clone()
        };
        match constraint_kind.as_str() {
            "PRIMARY" | "UNIQUE" | "CHECK" | "FOREIGN"
                if first == "CONSTRAINT" || first == constraint_kind =>
            {
                if constraint_kind == "FOREIGN" {
                    d.warn(
                        "ddl.foreign_key",
                        "foreign key kept as D1 (SQLite) syntax; D1 enforces it, so create referenced tables first",
                    );
                }
                out_elements.push(constraint_tail(el, schema, d));
            }
            "EXCLUDE" => {
                d.error(
                    "unsupported.exclude",
                    "EXCLUDE constraints are not supported by D1",
                );
                return None;
            }
            "LIKE" => {
                d.error(
                    "unsupported.like",
                    "CREATE TABLE (LIKE …) is not supported; list the columns",
                );
                return None;
            }
            _ => out_elements.push(column_def(el, table_pk.as_deref(), schema, d)?),
        }
    }
    let mut out = head;
    out.push(Tok::new(K::Punct, "(", " "));
    let mut body = join_commas(out_elements);
    if let Some(f) = body.first_mut() {
        f.ws.clear();
    }
    out.extend(body);
    out.push(Tok::new(K::Punct, ")", ""));
    // Storage and inheritance clauses after the column list.
    let tail = &toks[close + 1..];
    if tail.iter().any(|t| t.is("INHERITS")) {
        d.error(
            "unsupported.inherits",
            "table inheritance is not supported by D1",
        );
        return None;
    }
    if !tail.is_empty() {
        d.warn(
            "ddl.storage",
            format!("storage clause dropped: {}", render(tail).trim()),
        );
    }
    Some(out)
}

/// A table constraint (or column constraints) with opaque PostgreSQL
/// clauses dropped and expressions converted.
pub(super) fn constraint_tail(el: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < el.len() {
        let t = &el[i];
        if t.is("USING") && el.get(i + 1).is_some_and(|t| t.is("INDEX")) {
            // USING INDEX TABLESPACE x
            d.warn("ddl.storage", "USING INDEX TABLESPACE dropped");
            i += 4;
            continue;
        }
        if t.is("NULLS")
            && el
                .get(i + 1)
                .is_some_and(|t| t.is("NOT") || t.is("DISTINCT"))
        {
            d.warn(
                "ddl.index",
                "NULLS [NOT] DISTINCT dropped: SQLite treats NULLs as distinct",
            );
            i += if el[i + 1].is("NOT") { 3 } else { 2 };
            continue;
        }
        if t.is("NOT") && el.get(i + 1).is_some_and(|t| t.is("VALID")) {
            i += 2;
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    general(out, schema, d)
}

/// A type at `i`: the mapped D1 type, where it ends, and what it was.
pub(super) struct TypeInfo {
    pub(super) d1: String,
    pub(super) end: usize,
    pub(super) serial: bool,
    pub(super) temporal: bool,
    pub(super) enum_labels: Option<Vec<String>>,
}

pub(super) fn parse_type(
    toks: &[Tok],
    i: usize,
    schema: &Schema,
    column: &str,
    d: &mut Diags,
) -> TypeInfo {
    let mut j = i;
    // Schema-qualified type names.
    if toks.get(j + 1).is_some_and(|t| t.punct(".")) && toks.get(j + 2).is_some() {
        j += 2;
    }
    let Some(first) = toks.get(j) else {
        return TypeInfo {
            d1: "text".into(),
            end: j,
            serial: false,
            temporal: false,
            enum_labels: None,
        };
    };
    let mut name = first.name_key();
    j += 1;
    let next_is = |j: usize, kw: &str| toks.get(j).is_some_and(|t| t.is(kw));
    match name.as_str() {
        "double" if next_is(j, "PRECISION") => {
            name = "double precision".into();
            j += 1;
        }
        "character" | "bit" if next_is(j, "VARYING") => {
            name = format!("{name} varying");
            j += 1;
        }
        _ => {}
    }
    // Modifiers: (n), (p, s).
    if toks.get(j).is_some_and(|t| t.punct("(")) {
        if let Some(c) = close_paren(toks, j) {
            j = c + 1;
        }
    }
    if matches!(name.as_str(), "timestamp" | "time")
        && (next_is(j, "WITH") || next_is(j, "WITHOUT"))
        && next_is(j + 1, "TIME")
        && next_is(j + 2, "ZONE")
    {
        j += 3;
    }
    if name == "interval" {
        while toks.get(j).is_some_and(|t| {
            ["YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND", "TO"]
                .iter()
                .any(|k| t.is(k))
        }) {
            j += 1;
        }
    }
    // Arrays: `[]`, `[3]`, `ARRAY`, `ARRAY[3]`.
    let mut array = name.starts_with('_');
    loop {
        if toks.get(j).is_some_and(|t| t.punct("[")) {
            array = true;
            while toks.get(j).is_some_and(|t| !t.punct("]")) {
                j += 1;
            }
            j += 1;
        } else if next_is(j, "ARRAY") {
            array = true;
            j += 1;
        } else {
            break;
        }
    }
    let mut info = TypeInfo {
        d1: "text".into(),
        end: j,
        serial: false,
        temporal: false,
        enum_labels: None,
    };
    if array {
        d.warn(
            "type.array",
            format!("{column}: array type {name} stored as text (JSON-encode the values)"),
        );
        return info;
    }
    info.d1 = match name.as_str() {
        "smallint" | "int2" | "integer" | "int" | "int4" | "bigint" | "int8" | "oid" => {
            "integer".into()
        }
        "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2" => {
            info.serial = true;
            d.warn(
                "type.serial",
                format!("{column}: {name} becomes integer (auto-assigned as INTEGER PRIMARY KEY)"),
            );
            "integer".into()
        }
        "real" | "float4" | "float8" | "double precision" | "float" => "real".into(),
        "numeric" | "decimal" | "money" => {
            d.warn(
                "type.numeric",
                format!(
                    "{column}: {name} becomes real (floating point; exact decimals are not kept)"
                ),
            );
            "real".into()
        }
        "boolean" | "bool" => {
            d.warn(
                "type.boolean",
                format!("{column}: boolean becomes integer (0/1)"),
            );
            "integer".into()
        }
        "text" | "varchar" | "character varying" | "char" | "character" | "bpchar" | "citext"
        | "name" => "text".into(),
        "bytea" => "blob".into(),
        "uuid" => {
            d.warn("type.uuid", format!("{column}: uuid becomes text"));
            "text".into()
        }
        "json" | "jsonb" => {
            d.warn(
                "type.json",
                format!("{column}: {name} becomes text (D1's JSON functions read it)"),
            );
            "text".into()
        }
        "timestamp" | "timestamptz" | "time" | "timetz" | "date" | "interval" => {
            info.temporal = true;
            d.warn(
                "type.time",
                format!("{column}: {name} becomes text (ISO-8601)"),
            );
            "text".into()
        }
        other => {
            let what = if let Some(labels) = schema.enums.get(other) {
                info.enum_labels = Some(labels.clone());
                "enum"
            } else if schema.customs.contains_key(other) {
                "domain/custom type"
            } else {
                "custom type"
            };
            d.warn(
                "type.custom",
                format!("{column}: {what} {other} becomes text"),
            );
            "text".into()
        }
    };
    info
}

pub(super) fn column_def(
    el: Vec<Tok>,
    table_pk: Option<&str>,
    schema: &mut Schema,
    d: &mut Diags,
) -> Option<Vec<Tok>> {
    let name = el[0].clone();
    let column = name.text.clone();
    let ty = parse_type(&el, 1, schema, &column, d);
    let mut out = vec![name.clone(), word(&ty.d1)];
    let mut identity = false;
    let mut inline_pk = false;
    let mut i = ty.end;
    while i < el.len() {
        let t = &el[i];
        if t.is("GENERATED") && el.iter().skip(i).take(6).any(|t| t.is("IDENTITY")) {
            identity = true;
            let at = i + el[i..].iter().position(|t| t.is("IDENTITY")).unwrap_or(0);
            i = at + 1;
            if el.get(i).is_some_and(|t| t.punct("(")) {
                i = close_paren(&el, i).map_or(el.len(), |c| c + 1);
            }
            d.warn(
                "ddl.identity",
                format!(
                    "{column}: IDENTITY becomes integer (auto-assigned as INTEGER PRIMARY KEY)"
                ),
            );
            continue;
        }
        if t.is("COLLATE") {
            d.warn(
                "ddl.collate",
                format!(
                    "{column}: COLLATE {} dropped",
                    el.get(i + 1).map_or("", |t| &t.text)
                ),
            );
            i += 2;
            continue;
        }
        if t.is("PRIMARY") {
            inline_pk = true;
            out.push(el[i].clone());
            if let Some(k) = el.get(i + 1) {
                out.push(k.clone());
            }
            i += 2;
            if ty.serial || identity {
                out.push(word("AUTOINCREMENT"));
            }
            continue;
        }
        if t.is("REFERENCES") {
            d.warn(
                "ddl.foreign_key",
                format!("{column}: foreign key kept as D1 (SQLite) syntax; D1 enforces it, so create referenced tables first"),
            );
        }
        if t.is("DEFAULT") {
            let start = i + 1;
            let mut end = start;
            let mut depth = 0i32;
            while end < el.len() {
                let u = &el[end];
                if u.punct("(") {
                    depth += 1;
                } else if u.punct(")") {
                    depth -= 1;
                } else if depth == 0 && end > start && COLUMN_CONSTRAINTS.iter().any(|k| u.is(k)) {
                    break;
                }
                end += 1;
            }
            let expr = el[start..end].to_vec();
            if expr.iter().any(|t| t.is("nextval")) {
                d.error(
                    "unsupported.sequence",
                    format!("{column}: DEFAULT nextval() needs a sequence, which D1 does not have (use serial/IDENTITY on the primary key)"),
                );
                return None;
            }
            let is_now = expr.first().is_some_and(|t| {
                t.is("now")
                    || t.is("CURRENT_TIMESTAMP")
                    || t.is("LOCALTIMESTAMP")
                    || t.is("transaction_timestamp")
                    || t.is("statement_timestamp")
                    || t.is("clock_timestamp")
            }) && expr.iter().all(|t| !t.punct("::"));
            out.push(el[i].clone());
            if is_now {
                if ty.temporal {
                    d.warn(
                        "ddl.timestamp",
                        format!("{column}: DEFAULT {} becomes CURRENT_TIMESTAMP (UTC text 'YYYY-MM-DD HH:MM:SS')", render(&expr).trim()),
                    );
                }
                out.push(word("CURRENT_TIMESTAMP"));
            } else {
                let mut conv = general(expr, schema, d);
                let simple = conv.len() == 1
                    && (matches!(conv[0].k, K::Num | K::Str)
                        || [
                            "NULL",
                            "TRUE",
                            "FALSE",
                            "CURRENT_DATE",
                            "CURRENT_TIME",
                            "CURRENT_TIMESTAMP",
                        ]
                        .iter()
                        .any(|k| conv[0].is(k)))
                    || (conv.len() == 2 && conv[0].punct("-") && conv[1].k == K::Num);
                let wrapped = (conv.first().is_some_and(|t| t.punct("("))
                    && close_paren(&conv, 0) == Some(conv.len() - 1))
                    || (conv.len() == 1 && conv[0].text.starts_with('('));
                if let Some(f) = conv.first_mut() {
                    f.ws = " ".into();
                }
                if simple || wrapped {
                    out.extend(conv);
                } else {
                    out.push(Tok::new(K::Punct, "(", " "));
                    if let Some(f) = conv.first_mut() {
                        f.ws.clear();
                    }
                    out.extend(conv);
                    out.push(Tok::new(K::Punct, ")", ""));
                }
            }
            i = end;
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    if (ty.serial || identity) && !inline_pk {
        if table_pk == Some(name.name_key().as_str()) {
            // `PRIMARY KEY (id)` apart: still the rowid alias, auto-assigned.
        } else {
            d.warn(
                if identity { "ddl.identity" } else { "type.serial" },
                format!("{column}: not the primary key, so D1 does not auto-assign it; insert explicit values"),
            );
        }
    }
    if let Some(labels) = ty.enum_labels.filter(|l| !l.is_empty()) {
        out.push(word("CHECK"));
        out.push(Tok::new(K::Punct, "(", " "));
        out.push(Tok::new(name.k, name.text.clone(), ""));
        out.push(word("IN"));
        out.push(Tok::new(K::Punct, "(", " "));
        for (n, l) in labels.iter().enumerate() {
            if n > 0 {
                out.push(Tok::new(K::Punct, ",", ""));
            }
            out.push(Tok::new(K::Str, l.clone(), if n > 0 { " " } else { "" }));
        }
        out.push(Tok::new(K::Punct, ")", ""));
        out.push(Tok::new(K::Punct, ")", ""));
    }
    let rest = out.split_off(2);
    let mut converted = out;
    converted.extend(constraint_tail(rest, schema, d));
    Some(converted)
}

pub(super) fn create_index(toks: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let mut changes: Vec<String> = Vec::new();
    let mut i = 0;
    let mut in_where = false;
    while i < toks.len() {
        let t = &toks[i];
        if in_where {
            out.push(t.clone());
            i += 1;
            continue;
        }
        if t.is("WHERE") {
            in_where = true;
            out.push(t.clone());
            i += 1;
            continue;
        }
        if t.is("CONCURRENTLY") || (t.is("ONLY") && i > 0 && toks[i - 1].is("ON")) {
            changes.push(format!("{} removed", t.upper()));
            i += 1;
            continue;
        }
        if t.is("USING") {
            let method = toks
                .get(i + 1)
                .map(|t| t.text.to_lowercase())
                .unwrap_or_default();
            if method == "btree" {
                changes.push("USING btree removed".into());
            } else {
                changes.push(format!(
                    "USING {method} removed: D1 indexes are b-trees, the index may not help the same queries"
                ));
            }
            i += 2;
            continue;
        }
        if t.is("INCLUDE") || (t.is("WITH") && toks.get(i + 1).is_some_and(|t| t.punct("("))) {
            let end = close_paren(&toks, i + 1).map_or(toks.len(), |c| c + 1);
            changes.push(format!("{} removed", render(&toks[i..end]).trim()));
            i = end;
            continue;
        }
        if t.is("TABLESPACE") {
            changes.push("TABLESPACE removed".into());
            i += 2;
            continue;
        }
        if t.is("NULLS")
            && toks
                .get(i + 1)
                .is_some_and(|t| t.is("FIRST") || t.is("LAST"))
        {
            changes.push(format!("NULLS {} removed", toks[i + 1].upper()));
            i += 2;
            continue;
        }
        if t.k == K::Word && t.text.to_lowercase().ends_with("_ops") {
            changes.push(format!("operator class {} removed", t.text));
            i += 1;
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    let message = if changes.is_empty() {
        "index kept as is".to_string()
    } else {
        format!("index converted: {}", changes.join("; "))
    };
    d.warn("ddl.index", message);
    Some(general(out, schema, d))
}

pub(super) fn alter(toks: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Option<Vec<Tok>> {
    if let Some(p) = toks.iter().position(|t| t.is("OWNER")) {
        if toks.get(p + 1).is_some_and(|t| t.is("TO")) {
            d.warn("stmt.privilege", "OWNER TO has no D1 equivalent; skipped");
            return None;
        }
    }
    if !toks.get(1).is_some_and(|t| t.is("TABLE")) {
        let kind = toks.get(1).map(Tok::upper).unwrap_or_default();
        d.error(
            "unsupported.alter",
            format!("ALTER {kind} is not supported by D1"),
        );
        return None;
    }
    let toks: Vec<Tok> = toks.into_iter().filter(|t| !t.is("ONLY")).collect();
    let mut i = 2;
    if toks.get(i).is_some_and(|t| t.is("IF")) {
        d.error(
            "unsupported.alter_table",
            "ALTER TABLE IF EXISTS is not supported by D1",
        );
        return None;
    }
    i += if toks.get(i + 1).is_some_and(|t| t.punct(".")) {
        3
    } else {
        1
    };
    let action = toks.get(i).map(Tok::upper).unwrap_or_default();
    let next = toks.get(i + 1).map(Tok::upper).unwrap_or_default();
    match (action.as_str(), next.as_str()) {
        ("ADD", "CONSTRAINT" | "PRIMARY" | "FOREIGN" | "UNIQUE" | "CHECK" | "EXCLUDE") => {
            d.error(
                "unsupported.alter_constraint",
                "D1 cannot add constraints to an existing table; declare them in CREATE TABLE",
            );
            None
        }
        ("ADD", _) => {
            let col_at = if next == "COLUMN" { i + 2 } else { i + 1 };
            if toks.get(col_at).is_some_and(|t| t.is("IF")) {
                d.error(
                    "unsupported.alter_table",
                    "ADD COLUMN IF NOT EXISTS is not supported by D1",
                );
                return None;
            }
            let head = strip_schema(toks[..i].to_vec(), d);
            let def = column_def(toks[col_at..].to_vec(), None, schema, d)?;
            if def.iter().any(|t| t.is("PRIMARY") || t.is("UNIQUE")) {
                d.error(
                    "unsupported.alter_table",
                    "D1 cannot add a PRIMARY KEY or UNIQUE column to an existing table",
                );
                return None;
            }
            let mut out = head;
            out.push(word("ADD"));
            out.push(word("COLUMN"));
            let mut def = def;
            if let Some(f) = def.first_mut() {
                f.ws = " ".into();
            }
            out.extend(def);
            Some(out)
        }
        ("RENAME", _) => Some(general(toks, schema, d)),
        ("DROP", "COLUMN") | ("DROP", _) if next != "CONSTRAINT" => {
            if toks.iter().any(|t| t.is("IF")) {
                d.error(
                    "unsupported.alter_table",
                    "DROP COLUMN IF EXISTS is not supported by D1",
                );
                return None;
            }
            let toks = drop_cascade(toks, d);
            Some(general(toks, schema, d))
        }
        _ => {
            d.error(
                "unsupported.alter_table",
                format!("ALTER TABLE … {action} {next} is not supported by D1"),
            );
            None
        }
    }
}

pub(super) fn drop_cascade(toks: Vec<Tok>, d: &mut Diags) -> Vec<Tok> {
    toks.into_iter()
        .filter(|t| {
            let drop = t.is("CASCADE") || t.is("RESTRICT");
            if drop {
                d.warn(
                    "ddl.drop",
                    format!("{} dropped: D1 does not cascade drops", t.upper()),
                );
            }
            !drop
        })
        .collect()
}

pub(super) fn drop_stmt(toks: Vec<Tok>, d: &mut Diags) -> Option<Vec<Tok>> {
    let kind = toks.get(1).map(Tok::upper).unwrap_or_default();
    match kind.as_str() {
        "TABLE" | "INDEX" | "VIEW" => {
            let toks: Vec<Tok> = toks.into_iter().filter(|t| !t.is("CONCURRENTLY")).collect();
            if toks.iter().any(|t| t.punct(",")) {
                d.error(
                    "unsupported.drop_multiple",
                    format!("D1 drops one {} per statement", kind.to_lowercase()),
                );
                return None;
            }
            let toks = drop_cascade(toks, d);
            Some(strip_schema(toks, d))
        }
        "TYPE" | "DOMAIN" => {
            d.warn(
                "type.custom",
                format!("DROP {kind} skipped: the type is text in D1"),
            );
            None
        }
        _ => {
            let code = match kind.as_str() {
                "EXTENSION" => "unsupported.extension",
                "SEQUENCE" => "unsupported.sequence",
                "FUNCTION" | "PROCEDURE" => "unsupported.function",
                "ROLE" | "USER" => "unsupported.role",
                "SCHEMA" => "unsupported.schema",
                "PUBLICATION" => "unsupported.publication",
                "TRIGGER" => "unsupported.trigger",
                _ => "unsupported.statement",
            };
            d.error(code, format!("DROP {kind} is not supported by D1"));
            None
        }
    }
}

/// `TRUNCATE [TABLE] t` → `DELETE FROM t`.
pub(super) fn truncate(toks: Vec<Tok>, d: &mut Diags) -> Option<Vec<Tok>> {
    let names: Vec<Tok> = toks
        .into_iter()
        .skip(1)
        .filter(|t| !t.is("TABLE") && !t.is("ONLY"))
        .collect();
    if names
        .iter()
        .any(|t| t.punct(",") || t.is("RESTART") || t.is("CASCADE"))
    {
        d.error(
            "unsupported.truncate",
            "TRUNCATE of several tables or with options is not supported; use DELETE FROM",
        );
        return None;
    }
    d.warn("dml.truncate", "TRUNCATE becomes DELETE FROM");
    let mut out = vec![Tok::new(K::Word, "DELETE", ""), word("FROM")];
    let mut names = strip_schema(names, d);
    if let Some(f) = names.first_mut() {
        f.ws = " ".into();
    }
    out.extend(names);
    Some(out)
}

/// `public.x` / `pg_catalog.x` → `x` (D1 has one schema).
pub(super) fn strip_schema(toks: Vec<Tok>, d: &mut Diags) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        if t.is_name()
            && matches!(t.name_key().as_str(), "public" | "pg_catalog")
            && toks.get(i + 1).is_some_and(|n| n.punct("."))
            && toks.get(i + 2).is_some_and(Tok::is_name)
            && !out.last().is_some_and(|p| p.punct("."))
        {
            d.warn(
                "ddl.schema",
                format!(
                    "schema qualifier {}. dropped: D1 has a single schema",
                    t.text
                ),
            );
            let mut n = toks[i + 2].clone();
            n.ws = t.ws.clone();
            out.push(n);
            i += 3;
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

// ------------------------------------------------- expressions, anywhere

/// SQLite's UUID v4 expression for `gen_random_uuid()`.
pub(super) const UUID_V4: &str = "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))";

/// Rewrites what SQLite reads differently in any statement: parameters,
/// schema qualifiers, `::` casts, PostgreSQL-only functions and operators.
pub(super) fn general(toks: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Vec<Tok> {
    let toks = strip_schema(toks, d);
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let call = toks.get(i + 1).is_some_and(|n| n.punct("("));
        let empty_call = call && toks.get(i + 2).is_some_and(|n| n.punct(")"));
        if t.k == K::Param {
            d.error(
                "unsupported.parameter",
                format!(
                    "bind parameter {} cannot be supplied to a migration script",
                    t.text
                ),
            );
            out.push(t.clone());
            i += 1;
            continue;
        }
        if t.k == K::Str && t.text.starts_with('$') {
            d.error(
                "unsupported.dollar_quote",
                "dollar-quoted strings are not supported by D1",
            );
        }
        if t.k == K::Word {
            let lower = t.text.to_lowercase();
            if empty_call && lower == "now" {
                out.push(Tok::new(K::Word, "CURRENT_TIMESTAMP", &t.ws));
                i += 3;
                continue;
            }
            if empty_call && matches!(lower.as_str(), "gen_random_uuid" | "uuid_generate_v4") {
                d.warn(
                    "type.uuid",
                    format!("{lower}() becomes a randomblob()-based UUID v4 expression"),
                );
                out.push(Tok::new(K::Word, UUID_V4, &t.ws));
                i += 3;
                continue;
            }
            if lower == "localtimestamp" {
                out.push(Tok::new(K::Word, "CURRENT_TIMESTAMP", &t.ws));
                i += 1;
                continue;
            }
            if lower == "ilike" {
                d.warn(
                    "expr.ilike",
                    "ILIKE becomes LIKE (case-insensitive for ASCII in SQLite)",
                );
                out.push(Tok::new(K::Word, "LIKE", &t.ws));
                i += 1;
                continue;
            }
            if lower == "array" && toks.get(i + 1).is_some_and(|n| n.punct("[")) {
                d.error(
                    "unsupported.array",
                    "ARRAY[…] literals are not supported by D1 (store JSON text)",
                );
            }
            if call && lower == "nextval" {
                d.error("unsupported.sequence", "D1 has no sequences (nextval)");
            }
        }
        if t.punct("::") {
            // A cast changes a value, not a column: no type diagnostics.
            let ty = parse_type(&toks, i + 1, schema, "cast", &mut Diags::default());
            // The left operand: the last token, or a parenthesized group
            // with its function name.
            let mut from = out.len().saturating_sub(1);
            if out.last().is_some_and(|l| l.punct(")")) {
                let mut depth = 0i32;
                for (k, u) in out.iter().enumerate().rev() {
                    if u.punct(")") {
                        depth += 1;
                    } else if u.punct("(") {
                        depth -= 1;
                        if depth == 0 {
                            from = k;
                            break;
                        }
                    }
                }
                if from > 0 && out[from - 1].k == K::Word {
                    from -= 1;
                }
            }
            let mut operand = out.split_off(from);
            let ws = operand.first().map(|t| t.ws.clone()).unwrap_or_default();
            let literal_text = operand.len() == 1 && operand[0].k == K::Str && ty.d1 == "text";
            if literal_text {
                out.extend(operand);
            } else {
                if let Some(f) = operand.first_mut() {
                    f.ws.clear();
                }
                out.push(Tok::new(K::Word, "CAST", &ws));
                out.push(Tok::new(K::Punct, "(", ""));
                out.extend(operand);
                out.push(word("AS"));
                out.push(word(&ty.d1));
                out.push(Tok::new(K::Punct, ")", ""));
            }
            i = ty.end;
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    out
}
