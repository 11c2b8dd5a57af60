//! SQL text from callers who may not run raw SQL (`/query/count`, the
//! SDK's lookups on `/gateway/query`), parsed with a real SQL parser
//! (`sqlparser`, PostgreSQL dialect) into the same structured read as
//! `/gateway/fetch`. The caller's text never reaches Postgres: identifiers
//! are resolved against the schema cache and quoted, literals are bound,
//! and the SQL is built again by `read`.
//!
//! Accepted: one `SELECT` (`COUNT(*)` for counts; `*` or plain columns for
//! rows) `FROM` one table (optionally schema-qualified, no alias), a
//! `WHERE` of `AND`/`OR`/`NOT` over comparisons (`=`, `<>`, `<`, `<=`, `>`,
//! `>=`), `[NOT] LIKE`/`ILIKE`, `IS [NOT] NULL`, `[NOT] IN (…)` and
//! `[NOT] BETWEEN` between a column (optionally `::type`) and literals
//! (strings, numbers, booleans, optionally `::type`); for rows also `ORDER
//! BY` columns, `LIMIT` and `OFFSET`. Everything else (comments, several
//! statements, `UNION`, CTEs, joins, subqueries, function calls, `GROUP
//! BY`, `HAVING`, `DISTINCT`, `FOR UPDATE`, system schemas, …) is refused
//! with a message naming it.
//!
//! Completeness does not rest on listing every clause: after the parts
//! above are taken out, they are put into a template statement parsed from
//! `SELECT … FROM t`, and the result must equal the caller's statement. A
//! clause the conversion did not look at makes the two differ.

use super::filter::{check_type_name, Cond, Filter, FilterValue, Operator};
use super::read::{Order, ReadQuery};
use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use sqlparser::ast::{
    self, BinaryOperator, CastKind, Expr, InTarget, LimitClause, ObjectName, OrderByKind,
    OrderBySort, Query, SelectItem, SetExpr, Statement, TableFactor, UnaryOperator, Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// Longest text accepted (the SDK's lookups are a few hundred bytes).
pub const MAX_TEXT: usize = 16 * 1024;
/// Parser recursion bound (nested parentheses).
const RECURSION_LIMIT: usize = 48;
/// Most tokens, and most operator/keyword tokens that chain expressions
/// (`AND`, `OR`, `+`, `::`, …). The parser builds `a AND b AND …` and
/// `1 + 1 + …` as trees as deep as the chain, which its recursion limit
/// does not count, and walking (printing, dropping, converting) such a
/// tree recurses once per level: bounding the chain bounds the depth.
const MAX_TOKENS: usize = 4096;
const MAX_CHAIN: usize = 256;

/// What the text must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `SELECT COUNT(*) FROM t [WHERE …]`.
    Count,
    /// `SELECT * | cols FROM t [WHERE …] [ORDER BY …] [LIMIT n] [OFFSET n]`.
    Rows,
}

fn refused(what: impl std::fmt::Display) -> DomainError {
    DomainError::Invalid(format!("query refused: {what}"))
}

/// Parses `sql` into a structured read of the given shape.
pub fn parse(sql: &str, shape: Shape) -> Result<ReadQuery, DomainError> {
    parse_in(sql, shape, None)
}

/// `parse`, reading an unqualified table in `default_schema` (the
/// request's `schema_name`) instead of `public`.
pub fn parse_in(
    sql: &str,
    shape: Shape,
    default_schema: Option<&str>,
) -> Result<ReadQuery, DomainError> {
    if sql.len() > MAX_TEXT {
        return Err(refused(format!("longer than {MAX_TEXT} bytes")));
    }
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| refused(format!("not valid SQL ({e})")))?;
    if tokens.iter().any(|t| {
        matches!(
            t,
            Token::Whitespace(
                Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)
            )
        )
    }) {
        return Err(refused("comments are not allowed"));
    }
    let solid = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .count();
    let chain = tokens
        .iter()
        .filter(|t| match t {
            Token::Word(w) => matches!(
                w.keyword,
                sqlparser::keywords::Keyword::AND
                    | sqlparser::keywords::Keyword::OR
                    | sqlparser::keywords::Keyword::NOT
            ),
            Token::Whitespace(_)
            | Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::Comma
            | Token::LParen
            | Token::RParen
            | Token::Period
            | Token::SemiColon
            | Token::EOF => false,
            // Operators and punctuation that join expressions.
            _ => true,
        })
        .count();
    if solid > MAX_TOKENS || chain > MAX_CHAIN {
        return Err(refused(format!(
            "too long: at most {MAX_TOKENS} tokens and {MAX_CHAIN} operators"
        )));
    }
    let statements = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens(tokens)
        .parse_statements()
        .map_err(|e| refused(format!("not valid SQL ({e})")))?;
    let [statement] = statements.as_slice() else {
        return Err(refused(format!(
            "exactly one statement is allowed, found {}",
            statements.len()
        )));
    };
    let Statement::Query(query) = statement else {
        return Err(refused("only SELECT is allowed"));
    };
    convert(statement, query, shape, default_schema.unwrap_or("public"))
}

