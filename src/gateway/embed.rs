//! The PostgREST select grammar and relation embedding. The string grammar
//! (`myId:id,name::text,author:users!owner_id!inner(id,n:name)`) and the
//! canonical nested object (`{"id": true, "n": "name::text", "users":
//! {"select": {"id": true}, "where": {…}}}`) parse into one tree; the
//! embedded-resource query parameters (`users.name=eq.x`, `users.order=`,
//! `users.limit=`, `users.or=(…)`, `Param`) attach to its embeds. Each
//! relation is resolved against the tenant's foreign keys (many-to-one,
//! one-to-many, many-to-many through a junction) and rendered by
//! `select_list` as a correlated subquery, so Postgres builds the nested
//! JSON in the same statement as the base rows.

use super::filter::{check_type_name, Cond};
use super::read::Order;
use super::sql::{self, Statement};
use crate::db::schema_cache::{ForeignKey, Table};
use crate::db::tenants::Tenant;
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// How deep embeds may nest (`a(b(c(…)))`): bounds the statement.
pub const MAX_DEPTH: usize = 6;
/// Embedded relations per request, every level together.
pub const MAX_EMBEDS: usize = 32;

/// The alias of the base table once a statement embeds anything.
pub const BASE_ALIAS: &str = "\"_b\"";

/// A parsed select list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Select {
    /// Columns in request order; `*` stands for every column.
    pub columns: Vec<Field>,
    pub embeds: Vec<Embed>,
}

impl Select {
    fn all() -> Select {
        Select {
            columns: vec![Field::plain("*")],
            embeds: Vec::new(),
        }
    }
}

/// One selected column: `[alias:]column[::type]` (PostgREST). The output
/// key is the alias, else the column name (a cast keeps the name).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub column: String,
    pub alias: Option<String>,
    /// The requested type, checked by `filter::check_type_name` when the
    /// select is resolved.
    pub cast: Option<String>,
}

impl Field {
    pub fn plain(column: impl Into<String>) -> Field {
        Field {
            column: column.into(),
            alias: None,
            cast: None,
        }
    }

    /// The key of the value in each row.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.column)
    }

    pub fn is_star(&self) -> bool {
        self.column == "*"
    }

    /// Whether the column is returned under another name or type.
    pub fn is_plain(&self) -> bool {
        self.alias.is_none() && self.cast.is_none()
    }

    /// `[alias:]column[::type]`; the type is checked against the closed
    /// grammar here already, so a bad cast is a 400 before any lookup.
    pub fn parse(item: &str) -> Result<Field, DomainError> {
        let (head, cast) = match item.split_once("::") {
            Some((h, t)) => {
                let t = t.trim();
                check_type_name(t)?;
                (h, Some(t.to_string()))
            }
            None => (item, None),
        };
        let (alias, column) = match head.split_once(':') {
            Some((a, c)) => (Some(name("column alias", a.trim())?.to_string()), c.trim()),
            None => (None, head.trim()),
        };
        if column == "*" && (alias.is_some() || cast.is_some()) {
            return Err(invalid("select: `*` takes no alias or cast"));
        }
        Ok(Field {
            column: name("column", column)?.to_string(),
            alias,
            cast,
        })
    }
}

impl From<&str> for Field {
    fn from(c: &str) -> Field {
        Field::plain(c)
    }
}

impl From<String> for Field {
    fn from(c: String) -> Field {
        Field::plain(c)
    }
}

/// One embedded relation as requested.
#[derive(Debug, Clone, PartialEq)]
pub struct Embed {
    /// The key of the embed in each row: the alias, else the relation name.
    pub key: String,
    /// The related table's schema when the request names one; otherwise
    /// whichever schema a foreign key leads to.
    pub schema: Option<String>,
    pub relation: String,
    /// A constraint name, or the referencing column of a single-column
    /// foreign key, choosing between several foreign keys.
    pub hint: Option<String>,
    /// Rows without a related row are dropped (`!inner`).
    pub inner: bool,
    /// Columns and nested embeds of the related table; no columns and no
    /// embeds means the relation only filters (with `inner`).
    pub select: Select,
    /// Embedded-resource parameters (`rel.col=eq.x`, `rel.or=(…)`): they
    /// narrow the embedded rows (and, with `inner`, the parent rows).
    pub filters: Vec<Cond>,
    /// `rel.order=`.
    pub order: Vec<Order>,
    /// `rel.limit=` / `rel.offset=`.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl Embed {
    fn new(key: String, schema: Option<String>, relation: String) -> Embed {
        Embed {
            key,
            schema,
            relation,
            hint: None,
            inner: false,
            select: Select::default(),
            filters: Vec::new(),
            order: Vec::new(),
            limit: None,
            offset: None,
        }
    }
}

/// What an embedded-resource query parameter sets on its embed.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamKind {
    Filter(Cond),
    Order(Vec<Order>),
    Limit(i64),
    Offset(i64),
}

/// An embedded-resource query parameter: the path of embed keys (alias,
/// else relation name) from the base table, and what it sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub path: Vec<String>,
    pub kind: ParamKind,
}

