//! SQL identifiers. Every identifier that reaches SQL is checked here first
//! (and, where a schema cache exists, resolved against it) and is always
//! written double-quoted.

use super::DomainError;
use std::fmt;

/// Postgres truncates identifiers at NAMEDATALEN-1 bytes; we refuse instead
/// of letting two names collide silently.
pub const MAX_IDENT_BYTES: usize = 63;

/// A validated identifier; `Display` writes it quoted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(String);

impl Ident {
    pub fn parse(kind: &str, raw: &str) -> Result<Ident, DomainError> {
        if raw.is_empty() {
            return Err(DomainError::Invalid(format!("{kind} name is empty")));
        }
        if raw.len() > MAX_IDENT_BYTES {
            return Err(DomainError::Invalid(format!(
                "{kind} name is longer than {MAX_IDENT_BYTES} bytes"
            )));
        }
        if raw.chars().any(|c| c.is_control()) {
            return Err(DomainError::Invalid(format!(
                "{kind} name contains control characters"
            )));
        }
        Ok(Ident(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        f.write_str(&self.0.replace('"', "\"\""))?;
        f.write_str("\"")
    }
}

/// `table` or `schema.table` (an explicit `schema_name` wins and then the
/// table name must not be qualified).
pub fn qualified_table(table: &str, schema: Option<&str>) -> Result<(Ident, Ident), DomainError> {
    match (schema, table.split_once('.')) {
        (Some(_), Some(_)) => Err(DomainError::Invalid(
            "table_name must not be schema-qualified when schema_name is given".into(),
        )),
        (Some(s), None) => Ok((Ident::parse("schema", s)?, Ident::parse("table", table)?)),
        (None, Some((s, t))) => Ok((Ident::parse("schema", s)?, Ident::parse("table", t)?)),
        (None, None) => Ok((
            Ident::parse("schema", "public")?,
            Ident::parse("table", table)?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_identifiers_are_quoted_or_refused() {
        let cases: &[(&str, Option<&str>)] = &[
            ("users", Some("\"users\"")),
            ("a\"b", Some("\"a\"\"b\"")),
            ("x; drop table y; --", Some("\"x; drop table y; --\"")),
            ("select", Some("\"select\"")),
            ("naïve", Some("\"naïve\"")),
            ("", None),
            ("a\0b", None),
            ("line\nbreak", None),
        ];
        for (raw, quoted) in cases {
            match (Ident::parse("column", raw), quoted) {
                (Ok(id), Some(q)) => assert_eq!(id.to_string(), *q),
                (Err(_), None) => {}
                (got, want) => panic!("{raw:?}: got {got:?}, want {want:?}"),
            }
        }
        assert!(Ident::parse("column", &"x".repeat(64)).is_err());
        assert!(Ident::parse("column", &"x".repeat(63)).is_ok());
    }

    #[test]
    fn qualified_names() {
        let (s, t) = qualified_table("app.users", None).unwrap();
        assert_eq!((s.as_str(), t.as_str()), ("app", "users"));
        let (s, _) = qualified_table("users", None).unwrap();
        assert_eq!(s.as_str(), "public");
        assert!(qualified_table("app.users", Some("other")).is_err());
    }
}
