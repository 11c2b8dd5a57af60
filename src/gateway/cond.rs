//! The SDK's JSON request shapes → condition trees and orderings:
//! `conditions[]` (legacy `eq_column`/`eq_value` and the 14 operators of
//! athena-js), the `where` object (`{col: v}`, `{col: {op: v}}`, `or`/`and`/
//! `not`), `where_filters[]`, and every ordering spelling (`sort_by`,
//! `orderBy`, PostgREST `order`). Operators only from the closed set of
//! `filter::Operator`; casts only through `filter::check_type_name`.

use super::filter::{check_type_name, Cond, Filter, FilterValue, Operator, MAX_DEPTH};
use super::read::Order;
use crate::domain::DomainError;
use serde_json::{Map, Value};

fn invalid(msg: impl Into<String>) -> DomainError {
    DomainError::Invalid(msg.into())
}

fn str_field<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

fn cast_field(obj: &Map<String, Value>, keys: &[&str]) -> Result<Option<String>, DomainError> {
    str_field(obj, keys)
        .map(|t| check_type_name(t).map(|_| t.to_string()))
        .transpose()
}

/// `conditions`: an array of condition objects (ANDed).
pub fn conditions(items: &Value) -> Result<Vec<Cond>, DomainError> {
    match items {
        Value::Null => Ok(Vec::new()),
        Value::Array(list) => list.iter().map(|c| condition(c, None, 0)).collect(),
        _ => Err(invalid("conditions must be an array")),
    }
}

/// One condition object. `outer_column` is the column of an enclosing `not`.
pub fn condition(c: &Value, outer_column: Option<&str>, depth: usize) -> Result<Cond, DomainError> {
    if depth > MAX_DEPTH {
        return Err(invalid("conditions are nested too deeply"));
    }
    let obj = c
        .as_object()
        .ok_or_else(|| invalid("each condition must be an object"))?;
    let column = str_field(obj, &["column", "eq_column"]).or(outer_column);
    let value = obj
        .get("value")
        .or_else(|| obj.get("eq_value"))
        .cloned()
        .unwrap_or(Value::Null);
    let column_cast = cast_field(obj, &["column_cast", "eq_column_cast"])?;
    let value_cast = cast_field(obj, &["value_cast", "eq_value_cast"])?;
    let operator = str_field(obj, &["operator", "op"]);
    match operator {
        Some("or") | Some("and") => {
            let or = operator == Some("or");
            match &value {
                Value::String(s) => Cond::from_postgrest_list(s, or),
                Value::Array(items) => {
                    let inner = items
                        .iter()
                        .map(|i| condition(i, column, depth + 1))
                        .collect::<Result<Vec<_>, _>>()?;
                    if inner.is_empty() {
                        return Err(invalid("empty `or`/`and` condition"));
                    }
                    Ok(if or {
                        Cond::Or(inner)
                    } else {
                        Cond::And(inner)
                    })
                }
                _ => Err(invalid(
                    "`or`/`and` take a PostgREST string (a.eq.1,b.gt.2) or a list of conditions",
                )),
            }
        }
        Some("not") => {
            let inner = match &value {
                Value::Object(_) => condition(&value, column, depth + 1)?,
                Value::String(s) => match column {
                    // `{column, operator: "not", value: "eq.5"}`
                    // (or the SDK's `col.op.v` with a redundant column)
                    Some(col) => {
                        Cond::from_postgrest(col, s).or_else(|e| match s.split_once('.') {
                            Some((c, expr)) if c == col => Cond::from_postgrest(c, expr),
                            _ => Err(e),
                        })?
                    }
                    // SDK `not(col, op, v)` → `value: "col.op.v"`
                    None => {
                        let (col, expr) = s
                            .split_once('.')
                            .ok_or_else(|| invalid("`not` value must look like column.op.value"))?;
                        Cond::from_postgrest(col, expr)?
                    }
                },
                _ => {
                    return Err(invalid(
                        "`not` takes {operator, value} or a PostgREST string (col.op.value)",
                    ))
                }
            };
            Ok(Cond::Not(Box::new(inner)))
        }
        other => {
            let op = match other {
                Some(o) => Operator::parse(o)?,
                None => Operator::Eq,
            };
            let column = column.ok_or_else(|| invalid("each condition needs a column"))?;
            let mut f = Filter::new(column, op, FilterValue::from_json(op, &value)?);
            f.column_cast = column_cast;
            f.value_cast = value_cast;
            Ok(f.into())
        }
    }
}