impl Param {
    /// The query-string key of an embedded-resource parameter, PostgREST's
    /// forms: `rel.col=op.v`, `a.b.col=op.v`, `rel.order=`, `rel.limit=`,
    /// `rel.offset=`, `rel.or=(…)`, `rel.and=(…)`, `rel.not.or=(…)`.
    /// `None` for a key without a path (a base parameter).
    pub fn from_query(key: &str, value: &str) -> Result<Option<Param>, DomainError> {
        let Some((path, last)) = key.rsplit_once('.') else {
            return Ok(None);
        };
        let (path, kind) = match last {
            "order" => (path, ParamKind::Order(super::cond::parse_order(value)?)),
            "limit" | "offset" => {
                let n: i64 = value.trim().parse().map_err(|_| {
                    invalid(format!(
                        "`{key}` must be a whole number, not `{}`",
                        clip(value)
                    ))
                })?;
                if n < 0 {
                    return Err(invalid(format!("`{key}` must not be negative")));
                }
                (
                    path,
                    match last {
                        "limit" => ParamKind::Limit(n),
                        _ => ParamKind::Offset(n),
                    },
                )
            }
            "or" | "and" => {
                let (path, negate) = match path.strip_suffix(".not") {
                    Some(p) => (p, true),
                    None => (path, false),
                };
                let mut c = Cond::from_postgrest_list(value, last == "or")?;
                if negate {
                    c = Cond::Not(Box::new(c));
                }
                (path, ParamKind::Filter(c))
            }
            column => (
                path,
                ParamKind::Filter(Cond::from_postgrest(column, value)?),
            ),
        };
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(invalid(format!("`{}` is not a valid parameter", clip(key))));
        }
        Ok(Some(Param {
            path: path.split('.').map(str::to_string).collect(),
            kind,
        }))
    }
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Attaches embedded-resource parameters to the embeds their path names
/// (by key: the alias, else the relation name); a path that leads to no
/// embed of the select is a 400 naming it.
pub fn attach(embeds: &mut [Embed], params: Vec<Param>) -> Result<(), DomainError> {
    for p in params {
        let e = find_embed(embeds, &p.path).ok_or_else(|| {
            invalid(format!(
                "`{}` names no embedded resource of the select (embed it first, e.g. `select=*,{}(*){}`)",
                p.path.join("."),
                p.path.join("(*,"),
                ")".repeat(p.path.len().saturating_sub(1))
            ))
        })?;
        match p.kind {
            ParamKind::Filter(c) => e.filters.push(c),
            ParamKind::Order(o) => e.order.extend(o),
            ParamKind::Limit(n) => e.limit = Some(n),
            ParamKind::Offset(n) => e.offset = Some(n),
        }
    }
    Ok(())
}

fn find_embed<'a>(embeds: &'a mut [Embed], path: &[String]) -> Option<&'a mut Embed> {
    let (first, rest) = path.split_first()?;
    let e = embeds.iter_mut().find(|e| e.key == *first)?;
    if rest.is_empty() {
        Some(e)
    } else {
        find_embed(&mut e.select.embeds, rest)
    }
}

fn invalid(msg: impl Into<String>) -> DomainError {
    DomainError::Invalid(msg.into())
}

fn name<'a>(kind: &str, raw: &'a str) -> Result<&'a str, DomainError> {
    Ident::parse(kind, raw)?;
    Ok(raw)
}

/// Parses the PostgREST grammar: comma-separated columns and
/// `[alias:][schema.]relation[!hint][!inner|!left](select)` items.
pub fn parse(s: &str) -> Result<Select, DomainError> {
    parse_list(s, 0, &mut 0)
}

fn parse_list(s: &str, depth: usize, embeds: &mut usize) -> Result<Select, DomainError> {
    let mut out = Select::default();
    for item in split_top(s)? {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        // A column, or a cast whose type takes modifiers (`x::numeric(10,2)`):
        // an embed's head never holds `::`.
        let open = match item.find('(') {
            Some(open) if !item[..open].contains("::") => open,
            _ => {
                out.columns.push(Field::parse(item)?);
                continue;
            }
        };
        // split_top balanced the parentheses, so the first `(` must close
        // at the end of the item; anything after it is malformed.
        let inner = item[open + 1..].strip_suffix(')').ok_or_else(|| {
            invalid(format!(
                "select: `{}` must end with `)`",
                item.chars().take(60).collect::<String>()
            ))
        })?;
        let mut embed = parse_head(item[..open].trim())?;
        count_embed(depth, embeds)?;
        embed.select = parse_list(inner, depth + 1, embeds)?;
        out.embeds.push(embed);
    }
    Ok(out)
}

fn count_embed(depth: usize, embeds: &mut usize) -> Result<(), DomainError> {
    if depth >= MAX_DEPTH {
        return Err(invalid(format!(
            "select: relations nest more than {MAX_DEPTH} levels deep"
        )));
    }
    *embeds += 1;
    if *embeds > MAX_EMBEDS {
        return Err(invalid(format!(
            "select: more than {MAX_EMBEDS} embedded relations"
        )));
    }
    Ok(())
}

/// Items at parenthesis depth zero; unbalanced parentheses are refused.
fn split_top(s: &str) -> Result<Vec<&str>, DomainError> {
    let unbalanced = || invalid("select: unbalanced parentheses");
    let (mut items, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or_else(unbalanced)?,
            ',' if depth == 0 => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(unbalanced());
    }
    items.push(&s[start..]);
    Ok(items)
}

/// `[alias:][schema.]relation[!hint][!inner|!left]`.
fn parse_head(head: &str) -> Result<Embed, DomainError> {
    let (alias, target) = match head.split_once(':') {
        Some((a, t)) => (Some(name("embed alias", a.trim())?), t.trim()),
        None => (None, head),
    };
    let mut parts = target.split('!');
    let relation = parts.next().unwrap_or_default().trim();
    let (mut hint, mut inner) = (None, false);
    for modifier in parts {
        match modifier.trim() {
            "inner" => inner = true,
            "left" => inner = false,
            h if hint.is_none() => hint = Some(name("relation hint", h)?.to_string()),
            _ => {
                return Err(invalid(format!(
                    "select: relation `{relation}` has more than one hint"
                )))
            }
        }
    }
    let (schema, relation) = split_qualified(relation)?;
    let mut e = Embed::new(
        alias.unwrap_or(relation).to_string(),
        schema.map(str::to_string),
        relation.to_string(),
    );
    e.hint = hint;
    e.inner = inner;
    Ok(e)
}

fn split_qualified(target: &str) -> Result<(Option<&str>, &str), DomainError> {
    Ok(match target.split_once('.') {
        Some((s, r)) => (Some(name("schema", s.trim())?), name("relation", r.trim())?),
        None => (None, name("relation", target)?),
    })
}

/// Parses the canonical nested object: `true`/`false` per column, a
/// string per renamed or cast column (`"clientId": "id"`, `"idText":
/// "id::text"`: the key is the output key), an object per relation with
/// `select` (object, string or `true`), optional `foreign_key`/`fk`,
/// `schema`, `table`/`relation` (when the key is an alias), `inner`, and
/// the embedded-resource parameters `where` (the fetch `where` object),
/// `order` (PostgREST order string), `limit`, `offset`.
pub fn from_object(m: &Map<String, Value>) -> Result<Select, DomainError> {
    object_list(m, 0, &mut 0)
}

