//! PostgreSQL → Cloudflare D1 (SQLite dialect) conversion for
//! `POST /gateway/sql/d1/migrate`, and the D1 REST client that applies it.
//!
//! The script is lexed once (strings, dollar-quoted bodies, quoted
//! identifiers and comments are opaque) and split into statements on `;`
//! outside them. Each statement is rewritten on its tokens following the
//! contract's mapping: `serial`/`IDENTITY` → `integer [AUTOINCREMENT]`,
//! `uuid`/`json`/arrays/enums/domains/custom and temporal types → `text`,
//! `numeric` → `real`, foreign keys and indexes kept syntactically
//! (`CONCURRENTLY`, `USING`, `INCLUDE`, opclasses dropped), `::` casts as
//! `CAST`, PostgreSQL-only functions as SQLite expressions. What D1 cannot
//! run (`CREATE EXTENSION`, roles, publications, `COPY`, `LISTEN`/`NOTIFY`,
//! partitioning, sequences, PL/pgSQL…) is an `unsupported.*` error of its
//! statement (never a silent guess); what is dropped on purpose because it
//! has no effect on D1 (`SET`, `GRANT`, `OWNER TO`, `BEGIN`/`COMMIT`…) is a
//! warning. Enum and domain types created earlier in the script are
//! remembered: enum columns become `text` with a `CHECK (… IN (…))`.

use std::collections::HashMap;

/// One diagnostic of a statement (`code` is stable, `message` for humans).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Converted; `target` is the D1 (SQLite) text.
    Converted,
    /// Nothing to run (`SET`, `BEGIN`, `GRANT`, …) or unsupported.
    Skipped,
}

/// 1-based line and column of the first and the last character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start_line: u32,
    pub start_column: u32,
    pub end_line: u32,
    pub end_column: u32,
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub index: usize,
    pub span: Span,
    pub source: String,
    /// Empty when skipped or untranslatable.
    pub target: String,
    pub action: Action,
    pub warnings: Vec<Diagnostic>,
    pub errors: Vec<Diagnostic>,
}