/// `where_filters`: `[{column, operator, value | values, column_cast, value_cast}]`.
pub fn where_filters(items: &Value) -> Result<Vec<Cond>, DomainError> {
    let Value::Array(list) = items else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|item| {
            let mut item = item.clone();
            if let Some(obj) = item.as_object_mut() {
                if !obj.contains_key("value") {
                    if let Some(values) = obj.remove("values") {
                        obj.insert("value".into(), values);
                    }
                }
            }
            condition(&item, None, 0)
        })
        .collect()
}

/// The `where` object: `{col: value}` (equality, null → IS NULL),
/// `{col: {op: value, …}}`, and `or: [where…]`, `and: [where…]`, `not: where`.
pub fn where_object(map: &Map<String, Value>) -> Result<Vec<Cond>, DomainError> {
    where_rec(map, 0)
}

fn where_rec(map: &Map<String, Value>, depth: usize) -> Result<Vec<Cond>, DomainError> {
    if depth > MAX_DEPTH {
        return Err(invalid("`where` is nested too deeply"));
    }
    let mut out = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            "or" | "and" | "OR" | "AND" => {
                let list: Vec<&Map<String, Value>> = match value {
                    Value::Array(items) => items
                        .iter()
                        .map(|i| {
                            i.as_object().ok_or_else(|| {
                                invalid(format!("`where.{key}` items must be objects"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                    Value::Object(m) => vec![m],
                    _ => return Err(invalid(format!("`where.{key}` must be a list of objects"))),
                };
                let mut groups = Vec::new();
                for m in list {
                    groups.push(Cond::And(where_rec(m, depth + 1)?));
                }
                if groups.is_empty() {
                    return Err(invalid(format!("`where.{key}` is empty")));
                }
                out.push(if key.eq_ignore_ascii_case("or") {
                    Cond::Or(groups)
                } else {
                    Cond::And(groups)
                });
            }
            "not" | "NOT" => {
                let m = value
                    .as_object()
                    .ok_or_else(|| invalid("`where.not` must be an object"))?;
                out.push(Cond::Not(Box::new(Cond::And(where_rec(m, depth + 1)?))));
            }
            column => out.push(column_ops(column, value, depth)?),
        }
    }
    Ok(out)
}

/// `{op: value, …}` on one column, or a plain value for equality.
fn column_ops(column: &str, value: &Value, depth: usize) -> Result<Cond, DomainError> {
    if depth > MAX_DEPTH {
        return Err(invalid("`where` is nested too deeply"));
    }
    let Value::Object(ops) = value else {
        return Ok(Filter::new(
            column,
            Operator::Eq,
            FilterValue::from_json(Operator::Eq, value)?,
        )
        .into());
    };
    let mut parts = Vec::new();
    for (op, v) in ops {
        match op.as_str() {
            "not" => parts.push(Cond::Not(Box::new(column_ops(column, v, depth + 1)?))),
            "equals" => parts.push(
                Filter::new(
                    column,
                    Operator::Eq,
                    FilterValue::from_json(Operator::Eq, v)?,
                )
                .into(),
            ),
            o => {
                let op = Operator::parse(o)?;
                parts.push(Filter::new(column, op, FilterValue::from_json(op, v)?).into());
            }
        }
    }
    if parts.is_empty() {
        return Err(invalid(format!("`where.{column}` has no operator")));
    }
    Ok(if parts.len() == 1 {
        parts.remove(0)
    } else {
        Cond::And(parts)
    })
}

/// Every ordering spelling: `{field, direction}`, `{column, ascending}`,
/// `{col: "asc"|"desc"}`, `"col"`, `"col.desc.nullslast,other"`, `"col desc"`,
/// `"-col"`, and lists of those.
pub fn order(v: &Value) -> Result<Vec<Order>, DomainError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => parse_order(s),
        Value::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(order(i)?);
            }
            Ok(out)
        }
        Value::Object(obj) => {
            if let Some(column) = str_field(obj, &["field", "column"]) {
                let mut o = Order {
                    column: column.to_string(),
                    descending: false,
                    nulls_first: None,
                };
                if let Some(d) = obj.get("direction").or_else(|| obj.get("order")) {
                    o.descending = direction(d)?;
                }
                if let Some(asc) = obj.get("ascending") {
                    o.descending = !asc
                        .as_bool()
                        .ok_or_else(|| invalid("`ascending` must be a boolean"))?;
                }
                if let Some(n) = obj.get("nulls_first").or_else(|| obj.get("nullsFirst")) {
                    o.nulls_first = n.as_bool();
                }
                if let Some(n) = obj.get("nulls").and_then(Value::as_str) {
                    o.nulls_first = match n {
                        "first" => Some(true),
                        "last" => Some(false),
                        _ => return Err(invalid("`nulls` is first or last")),
                    };
                }
                Ok(vec![o])
            } else {
                obj.iter()
                    .map(|(column, d)| {
                        Ok(Order {
                            column: column.clone(),
                            descending: direction(d)?,
                            nulls_first: None,
                        })
                    })
                    .collect()
            }
        }
        _ => Err(invalid("unsupported ordering")),
    }
}

