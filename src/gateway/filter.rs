//! Filters: a closed operator enum, each mapped to a fixed SQL token. Values
//! are bound as text and cast to the column's catalog type on the parameter
//! side, so indexes on the column stay usable.
//!
//! A condition is a tree: column filters combined with `and`/`or` and negated
//! with `not`. The PostgREST text forms (`eq.5`, `not.eq.5`,
//! `(a.eq.1,and(b.gt.2,c.is.null))`) parse into the same tree as the SDK's
//! JSON conditions (see `src/gateway/cond.rs`).

use crate::domain::DomainError;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    ILike,
    In,
    Is,
    /// `@>`: array or JSON containment.
    Contains,
    /// `<@`.
    ContainedBy,
}

impl Operator {
    pub fn parse(s: &str) -> Result<Operator, DomainError> {
        Ok(match s {
            "eq" => Operator::Eq,
            "neq" | "ne" => Operator::Neq,
            "gt" => Operator::Gt,
            "gte" => Operator::Gte,
            "lt" => Operator::Lt,
            "lte" => Operator::Lte,
            "like" => Operator::Like,
            "ilike" => Operator::ILike,
            "in" => Operator::In,
            "is" => Operator::Is,
            "contains" | "cs" => Operator::Contains,
            "containedBy" | "containedby" | "contained_by" | "cd" => Operator::ContainedBy,
            other => {
                return Err(DomainError::Invalid(format!(
                    "unsupported filter operator `{}`",
                    other.chars().take(40).collect::<String>()
                )))
            }
        })
    }
}

/// The value side of a filter, as text (or absent for SQL NULL).
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Null,
    Text(String),
    List(Vec<String>),
    /// A JSON document (containment on json/jsonb or array columns).
    Json(Value),
}