fn convert(
    original: &Statement,
    query: &Query,
    shape: Shape,
    default_schema: &str,
) -> Result<ReadQuery, DomainError> {
    if query.with.is_some() {
        return Err(refused("WITH (common table expressions) is not allowed"));
    }
    if !query.locks.is_empty() {
        return Err(refused(
            "locking clauses (FOR UPDATE/SHARE) are not allowed",
        ));
    }
    let select = match query.body.as_ref() {
        SetExpr::Select(select) => select,
        SetExpr::SetOperation { op, .. } => {
            return Err(refused(format!("{op} is not allowed")));
        }
        _ => return Err(refused("only a plain SELECT … FROM table is allowed")),
    };
    if select.distinct.is_some() {
        return Err(refused("DISTINCT is not allowed"));
    }
    if !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
    {
        return Err(refused("GROUP BY is not allowed"));
    }
    if select.having.is_some() {
        return Err(refused("HAVING is not allowed"));
    }
    if select.into.is_some() {
        return Err(refused("SELECT INTO is not allowed"));
    }
    let [from] = select.from.as_slice() else {
        return Err(refused("exactly one table is allowed in FROM"));
    };
    if !from.joins.is_empty() {
        return Err(refused("joins are not allowed"));
    }
    let TableFactor::Table {
        name, alias, args, ..
    } = &from.relation
    else {
        return Err(refused(
            "FROM must name a table (no subqueries or functions)",
        ));
    };
    if alias.is_some() {
        return Err(refused("table aliases are not allowed"));
    }
    if args.is_some() {
        return Err(refused("table functions are not allowed"));
    }
    let (schema, table) = table_name(name, default_schema)?;
    let names = Names {
        schema: &schema,
        table: &table,
    };
    let columns = match shape {
        Shape::Count => {
            let is_count = matches!(
                select.projection.as_slice(),
                [SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }]
                    if e.to_string().eq_ignore_ascii_case("count(*)")
            );
            if !is_count {
                return Err(refused("the query must select exactly COUNT(*)"));
            }
            None
        }
        Shape::Rows => projection(&select.projection, &names)?,
    };
    let filters = match &select.selection {
        None => Vec::new(),
        Some(e) => vec![condition(e, &names)?],
    };
    let mut order = Vec::new();
    let (mut limit, mut offset) = (None, None);
    if shape == Shape::Count && (query.order_by.is_some() || query.limit_clause.is_some()) {
        return Err(refused(
            "ORDER BY, LIMIT and OFFSET are not allowed in a count",
        ));
    }
    if let Some(order_by) = &query.order_by {
        let OrderByKind::Expressions(items) = &order_by.kind else {
            return Err(refused("ORDER BY ALL is not allowed"));
        };
        if order_by.interpolate.is_some() {
            return Err(refused("INTERPOLATE is not allowed"));
        }
        for item in items {
            if item.with_fill.is_some() {
                return Err(refused("WITH FILL is not allowed"));
            }
            let column = column(&item.expr, &names)?;
            if column.1.is_some() {
                return Err(refused("casts are not allowed in ORDER BY"));
            }
            let descending = match item.options.sort {
                None | Some(OrderBySort::Asc) => false,
                Some(OrderBySort::Desc) => true,
                Some(_) => return Err(refused("ORDER BY … USING is not allowed")),
            };
            order.push(Order {
                column: column.0,
                descending,
                nulls_first: item.options.nulls_first,
            });
        }
    }
    match &query.limit_clause {
        None => {}
        Some(LimitClause::LimitOffset {
            limit: l,
            offset: o,
            limit_by,
        }) if limit_by.is_empty() => {
            limit = l.as_ref().map(integer).transpose()?;
            offset = o.as_ref().map(|o| integer(&o.value)).transpose()?;
        }
        Some(_) => return Err(refused("only LIMIT n and OFFSET n are allowed")),
    }
    // Completeness: the parts taken out, put back into a template, must
    // give the caller's statement; any clause not looked at above differs.
    let template_sql = match shape {
        Shape::Count => "SELECT count(*) FROM t",
        Shape::Rows => "SELECT * FROM t",
    };
    let mut template = Parser::parse_sql(&PostgreSqlDialect {}, template_sql)
        .ok()
        .and_then(|mut v| v.pop())
        .ok_or_else(|| DomainError::Internal("sql_text template".into()))?;
    if let Statement::Query(t) = &mut template {
        if let SetExpr::Select(ts) = t.body.as_mut() {
            // `*` stays the template's own (no wildcard options); listed
            // columns and COUNT(*) were checked item by item above.
            if columns.is_some() || shape == Shape::Count {
                ts.projection = select.projection.clone();
            }
            // Only the table's name: every other part of the table factor
            // (TABLESAMPLE, ONLY/`*`, hints, …) must be the template's.
            if let Some(TableFactor::Table { name: tn, .. }) =
                ts.from.first_mut().map(|f| &mut f.relation)
            {
                *tn = name.clone();
            }
            ts.selection = select.selection.clone();
        }
        t.order_by = query.order_by.clone();
        t.limit_clause = query.limit_clause.clone();
    }
    if &template != original {
        return Err(refused(
            "only SELECT … FROM table [WHERE …] [ORDER BY …] [LIMIT n] [OFFSET n] is allowed",
        ));
    }
    Ok(ReadQuery {
        columns: columns.map(|c| c.into_iter().map(super::embed::Field::from).collect()),
        filters,
        order,
        limit,
        offset,
        ..ReadQuery::table(
            Ident::parse("schema", &schema)?,
            Ident::parse("table", &table)?,
        )
    })
}