fn object_list(
    m: &Map<String, Value>,
    depth: usize,
    embeds: &mut usize,
) -> Result<Select, DomainError> {
    let mut out = Select::default();
    for (k, v) in m {
        match v {
            Value::Bool(true) => out.columns.push(Field::plain(k.as_str())),
            Value::Bool(false) => {}
            Value::String(expr) => {
                let mut f = Field::parse(expr)?;
                if f.alias.is_some() || f.is_star() {
                    return Err(invalid(format!(
                        "select: `{k}`: the value is a column with an optional cast (`col::type`); the key is its alias"
                    )));
                }
                if f.column != *k {
                    f.alias = Some(name("column alias", k)?.to_string());
                }
                out.columns.push(f);
            }
            Value::Object(o) => {
                count_embed(depth, embeds)?;
                out.embeds.push(object_embed(k, o, depth, embeds)?);
            }
            _ => {
                return Err(invalid(format!(
                "select: `{k}` must be true, false, a column (`\"col::type\"`) or a relation object like {{\"select\": {{…}}}}"
            )))
            }
        }
    }
    Ok(out)
}

const EMBED_KEYS: [&str; 11] = [
    "select",
    "foreign_key",
    "fk",
    "schema",
    "table",
    "relation",
    "inner",
    "where",
    "order",
    "limit",
    "offset",
];

fn object_embed(
    key: &str,
    o: &Map<String, Value>,
    depth: usize,
    embeds: &mut usize,
) -> Result<Embed, DomainError> {
    // Anything else (an `on` clause, a misspelt key) would be silently
    // ignored if accepted, returning the wrong rows, so it is refused.
    if let Some(other) = o.keys().find(|k| !EMBED_KEYS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "select: relation `{key}`: `{other}` is not supported (allowed: {})",
            EMBED_KEYS.join(", ")
        )));
    }
    let text = |field: &str| -> Result<Option<&str>, DomainError> {
        match o.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(invalid(format!(
                "select: relation `{key}`: `{field}` must be a string"
            ))),
        }
    };
    let target = match (text("table")?, text("relation")?) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "select: relation `{key}`: give `table` or `relation`, not both"
            )))
        }
        (a, b) => a.or(b).unwrap_or(key),
    };
    let (qualified_schema, relation) = split_qualified(target)?;
    let schema = match (text("schema")?, qualified_schema) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "select: relation `{key}`: `schema` is given but `{target}` is already qualified"
            )))
        }
        (Some(s), None) => Some(name("schema", s)?),
        (None, s) => s,
    };
    let hint = match (text("foreign_key")?, text("fk")?) {
        (Some(a), Some(b)) if a != b => {
            return Err(invalid(format!(
                "select: relation `{key}`: `foreign_key` and `fk` disagree"
            )))
        }
        (a, b) => a.or(b).map(|h| name("relation hint", h)).transpose()?,
    };
    let inner = match o.get("inner") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(invalid(format!(
                "select: relation `{key}`: `inner` must be a boolean"
            )))
        }
    };
    let select = match o.get("select") {
        None | Some(Value::Bool(true)) => Select::all(),
        Some(Value::Object(m)) => object_list(m, depth + 1, embeds)?,
        Some(Value::String(s)) => parse_list(s, depth + 1, embeds)?,
        Some(_) => {
            return Err(invalid(format!(
                "select: relation `{key}`: `select` must be an object, a string or true"
            )))
        }
    };
    let mut e = Embed::new(
        name("embed alias", key)?.to_string(),
        schema.map(str::to_string),
        relation.to_string(),
    );
    e.hint = hint.map(str::to_string);
    e.inner = inner;
    e.select = select;
    match o.get("where") {
        None | Some(Value::Null) => {}
        Some(Value::Object(w)) => e.filters = super::cond::where_object(w)?,
        Some(_) => {
            return Err(invalid(format!(
                "select: relation `{key}`: `where` must be an object"
            )))
        }
    }
    match o.get("order") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => e.order = super::cond::parse_order(s)?,
        Some(v) => e.order = super::cond::order(v)?,
    }
    for (field, slot) in [("limit", &mut e.limit), ("offset", &mut e.offset)] {
        match o.get(field) {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_i64().filter(|n| *n >= 0) {
                Some(n) => *slot = Some(n),
                None => {
                    return Err(invalid(format!(
                        "select: relation `{key}`: `{field}` must be a whole number, not negative"
                    )))
                }
            },
        }
    }
    Ok(e)
}

/// Which way a relation runs from the parent's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// The parent holds the foreign key: an object, or null.
    ToOne,
    /// The related table holds a foreign key to the parent: an array.
    ToMany,
    /// A junction table holds foreign keys to both: an array.
    ManyToMany,
}

impl Cardinality {
    fn describe(self) -> &'static str {
        match self {
            Cardinality::ToOne => "many-to-one",
            Cardinality::ToMany => "one-to-many",
            Cardinality::ManyToMany => "many-to-many",
        }
    }
}

/// The junction table of a many-to-many embed.
#[derive(Debug, Clone)]
pub struct Junction {
    pub schema: Ident,
    pub table: Ident,
    /// `(junction column, related column)` pairs of its key to the
    /// related table.
    pub on: Vec<(Ident, Ident)>,
}

/// One resolved column of a level: a catalog name, its alias and its cast
/// (SQL text from `check_type_name`).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub column: Ident,
    pub alias: Option<Ident>,
    pub cast: Option<String>,
}

/// The columns one level returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    /// Every column of the table (`*`).
    pub star: bool,
    /// Named columns (under `star`, only aliased or cast ones).
    pub items: Vec<Item>,
}

impl Columns {
    /// Every column, nothing renamed.
    pub fn star() -> Columns {
        Columns {
            star: true,
            items: Vec::new(),
        }
    }
}

/// Resolves a level's fields in its table: unknown columns are
/// `column_not_found`, casts come from the closed type grammar, and two
/// values under one key are refused (the row object would keep one).
pub fn columns(table: &Table, fields: &[Field]) -> Result<Columns, DomainError> {
    let mut out = Columns {
        star: fields.iter().any(Field::is_star),
        items: Vec::with_capacity(fields.len()),
    };
    for f in fields.iter().filter(|f| !f.is_star()) {
        let col = table.column(&f.column)?;
        if out.star && f.is_plain() {
            continue;
        }
        let item = Item {
            column: Ident::parse("column", &col.name)?,
            alias: f
                .alias
                .as_deref()
                .map(|a| Ident::parse("column alias", a))
                .transpose()?,
            cast: f.cast.as_deref().map(check_type_name).transpose()?,
        };
        // Named twice, returned once.
        if out.items.contains(&item) {
            continue;
        }
        let key = f.key();
        let clash = out
            .items
            .iter()
            .any(|i| i.alias.as_ref().unwrap_or(&i.column).as_str() == key)
            || (out.star && table.columns.iter().any(|c| c.name == key));
        if clash {
            return Err(invalid(format!(
                "select: `{key}` would be returned twice; give one an alias (`other:{}`)",
                f.column
            )));
        }
        out.items.push(item);
    }
    Ok(out)
}