/// Translates a whole script, statement by statement.
pub fn translate(script: &str) -> Vec<Statement> {
    let toks = lex(script);
    let mut schema = Schema::default();
    split(&toks)
        .into_iter()
        .enumerate()
        .map(|(index, stmt)| {
            let first = stmt.first().map_or(0, |t| t.start);
            let last = stmt.last().map_or(0, |t| t.end);
            let source = script[first..last].to_string();
            let mut d = Diags::default();
            let out = statement(stmt, &mut schema, &mut d);
            let (target, action) = match out {
                Some(toks) if d.errors.is_empty() => (render(&toks), Action::Converted),
                _ => (String::new(), Action::Skipped),
            };
            Statement {
                index,
                span: span(script, first, last),
                source,
                target,
                action,
                warnings: d.warnings,
                errors: d.errors,
            }
        })
        .collect()
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum K {
    Word,
    /// Quoted identifier, normalized to `"…"`.
    Ident,
    Str,
    Num,
    Param,
    Punct,
    /// Unterminated string, identifier or comment.
    Bad,
}

#[derive(Debug, Clone)]
struct Tok {
    k: K,
    text: String,
    /// Whitespace before the token in the output (comments become a space).
    ws: String,
    start: usize,
    end: usize,
}

impl Tok {
    fn new(k: K, text: impl Into<String>, ws: &str) -> Tok {
        Tok {
            k,
            text: text.into(),
            ws: ws.to_string(),
            start: 0,
            end: 0,
        }
    }
    fn is(&self, kw: &str) -> bool {
        self.k == K::Word && self.text.eq_ignore_ascii_case(kw)
    }
    fn punct(&self, p: &str) -> bool {
        self.k == K::Punct && self.text == p
    }
    fn upper(&self) -> String {
        self.text.to_ascii_uppercase()
    }
    /// An identifier's name for lookups (case-insensitive).
    fn name_key(&self) -> String {
        match self.k {
            K::Ident => self.text[1..self.text.len() - 1]
                .replace("\"\"", "\"")
                .to_lowercase(),
            _ => self.text.to_lowercase(),
        }
    }
    fn is_name(&self) -> bool {
        matches!(self.k, K::Word | K::Ident)
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn lex(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut ws = String::new();
    // Finds the closing `close` (doubled = escaped) from `from`.
    let close_at = |from: usize, close: u8, doubled: bool| -> Option<usize> {
        let mut j = from;
        while j < b.len() {
            if b[j] == close {
                if doubled && j + 1 < b.len() && b[j + 1] == close {
                    j += 2;
                    continue;
                }
                return Some(j);
            }
            j += 1;
        }
        None
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        let (k, text): (K, String) = if c.is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            ws.push_str(&s[start..i]);
            continue;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            if ws.is_empty() {
                ws.push(' ');
            }
            continue;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            match s[i + 2..].find("*/") {
                Some(p) => {
                    i = i + 2 + p + 2;
                    if ws.is_empty() {
                        ws.push(' ');
                    }
                    continue;
                }
                None => {
                    i = b.len();
                    (K::Bad, "unterminated /* comment".into())
                }
            }
        } else if c == b'\'' {
            match close_at(i + 1, b'\'', true) {
                Some(j) => {
                    i = j + 1;
                    (K::Str, s[start..i].to_string())
                }
                None => {
                    i = b.len();
                    (K::Bad, "unterminated string literal".into())
                }
            }
        } else if c == b'$' && dollar_tag(&s[i..]).is_some() {
            let tag = dollar_tag(&s[i..]).unwrap_or_default();
            match s[i + tag.len()..].find(tag.as_str()) {
                Some(p) => {
                    i = i + tag.len() + p + tag.len();
                    (K::Str, s[start..i].to_string())
                }
                None => {
                    i = b.len();
                    (K::Bad, "unterminated dollar-quoted string".into())
                }
            }
        } else if c == b'"' || c == b'`' {
            match close_at(i + 1, c, true) {
                Some(j) => {
                    i = j + 1;
                    let inner = &s[start + 1..j];
                    let name = match c {
                        b'"' => inner.replace("\"\"", "\""),
                        _ => inner.replace("``", "`"),
                    };
                    (K::Ident, quote_ident(&name))
                }
                None => {
                    i = b.len();
                    (K::Bad, "unterminated quoted identifier".into())
                }
            }
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'.'
                    || ((b[i] == b'+' || b[i] == b'-') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            (K::Num, s[start..i].to_string())
        } else if c == b'?'
            || ((c == b':' || c == b'@' || c == b'$')
                && b.get(i + 1)
                    .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'_'))
        {
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            (K::Param, s[start..i].to_string())
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80 || b[i] == b'$')
            {
                i += 1;
            }
            (K::Word, s[start..i].to_string())
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            if matches!(
                two,
                "::" | "||" | "<=" | ">=" | "<>" | "!=" | "==" | "<<" | ">>"
            ) {
                i += 2;
                (K::Punct, if two == "==" { "=".into() } else { two.into() })
            } else {
                let ch = s[i..].chars().next().unwrap_or(' ');
                i += ch.len_utf8();
                (K::Punct, ch.to_string())
            }
        };
        out.push(Tok {
            k,
            text,
            ws: std::mem::take(&mut ws),
            start,
            end: i,
        });
    }
    out
}

/// Statements: tokens between `;`.
fn split(toks: &[Tok]) -> Vec<Vec<Tok>> {
    let mut out = Vec::new();
    let mut cur: Vec<Tok> = Vec::new();
    for t in toks {
        if t.punct(";") {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        cur.push(t.clone());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    for stmt in &mut out {
        if let Some(first) = stmt.first_mut() {
            first.ws.clear();
        }
    }
    out
}

/// `$tag$` (or `$$`) at the start of `s`.
fn dollar_tag(s: &str) -> Option<String> {
    let rest = s.strip_prefix('$')?;
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let ok = tag
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    ok.then(|| format!("${tag}$"))
}

fn span(s: &str, start: usize, end: usize) -> Span {
    let pos = |off: usize| {
        let before = &s[..off];
        let line = before.matches('\n').count() as u32 + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
        (line, col)
    };
    let (start_line, start_column) = pos(start);
    let last = s[..end]
        .char_indices()
        .next_back()
        .map_or(start, |(i, _)| i);
    let (end_line, end_column) = pos(last.max(start));
    Span {
        start_line,
        start_column,
        end_line,
        end_column,
    }
}

fn render(toks: &[Tok]) -> String {
    let mut out = String::new();
    for (i, t) in toks.iter().enumerate() {
        if i > 0 {
            out.push_str(&t.ws);
        }
        out.push_str(&t.text);
    }
    out
}

/// Index of the `)` matching the `(` at `open`.
fn close_paren(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.punct("(") {
            depth += 1;
        } else if t.punct(")") {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// Splits on commas outside parentheses.
fn split_commas(toks: &[Tok]) -> Vec<Vec<Tok>> {
    let mut out = vec![Vec::new()];
    let mut depth = 0i32;
    for t in toks {
        if t.punct("(") {
            depth += 1;
        } else if t.punct(")") {
            depth -= 1;
        } else if t.punct(",") && depth == 0 {
            out.push(Vec::new());
            continue;
        }
        out.last_mut().expect("non-empty").push(t.clone());
    }
    out
}

fn join_commas(parts: Vec<Vec<Tok>>) -> Vec<Tok> {
    let mut out = Vec::new();
    for (i, p) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(Tok::new(K::Punct, ",", ""));
        }
        out.extend(p);
    }
    out
}

fn word(text: &str) -> Tok {
    Tok::new(K::Word, text, " ")
}

// ----------------------------------------------------------- statements

#[derive(Default)]
struct Diags {
    warnings: Vec<Diagnostic>,
    errors: Vec<Diagnostic>,
}

impl Diags {
    fn warn(&mut self, code: &'static str, message: impl Into<String>) {
        let message = message.into();
        if !self
            .warnings
            .iter()
            .any(|w| w.code == code && w.message == message)
        {
            self.warnings.push(Diagnostic { code, message });
        }
    }
    fn error(&mut self, code: &'static str, message: impl Into<String>) {
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
struct Schema {
    /// Enum labels (as SQL string literals).
    enums: HashMap<String, Vec<String>>,
    /// Domains and other `CREATE TYPE`s.
    customs: HashMap<String, ()>,
}

fn statement(toks: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Option<Vec<Tok>> {
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
fn create(toks: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Option<Vec<Tok>> {
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
fn unqualified(toks: &[Tok], i: usize) -> String {
    if toks.get(i + 1).is_some_and(|t| t.punct(".")) {
        if let Some(t) = toks.get(i + 2) {
            return t.name_key();
        }
    }
    toks.get(i).map(Tok::name_key).unwrap_or_default()
}

fn create_type(toks: &[Tok], i: usize, schema: &mut Schema, d: &mut Diags) -> Option<Vec<Tok>> {
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
const COLUMN_CONSTRAINTS: &[&str] = &[
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

fn create_table(
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
fn constraint_tail(el: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Vec<Tok> {
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
struct TypeInfo {
    d1: String,
    end: usize,
    serial: bool,
    temporal: bool,
    enum_labels: Option<Vec<String>>,
}

fn parse_type(toks: &[Tok], i: usize, schema: &Schema, column: &str, d: &mut Diags) -> TypeInfo {
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

fn column_def(
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

fn create_index(toks: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Option<Vec<Tok>> {
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

fn alter(toks: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Option<Vec<Tok>> {
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

fn drop_cascade(toks: Vec<Tok>, d: &mut Diags) -> Vec<Tok> {
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

fn drop_stmt(toks: Vec<Tok>, d: &mut Diags) -> Option<Vec<Tok>> {
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
fn truncate(toks: Vec<Tok>, d: &mut Diags) -> Option<Vec<Tok>> {
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
fn strip_schema(toks: Vec<Tok>, d: &mut Diags) -> Vec<Tok> {
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
const UUID_V4: &str = "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))";

/// Rewrites what SQLite reads differently in any statement: parameters,
/// schema qualifiers, `::` casts, PostgreSQL-only functions and operators.
fn general(toks: Vec<Tok>, schema: &mut Schema, d: &mut Diags) -> Vec<Tok> {
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
// ------------------------------------------------------ contract shapes

use crate::api::models;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A request's script converted, in the contract's terms.
#[derive(Debug, Clone)]
pub struct Plan {
    pub original_sql: String,
    pub statements: Vec<Statement>,
    pub strict: bool,
}

impl Plan {
    /// The script is `schemaSql`, else the `files` joined, else the
    /// `statements` joined (each ended by `;`). Non-strict mode turns
    /// errors into warnings (the statement is skipped).
    pub fn from_request(body: &models::D1MigrationRequest) -> Plan {
        let original_sql = match body.schema_sql.as_deref() {
            Some(s) if !s.trim().is_empty() => s.to_string(),
            _ if !body.files.is_empty() => body.files.join(";\n"),
            _ => body.statements.join(";\n"),
        };
        let mut statements = translate(&original_sql);
        if !body.strict {
            for s in &mut statements {
                let errors = std::mem::take(&mut s.errors);
                s.warnings.extend(errors);
            }
        }
        Plan {
            original_sql,
            statements,
            strict: body.strict,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    pub fn errors(&self) -> usize {
        self.statements.iter().map(|s| s.errors.len()).sum()
    }

    fn applied(&self) -> impl Iterator<Item = &Statement> {
        self.statements
            .iter()
            .filter(|s| s.action == Action::Converted && s.errors.is_empty())
    }

    /// The converted statements in order, each ended by `;`.
    pub fn converted_sql(&self) -> String {
        self.applied().map(|s| format!("{};\n", s.target)).collect()
    }

    fn diagnostics(&self, errors: bool) -> Vec<models::D1MigrationDiagnostic> {
        self.statements
            .iter()
            .flat_map(|s| {
                let list = if errors { &s.errors } else { &s.warnings };
                list.iter().map(move |d| models::D1MigrationDiagnostic {
                    code: d.code.to_string(),
                    message: d.message.clone(),
                    source_range: range(s),
                    statement_index: s.index as i32,
                })
            })
            .collect()
    }

    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.original_sql.as_bytes()))
    }

    /// `D1MigrationPreviewResponse` with `status`.
    pub fn preview(&self, status: &str) -> models::D1MigrationPreviewResponse {
        let mut order = 0;
        let statements = self
            .statements
            .iter()
            .map(|s| {
                let applied = s.action == Action::Converted && s.errors.is_empty();
                let apply_order = if applied {
                    order += 1;
                    order - 1
                } else {
                    -1
                };
                models::D1MigrationPlanEntry {
                    action: match (applied, s.warnings.is_empty()) {
                        (false, _) => models::D1MigrationAction::Skipped,
                        (true, true) => models::D1MigrationAction::Converted,
                        (true, false) => models::D1MigrationAction::Warning,
                    },
                    apply_order,
                    source_range: range(s),
                    source_sql: s.source.clone(),
                    statement_index: s.index as i32,
                    target_sql: s.target.clone(),
                }
            })
            .collect();
        models::D1MigrationPreviewResponse {
            converted_sql: self.converted_sql(),
            errors: self.diagnostics(true),
            original_sql: self.original_sql.clone(),
            source_meta: models::D1MigrationSourceMeta {
                estimated_apply_order: self.applied().map(|s| s.index as i32).collect(),
                fingerprint: self.fingerprint(),
                statement_count: self.statements.len() as i32,
            },
            statements,
            status: status.to_string(),
            warnings: self.diagnostics(false),
        }
    }

    /// The converted statements grouped by `batchSize` (all in one batch
    /// when absent): each batch is one D1 `/query` request.
    pub fn batches(&self, batch_size: Option<u32>) -> Vec<Vec<String>> {
        let size = batch_size.unwrap_or(u32::MAX).max(1) as usize;
        let all: Vec<String> = self.applied().map(|s| s.target.clone()).collect();
        all.chunks(size).map(<[String]>::to_vec).collect()
    }

    /// `D1MigrationExecutionResponse` after every batch ran on D1;
    /// `outcomes` are D1's results of the converted statements, in order.
    pub fn executed(
        &self,
        batch_size: Option<u32>,
        outcomes: &[Outcome],
    ) -> models::D1MigrationExecutionResponse {
        let batch = batch_size.unwrap_or(u32::MAX).max(1) as usize;
        let mut n = 0usize;
        let per_statement_results = self
            .statements
            .iter()
            .map(|s| {
                let applied = s.action == Action::Converted && s.errors.is_empty();
                let batch_index = (n / batch) as i32;
                let outcome = if applied {
                    n += 1;
                    outcomes.get(n - 1).copied().unwrap_or_default()
                } else {
                    Outcome::default()
                };
                models::D1MigrationAppliedStatementResult {
                    batch_index: if applied { batch_index } else { -1 },
                    duration_ms: outcome.duration_ms,
                    rows_affected: outcome.rows_affected,
                    source_sql: s.source.clone(),
                    statement_index: s.index as i32,
                    status: if applied { "applied" } else { "skipped" }.into(),
                    target_sql: s.target.clone(),
                }
            })
            .collect();
        models::D1MigrationExecutionResponse {
            converted_sql: self.converted_sql(),
            errors: self.diagnostics(true),
            original_sql: self.original_sql.clone(),
            per_statement_results,
            plan_id: Some(self.fingerprint()),
            status: "applied".into(),
            warnings: self.diagnostics(false),
        }
    }

    /// Why strict mode refuses the script (the 422's detail): the count
    /// and the first unsupported construct.
    pub fn untranslatable(&self) -> String {
        let first = self
            .statements
            .iter()
            .find_map(|s| s.errors.first().map(|e| (s.index, e)));
        match first {
            Some((i, e)) => format!(
                "{} unsupported construct(s) (strict mode); statement {i}: {} ({})",
                self.errors(),
                e.message,
                e.code
            ),
            None => "unsupported statements".into(),
        }
    }
}

fn range(s: &Statement) -> models::D1MigrationSourceRange {
    models::D1MigrationSourceRange {
        end_column: s.span.end_column as i32,
        end_line: s.span.end_line as i32,
        start_column: s.span.start_column as i32,
        start_line: s.span.start_line as i32,
        statement_index: s.index as i32,
    }
}

// ------------------------------------------------------ D1 REST client

use crate::config::D1Config;
use crate::domain::DomainError;
use crate::outbound::{OutboundError, OutboundPolicy};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::sync::Arc;
use std::time::Duration;

/// Largest D1 answer read (security.md §11: outbound answers are capped).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Everything but unreserved characters is escaped in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `dbName`: 1-64 characters, letters, digits, `_` and `-`, starting with a
/// letter or digit.
pub fn check_db_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err("dbName must be 1-64 characters: letters, digits, `_` and `-`, starting with a letter or digit".into())
    }
}

/// A D1 database id (a UUID in Cloudflare's API): 1-64 letters, digits and `-`.
pub fn check_database_id(id: &str) -> Result<(), String> {
    if (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(())
    } else {
        Err("a D1 database id must be 1-64 letters, digits and `-`".into())
    }
}

/// D1's answer for one converted statement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `meta.changes`.
    pub rows_affected: Option<i64>,
    /// `meta.duration` (milliseconds, rounded).
    pub duration_ms: Option<i64>,
}

/// Cloudflare's D1 REST API:
/// `POST {base}/accounts/{account}/d1/database/{id}/query` with a bearer
/// token and `{"sql", "params"}`. Plain `http://` base URLs only: the
/// gateway carries no TLS connector for this client, so an `https://`
/// base (Cloudflare itself) needs a TLS-terminating proxy in front (or a
/// TLS connector added to this client). Every connection goes through the
/// outbound policy (`src/outbound.rs`): the API host is resolved once per
/// connection and refused when it is loopback, private, link-local or
/// metadata unless `ATHENA_OUTBOUND_ALLOW` lists it; redirects are not
/// followed and answers are capped at [`MAX_ANSWER_BYTES`].
pub struct D1Client {
    config: D1Config,
    timeout: Duration,
    http: Client<crate::outbound::Connector, Full<Bytes>>,
}

/// Why a batch did not run.
#[derive(Debug)]
pub struct D1Error(pub String);

impl D1Client {
    pub fn new(config: D1Config, timeout: Duration, outbound: Arc<OutboundPolicy>) -> D1Client {
        let http = Client::builder(TokioExecutor::new()).build(outbound.connector(timeout));
        D1Client {
            config,
            timeout,
            http,
        }
    }

    /// The D1 database id of a request's `dbName` for the calling client:
    /// its `client:dbName=id` entry in `ATHENA_D1_DATABASES`. A `dbName`
    /// outside the grammar is a 400; one not mapped to this client (not
    /// mapped at all, or another client's) is a 404 with the same text
    /// either way, so a client learns nothing about others' databases.
    pub fn database_id(&self, client: &str, db_name: &str) -> Result<&str, DomainError> {
        check_db_name(db_name)
            .map_err(|why| DomainError::invalid_field("body field dbName", why))?;
        self.config
            .databases
            .iter()
            .find(|d| d.client == client && d.name == db_name)
            .map(|d| d.id.as_str())
            .ok_or_else(|| DomainError::not_found("D1 database of this client", db_name))
    }

    /// Runs `sql` (one or more statements) as one `/query` request and
    /// returns one outcome per statement D1 reported.
    pub async fn query(&self, database_id: &str, sql: &str) -> Result<Vec<Outcome>, D1Error> {
        let base = self.config.api_url.trim_end_matches('/');
        if !base.starts_with("http://") {
            return Err(D1Error(format!(
                "ATHENA_D1_API_URL must be an http:// URL (no TLS connector is built in; put a TLS-terminating proxy in front of {base})"
            )));
        }
        let url = format!(
            "{base}/accounts/{}/d1/database/{}/query",
            utf8_percent_encode(&self.config.account_id, SEGMENT),
            utf8_percent_encode(database_id, SEGMENT)
        );
        let body = serde_json::json!({"sql": sql, "params": []}).to_string();
        let req = hyper::Request::post(&url)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.config.api_token),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| D1Error(format!("building the D1 request: {e}")))?;
        let call = async {
            let resp = self.http.request(req).await.map_err(|e| {
                D1Error(match OutboundError::find(&e) {
                    Some(refused @ OutboundError::Refused { .. }) => {
                        format!("the D1 API host is not a permitted destination: {refused}")
                    }
                    Some(other) => format!("D1 API unreachable: {other}"),
                    None => format!("D1 API unreachable: {e}"),
                })
            })?;
            let status = resp.status();
            let bytes = crate::outbound::read_capped(resp.into_body(), MAX_ANSWER_BYTES)
                .await
                .map_err(|e| D1Error(format!("D1 API answer: {e}")))?;
            Ok::<_, D1Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| D1Error(format!("D1 API did not answer within {:?}", self.timeout)))??;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
            D1Error(format!(
                "D1 API answered HTTP {status} with a non-JSON body"
            ))
        })?;
        if !status.is_success() || v["success"] != Value::Bool(true) {
            let errors: Vec<String> = v["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| match (e["code"].as_i64(), e["message"].as_str()) {
                    (Some(c), Some(m)) => format!("{m} (code {c})"),
                    (None, Some(m)) => m.to_string(),
                    _ => e.to_string(),
                })
                .collect();
            let detail = if errors.is_empty() {
                "no error detail".to_string()
            } else {
                errors.join("; ")
            };
            return Err(D1Error(format!("D1 API answered HTTP {status}: {detail}")));
        }
        Ok(v["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| Outcome {
                rows_affected: r["meta"]["changes"].as_i64(),
                duration_ms: r["meta"]["duration"].as_f64().map(|d| d.round() as i64),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Statement {
        let mut all = translate(sql);
        assert_eq!(all.len(), 1, "{sql}: {all:?}");
        all.remove(0)
    }

    fn codes(d: &[Diagnostic]) -> Vec<&'static str> {
        d.iter().map(|d| d.code).collect()
    }

    /// (PostgreSQL input, expected D1 target, warning codes, error codes)
    #[test]
    fn conversions() {
        let cases: &[(&str, &str, &[&str], &[&str])] = &[
            (
                "CREATE TABLE users (id serial PRIMARY KEY, name varchar(80) NOT NULL)",
                "CREATE TABLE users (id integer PRIMARY KEY AUTOINCREMENT, name text NOT NULL)",
                &["type.serial"],
                &[],
            ),
            (
                "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n int)",
                "CREATE TABLE t (id integer PRIMARY KEY AUTOINCREMENT, n integer)",
                &["ddl.identity"],
                &[],
            ),
            (
                "CREATE TABLE public.k (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), doc jsonb DEFAULT '{}'::jsonb, price numeric(10,2), tags text[])",
                &format!("CREATE TABLE k (id text PRIMARY KEY DEFAULT {UUID_V4}, doc text DEFAULT '{{}}', price real, tags text)"),
                &["ddl.schema", "type.uuid", "type.uuid", "type.json", "type.numeric", "type.array"],
                &[],
            ),
            (
                "CREATE TABLE e (at timestamp with time zone NOT NULL DEFAULT now(), d date, ok boolean DEFAULT true)",
                "CREATE TABLE e (at text NOT NULL DEFAULT CURRENT_TIMESTAMP, d text, ok integer DEFAULT true)",
                &["type.time", "ddl.timestamp", "type.time", "type.boolean"],
                &[],
            ),
            (
                "CREATE TABLE p (id bigserial, owner int REFERENCES users(id) ON DELETE CASCADE, PRIMARY KEY (id))",
                "CREATE TABLE p (id integer, owner integer REFERENCES users(id) ON DELETE CASCADE, PRIMARY KEY (id))",
                &["type.serial", "ddl.foreign_key"],
                &[],
            ),
            (
                "CREATE TABLE c (a int, CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id))",
                "CREATE TABLE c (a integer, CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id))",
                &["ddl.foreign_key"],
                &[],
            ),
            (
                "CREATE TABLE m (v mood, x my_domain)",
                "CREATE TABLE m (v text, x text)",
                &["type.custom", "type.custom"],
                &[],
            ),
            (
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_u ON ONLY users USING btree (lower(name)) WHERE name IS NOT NULL",
                "CREATE UNIQUE INDEX IF NOT EXISTS idx_u ON users (lower(name)) WHERE name IS NOT NULL",
                &["ddl.index"],
                &[],
            ),
            (
                "CREATE INDEX idx_doc ON k USING gin (doc jsonb_path_ops)",
                "CREATE INDEX idx_doc ON k (doc)",
                &["ddl.index"],
                &[],
            ),
            (
                "INSERT INTO users (name) VALUES ('a'::text), ('b') ON CONFLICT (name) DO NOTHING RETURNING id",
                "INSERT INTO users (name) VALUES ('a'), ('b') ON CONFLICT (name) DO NOTHING RETURNING id",
                &[],
                &[],
            ),
            (
                "SELECT count(*)::int, now() FROM users WHERE name ILIKE 'a%'",
                "SELECT CAST(count(*) AS integer), CURRENT_TIMESTAMP FROM users WHERE name LIKE 'a%'",
                &["expr.ilike"],
                &[],
            ),
            ("INSERT INTO t (a) VALUES ($1)", "", &[], &["unsupported.parameter"]),
            ("CREATE EXTENSION IF NOT EXISTS pgcrypto", "", &[], &["unsupported.extension"]),
            ("CREATE PUBLICATION pub FOR ALL TABLES", "", &[], &["unsupported.publication"]),
            ("CREATE ROLE app LOGIN", "", &[], &["unsupported.role"]),
            ("CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION f()", "", &[], &["unsupported.event_trigger"]),
            ("COPY users FROM stdin", "", &[], &["unsupported.copy"]),
            ("LISTEN chan", "", &[], &["unsupported.listen"]),
            ("NOTIFY chan, 'x'", "", &[], &["unsupported.notify"]),
            (
                "CREATE TABLE m (at date NOT NULL) PARTITION BY RANGE (at)",
                "",
                &[],
                &["unsupported.partition"],
            ),
            ("CREATE SEQUENCE s", "", &[], &["unsupported.sequence"]),
            (
                "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
                "",
                &[],
                &["unsupported.function"],
            ),
            ("SET search_path = public", "", &["stmt.session"], &[]),
            ("BEGIN", "", &["stmt.transaction"], &[]),
            ("GRANT SELECT ON users TO app", "", &["stmt.privilege"], &[]),
            ("ALTER TABLE users OWNER TO app", "", &["stmt.privilege"], &[]),
            (
                "ALTER TABLE ONLY users ADD COLUMN meta json",
                "ALTER TABLE users ADD COLUMN meta text",
                &["type.json"],
                &[],
            ),
            (
                "ALTER TABLE users ADD CONSTRAINT u UNIQUE (name)",
                "",
                &[],
                &["unsupported.alter_constraint"],
            ),
            ("DROP TABLE IF EXISTS users CASCADE", "DROP TABLE IF EXISTS users", &["ddl.drop"], &[]),
            ("TRUNCATE users", "DELETE FROM users", &["dml.truncate"], &[]),
            ("SELECT 'it''s; fine' -- c;\n", "SELECT 'it''s; fine'", &[], &[]),
            ("SELECT 'open", "", &[], &["syntax.unterminated"]),
        ];
        let mut wrong = Vec::new();
        for (input, target, warnings, errors) in cases {
            let s = one(input);
            let want = if errors.is_empty() && !target.is_empty() {
                Action::Converted
            } else {
                Action::Skipped
            };
            if s.target != *target
                || codes(&s.warnings) != *warnings
                || codes(&s.errors) != *errors
                || s.action != want
            {
                wrong.push(format!(
                    "{input}\n  target {:?}\n  warnings {:?}\n  errors {:?}",
                    s.target,
                    codes(&s.warnings),
                    codes(&s.errors)
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn script_remembers_enums() {
        let script = "CREATE TYPE public.mood AS ENUM ('sad', 'happy');\n\
            CREATE TABLE person (name text, current_mood mood NOT NULL);";
        let s = translate(script);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].action, Action::Skipped);
        assert_eq!(codes(&s[0].warnings), ["type.custom"]);
        assert_eq!(
            s[1].target,
            "CREATE TABLE person (name text, current_mood text NOT NULL CHECK (current_mood IN ('sad', 'happy')))"
        );
        assert_eq!(
            s[1].span,
            Span {
                start_line: 2,
                start_column: 1,
                end_line: 2,
                end_column: 59
            }
        );
    }

    #[test]
    fn dollar_quoted_bodies_stay_one_statement() {
        let s = translate(
            "CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN RETURN NEW; END; $body$ LANGUAGE plpgsql; SELECT 3",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].target, "SELECT 3");
    }
}