/// Whether a direction value means descending.
fn direction(d: &Value) -> Result<bool, DomainError> {
    match d {
        Value::Bool(asc) => Ok(!asc),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "asc" | "ascending" => Ok(false),
            "desc" | "descending" => Ok(true),
            _ => Err(invalid(
                "direction must be asc, desc, ascending or descending",
            )),
        },
        _ => Err(invalid(
            "direction must be asc, desc, ascending or descending",
        )),
    }
}

/// `col.desc.nullslast,other` (also `col desc`, `col:desc`, `-col`) → orders.
pub fn parse_order(s: &str) -> Result<Vec<Order>, DomainError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let part = part.trim();
            let (part, desc_prefix) = match part.strip_prefix('-') {
                Some(rest) => (rest, true),
                None => (part, false),
            };
            let mut pieces = part.split(['.', ' ', ':']).filter(|p| !p.is_empty());
            let column = pieces.next().unwrap_or_default().to_string();
            let mut order = Order {
                column,
                descending: desc_prefix,
                nulls_first: None,
            };
            for modifier in pieces {
                match modifier.to_ascii_lowercase().as_str() {
                    "asc" | "ascending" => order.descending = false,
                    "desc" | "descending" => order.descending = true,
                    "nullsfirst" => order.nulls_first = Some(true),
                    "nullslast" => order.nulls_first = Some(false),
                    other => {
                        return Err(invalid(format!(
                            "unknown order modifier `{}`",
                            other.chars().take(40).collect::<String>()
                        )))
                    }
                }
            }
            Ok(order)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(column: &str, op: Operator, v: FilterValue) -> Cond {
        Filter::new(column, op, v).into()
    }

    #[test]
    fn sdk_conditions() {
        let c = conditions(&json!([
            {"operator": "eq", "column": "name", "eq_column": "name", "value": "a", "eq_value": "a"},
            {"eq_column": "n", "eq_value": 5},
            {"operator": "gt", "column": "n", "value": 1.5},
            {"operator": "in", "column": "n", "value": [1, 2]},
            {"operator": "is", "column": "note", "value": null},
            {"operator": "not", "value": "n.eq.3"},
            {"operator": "not", "column": "n", "value": {"operator": "eq", "value": 4}},
            {"operator": "or", "value": "n.eq.1,name.eq.b"},
            {"operator": "contains", "column": "tags", "value": ["x"]},
            {"operator": "eq", "column": "id", "value": "1", "value_cast": "uuid"}
        ]))
        .unwrap();
        assert_eq!(c.len(), 10);
        assert_eq!(c[0], f("name", Operator::Eq, FilterValue::Text("a".into())));
        assert_eq!(c[1], f("n", Operator::Eq, FilterValue::Text("5".into())));
        assert_eq!(c[2], f("n", Operator::Gt, FilterValue::Text("1.5".into())));
        assert_eq!(
            c[3],
            f(
                "n",
                Operator::In,
                FilterValue::List(vec!["1".into(), "2".into()])
            )
        );
        assert_eq!(c[4], f("note", Operator::Is, FilterValue::Null));
        assert_eq!(
            c[5],
            Cond::Not(Box::new(f(
                "n",
                Operator::Eq,
                FilterValue::Text("3".into())
            )))
        );
        assert_eq!(
            c[6],
            Cond::Not(Box::new(f(
                "n",
                Operator::Eq,
                FilterValue::Text("4".into())
            )))
        );
        assert!(matches!(&c[7], Cond::Or(items) if items.len() == 2));
        assert_eq!(
            c[8],
            f("tags", Operator::Contains, FilterValue::Json(json!(["x"])))
        );
        let Cond::Filter(cast) = &c[9] else { panic!() };
        assert_eq!(cast.value_cast.as_deref(), Some("uuid"));
    }

    #[test]
    fn hostile_conditions_are_refused() {
        for bad in [
            json!([{"operator": "drop", "column": "n", "value": 1}]),
            json!([{"operator": "eq", "column": "n", "value": 1, "value_cast": "int; drop table x"}]),
            json!([{"operator": "eq", "column": "n", "value": 1, "column_cast": "text)--"}]),
            json!([{"operator": "eq", "value": 1}]),
            json!([{"operator": "or", "value": "(n.eq.1"}]),
            json!([{"operator": "not", "value": 5}]),
            json!("nope"),
            json!([1]),
        ] {
            assert!(conditions(&bad).is_err(), "{bad}");
        }
        let mut deep = json!({"operator": "eq", "column": "n", "value": 1});
        for _ in 0..40 {
            deep = json!({"operator": "not", "column": "n", "value": deep});
        }
        assert!(conditions(&json!([deep])).is_err());
    }

    #[test]
    fn where_objects() {
        let w = json!({"id": 5, "n": {"gt": 1, "lt": 9}, "note": null,
                       "or": [{"name": "a"}, {"name": {"ilike": "%b%"}}], "not": {"id": 7}});
        let c = where_object(w.as_object().unwrap()).unwrap();
        assert_eq!(c.len(), 5);
        assert_eq!(c[0], f("id", Operator::Eq, FilterValue::Text("5".into())));
        // (keys in map order: id, n, not, note, or)
        assert!(matches!(&c[1], Cond::And(items) if items.len() == 2));
        assert!(matches!(&c[2], Cond::Not(_)));
        assert_eq!(c[3], f("note", Operator::Eq, FilterValue::Null));
        assert!(matches!(&c[4], Cond::Or(items) if items.len() == 2));
        assert!(where_object(json!({"id": {"drop": 1}}).as_object().unwrap()).is_err());
        let wf =
            where_filters(&json!([{"column": "id", "operator": "in", "values": [1, 2]}])).unwrap();
        assert_eq!(
            wf[0],
            f(
                "id",
                Operator::In,
                FilterValue::List(vec!["1".into(), "2".into()])
            )
        );
    }

    #[test]
    fn orderings() {
        let o = order(&json!({"field": "id", "direction": "descending"})).unwrap();
        assert!(o[0].descending && o[0].column == "id");
        let o = order(&json!({"column": "id", "ascending": true})).unwrap();
        assert!(!o[0].descending);
        let o = order(&json!({"id": "desc", "name": "asc"})).unwrap();
        assert_eq!((o[0].descending, o[1].descending), (true, false));
        let o = order(&json!(["id.desc", {"column": "n", "ascending": false}])).unwrap();
        assert_eq!(o.len(), 2);
        let o = order(&json!("-id, name asc")).unwrap();
        assert_eq!((o[0].descending, o[1].descending), (true, false));
        assert!(order(&json!({"field": "id", "direction": "sideways"})).is_err());
        assert!(order(&json!(5)).is_err());
        let o = parse_order("id.desc.nullslast,name").unwrap();
        assert_eq!(
            (o[0].descending, o[0].nulls_first, o[1].descending),
            (true, Some(false), false)
        );
        assert!(parse_order("id.sideways").is_err());
    }
}