/// An embed resolved against the catalog: every identifier is a catalog name.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub key: Ident,
    pub schema: Ident,
    pub table: Ident,
    pub cardinality: Cardinality,
    /// `(parent column, related column)` pairs of the foreign key; for a
    /// many-to-many embed, `(parent column, junction column)`.
    pub on: Vec<(Ident, Ident)>,
    pub junction: Option<Junction>,
    pub inner: bool,
    pub columns: Columns,
    pub embeds: Vec<Resolved>,
    /// The related table (its filters' columns resolve there).
    pub def: Arc<Table>,
    /// Embedded-resource parameters.
    pub filters: Vec<Cond>,
    pub order: Vec<(Ident, Order)>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl Resolved {
    /// Whether the embed adds a key to its parent's rows (a relation with
    /// an empty select list only filters).
    fn projected(&self) -> bool {
        self.columns.star || !self.columns.items.is_empty() || !self.embeds.is_empty()
    }
}

/// Why a relation did not resolve: a missing edge may only mean the cached
/// catalog predates it, so it is retried once after a reload.
enum Miss {
    NoRelation(String),
    Other(DomainError),
}

impl From<DomainError> for Miss {
    fn from(e: DomainError) -> Self {
        Miss::Other(e)
    }
}

impl From<Miss> for DomainError {
    fn from(m: Miss) -> Self {
        match m {
            Miss::NoRelation(msg) => DomainError::Invalid(msg),
            Miss::Other(e) => e,
        }
    }
}

/// Resolves the embeds of `select` on `schema.table` (recursively), checking
/// every column and that no embed key collides with a column or another
/// embed.
pub async fn resolve(
    tenant: &Tenant,
    schema: &Ident,
    table: &Ident,
    select: &Select,
) -> Result<Vec<Resolved>, DomainError> {
    let resolved = match resolve_level(tenant, schema, table, select).await {
        Err(Miss::NoRelation(msg)) => {
            if tenant.schema.refresh(&tenant.pool).await? {
                resolve_level(tenant, schema, table, select).await?
            } else {
                return Err(DomainError::Invalid(msg));
            }
        }
        other => other?,
    };
    check_fan_out(&resolved)?;
    Ok(resolved)
}

/// How many one-to-many / many-to-many arrays may nest inside each other.
/// Each level multiplies the answer by its fan-out (up to `ATHENA_MAX_ROWS`
/// per array), so `a(b(a(b(a(…)))))` over a dense junction turns a few rows
/// into tens of megabytes; to-one embeds add no rows and do not count.
pub const MAX_TO_MANY_DEPTH: usize = 3;

fn to_many_depth(embeds: &[Resolved]) -> usize {
    embeds
        .iter()
        .filter(|e| e.projected())
        .map(|e| {
            usize::from(!matches!(e.cardinality, Cardinality::ToOne)) + to_many_depth(&e.embeds)
        })
        .max()
        .unwrap_or(0)
}

fn check_fan_out(embeds: &[Resolved]) -> Result<(), DomainError> {
    let depth = to_many_depth(embeds);
    if depth > MAX_TO_MANY_DEPTH {
        return Err(DomainError::Invalid(format!(
            "select: {depth} one-to-many embeds nest inside each other; at most {MAX_TO_MANY_DEPTH} may (each multiplies the answer)"
        )));
    }
    Ok(())
}

type LevelFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Resolved>, Miss>> + Send + 'a>>;

fn idents(cols: &[String], other: &[String]) -> Result<Vec<(Ident, Ident)>, DomainError> {
    cols.iter()
        .zip(other)
        .map(|(a, b)| Ok((Ident::parse("column", a)?, Ident::parse("column", b)?)))
        .collect()
}

/// Junction candidates for `e` seen from `schema.table` (PostgREST's rule):
/// a third table holding one foreign key to the parent and another to the
/// embed's relation, both made of primary-key columns of the junction (so
/// a table that merely references both, like comments with their own id,
/// is not one).
async fn junctions(
    tenant: &Tenant,
    fks: &[Arc<ForeignKey>],
    schema: &str,
    table: &str,
    e: &Embed,
) -> Result<Vec<(Arc<ForeignKey>, Arc<ForeignKey>)>, DomainError> {
    let mut out = Vec::new();
    let target =
        |s: &str, t: &str| t == e.relation && e.schema.as_deref().is_none_or(|want| want == s);
    for fk1 in fks.iter().filter(|fk| {
        fk.in_primary_key
            && fk.is_to(schema, table)
            && !fk.is_from(schema, table)
            && !target(&fk.schema, &fk.table)
    }) {
        let js = Ident::parse("schema", &fk1.schema)?;
        let jt = Ident::parse("table", &fk1.table)?;
        for fk2 in tenant.schema.foreign_keys(&tenant.pool, &js, &jt).await? {
            if fk2.in_primary_key
                && fk2.is_from(&fk1.schema, &fk1.table)
                && fk2.name != fk1.name
                && target(&fk2.ref_schema, &fk2.ref_table)
            {
                out.push((fk1.clone(), fk2));
            }
        }
    }
    Ok(out)
}

