//! Relation embedding in `select`, PostgREST style. The string grammar
//! (`id,author:users!owner_id!inner(id,name)`) and the canonical nested
//! object (`{"id": true, "users": {"select": {"id": true}}}`) parse into one
//! tree; each relation is resolved against the tenant's foreign keys and
//! rendered as a correlated subquery, so Postgres builds the nested JSON in
//! the same statement as the base rows.

use crate::db::schema_cache::ForeignKey;
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
    /// Column names in request order; `*` stands for every column.
    pub columns: Vec<String>,
    pub embeds: Vec<Embed>,
}

impl Select {
    fn all() -> Select {
        Select {
            columns: vec!["*".into()],
            embeds: Vec::new(),
        }
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
        let Some(open) = item.find('(') else {
            out.columns.push(item.to_string());
            continue;
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
    Ok(Embed {
        key: alias.unwrap_or(relation).to_string(),
        schema: schema.map(str::to_string),
        relation: relation.to_string(),
        hint,
        inner,
        select: Select::default(),
    })
}

fn split_qualified(target: &str) -> Result<(Option<&str>, &str), DomainError> {
    Ok(match target.split_once('.') {
        Some((s, r)) => (Some(name("schema", s.trim())?), name("relation", r.trim())?),
        None => (None, name("relation", target)?),
    })
}

/// Parses the canonical nested object: `true`/`false` per column, an object
/// per relation with `select` (object, string or `true`), optional
/// `foreign_key`/`fk`, `schema`, `table`/`relation` (when the key is an
/// alias) and `inner`.
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
            Value::Bool(true) => out.columns.push(k.clone()),
            Value::Bool(false) => {}
            Value::Object(o) => {
                count_embed(depth, embeds)?;
                out.embeds.push(object_embed(k, o, depth, embeds)?);
            }
            _ => {
                return Err(invalid(format!(
                "select: `{k}` must be true, false or a relation object like {{\"select\": {{…}}}}"
            )))
            }
        }
    }
    Ok(out)
}

const EMBED_KEYS: [&str; 7] = [
    "select",
    "foreign_key",
    "fk",
    "schema",
    "table",
    "relation",
    "inner",
];

fn object_embed(
    key: &str,
    o: &Map<String, Value>,
    depth: usize,
    embeds: &mut usize,
) -> Result<Embed, DomainError> {
    // Filters, ordering or `on` clauses on a relation would be silently
    // ignored if accepted, returning the wrong rows, so they are refused.
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
    Ok(Embed {
        key: name("embed alias", key)?.to_string(),
        schema: schema.map(str::to_string),
        relation: relation.to_string(),
        hint: hint.map(str::to_string),
        inner,
        select,
    })
}

/// Which way a foreign key runs from the parent's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// The parent holds the foreign key: an object, or null.
    ToOne,
    /// The related table holds a foreign key to the parent: an array.
    ToMany,
}

impl Cardinality {
    fn describe(self) -> &'static str {
        match self {
            Cardinality::ToOne => "many-to-one",
            Cardinality::ToMany => "one-to-many",
        }
    }
}

/// An embed resolved against the catalog: every identifier is a catalog name.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub key: Ident,
    pub schema: Ident,
    pub table: Ident,
    pub cardinality: Cardinality,
    /// `(parent column, related column)` pairs of the foreign key.
    pub on: Vec<(Ident, Ident)>,
    pub inner: bool,
    /// Every column of the related table.
    pub star: bool,
    /// Named columns (left out when `star`).
    pub columns: Vec<Ident>,
    pub embeds: Vec<Resolved>,
}