impl FilterValue {
    /// A JSON scalar as the text Postgres parses for the column's type.
    pub fn from_json(op: Operator, v: &Value) -> Result<FilterValue, DomainError> {
        Ok(match (op, v) {
            (_, Value::Null) => FilterValue::Null,
            (Operator::In, Value::Array(items)) => FilterValue::List(
                items
                    .iter()
                    .map(|i| {
                        json_text(i).ok_or_else(|| {
                            DomainError::Invalid("`in` lists cannot contain null".into())
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Operator::In, Value::String(s)) => {
                let inner = s
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .unwrap_or(s.trim());
                FilterValue::List(split_list(inner))
            }
            (Operator::Contains | Operator::ContainedBy, Value::Array(_) | Value::Object(_)) => {
                FilterValue::Json(v.clone())
            }
            (_, Value::Array(_) | Value::Object(_)) => FilterValue::Text(v.to_string()),
            (_, other) => FilterValue::Text(json_text(other).unwrap_or_default()),
        })
    }
}

/// JSON scalar → its text form (`"a"` → `a`, `5` → `5`); documents as JSON text.
pub fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    pub op: Operator,
    pub value: FilterValue,
    /// Cast of the column side (`column_cast`), checked by `check_type_name`.
    pub column_cast: Option<String>,
    /// Cast of the value side (`value_cast`), checked by `check_type_name`.
    pub value_cast: Option<String>,
}

/// A condition tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Filter(Filter),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

impl From<Filter> for Cond {
    fn from(f: Filter) -> Cond {
        Cond::Filter(f)
    }
}

/// Bound on nested `and(...)`/`or(...)`/`not` groups.
pub const MAX_DEPTH: usize = 16;

impl Filter {
    pub fn new(column: impl Into<String>, op: Operator, value: FilterValue) -> Filter {
        Filter {
            column: column.into(),
            op,
            value,
            column_cast: None,
            value_cast: None,
        }
    }

    /// PostgREST value syntax: `eq.5`, `in.(a,b)`, `is.null`, `like.*x*`.
    pub fn from_postgrest(column: &str, expr: &str) -> Result<Filter, DomainError> {
        Filter::parse_postgrest(column, expr, false)
    }

    /// `in_tree`: an element of a logic tree, where whitespace around
    /// unquoted `in` list items is layout (`id.in.( 1,2 )`).
    fn parse_postgrest(column: &str, expr: &str, in_tree: bool) -> Result<Filter, DomainError> {
        let (op, raw) = expr.split_once('.').ok_or_else(|| {
            DomainError::Invalid(format!("filter on `{column}` must look like op.value"))
        })?;
        let op = Operator::parse(op)?;
        let value = match op {
            Operator::In => {
                let inner = raw
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| {
                        DomainError::Invalid(format!("`in` filter on `{column}` must be in.(a,b)"))
                    })?;
                FilterValue::List(split_list_with(inner, in_tree))
            }
            Operator::Is => FilterValue::Text(raw.to_string()),
            Operator::Like | Operator::ILike => FilterValue::Text(unquote(raw).replace('*', "%")),
            // PostgREST containment takes `{a,b}` (array literal) or JSON.
            Operator::Contains | Operator::ContainedBy => {
                match serde_json::from_str::<Value>(raw) {
                    Ok(v @ (Value::Array(_) | Value::Object(_))) => FilterValue::Json(v),
                    _ => FilterValue::Text(raw.to_string()),
                }
            }
            _ => FilterValue::Text(unquote(raw)),
        };
        Ok(Filter::new(column, op, value))
    }
}

impl Cond {
    /// `eq.5` or `not.eq.5` on `column`.
    pub fn from_postgrest(column: &str, expr: &str) -> Result<Cond, DomainError> {
        Cond::parse_postgrest(column, expr, false)
    }

    fn parse_postgrest(column: &str, expr: &str, in_tree: bool) -> Result<Cond, DomainError> {
        match expr.strip_prefix("not.") {
            Some(rest) => Ok(Cond::Not(Box::new(
                Filter::parse_postgrest(column, rest, in_tree)?.into(),
            ))),
            None => Ok(Filter::parse_postgrest(column, expr, in_tree)?.into()),
        }
    }

    /// A top-level logic parameter: `or=(…)`, `and=(…)`, `not.or=(…)`,
    /// `not.and=(…)`; `None` when `key` is none of them.
    pub fn from_postgrest_logic(key: &str, value: &str) -> Option<Result<Cond, DomainError>> {
        let (negate, op) = match key.strip_prefix("not.") {
            Some(k) => (true, k),
            None => (false, key),
        };
        let or = match op {
            "or" => true,
            "and" => false,
            _ => return None,
        };
        Some(parse_list(value, or, 0).map(|c| if negate { Cond::Not(Box::new(c)) } else { c }))
    }

    /// A PostgREST logic list: `(a.eq.1,b.not.gt.2,and(c.is.null,d.in.(x,y)))`
    /// (outer parentheses optional), combined with `or` or `and`.
    pub fn from_postgrest_list(expr: &str, or: bool) -> Result<Cond, DomainError> {
        parse_list(expr, or, 0)
    }
}

fn parse_list(expr: &str, or: bool, depth: usize) -> Result<Cond, DomainError> {
    if depth > MAX_DEPTH {
        return Err(DomainError::Invalid(
            "logic filters are nested too deeply".into(),
        ));
    }
    let e = expr.trim();
    let inner = e
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(e);
    let mut items = Vec::new();
    for part in split_top_level(inner)? {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        items.push(parse_item(part, depth)?);
    }
    if items.is_empty() {
        return Err(DomainError::Invalid(format!(
            "`{}` filter has no conditions",
            if or { "or" } else { "and" }
        )));
    }
    Ok(if or {
        Cond::Or(items)
    } else {
        Cond::And(items)
    })
}

/// One element of a logic list: `col.op.value`, `col.not.op.value`,
/// `and(...)`, `or(...)`, `not.and(...)`, `not.or(...)`.
fn parse_item(part: &str, depth: usize) -> Result<Cond, DomainError> {
    for (prefix, or, negate) in [
        ("and", false, false),
        ("or", true, false),
        ("not.and", false, true),
        ("not.or", true, true),
    ] {
        // `and(…)`, also written `and (…)`.
        if let Some(rest) = part
            .strip_prefix(prefix)
            .and_then(|r| r.trim_start().strip_prefix('('))
        {
            let group = parse_list(&format!("({rest}"), or, depth + 1)?;
            return Ok(if negate {
                Cond::Not(Box::new(group))
            } else {
                group
            });
        }
    }
    let (column, expr) = part.split_once('.').ok_or_else(|| {
        DomainError::Invalid(format!(
            "logic filter element `{}` must look like column.op.value",
            part.chars().take(60).collect::<String>()
        ))
    })?;
    Cond::parse_postgrest(column.trim(), expr.trim(), true)
}

/// Splits at commas outside parentheses and double quotes.
fn split_top_level(s: &str) -> Result<Vec<String>, DomainError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut quoted) = (0usize, false);
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '\\' if quoted => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '(' if !quoted => {
                depth += 1;
                cur.push(c);
            }
            ')' if !quoted => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| DomainError::Invalid("unbalanced `)` in filter".into()))?;
                cur.push(c);
            }
            ',' if !quoted && depth == 0 => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if depth != 0 || quoted {
        return Err(DomainError::Invalid(
            "unbalanced parentheses or quotes in filter".into(),
        ));
    }
    out.push(cur);
    Ok(out)
}