fn resolve_level<'a>(
    tenant: &'a Tenant,
    schema: &'a Ident,
    table: &'a Ident,
    select: &'a Select,
) -> LevelFuture<'a> {
    Box::pin(async move {
        let pool = &tenant.pool;
        let table_def = tenant.schema.table(pool, schema, table).await?;
        let fks = tenant.schema.foreign_keys(pool, schema, table).await?;
        check_keys(select, &table_def.columns, schema, table)?;
        let mut out = Vec::with_capacity(select.embeds.len());
        for e in &select.embeds {
            let junctions = junctions(tenant, &fks, schema.as_str(), table.as_str(), e).await?;
            let link = pick(&fks, &junctions, schema.as_str(), table.as_str(), e)?;
            let (cardinality, r_schema, r_table, on, junction) = match link {
                Link::Direct(fk, Cardinality::ToOne) => (
                    Cardinality::ToOne,
                    &fk.ref_schema,
                    &fk.ref_table,
                    idents(&fk.columns, &fk.ref_columns)?,
                    None,
                ),
                Link::Direct(fk, _) => (
                    Cardinality::ToMany,
                    &fk.schema,
                    &fk.table,
                    idents(&fk.ref_columns, &fk.columns)?,
                    None,
                ),
                Link::Junction(to_parent, to_related) => (
                    Cardinality::ManyToMany,
                    &to_related.ref_schema,
                    &to_related.ref_table,
                    idents(&to_parent.ref_columns, &to_parent.columns)?,
                    Some(Junction {
                        schema: Ident::parse("schema", &to_related.schema)?,
                        table: Ident::parse("table", &to_related.table)?,
                        on: idents(&to_related.columns, &to_related.ref_columns)?,
                    }),
                ),
            };
            let r_schema = Ident::parse("schema", r_schema)?;
            let r_table = Ident::parse("table", r_table)?;
            let related = tenant.schema.table(pool, &r_schema, &r_table).await?;
            let columns = columns(&related, &e.select.columns)?;
            let order = e
                .order
                .iter()
                .map(|o| Ok((sql::column_ident(&related, &o.column)?.0, o.clone())))
                .collect::<Result<_, DomainError>>()?;
            let embeds = resolve_level(tenant, &r_schema, &r_table, &e.select).await?;
            out.push(Resolved {
                key: Ident::parse("embed alias", &e.key)?,
                schema: r_schema,
                table: r_table,
                cardinality,
                on,
                junction,
                inner: e.inner,
                columns,
                embeds,
                def: related,
                filters: e.filters.clone(),
                order,
                limit: e.limit,
                offset: e.offset,
            });
        }
        Ok(out)
    })
}

/// Embed keys must not repeat, nor shadow a column the level returns:
/// the row object would silently keep only one of them.
fn check_keys(
    select: &Select,
    table_columns: &[crate::db::schema_cache::Column],
    schema: &Ident,
    table: &Ident,
) -> Result<(), DomainError> {
    let star = select.columns.iter().any(Field::is_star);
    let mut seen = HashSet::new();
    for e in &select.embeds {
        let key = e.key.as_str();
        let shadows = (star && table_columns.iter().any(|c| c.name == key))
            || select
                .columns
                .iter()
                .any(|c| !c.is_star() && c.key() == key);
        if shadows {
            return Err(invalid(format!(
                "select: embed `{key}` has the name of a column of `{}.{}`; give it an alias (`alias:{}(…)`)",
                schema.as_str(),
                table.as_str(),
                e.relation
            )));
        }
        if !seen.insert(key) {
            return Err(invalid(format!(
                "select: `{key}` is embedded twice; give one an alias (`alias:{}(…)`)",
                e.relation
            )));
        }
    }
    Ok(())
}

/// How the parent reaches the embed's relation.
#[derive(Debug, Clone, Copy)]
enum Link<'a> {
    Direct(&'a ForeignKey, Cardinality),
    /// `(junction → parent, junction → related)`.
    Junction(&'a ForeignKey, &'a ForeignKey),
}

impl Link<'_> {
    fn describe(&self) -> String {
        match self {
            Link::Direct(fk, c) => format!(
                "{} ({} via {}.{}({}))",
                fk.name,
                c.describe(),
                fk.schema,
                fk.table,
                fk.columns.join(", ")
            ),
            Link::Junction(a, b) => format!(
                "{} (many-to-many through {}.{} using {} and {})",
                a.table, a.schema, a.table, a.name, b.name
            ),
        }
    }

    /// The hint that picks this link. A self-reference (`employees.
    /// manager_id → employees`) links both ways over one key: its
    /// referencing column picks many-to-one (the manager), its constraint
    /// name one-to-many (the reports).
    fn hint(&self) -> &str {
        match self {
            Link::Direct(fk, Cardinality::ToOne) if self_reference(fk) && fk.columns.len() == 1 => {
                &fk.columns[0]
            }
            Link::Direct(fk, _) => &fk.name,
            Link::Junction(a, _) => &a.table,
        }
    }
}

fn self_reference(fk: &ForeignKey) -> bool {
    fk.schema == fk.ref_schema && fk.table == fk.ref_table
}

/// The one relationship linking `schema.table` to the embed's relation: a
/// foreign key in either direction or a junction table, narrowed by its
/// schema and hint (a constraint name, the referencing column of a
/// single-column key, or the junction table's name).
fn pick<'a>(
    fks: &'a [Arc<ForeignKey>],
    junctions: &'a [(Arc<ForeignKey>, Arc<ForeignKey>)],
    schema: &str,
    table: &str,
    e: &Embed,
) -> Result<Link<'a>, Miss> {
    let target =
        |s: &str, t: &str| t == e.relation && e.schema.as_deref().is_none_or(|want| want == s);
    let fk_hinted =
        |fk: &ForeignKey, h: &str| fk.name == h || (fk.columns.len() == 1 && fk.columns[0] == h);
    let hinted = |fk: &ForeignKey| e.hint.as_deref().is_none_or(|h| fk_hinted(fk, h));
    let mut found = Vec::new();
    for fk in fks.iter().map(Arc::as_ref).filter(|fk| hinted(fk)) {
        if fk.is_from(schema, table) && target(&fk.ref_schema, &fk.ref_table) {
            found.push(Link::Direct(fk, Cardinality::ToOne));
        }
        if fk.is_to(schema, table) && target(&fk.schema, &fk.table) {
            found.push(Link::Direct(fk, Cardinality::ToMany));
        }
    }
    // A hinted self-reference: see `Link::hint`.
    if let ([Link::Direct(a, Cardinality::ToOne), Link::Direct(b, Cardinality::ToMany)], Some(h)) =
        (found.as_slice(), e.hint.as_deref())
    {
        if std::ptr::eq(*a, *b) && self_reference(a) {
            let keep = if a.columns.len() == 1 && a.columns[0] == h {
                Cardinality::ToOne
            } else {
                Cardinality::ToMany
            };
            found.retain(|l| matches!(l, Link::Direct(_, c) if *c == keep));
        }
    }
    for (a, b) in junctions {
        let ok = e
            .hint
            .as_deref()
            .is_none_or(|h| a.table == h || fk_hinted(a, h) || fk_hinted(b, h));
        if ok {
            found.push(Link::Junction(a, b));
        }
    }
    let wanted = match &e.schema {
        Some(s) => format!("{s}.{}", e.relation),
        None => e.relation.clone(),
    };
    match found.len() {
        1 => Ok(found[0]),
        0 => Err(Miss::NoRelation(format!(
            "select: no relationship between `{schema}.{table}` and `{wanted}`{} was found; \
             embedding follows foreign keys between the two tables (or a junction table \
             holding one to each)",
            e.hint
                .as_deref()
                .map(|h| format!(" matching hint `{h}`"))
                .unwrap_or_default()
        ))),
        _ => {
            let candidates: Vec<String> = found.iter().map(Link::describe).collect();
            let hints: Vec<String> = found
                .iter()
                .map(|l| format!("`{}!{}(…)`", e.relation, l.hint()))
                .collect();
            Err(Miss::Other(invalid(format!(
                "select: more than one relationship between `{schema}.{table}` and `{wanted}`: {}; \
                 name one with a hint: {}",
                candidates.join("; "),
                hints.join(" or ")
            ))))
        }
    }
}