impl Resolved {
    /// Whether the embed adds a key to its parent's rows (a relation with
    /// an empty select list only filters).
    fn projected(&self) -> bool {
        self.star || !self.columns.is_empty() || !self.embeds.is_empty()
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
    match resolve_level(tenant, schema, table, select).await {
        Err(Miss::NoRelation(msg)) => {
            if tenant.schema.refresh(&tenant.pool).await? {
                Ok(resolve_level(tenant, schema, table, select).await?)
            } else {
                Err(DomainError::Invalid(msg))
            }
        }
        other => Ok(other?),
    }
}

type LevelFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Resolved>, Miss>> + Send + 'a>>;

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
            let (fk, cardinality) = pick(&fks, schema.as_str(), table.as_str(), e)?;
            let (r_schema, r_table, parent_cols, related_cols) = match cardinality {
                Cardinality::ToOne => (&fk.ref_schema, &fk.ref_table, &fk.columns, &fk.ref_columns),
                Cardinality::ToMany => (&fk.schema, &fk.table, &fk.ref_columns, &fk.columns),
            };
            let r_schema = Ident::parse("schema", r_schema)?;
            let r_table = Ident::parse("table", r_table)?;
            let related = tenant.schema.table(pool, &r_schema, &r_table).await?;
            let mut star = false;
            let mut columns = Vec::new();
            for c in &e.select.columns {
                if c == "*" {
                    star = true;
                } else {
                    columns.push(Ident::parse("column", &related.column(c)?.name)?);
                }
            }
            if star {
                columns.clear();
            }
            let on = parent_cols
                .iter()
                .zip(related_cols)
                .map(|(p, r)| Ok((Ident::parse("column", p)?, Ident::parse("column", r)?)))
                .collect::<Result<_, DomainError>>()?;
            let embeds = resolve_level(tenant, &r_schema, &r_table, &e.select).await?;
            out.push(Resolved {
                key: Ident::parse("embed alias", &e.key)?,
                schema: r_schema,
                table: r_table,
                cardinality,
                on,
                inner: e.inner,
                star,
                columns,
                embeds,
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
    let star = select.columns.iter().any(|c| c == "*");
    let mut seen = HashSet::new();
    for e in &select.embeds {
        let key = e.key.as_str();
        let shadows = if star {
            table_columns.iter().any(|c| c.name == key)
        } else {
            select.columns.iter().any(|c| c == key)
        };
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

/// The one foreign key linking `schema.table` to the embed's relation (in
/// either direction), narrowed by its schema and hint.
fn pick<'a>(
    fks: &'a [Arc<ForeignKey>],
    schema: &str,
    table: &str,
    e: &Embed,
) -> Result<(&'a ForeignKey, Cardinality), Miss> {
    let target =
        |s: &str, t: &str| t == e.relation && e.schema.as_deref().is_none_or(|want| want == s);
    let hinted = |fk: &ForeignKey| {
        e.hint
            .as_deref()
            .is_none_or(|h| fk.name == h || (fk.columns.len() == 1 && fk.columns[0] == h))
    };
    let mut found = Vec::new();
    for fk in fks.iter().map(Arc::as_ref).filter(|fk| hinted(fk)) {
        if fk.is_from(schema, table) && target(&fk.ref_schema, &fk.ref_table) {
            found.push((fk, Cardinality::ToOne));
        }
        if fk.is_to(schema, table) && target(&fk.schema, &fk.table) {
            found.push((fk, Cardinality::ToMany));
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
             embedding follows foreign keys between the two tables",
            e.hint
                .as_deref()
                .map(|h| format!(" matching hint `{h}`"))
                .unwrap_or_default()
        ))),
        _ => {
            let candidates: Vec<String> = found
                .iter()
                .map(|(fk, c)| {
                    format!(
                        "{} ({} via {}.{}({}))",
                        fk.name,
                        c.describe(),
                        fk.schema,
                        fk.table,
                        fk.columns.join(", ")
                    )
                })
                .collect();
            Err(Miss::Other(invalid(format!(
                "select: more than one relationship between `{schema}.{table}` and `{wanted}`: {}; \
                 name one with a hint, e.g. `{}!{}(…)`",
                candidates.join("; "),
                e.relation,
                found[0].0.name
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

/// The select list of one level: `alias.*` or its columns, then one
/// subquery per projected embed.
///
/// `max_rows` caps each one-to-many array (`ATHENA_MAX_ROWS`): a base row
/// with more related rows embeds that many of them.
pub fn select_list(
    alias: &str,
    star: bool,
    columns: &[Ident],
    embeds: &[Resolved],
    aliases: &mut Aliases,
    max_rows: i64,
) -> String {
    let mut items = Vec::new();
    if star {
        items.push(format!("{alias}.*"));
    }
    items.extend(columns.iter().map(|c| format!("{alias}.{c}")));
    for e in embeds.iter().filter(|e| e.projected()) {
        items.push(format!(
            "{} AS {}",
            subquery(e, alias, aliases, max_rows),
            e.key
        ));
    }
    items.join(", ")
}

/// `EXISTS` conditions for the `!inner` embeds of a level.
pub fn inner_filters(parent: &str, embeds: &[Resolved], aliases: &mut Aliases) -> Vec<String> {
    embeds
        .iter()
        .filter(|e| e.inner)
        .map(|e| {
            let alias = aliases.next();
            format!(
                "EXISTS (SELECT 1 FROM {}.{} AS {alias} WHERE {})",
                e.schema,
                e.table,
                join_condition(e, &alias, parent, aliases)
            )
        })
        .collect()
}

/// The foreign-key equalities, plus the level's own `!inner` children.
fn join_condition(e: &Resolved, alias: &str, parent: &str, aliases: &mut Aliases) -> String {
    let mut conds: Vec<String> =
        e.on.iter()
            .map(|(p, r)| format!("{alias}.{r} = {parent}.{p}"))
            .collect();
    conds.extend(inner_filters(alias, &e.embeds, aliases));
    conds.join(" AND ")
}

/// A correlated subquery yielding the embed's JSON: the row object (or
/// null) for many-to-one, the array (`[]` when none) for one-to-many.
fn subquery(e: &Resolved, parent: &str, aliases: &mut Aliases, max_rows: i64) -> String {
    let alias = aliases.next();
    let list = select_list(&alias, e.star, &e.columns, &e.embeds, aliases, max_rows);
    let from = format!(
        "SELECT {list} FROM {}.{} AS {alias} WHERE {}",
        e.schema,
        e.table,
        join_condition(e, &alias, parent, aliases)
    );
    match e.cardinality {
        // A foreign key references a unique key, so there is at most one
        // row; LIMIT 1 lets the planner stop at it. `"_r".*` (not `"_r"`)
        // so a related column named `_r` cannot be mistaken for the row.
        Cardinality::ToOne => {
            format!("(SELECT row_to_json(\"_r\".*) FROM ({from} LIMIT 1) AS \"_r\")")
        }
        // The array is capped like the base rows (a literal: the cap is
        // a number from the configuration, never caller input).
        Cardinality::ToMany => {
            let cap = max_rows.max(0);
            format!(
                "(SELECT coalesce(json_agg(\"_r\".*), '[]'::json) FROM ({from} LIMIT {cap}) AS \"_r\")"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn embed(key: &str, relation: &str, select: Select) -> Embed {
        Embed {
            key: key.into(),
            schema: None,
            relation: relation.into(),
            hint: None,
            inner: false,
            select,
        }
    }

    fn cols(c: &[&str]) -> Select {
        Select {
            columns: c.iter().map(|c| c.to_string()).collect(),
            embeds: vec![],
        }
    }

    #[test]
    fn string_grammar() {
        let s = parse(
            "id, name ,author:users!items_owner_fkey!inner(id,name),athena.tags(*, kinds(label))",
        )
        .unwrap();
        assert_eq!(s.columns, vec!["id", "name"]);
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
        assert_eq!(t.select.columns, vec!["*"]);
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
        assert_eq!(s.columns, vec!["id"]);
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
        for bad in [
            json!({"users": {"where": {"id": 1}}}),
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
        })
    }

    fn picked(
        fks: &[Arc<ForeignKey>],
        table: &str,
        e: &Embed,
    ) -> Result<(String, Cardinality), String> {
        match pick(fks, "public", table, e) {
            Ok((fk, c)) => Ok((fk.name.clone(), c)),
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

    #[test]
    fn renders_correlated_subqueries() {
        let tags = Resolved {
            key: id("tags"),
            schema: id("public"),
            table: id("tags"),
            cardinality: Cardinality::ToMany,
            on: vec![(id("id"), id("user_id"))],
            inner: true,
            star: true,
            columns: vec![],
            embeds: vec![],
        };
        let owner = Resolved {
            key: id("owner"),
            schema: id("athena"),
            table: id("users"),
            cardinality: Cardinality::ToOne,
            on: vec![(id("owner_id"), id("id")), (id("org"), id("org"))],
            inner: false,
            star: false,
            columns: vec![id("name")],
            embeds: vec![tags],
        };
        let mut aliases = Aliases::default();
        let list = select_list(
            BASE_ALIAS,
            false,
            &[id("id")],
            std::slice::from_ref(&owner),
            &mut aliases,
            50,
        );
        assert_eq!(
            list,
            "\"_b\".\"id\", (SELECT row_to_json(\"_r\".*) FROM (SELECT \"_e1\".\"name\", \
             (SELECT coalesce(json_agg(\"_r\".*), '[]'::json) FROM (SELECT \"_e2\".* FROM \"public\".\"tags\" AS \"_e2\" \
             WHERE \"_e2\".\"user_id\" = \"_e1\".\"id\" LIMIT 50) AS \"_r\") AS \"tags\" \
             FROM \"athena\".\"users\" AS \"_e1\" WHERE \"_e1\".\"id\" = \"_b\".\"owner_id\" AND \"_e1\".\"org\" = \"_b\".\"org\" \
             AND EXISTS (SELECT 1 FROM \"public\".\"tags\" AS \"_e3\" WHERE \"_e3\".\"user_id\" = \"_e1\".\"id\") \
             LIMIT 1) AS \"_r\") AS \"owner\""
        );
        let mut owner = owner;
        owner.inner = true;
        owner.embeds.clear();
        let filters = inner_filters(BASE_ALIAS, &[owner], &mut Aliases::default());
        assert_eq!(
            filters,
            vec!["EXISTS (SELECT 1 FROM \"athena\".\"users\" AS \"_e1\" WHERE \"_e1\".\"id\" = \"_b\".\"owner_id\" \
                  AND \"_e1\".\"org\" = \"_b\".\"org\")"]
        );
    }
}