/// `"a,b"` → `a,b` (PostgREST quoting of reserved characters).
fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if s.len() >= 2 => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        _ => s.to_string(),
    }
}

/// Splits `a,"b,c",d` honouring double quotes.
pub fn split_list(s: &str) -> Vec<String> {
    split_list_with(s, false)
}

/// `split_list`; with `trim`, whitespace around an unquoted item is
/// dropped (`( 1, 2 )`) while a quoted one keeps it (`" a "`).
fn split_list_with(s: &str, trim: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut was_quoted) = (false, false);
    let mut chars = s.chars().peekable();
    let mut push = |cur: &mut String, was_quoted: bool| {
        let item = std::mem::take(cur);
        out.push(if trim && !was_quoted {
            item.trim().to_string()
        } else {
            item
        });
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                was_quoted = true;
                if trim && quoted {
                    // Layout before the opening quote is not part of it.
                    cur.truncate(cur.trim_end().len());
                }
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' if !quoted => {
                push(&mut cur, was_quoted);
                was_quoted = false;
            }
            c if trim && was_quoted && !quoted && c.is_whitespace() => {}
            c => cur.push(c),
        }
    }
    if !s.is_empty() {
        push(&mut cur, was_quoted);
    }
    out
}

/// A cast target (`column_cast`, `value_cast`) parsed from a grammar of
/// type names and written back by us, never pasted: an optionally
/// schema-qualified name (written double-quoted, folded to lower case like
/// an unquoted SQL name) or one of the SQL-standard keyword types (`double
/// precision`, `character varying`, `timestamp with time zone`, …, written
/// from our own spelling), optional integer modifiers parsed as numbers
/// (`numeric(10,2)`), and optional `[]` suffixes. Returns the SQL text.
/// Postgres' OID alias types: casting to them looks names up in the catalog.
const OID_ALIASES: &[&str] = &[
    "regclass",
    "regcollation",
    "regconfig",
    "regdictionary",
    "regnamespace",
    "regoper",
    "regoperator",
    "regproc",
    "regprocedure",
    "regrole",
    "regtype",
];