/// Numbers the table aliases of one statement (`_e1`, `_e2`, …) so nested
/// subqueries never capture each other's columns.
#[derive(Default)]
pub struct Aliases(usize);

impl Aliases {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("\"_e{}\"", self.0)
    }
}

/// One column of a select list: `alias.col[::type][ AS key]`.
fn item_sql(out: &mut String, alias: &str, i: &Item) {
    use std::fmt::Write;
    if !alias.is_empty() {
        out.push_str(alias);
        out.push('.');
    }
    let _ = write!(out, "{}", i.column);
    if let Some(t) = &i.cast {
        out.push_str("::");
        out.push_str(t);
    }
    match (&i.alias, &i.cast) {
        (Some(a), _) => {
            let _ = write!(out, " AS {a}");
        }
        (None, Some(_)) => {
            let _ = write!(out, " AS {}", i.column);
        }
        (None, None) => {}
    }
}

/// THE select-list renderer: the columns of one level over the relation
/// `alias` (`""`: unqualified, for a statement without embeds), then one
/// correlated subquery per projected embed. Reads render their base rows
/// through it, and so may writes (`WITH written AS (… RETURNING *) SELECT
/// <select_list over "written"> FROM written AS …`). Values of embedded
/// filters are bound into `st`.
///
/// `max_rows` caps each one-to-many array (`ATHENA_MAX_ROWS`): a base row
/// with more related rows embeds that many of them.
pub fn select_list(
    st: &mut Statement,
    alias: &str,
    columns: &Columns,
    embeds: &[Resolved],
    aliases: &mut Aliases,
    max_rows: i64,
) -> Result<String, DomainError> {
    let mut out = String::new();
    let sep = |out: &mut String| {
        if !out.is_empty() {
            out.push_str(", ");
        }
    };
    if columns.star {
        if alias.is_empty() {
            out.push('*');
        } else {
            out.push_str(alias);
            out.push_str(".*");
        }
    }
    for i in &columns.items {
        sep(&mut out);
        item_sql(&mut out, alias, i);
    }
    for e in embeds.iter().filter(|e| e.projected()) {
        let sub = subquery(st, e, alias, aliases, max_rows)?;
        sep(&mut out);
        out.push_str(&sub);
        out.push_str(" AS ");
        out.push_str(&e.key.to_string());
    }
    Ok(out)
}

/// `EXISTS` conditions for the `!inner` embeds of a level: the join, the
/// embed's own filters and its `!inner` children.
pub fn inner_filters(
    st: &mut Statement,
    parent: &str,
    embeds: &[Resolved],
    aliases: &mut Aliases,
) -> Result<Vec<String>, DomainError> {
    let mut out = Vec::new();
    for e in embeds.iter().filter(|e| e.inner) {
        let alias = aliases.next();
        out.push(format!(
            "EXISTS (SELECT 1 FROM {}.{} AS {alias} WHERE {})",
            e.schema,
            e.table,
            conditions(st, e, &alias, parent, aliases)?
        ));
    }
    Ok(out)
}

/// The relationship (foreign-key equalities, or the junction's `EXISTS`),
/// the embed's filters, and its own `!inner` children. Filters name the
/// related table's columns unqualified: the subquery's `FROM` holds only
/// that table, which SQL resolves first.
fn conditions(
    st: &mut Statement,
    e: &Resolved,
    alias: &str,
    parent: &str,
    aliases: &mut Aliases,
) -> Result<String, DomainError> {
    let mut conds: Vec<String> = match &e.junction {
        None => {
            e.on.iter()
                .map(|(p, r)| format!("{alias}.{r} = {parent}.{p}"))
                .collect()
        }
        Some(j) => {
            let ja = aliases.next();
            let mut on: Vec<String> =
                e.on.iter()
                    .map(|(p, jc)| format!("{ja}.{jc} = {parent}.{p}"))
                    .collect();
            on.extend(
                j.on.iter()
                    .map(|(jc, r)| format!("{ja}.{jc} = {alias}.{r}")),
            );
            vec![format!(
                "EXISTS (SELECT 1 FROM {}.{} AS {ja} WHERE {})",
                j.schema,
                j.table,
                on.join(" AND ")
            )]
        }
    };
    if let Some(w) = sql::where_clause(st, &e.filters, &e.def)? {
        conds.push(w);
    }
    conds.extend(inner_filters(st, alias, &e.embeds, aliases)?);
    Ok(conds.join(" AND "))
}