/// The name as Postgres reads it: quoted keeps its case, bare folds.
fn ident_value(i: &ast::Ident) -> String {
    match i.quote_style {
        Some('"') => i.value.clone(),
        // Postgres folds only ASCII letters of unquoted names.
        _ => i.value.to_ascii_lowercase(),
    }
}

/// `table` or `schema.table`; system schemas are refused.
fn table_name(name: &ObjectName, default_schema: &str) -> Result<(String, String), DomainError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(ident_value)
                .ok_or_else(|| refused("table names must be identifiers"))
        })
        .collect::<Result<_, _>>()?;
    let (schema, table) = match parts.as_slice() {
        [t] => (default_schema.to_string(), t.clone()),
        [s, t] => (s.clone(), t.clone()),
        _ => return Err(refused("a table is `table` or `schema.table`")),
    };
    if crate::db::tenants::is_system_schema(&schema) {
        return Err(refused(format!("schema `{schema}` is not readable here")));
    }
    Ok((schema, table))
}

struct Names<'a> {
    schema: &'a str,
    table: &'a str,
}

fn projection(items: &[SelectItem], names: &Names) -> Result<Option<Vec<String>>, DomainError> {
    if let [SelectItem::Wildcard(_)] = items {
        return Ok(None);
    }
    items
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => match column(e, names)? {
                (c, None) => Ok(c),
                _ => Err(refused("casts are not allowed in the select list")),
            },
            SelectItem::Wildcard(_) => Err(refused("`*` must be the only selected item")),
            _ => Err(refused("only plain columns may be selected (no aliases)")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A column reference (`c`, `t.c`, `s.t.c`), optionally cast: (name, cast).
fn column(e: &Expr, names: &Names) -> Result<(String, Option<String>), DomainError> {
    match e {
        Expr::Nested(inner) => column(inner, names),
        Expr::Identifier(i) => Ok((ident_value(i), None)),
        Expr::CompoundIdentifier(parts) => {
            let parts: Vec<String> = parts.iter().map(ident_value).collect();
            let ok = match parts.as_slice() {
                [t, _] => t == names.table,
                [s, t, _] => s == names.schema && t == names.table,
                _ => false,
            };
            match (ok, parts.last()) {
                (true, Some(c)) => Ok((c.clone(), None)),
                _ => Err(refused("columns must belong to the queried table")),
            }
        }
        Expr::Cast {
            kind: CastKind::DoubleColon | CastKind::Cast,
            expr,
            data_type,
            format: None,
        } => match column(expr, names)? {
            (c, None) => Ok((c, Some(cast(data_type)?))),
            _ => Err(refused("one cast per column")),
        },
        other => Err(refused(format!("`{}` is not a column", short(other)))),
    }
}

/// A literal, optionally cast: (text or NULL, cast).
fn literal(e: &Expr) -> Result<(Option<String>, Option<String>), DomainError> {
    match e {
        Expr::Nested(inner) => literal(inner),
        Expr::Value(v) => Ok((value(&v.value)?, None)),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => Ok((Some(format!("-{n}")), None)),
                _ => Err(refused("`-` applies to numbers only")),
            },
            _ => Err(refused("`-` applies to numbers only")),
        },
        Expr::Cast {
            kind: CastKind::DoubleColon | CastKind::Cast,
            expr,
            data_type,
            format: None,
        } => match literal(expr)? {
            (v, None) => Ok((v, Some(cast(data_type)?))),
            _ => Err(refused("one cast per value")),
        },
        other => Err(refused(format!(
            "`{}` is not a literal (values must be strings, numbers, booleans or NULL)",
            short(other)
        ))),
    }
}

