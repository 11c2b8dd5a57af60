//! Filters: a closed operator enum, each mapped to a fixed SQL token. Values
//! are bound as text and cast to the column's catalog type on the parameter
//! side, so indexes on the column stay usable.

use crate::domain::DomainError;

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
}

impl Operator {
    pub fn parse(s: &str) -> Result<Operator, DomainError> {
        Ok(match s {
            "eq" => Operator::Eq,
            "neq" => Operator::Neq,
            "gt" => Operator::Gt,
            "gte" => Operator::Gte,
            "lt" => Operator::Lt,
            "lte" => Operator::Lte,
            "like" => Operator::Like,
            "ilike" => Operator::ILike,
            "in" => Operator::In,
            "is" => Operator::Is,
            other => {
                return Err(DomainError::Invalid(format!(
                    "unsupported filter operator `{other}`"
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    pub op: Operator,
    pub value: FilterValue,
}

impl Filter {
    /// PostgREST value syntax: `eq.5`, `in.(a,b)`, `is.null`, `like.*x*`.
    pub fn from_postgrest(column: &str, expr: &str) -> Result<Filter, DomainError> {
        let (op, raw) = expr.split_once('.').ok_or_else(|| {
            DomainError::Invalid(format!("filter on `{column}` must look like op.value"))
        })?;
        let op = Operator::parse(op)?;
        let value = match op {
            Operator::In => {
                let inner = raw
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| {
                        DomainError::Invalid(format!("`in` filter on `{column}` must be in.(a,b)"))
                    })?;
                FilterValue::List(split_list(inner))
            }
            Operator::Is => FilterValue::Text(raw.to_string()),
            Operator::Like | Operator::ILike => FilterValue::Text(raw.replace('*', "%")),
            _ => FilterValue::Text(raw.to_string()),
        };
        Ok(Filter {
            column: column.to_string(),
            op,
            value,
        })
    }
}

/// Splits `a,"b,c",d` honouring double quotes.
fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if !s.is_empty() {
        out.push(cur);
    }
    out
}

/// A type name for casts: letters, digits, `_`, spaces, `[]`, `()` with
/// digits and commas for modifiers — never free text.
pub fn check_type_name(t: &str) -> Result<&str, DomainError> {
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | ' ' | '[' | ']' | '(' | ')' | ',')
        })
        && t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    if ok {
        Ok(t)
    } else {
        Err(DomainError::Invalid(format!(
            "`{t}` is not a valid type name"
        )))
    }
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
    }

    #[test]
    fn type_names() {
        for ok in [
            "integer",
            "text[]",
            "character varying(20)",
            "numeric(10,2)",
            "timestamp with time zone",
        ] {
            assert!(check_type_name(ok).is_ok(), "{ok}");
        }
        for bad in ["int; drop table x", "text'", "", "\"t\"", "1abc", "int--"] {
            assert!(check_type_name(bad).is_err(), "{bad}");
        }
    }
}