pub fn check_type_name(t: &str) -> Result<String, DomainError> {
    let refuse = |why: &str| {
        DomainError::Invalid(format!(
            "`{}` is not a valid type name: {why}",
            t.chars().take(64).collect::<String>()
        ))
    };
    if t.is_empty() || t.len() > 128 {
        return Err(refuse("empty or too long"));
    }
    let toks = type_tokens(t).map_err(&refuse)?;
    let mut p = 0;
    let word = |i: usize| match toks.get(i) {
        Some(TypeTok::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    // Keyword types: the longest spelling first.
    const KEYWORDS: &[(&[&str], &str, bool)] = &[
        // (words, SQL spelling, takes a modifier before a time-zone suffix)
        (&["double", "precision"], "double precision", false),
        (&["character", "varying"], "character varying", false),
        (&["char", "varying"], "character varying", false),
        (&["bit", "varying"], "bit varying", false),
        (&["timestamp"], "timestamp", true),
        (&["time"], "time", true),
        (&["interval"], "interval", false),
        (&["character"], "character", false),
        (&["char"], "character", false),
        (&["varchar"], "character varying", false),
        (&["bit"], "bit", false),
        (&["int"], "integer", false),
        (&["integer"], "integer", false),
        (&["smallint"], "smallint", false),
        (&["bigint"], "bigint", false),
        (&["real"], "real", false),
        (&["float"], "float", false),
        (&["boolean"], "boolean", false),
        (&["dec"], "numeric", false),
        (&["decimal"], "numeric", false),
        (&["numeric"], "numeric", false),
    ];
    let keyword = KEYWORDS.iter().find(|(words, _, _)| {
        words.iter().enumerate().all(|(i, w)| word(i) == Some(*w))
            // A keyword followed by `.` is a schema name.
            && !matches!(toks.get(words.len()), Some(TypeTok::Dot))
    });
    let mut sql = match keyword {
        Some((words, spelling, _)) => {
            p += words.len();
            spelling.to_string()
        }
        None => {
            let first = match toks.first() {
                Some(TypeTok::Word(w)) | Some(TypeTok::Quoted(w)) => w.clone(),
                _ => return Err(refuse("expected a type name")),
            };
            p = 1;
            let mut last = first.as_str();
            let mut name = crate::domain::identifier::Ident::parse("type", &first)?.to_string();
            if matches!(toks.get(1), Some(TypeTok::Dot)) {
                let second = match toks.get(2) {
                    Some(TypeTok::Word(w)) | Some(TypeTok::Quoted(w)) => w,
                    _ => return Err(refuse("expected a type name after `.`")),
                };
                name = format!(
                    "{name}.{}",
                    crate::domain::identifier::Ident::parse("type", second)?
                );
                last = second.as_str();
                p = 3;
            }
            // The OID alias types turn a number or a name into a catalog
            // lookup (`id::regproc`, `name::regclass`): a way to read
            // `pg_catalog` through a cast, so they are no cast target.
            if OID_ALIASES.contains(&last.to_ascii_lowercase().as_str()) {
                return Err(refuse("catalog lookup types (reg*) are not allowed"));
            }
            name
        }
    };
    // Modifiers: `(n)` or `(n, m)`, integers only.
    if matches!(toks.get(p), Some(TypeTok::Open)) {
        let mut mods = Vec::new();
        p += 1;
        loop {
            match toks.get(p) {
                Some(TypeTok::Int(n)) if mods.len() < 2 => mods.push(*n),
                _ => return Err(refuse("type modifiers must be one or two integers")),
            }
            p += 1;
            match toks.get(p) {
                Some(TypeTok::Comma) => p += 1,
                Some(TypeTok::Close) => {
                    p += 1;
                    break;
                }
                _ => return Err(refuse("unclosed type modifier")),
            }
        }
        let mods: Vec<String> = mods.iter().map(u32::to_string).collect();
        sql = format!("{sql}({})", mods.join(","));
    }
    // `with time zone` / `without time zone` after time and timestamp.
    if keyword.is_some_and(|(_, _, zoned)| *zoned) {
        if let (Some(w @ ("with" | "without")), Some("time"), Some("zone")) =
            (word(p), word(p + 1), word(p + 2))
        {
            sql = format!("{sql} {w} time zone");
            p += 3;
        }
    }
    while matches!(toks.get(p), Some(TypeTok::Brackets)) {
        sql.push_str("[]");
        p += 1;
    }
    if p != toks.len() {
        return Err(refuse("unexpected text after the type"));
    }
    Ok(sql)
}

#[derive(Debug, Clone, PartialEq)]
enum TypeTok {
    /// An unquoted name, folded to lower case.
    Word(String),
    /// A double-quoted name, as written.
    Quoted(String),
    Int(u32),
    Dot,
    Open,
    Close,
    Comma,
    /// `[]` (or `[n]`, whose bound Postgres ignores).
    Brackets,
}

fn type_tokens(t: &str) -> Result<Vec<TypeTok>, &'static str> {
    let mut out = Vec::new();
    let mut it = t.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            ' ' | '\t' => {}
            '.' => out.push(TypeTok::Dot),
            '(' => out.push(TypeTok::Open),
            ')' => out.push(TypeTok::Close),
            ',' => out.push(TypeTok::Comma),
            '[' => {
                while it.peek().is_some_and(char::is_ascii_digit) {
                    it.next();
                }
                if it.next() != Some(']') {
                    return Err("`[` must be followed by `]`");
                }
                out.push(TypeTok::Brackets);
            }
            '"' => {
                let mut name = String::new();
                loop {
                    match it.next() {
                        Some('"') if it.peek() == Some(&'"') => {
                            it.next();
                            name.push('"');
                        }
                        Some('"') => break,
                        Some(c) if !c.is_control() => name.push(c),
                        _ => return Err("unterminated quoted name"),
                    }
                }
                out.push(TypeTok::Quoted(name));
            }
            c if c.is_ascii_digit() => {
                let mut n = c.to_string();
                while let Some(d) = it.peek().copied().filter(char::is_ascii_digit) {
                    n.push(d);
                    it.next();
                }
                let n: u32 = n.parse().map_err(|_| "modifier out of range")?;
                if n > 100_000 {
                    return Err("modifier out of range");
                }
                out.push(TypeTok::Int(n));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut w = c.to_ascii_lowercase().to_string();
                while let Some(d) = it
                    .peek()
                    .copied()
                    .filter(|d| d.is_ascii_alphanumeric() || *d == '_')
                {
                    w.push(d.to_ascii_lowercase());
                    it.next();
                }
                out.push(TypeTok::Word(w));
            }
            _ => return Err("unexpected character"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgrest_syntax() {
        let f = Filter::from_postgrest("id", "eq.5").unwrap();
        assert_eq!(
            (f.op, f.value),
            (Operator::Eq, FilterValue::Text("5".into()))
        );
        let f = Filter::from_postgrest("name", "in.(a,\"b,c\",d)").unwrap();
        assert_eq!(
            f.value,
            FilterValue::List(vec!["a".into(), "b,c".into(), "d".into()])
        );
        let f = Filter::from_postgrest("name", "like.*x*").unwrap();
        assert_eq!(f.value, FilterValue::Text("%x%".into()));
        assert!(Filter::from_postgrest("id", "drop.1").is_err());
        assert!(Filter::from_postgrest("id", "5").is_err());
        assert!(Filter::from_postgrest("id", "in.1,2").is_err());
        let f = Filter::from_postgrest("tags", "cs.[\"a\"]").unwrap();
        assert_eq!(f.value, FilterValue::Json(serde_json::json!(["a"])));
    }

    #[test]
    fn logic_lists() {
        let c = Cond::from_postgrest_list("(a.eq.1,b.not.gt.2,and(c.is.null,d.in.(x,y)))", true)
            .unwrap();
        let Cond::Or(items) = c else { panic!() };
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[0],
            Cond::Filter(Filter::new(
                "a",
                Operator::Eq,
                FilterValue::Text("1".into())
            ))
        );
        assert!(matches!(&items[1], Cond::Not(_)));
        let Cond::And(inner) = &items[2] else {
            panic!("{:?}", items[2])
        };
        assert_eq!(inner.len(), 2);
        assert!(Cond::from_postgrest_list("a.eq.1,b.eq.2", false).is_ok());
        assert!(Cond::from_postgrest_list("(a.eq.1", true).is_err());
        assert!(Cond::from_postgrest_list("()", true).is_err());
        assert!(Cond::from_postgrest_list("(a.drop.1)", true).is_err());
        assert!(Cond::from_postgrest_list("(a)", true).is_err());
        let deep = format!("{}a.eq.1{}", "and(".repeat(40), ")".repeat(40));
        assert!(Cond::from_postgrest_list(&deep, true).is_err());
        // A quoted comma stays in the value.
        let Cond::Or(items) = Cond::from_postgrest_list("(a.eq.\"x,y\")", true).unwrap() else {
            panic!()
        };
        assert_eq!(
            items[0],
            Cond::Filter(Filter::new(
                "a",
                Operator::Eq,
                FilterValue::Text("x,y".into())
            ))
        );
    }

    #[test]
    fn logic_keys_whitespace_and_quotes() {
        let c = Cond::from_postgrest_logic("not.or", "(a.eq.1,b.eq.2)")
            .unwrap()
            .unwrap();
        assert!(
            matches!(c, Cond::Not(ref inner) if matches!(**inner, Cond::Or(ref i) if i.len() == 2))
        );
        assert!(Cond::from_postgrest_logic("not.and", "(a.eq.1)").is_some());
        assert!(Cond::from_postgrest_logic("name", "eq.1").is_none());
        assert!(Cond::from_postgrest_logic("not.name", "eq.1").is_none());
        // Layout inside trees: around items, groups and `in` list items.
        let Cond::And(items) =
            Cond::from_postgrest_list("( and ( id.in.( 1, \" a \" ,2 ), name.eq.x ) )", false)
                .unwrap()
        else {
            panic!()
        };
        let Cond::And(inner) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(
            inner[0],
            Cond::Filter(Filter::new(
                "id",
                Operator::In,
                FilterValue::List(vec!["1".into(), " a ".into(), "2".into()])
            ))
        );
        // Outside trees a list keeps its items as written.
        assert_eq!(split_list(" 1, 2"), vec![" 1", " 2"]);
        // Quoted values keep commas and parentheses.
        let Cond::Or(items) =
            Cond::from_postgrest_list("(a.eq.\"x,(y)\",b.like.\"a,*\")", true).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            items[1],
            Cond::Filter(Filter::new(
                "b",
                Operator::Like,
                FilterValue::Text("a,%".into())
            ))
        );
        assert!(
            matches!(&items[0], Cond::Filter(f) if f.value == FilterValue::Text("x,(y)".into()))
        );
    }

    #[test]
    fn json_values() {
        use serde_json::json;
        assert_eq!(
            FilterValue::from_json(Operator::Eq, &json!(5)).unwrap(),
            FilterValue::Text("5".into())
        );
        assert_eq!(
            FilterValue::from_json(Operator::Eq, &json!(true)).unwrap(),
            FilterValue::Text("true".into())
        );
        assert_eq!(
            FilterValue::from_json(Operator::In, &json!([1, "b"])).unwrap(),
            FilterValue::List(vec!["1".into(), "b".into()])
        );
        assert_eq!(
            FilterValue::from_json(Operator::In, &json!("(a,b)")).unwrap(),
            FilterValue::List(vec!["a".into(), "b".into()])
        );
        assert!(FilterValue::from_json(Operator::In, &json!([null])).is_err());
        assert_eq!(
            FilterValue::from_json(Operator::Contains, &json!({"a": 1})).unwrap(),
            FilterValue::Json(json!({"a": 1}))
        );
        assert_eq!(
            FilterValue::from_json(Operator::Is, &Value::Null).unwrap(),
            FilterValue::Null
        );
    }

    #[test]
    fn type_names() {
        for (ok, sql) in [
            ("integer", "integer"),
            ("INT", "integer"),
            ("text[]", "\"text\"[]"),
            ("character varying(20)", "character varying(20)"),
            ("varchar(20)[]", "character varying(20)[]"),
            ("numeric(10, 2)", "numeric(10,2)"),
            ("timestamp with time zone", "timestamp with time zone"),
            (
                "timestamp(3) without time zone",
                "timestamp(3) without time zone",
            ),
            ("double precision", "double precision"),
            ("uuid", "\"uuid\""),
            ("public.mood", "\"public\".\"mood\""),
            ("\"My Type\"", "\"My Type\""),
            ("pg_catalog.int4", "\"pg_catalog\".\"int4\""),
        ] {
            assert_eq!(check_type_name(ok).unwrap(), sql, "{ok}");
        }
        for bad in [
            "int; drop table x",
            "text'",
            "",
            "1abc",
            "int--",
            // Function calls and expressions are not type names.
            "int) OR pg_sleep(5) IS NULL OR (1",
            "text)--",
            "numeric(1,2,3)",
            "numeric(a)",
            "now()",
            "int8 int8",
            "a.b.c",
            "\"unterminated",
            "timestamp with time",
        ] {
            assert!(check_type_name(bad).is_err(), "{bad}");
        }
    }
}