fn value(v: &Value) -> Result<Option<String>, DomainError> {
    match v {
        Value::SingleQuotedString(s) => Ok(Some(s.clone())),
        Value::Number(n, _) => Ok(Some(n.to_string())),
        Value::Boolean(b) => Ok(Some(b.to_string())),
        Value::Null => Ok(None),
        other => Err(refused(format!("literal `{other}` is not allowed"))),
    }
}

fn cast(t: &ast::DataType) -> Result<String, DomainError> {
    let text = t.to_string();
    check_type_name(&text)?;
    Ok(text)
}

fn integer(e: &Expr) -> Result<i64, DomainError> {
    match literal(e)? {
        (Some(n), None) => n
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| refused("LIMIT and OFFSET take a non-negative integer")),
        _ => Err(refused("LIMIT and OFFSET take a non-negative integer")),
    }
}

/// The start of an expression, for messages.
fn short(e: &Expr) -> String {
    let s = e.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

fn condition(e: &Expr, names: &Names) -> Result<Cond, DomainError> {
    Ok(match e {
        Expr::Nested(inner) => condition(inner, names)?,
        Expr::BinaryOp {
            left,
            op: op @ (BinaryOperator::And | BinaryOperator::Or),
            right,
        } => {
            let (l, r) = (condition(left, names)?, condition(right, names)?);
            // Flatten chains so `a AND b AND c` is one group.
            let and = *op == BinaryOperator::And;
            let mut items = Vec::new();
            for c in [l, r] {
                match c {
                    Cond::And(inner) if and => items.extend(inner),
                    Cond::Or(inner) if !and => items.extend(inner),
                    other => items.push(other),
                }
            }
            if and {
                Cond::And(items)
            } else {
                Cond::Or(items)
            }
        }
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => Cond::Not(Box::new(condition(expr, names)?)),
        Expr::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Eq => Operator::Eq,
                BinaryOperator::NotEq => Operator::Neq,
                BinaryOperator::Gt => Operator::Gt,
                BinaryOperator::GtEq => Operator::Gte,
                BinaryOperator::Lt => Operator::Lt,
                BinaryOperator::LtEq => Operator::Lte,
                other => return Err(refused(format!("operator `{other}` is not allowed"))),
            };
            // `column op literal`, or `literal op column` (mirrored).
            let (col, lit, op) = match column(left, names) {
                Ok(col) => (col, literal(right)?, op),
                Err(_) => (column(right, names)?, literal(left)?, mirror(op)),
            };
            let (Some(v), value_cast) = lit else {
                return Err(refused("comparing with NULL is never true: use IS NULL"));
            };
            filter(col, op, FilterValue::Text(v), value_cast)
        }
        Expr::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        }
        | Expr::ILike {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => {
            let op = match e {
                Expr::Like { .. } => Operator::Like,
                _ => Operator::ILike,
            };
            let (Some(p), value_cast) = literal(pattern)? else {
                return Err(refused("LIKE needs a pattern"));
            };
            negate(
                *negated,
                filter(column(expr, names)?, op, FilterValue::Text(p), value_cast),
            )
        }
        Expr::IsNull(expr) => filter(column(expr, names)?, Operator::Is, FilterValue::Null, None),
        Expr::IsNotNull(expr) => Cond::Not(Box::new(filter(
            column(expr, names)?,
            Operator::Is,
            FilterValue::Null,
            None,
        ))),
        Expr::In {
            expr,
            target: InTarget::List(list),
            negated,
            global: false,
        } => {
            let mut items = Vec::with_capacity(list.len());
            let mut value_cast = None;
            for (i, item) in list.iter().enumerate() {
                let (Some(v), c) = literal(item)? else {
                    return Err(refused("IN lists cannot contain NULL"));
                };
                if i > 0 && c != value_cast {
                    return Err(refused("IN list items must share one cast"));
                }
                value_cast = c;
                items.push(v);
            }
            negate(
                *negated,
                filter(
                    column(expr, names)?,
                    Operator::In,
                    FilterValue::List(items),
                    value_cast,
                ),
            )
        }
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let col = column(expr, names)?;
            let bound = |e: &Expr, op| -> Result<Cond, DomainError> {
                let (Some(v), c) = literal(e)? else {
                    return Err(refused("BETWEEN bounds cannot be NULL"));
                };
                Ok(filter(col.clone(), op, FilterValue::Text(v), c))
            };
            negate(
                *negated,
                Cond::And(vec![
                    bound(low, Operator::Gte)?,
                    bound(high, Operator::Lte)?,
                ]),
            )
        }
        other => {
            return Err(refused(format!(
                "`{}` is not an allowed condition",
                short(other)
            )))
        }
    })
}