/// A correlated subquery yielding the embed's JSON: the row object (or
/// null) for many-to-one, the array (`[]` when none) otherwise; with the
/// embed's order, limit and offset.
fn subquery(
    st: &mut Statement,
    e: &Resolved,
    parent: &str,
    aliases: &mut Aliases,
    max_rows: i64,
) -> Result<String, DomainError> {
    let alias = aliases.next();
    let list = select_list(st, &alias, &e.columns, &e.embeds, aliases, max_rows)?;
    let mut from = format!(
        "SELECT {list} FROM {}.{} AS {alias} WHERE {}",
        e.schema,
        e.table,
        conditions(st, e, &alias, parent, aliases)?
    );
    if !e.order.is_empty() {
        from.push_str(" ORDER BY ");
        for (n, (col, o)) in e.order.iter().enumerate() {
            if n > 0 {
                from.push_str(", ");
            }
            from.push_str(&format!(
                "{alias}.{col} {}{}",
                if o.descending { "DESC" } else { "ASC" },
                match o.nulls_first {
                    Some(true) => " NULLS FIRST",
                    Some(false) => " NULLS LAST",
                    None => "",
                }
            ));
        }
    }
    Ok(match e.cardinality {
        // A foreign key references a unique key, so there is at most one
        // row; LIMIT 1 lets the planner stop at it. `"_r".*` (not `"_r"`)
        // so a related column named `_r` cannot be mistaken for the row.
        Cardinality::ToOne => {
            format!("(SELECT row_to_json(\"_r\".*) FROM ({from} LIMIT 1) AS \"_r\")")
        }
        // The array is capped like the base rows (the cap is a literal
        // from the configuration; the caller's `rel.limit`/`rel.offset`
        // are bound).
        Cardinality::ToMany | Cardinality::ManyToMany => {
            let cap = max_rows.max(0);
            match e.limit {
                Some(l) => {
                    let p = st.bind(l.clamp(0, cap));
                    from.push_str(&format!(" LIMIT {p}"));
                }
                None => from.push_str(&format!(" LIMIT {cap}")),
            }
            if let Some(o) = e.offset {
                let p = st.bind(o.max(0));
                from.push_str(&format!(" OFFSET {p}"));
            }
            format!("(SELECT coalesce(json_agg(\"_r\".*), '[]'::json) FROM ({from}) AS \"_r\")")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn embed(key: &str, relation: &str, select: Select) -> Embed {
        let mut e = Embed::new(key.into(), None, relation.into());
        e.select = select;
        e
    }

    fn cols(c: &[&str]) -> Select {
        Select {
            columns: c.iter().map(|c| Field::plain(*c)).collect(),
            embeds: vec![],
        }
    }

    #[test]
    fn string_grammar() {
        let s = parse(
            "id, name ,author:users!items_owner_fkey!inner(id,name),athena.tags(*, kinds(label))",
        )
        .unwrap();
        assert_eq!(s.columns, vec![Field::plain("id"), Field::plain("name")]);
        assert_eq!(s.embeds.len(), 2);
        let a = &s.embeds[0];
        assert_eq!(
            (
                a.key.as_str(),
                a.relation.as_str(),
                a.hint.as_deref(),
                a.inner
            ),
            ("author", "users", Some("items_owner_fkey"), true)
        );
        assert_eq!(a.select, cols(&["id", "name"]));
        let t = &s.embeds[1];
        assert_eq!(
            (t.key.as_str(), t.schema.as_deref(), t.relation.as_str()),
            ("tags", Some("athena"), "tags")
        );
        assert_eq!(t.select.columns, vec![Field::plain("*")]);
        assert_eq!(t.select.embeds[0].relation, "kinds");
        // Plain lists keep the old meaning.
        assert_eq!(parse("a, b,,").unwrap(), cols(&["a", "b"]));
        assert_eq!(parse("").unwrap(), Select::default());
        // Empty parentheses: a filter-only relation.
        assert_eq!(
            parse("u!inner()").unwrap().embeds[0].select,
            Select::default()
        );
    }

    #[test]
    fn malformed_strings_are_refused() {
        for bad in [
            "users(id",
            "users)id(",
            "users(id)x",
            "a(b)c(d)",
            "(id)",
            ":users(id)",
            "users!a!b(id)",
            "users!(id)",
            ".users(id)",
        ] {
            assert!(matches!(parse(bad), Err(DomainError::Invalid(_))), "{bad}");
        }
        let deep = format!(
            "{}id{}",
            "r(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(parse(&deep).is_err());
        let ok = format!("{}id{}", "r(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let wide = vec!["r(id)"; MAX_EMBEDS + 1].join(",");
        assert!(parse(&wide).is_err());
    }

    #[test]
    fn canonical_object() {
        let v = json!({
            "id": true, "secret": false,
            "users": {"select": {"id": true, "name": true}},
            "owner": {"table": "athena.users", "fk": "owner_id", "inner": true, "select": "id,name"},
            "tags": {}
        });
        let s = from_object(v.as_object().unwrap()).unwrap();
        assert_eq!(s.columns, vec![Field::plain("id")]);
        let by_key = |k: &str| s.embeds.iter().find(|e| e.key == k).unwrap();
        assert_eq!(by_key("users").select, cols(&["id", "name"]));
        let owner = by_key("owner");
        assert_eq!(
            (
                owner.schema.as_deref(),
                owner.relation.as_str(),
                owner.hint.as_deref(),
                owner.inner
            ),
            (Some("athena"), "users", Some("owner_id"), true)
        );
        assert_eq!(by_key("tags").select, cols(&["*"]));
        // Aliases and casts as strings; embedded-resource parameters.
        let s = from_object(
            json!({"uid": "id", "name": "name::text", "users": {"select": "id",
                   "where": {"id": {"gt": 1}}, "order": "id.desc", "limit": 2, "offset": 1}})
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            s.columns,
            vec![
                Field {
                    column: "name".into(),
                    alias: None,
                    cast: Some("text".into())
                },
                Field {
                    column: "id".into(),
                    alias: Some("uid".into()),
                    cast: None
                },
            ]
        );
        let u = &s.embeds[0];
        assert_eq!(
            (u.filters.len(), u.order.len(), u.limit, u.offset),
            (1, 1, Some(2), Some(1))
        );
        for bad in [
            json!({"users": {"where": 5}}),
            json!({"users": {"limit": -1}}),
            json!({"users": {"order": "id.sideways"}}),
            json!({"x": "a:b"}),
            json!({"x": "id::int;drop"}),
            json!({"users": {"on": "x"}}),
            json!({"users": 1}),
            json!({"users": {"fk": 3}}),
            json!({"users": {"schema": "a", "table": "b.users"}}),
            json!({"users": {"foreign_key": "a", "fk": "b"}}),
            json!({"users": {"select": 5}}),
        ] {
            assert!(from_object(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }

    fn fk(name: &str, from: (&str, &str, &[&str]), to: (&str, &str, &[&str])) -> Arc<ForeignKey> {
        let v = |c: &[&str]| c.iter().map(|c| c.to_string()).collect();
        Arc::new(ForeignKey {
            name: name.into(),
            schema: from.0.into(),
            table: from.1.into(),
            columns: v(from.2),
            ref_schema: to.0.into(),
            ref_table: to.1.into(),
            ref_columns: v(to.2),
            in_primary_key: false,
        })
    }

    fn picked(
        fks: &[Arc<ForeignKey>],
        table: &str,
        e: &Embed,
    ) -> Result<(String, Cardinality), String> {
        match pick(fks, &[], "public", table, e) {
            Ok(Link::Direct(fk, c)) => Ok((fk.name.clone(), c)),
            Ok(Link::Junction(a, _)) => Ok((a.table.clone(), Cardinality::ManyToMany)),
            Err(Miss::NoRelation(m)) => Err(format!("none: {m}")),
            Err(Miss::Other(e)) => Err(format!("{e:?}")),
        }
    }

    #[test]
    fn picks_foreign_keys_by_direction_schema_and_hint() {
        let fks = vec![
            fk(
                "items_owner_fkey",
                ("public", "items", &["owner_id"]),
                ("public", "users", &["id"]),
            ),
            fk(
                "items_editor_fkey",
                ("public", "items", &["editor_id"]),
                ("public", "users", &["id"]),
            ),
            fk(
                "items_cat_fkey",
                ("public", "items", &["a", "b"]),
                ("athena", "cats", &["x", "y"]),
            ),
            fk(
                "notes_item_fkey",
                ("public", "notes", &["item_id"]),
                ("public", "items", &["id"]),
            ),
        ];
        let mut e = embed("users", "users", Select::default());
        let err = picked(&fks, "items", &e).unwrap_err();
        assert!(
            err.contains("items_owner_fkey") && err.contains("items_editor_fkey"),
            "{err}"
        );
        e.hint = Some("items_editor_fkey".into());
        assert_eq!(
            picked(&fks, "items", &e).unwrap(),
            ("items_editor_fkey".into(), Cardinality::ToOne)
        );
        e.hint = Some("owner_id".into());
        assert_eq!(
            picked(&fks, "items", &e).unwrap(),
            ("items_owner_fkey".into(), Cardinality::ToOne)
        );
        e.hint = Some("nope".into());
        assert!(picked(&fks, "items", &e).unwrap_err().starts_with("none"));
        // One-to-many, from the referenced side.
        let notes = embed("notes", "notes", Select::default());
        assert_eq!(
            picked(&fks, "items", &notes).unwrap(),
            ("notes_item_fkey".into(), Cardinality::ToMany)
        );
        let items = embed("items", "items", Select::default());
        assert_eq!(
            picked(&fks, "notes", &items).unwrap(),
            ("notes_item_fkey".into(), Cardinality::ToOne)
        );
        // Schema narrowing.
        let mut cats = embed("cats", "cats", Select::default());
        assert!(picked(&fks, "items", &cats).is_ok());
        cats.schema = Some("public".into());
        assert!(picked(&fks, "items", &cats)
            .unwrap_err()
            .starts_with("none"));
        // A hostile name simply matches nothing.
        let hostile = embed("x", "users\"; drop table items; --", Select::default());
        assert!(picked(&fks, "items", &hostile)
            .unwrap_err()
            .starts_with("none"));
    }

    fn id(s: &str) -> Ident {
        Ident::parse("t", s).unwrap()
    }

    fn def(cols: &[(&str, &str)]) -> Arc<Table> {
        Arc::new(Table {
            columns: cols
                .iter()
                .map(|(n, t)| crate::db::schema_cache::Column {
                    name: n.to_string(),
                    type_name: t.to_string(),
                })
                .collect(),
        })
    }

    fn resolved(key: &str, schema: &str, table: &str, c: Cardinality) -> Resolved {
        Resolved {
            key: id(key),
            schema: id(schema),
            table: id(table),
            cardinality: c,
            on: vec![],
            junction: None,
            inner: false,
            columns: Columns::star(),
            embeds: vec![],
            def: def(&[("id", "integer"), ("name", "text"), ("user_id", "integer")]),
            filters: vec![],
            order: vec![],
            limit: None,
            offset: None,
        }
    }

    fn item(c: &str, alias: Option<&str>, cast: Option<&str>) -> Item {
        Item {
            column: id(c),
            alias: alias.map(id),
            cast: cast.map(|t| check_type_name(t).unwrap()),
        }
    }

    #[test]
    fn renders_correlated_subqueries() {
        let mut tags = resolved("tags", "public", "tags", Cardinality::ToMany);
        tags.on = vec![(id("id"), id("user_id"))];
        tags.inner = true;
        let mut owner = resolved("owner", "athena", "users", Cardinality::ToOne);
        owner.on = vec![(id("owner_id"), id("id")), (id("org"), id("org"))];
        owner.columns = Columns {
            star: false,
            items: vec![item("name", None, None)],
        };
        owner.embeds = vec![tags];
        let mut aliases = Aliases::default();
        let mut st = Statement::new();
        let list = select_list(
            &mut st,
            BASE_ALIAS,
            &Columns {
                star: false,
                items: vec![item("id", None, None)],
            },
            std::slice::from_ref(&owner),
            &mut aliases,
            50,
        )
        .unwrap();
        assert_eq!(
            list,
            "\"_b\".\"id\", (SELECT row_to_json(\"_r\".*) FROM (SELECT \"_e1\".\"name\", \
             (SELECT coalesce(json_agg(\"_r\".*), '[]'::json) FROM (SELECT \"_e2\".* FROM \"public\".\"tags\" AS \"_e2\" \
             WHERE \"_e2\".\"user_id\" = \"_e1\".\"id\" LIMIT 50) AS \"_r\") AS \"tags\" \
             FROM \"athena\".\"users\" AS \"_e1\" WHERE \"_e1\".\"id\" = \"_b\".\"owner_id\" AND \"_e1\".\"org\" = \"_b\".\"org\" \
             AND EXISTS (SELECT 1 FROM \"public\".\"tags\" AS \"_e3\" WHERE \"_e3\".\"user_id\" = \"_e1\".\"id\") \
             LIMIT 1) AS \"_r\") AS \"owner\""
        );
        assert!(st.params.is_empty());
        owner.inner = true;
        owner.embeds.clear();
        let filters = inner_filters(
            &mut Statement::new(),
            BASE_ALIAS,
            &[owner],
            &mut Aliases::default(),
        )
        .unwrap();
        assert_eq!(
            filters,
            vec!["EXISTS (SELECT 1 FROM \"athena\".\"users\" AS \"_e1\" WHERE \"_e1\".\"id\" = \"_b\".\"owner_id\" \
                  AND \"_e1\".\"org\" = \"_b\".\"org\")"]
        );
    }
}