fn mirror(op: Operator) -> Operator {
    match op {
        Operator::Gt => Operator::Lt,
        Operator::Gte => Operator::Lte,
        Operator::Lt => Operator::Gt,
        Operator::Lte => Operator::Gte,
        other => other,
    }
}

fn negate(negated: bool, c: Cond) -> Cond {
    if negated {
        Cond::Not(Box::new(c))
    } else {
        c
    }
}

fn filter(
    (column, column_cast): (String, Option<String>),
    op: Operator,
    value: FilterValue,
    value_cast: Option<String>,
) -> Cond {
    Cond::Filter(Filter {
        column,
        op,
        value,
        column_cast,
        value_cast,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(sql: &str) -> Result<ReadQuery, DomainError> {
        parse(sql, Shape::Count)
    }

    #[test]
    fn counts() {
        let q = count("SELECT COUNT(*) FROM items").unwrap();
        assert_eq!((q.schema.as_str(), q.table.as_str()), ("public", "items"));
        assert!(q.filters.is_empty());
        let q = count(
            "select count(*) as n from \"App\".Items where (a = 1 or b <> 'x') and not c is null \
             and d in ('p', 'q') and e between 1 and 5 and f ilike '%z%' and 3 < g and h::text = 'k';",
        )
        .unwrap();
        assert_eq!((q.schema.as_str(), q.table.as_str()), ("App", "items"));
        let Cond::And(items) = &q.filters[0] else {
            panic!("{:?}", q.filters)
        };
        // BETWEEN is two bounds, flattened into the AND chain.
        assert_eq!(items.len(), 8);
        let Cond::Filter(f) = &items[6] else { panic!() };
        assert_eq!((f.column.as_str(), f.op), ("g", Operator::Gt));
        let Cond::Filter(f) = &items[7] else { panic!() };
        assert_eq!(f.column_cast.as_deref(), Some("TEXT"));
    }

    #[test]
    fn count_refusals_name_what_was_refused() {
        for (sql, why) in [
            (
                "SELECT COUNT(*) FROM items; DELETE FROM items",
                "one statement",
            ),
            ("SELECT COUNT(*) FROM items -- x", "comments"),
            ("SELECT COUNT(*) FROM items /* x */", "comments"),
            ("SELECT COUNT(*) FROM items UNION SELECT 1", "UNION"),
            (
                "WITH d AS (DELETE FROM items RETURNING *) SELECT COUNT(*) FROM d",
                "WITH",
            ),
            (
                "SELECT COUNT(*) FROM items WHERE pg_sleep(5) IS NULL",
                "not a column",
            ),
            ("SELECT COUNT(*) FROM items FOR UPDATE", "locking"),
            ("SELECT COUNT(*) FROM pg_catalog.pg_authid", "pg_catalog"),
            ("SELECT COUNT(*) FROM items GROUP BY name", "GROUP BY"),
            ("SELECT COUNT(*) FROM items HAVING COUNT(*) > 1", "HAVING"),
            ("SELECT COUNT(*) FROM items, other", "one table"),
            ("SELECT COUNT(*) FROM items JOIN o ON true", "joins"),
            ("SELECT COUNT(*) FROM (SELECT 1) s", "subqueries"),
            ("SELECT COUNT(*) FROM items i", "aliases"),
            (
                "SELECT COUNT(*) FROM items WHERE id = (SELECT 1)",
                "literal",
            ),
            ("SELECT COUNT(*) FROM items WHERE id = NULL", "IS NULL"),
            ("SELECT COUNT(DISTINCT id) FROM items", "COUNT(*)"),
            ("SELECT *, COUNT(*) FROM items", "COUNT(*)"),
            ("SELECT COUNT(*) FROM items LIMIT 1", "LIMIT"),
            ("DELETE FROM items", "only SELECT"),
            (
                "SELECT COUNT(*) FROM items WHERE a::int) OR (1 = 1",
                "valid SQL",
            ),
            ("SELECT COUNT(*) FROM items WHERE a = E'x'", "not allowed"),
            ("SELECT COUNT(*) FROM items WHERE a = $1", "literal"),
            (
                "SELECT COUNT(*) FROM items TABLESAMPLE SYSTEM (1)",
                "allowed",
            ),
            ("SELECT COUNT(*) FROM ONLY items", "allowed"),
            ("SELECT * FROM items", "COUNT(*)"),
        ] {
            let err = count(sql).expect_err(sql);
            let DomainError::Invalid(msg) = err else {
                panic!("{sql}: {err:?}")
            };
            assert!(msg.contains(why), "{sql}: {msg}");
        }
    }

    #[test]
    fn deep_chains_are_refused_before_parsing() {
        // `1+1+…` and `a AND a AND …` build trees as deep as the chain;
        // printing or dropping one would overflow the stack.
        let plus = format!("SELECT COUNT(*) FROM t WHERE a = 1{}", "+1".repeat(8000));
        let and = format!(
            "SELECT COUNT(*) FROM t WHERE a = 1{}",
            " AND a = 1".repeat(1500)
        );
        let cast = format!("SELECT COUNT(*) FROM t WHERE a = 1{}", "::int".repeat(3000));
        for sql in [plus, and, cast] {
            let err = count(&sql).expect_err("refused");
            let DomainError::Invalid(msg) = err else {
                panic!("{err:?}")
            };
            assert!(msg.contains("too long"), "{msg}");
        }
        // A long IN list is flat, not deep: fine.
        let list = (0..1000)
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(count(&format!("SELECT COUNT(*) FROM t WHERE a IN ({list})")).is_ok());
        // A schema for unqualified tables; ASCII-only folding.
        let q = parse_in("SELECT * FROM Élan", Shape::Rows, Some("app")).unwrap();
        assert_eq!((q.schema.as_str(), q.table.as_str()), ("app", "Élan"));
    }

    #[test]
    fn rows_and_the_sdk_lookup() {
        let q = parse(
            "SELECT * FROM \"items\" WHERE \"id\"::text = '6f1c1a52-56b6-4c39-9d8e-0f3e0c7f6b11';",
            Shape::Rows,
        )
        .unwrap();
        assert_eq!(q.columns, None);
        let Cond::Filter(f) = &q.filters[0] else {
            panic!()
        };
        assert_eq!(f.column, "id");
        assert_eq!(f.column_cast.as_deref(), Some("TEXT"));
        let q = parse(
            "SELECT \"id\", \"na\"\"me\" FROM \"app\".\"users\" WHERE \"org_id\"::text = 'a''b' \
             ORDER BY \"id\" DESC NULLS LAST LIMIT 5 OFFSET 10",
            Shape::Rows,
        )
        .unwrap();
        assert_eq!(q.columns, Some(vec!["id".into(), "na\"me".into()]));
        assert_eq!((q.limit, q.offset), (Some(5), Some(10)));
        assert!(q.order[0].descending);
        assert_eq!(q.order[0].nulls_first, Some(false));
        let Cond::Filter(f) = &q.filters[0] else {
            panic!()
        };
        assert_eq!(f.value, FilterValue::Text("a'b".into()));
        for sql in [
            "SELECT id AS x FROM items",
            "SELECT lower(name) FROM items",
            "SELECT * FROM items ORDER BY random()",
            "SELECT * FROM items LIMIT -1",
            "SELECT * FROM items FETCH FIRST 1 ROWS ONLY",
            "SELECT DISTINCT * FROM items",
        ] {
            assert!(parse(sql, Shape::Rows).is_err(), "{sql}");
        }
    }
}
