//! The official SDK turns `.eq(col, "<uuid>")` on `id`-like columns into
//! hand-built SQL sent to `/gateway/query` (`SELECT * FROM "items" WHERE
//! "id"::text = '6f1c…';`, ../shared/docs/athena-js-sdk.md §0.5). A key
//! that may read through `/gateway/fetch` but may not run raw SQL would
//! then fail on plain lookups.
//!
//! This module recognizes exactly the SELECT grammar the SDK builds
//! (`buildTypedSelectQuery`) and turns it into a structured read, which
//! then runs through the same checked path as `/gateway/fetch`
//! (identifiers resolved and quoted, values bound). Anything outside that
//! grammar is not recognized, and the caller still needs the raw-SQL right.

use super::filter::{check_type_name, Cond, Filter, FilterValue, Operator};
use super::read::{Order, ReadQuery};
use crate::domain::identifier::Ident;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// Quoted (case kept) or bare (lower-cased) identifier / keyword.
    Ident {
        text: String,
        quoted: bool,
    },
    Str(String),
    Num(String),
    Sym(&'static str),
}

fn tokens(sql: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let (text, next) = quoted(&chars, i, '"')?;
            i = next;
            out.push(Tok::Ident { text, quoted: true });
        } else if c == '\'' {
            let (text, next) = quoted(&chars, i, '\'')?;
            i = next;
            out.push(Tok::Str(text));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while chars
                .get(i)
                .is_some_and(|d| d.is_ascii_digit() || *d == '.' || *d == 'e' || *d == 'E')
            {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_' || *d == '$')
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Ident {
                text: text.to_ascii_lowercase(),
                quoted: false,
            });
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = match two.as_str() {
                "::" => Some("::"),
                "!=" | "<>" => Some("!="),
                ">=" => Some(">="),
                "<=" => Some("<="),
                _ => None,
            };
            if let Some(s) = sym {
                out.push(Tok::Sym(s));
                i += 2;
                continue;
            }
            out.push(Tok::Sym(match c {
                '*' => "*",
                ',' => ",",
                '.' => ".",
                '(' => "(",
                ')' => ")",
                '=' => "=",
                '>' => ">",
                '<' => "<",
                ';' => ";",
                _ => return None,
            }));
            i += 1;
        }
    }
    Some(out)
}

/// The text of a quoted identifier or string literal starting at `start`
/// (a doubled quote is one quote), and where it ends; `None` if unclosed.
fn quoted(chars: &[char], start: usize, q: char) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match (chars.get(i), chars.get(i + 1)) {
            (Some(&a), Some(&b)) if a == q && b == q => {
                text.push(q);
                i += 2;
            }
            (Some(&a), _) if a == q => return Some((text, i + 1)),
            (Some(&ch), _) => {
                text.push(ch);
                i += 1;
            }
            (None, _) => return None,
        }
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident { text, quoted: false }) if text == kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<String> {
        match self.next()? {
            Tok::Ident { text, quoted: true } => Some(text),
            // Bare words that are keywords of this grammar are not names.
            Tok::Ident {
                text,
                quoted: false,
            } if !matches!(
                text.as_str(),
                "select"
                    | "from"
                    | "where"
                    | "and"
                    | "order"
                    | "by"
                    | "limit"
                    | "offset"
                    | "is"
                    | "in"
                    | "like"
                    | "ilike"
                    | "null"
                    | "true"
                    | "false"
            ) =>
            {
                Some(text)
            }
            _ => None,
        }
    }

    /// `a` or `a.b` → (schema, name).
    fn qualified(&mut self) -> Option<(Option<String>, String)> {
        let first = self.ident()?;
        if self.sym(".") {
            Some((Some(first), self.ident()?))
        } else {
            Some((None, first))
        }
    }

    fn cast(&mut self) -> Option<Option<String>> {
        if !self.sym("::") {
            return Some(None);
        }
        let t = self.ident()?;
        check_type_name(&t).ok()?;
        Some(Some(t))
    }

    /// A literal and its cast: strings, numbers, booleans.
    fn literal(&mut self) -> Option<(String, Option<String>)> {
        let text = match self.next()? {
            Tok::Str(s) | Tok::Num(s) => s,
            Tok::Ident {
                text,
                quoted: false,
            } if text == "true" || text == "false" => text,
            _ => return None,
        };
        Some((text, self.cast()?))
    }

    fn condition(&mut self) -> Option<Filter> {
        let (prefix, column) = self.qualified()?;
        if prefix.is_some() {
            return None;
        }
        let column_cast = self.cast()?;
        let filter = |op, value, value_cast| Filter {
            column: column.clone(),
            op,
            value,
            column_cast: column_cast.clone(),
            value_cast,
        };
        if self.keyword("is") {
            let value = match self.next()? {
                Tok::Ident {
                    text,
                    quoted: false,
                } if text == "null" => FilterValue::Null,
                Tok::Ident {
                    text,
                    quoted: false,
                } if text == "true" || text == "false" => FilterValue::Text(text),
                _ => return None,
            };
            return Some(filter(Operator::Is, value, None));
        }
        if self.keyword("in") {
            if !self.sym("(") {
                return None;
            }
            let mut items = Vec::new();
            let mut cast = None;
            loop {
                let (v, c) = self.literal()?;
                if cast.is_some() && c != cast {
                    return None;
                }
                cast = c;
                items.push(v);
                if self.sym(")") {
                    break;
                }
                if !self.sym(",") {
                    return None;
                }
            }
            return Some(filter(Operator::In, FilterValue::List(items), cast));
        }
        let op = if self.keyword("like") {
            Operator::Like
        } else if self.keyword("ilike") {
            Operator::ILike
        } else {
            match self.next()? {
                Tok::Sym("=") => Operator::Eq,
                Tok::Sym("!=") => Operator::Neq,
                Tok::Sym(">") => Operator::Gt,
                Tok::Sym(">=") => Operator::Gte,
                Tok::Sym("<") => Operator::Lt,
                Tok::Sym("<=") => Operator::Lte,
                _ => return None,
            }
        };
        let (value, value_cast) = self.literal()?;
        Some(filter(op, FilterValue::Text(value), value_cast))
    }

    fn integer(&mut self) -> Option<i64> {
        match self.next()? {
            Tok::Num(n) => n.parse().ok(),
            _ => None,
        }
    }
}

/// The read the SDK's SELECT describes, or `None` when the text is not
/// exactly that grammar (the caller then needs the raw-SQL right).
pub fn recognize(sql: &str) -> Option<ReadQuery> {
    let mut p = Parser {
        toks: tokens(sql)?,
        pos: 0,
    };
    if !p.keyword("select") {
        return None;
    }
    let columns = if p.sym("*") {
        None
    } else {
        let mut cols = vec![p.ident()?];
        while p.sym(",") {
            cols.push(p.ident()?);
        }
        Some(cols)
    };
    if !p.keyword("from") {
        return None;
    }
    let (schema, table) = p.qualified()?;
    let mut filters = Vec::new();
    if p.keyword("where") {
        loop {
            filters.push(Cond::from(p.condition()?));
            if !p.keyword("and") {
                break;
            }
        }
    }
    let mut order = Vec::new();
    if p.keyword("order") {
        if !p.keyword("by") {
            return None;
        }
        let (prefix, column) = p.qualified()?;
        if prefix.is_some() {
            return None;
        }
        let descending = if p.keyword("desc") {
            true
        } else {
            p.keyword("asc");
            false
        };
        order.push(Order {
            column,
            descending,
            nulls_first: None,
        });
    }
    let limit = if p.keyword("limit") {
        Some(p.integer()?)
    } else {
        None
    };
    let offset = if p.keyword("offset") {
        Some(p.integer()?)
    } else {
        None
    };
    p.sym(";");
    if p.pos != p.toks.len() {
        return None;
    }
    Some(ReadQuery {
        schema: Ident::parse("schema", schema.as_deref().unwrap_or("public")).ok()?,
        table: Ident::parse("table", &table).ok()?,
        columns,
        embeds: Vec::new(),
        filters,
        order,
        limit,
        offset,
        strip_nulls: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_the_sdk_uuid_lookup() {
        let q = recognize(
            "SELECT * FROM \"items\" WHERE \"id\"::text = '6f1c1a52-56b6-4c39-9d8e-0f3e0c7f6b11';",
        )
        .unwrap();
        assert_eq!(q.table.as_str(), "items");
        assert_eq!(q.schema.as_str(), "public");
        assert_eq!(q.columns, None);
        let Cond::Filter(f) = &q.filters[0] else {
            panic!()
        };
        assert_eq!(f.column, "id");
        assert_eq!(f.column_cast.as_deref(), Some("text"));
        assert_eq!(
            f.value,
            FilterValue::Text("6f1c1a52-56b6-4c39-9d8e-0f3e0c7f6b11".into())
        );
    }

    #[test]
    fn recognizes_the_whole_builder_grammar() {
        let q = recognize(
            "SELECT \"id\", \"na\"\"me\" FROM \"app\".\"users\" WHERE \"org_id\"::text = 'a''b' AND \"n\" >= 2 \
             AND \"t\" IS NULL AND \"k\" IN ('x', 'y') AND \"s\" ILIKE '%q%' ORDER BY \"id\" DESC LIMIT 5 OFFSET 10;",
        )
        .unwrap();
        assert_eq!(q.schema.as_str(), "app");
        assert_eq!(q.columns, Some(vec!["id".into(), "na\"me".into()]));
        assert_eq!(q.filters.len(), 5);
        assert_eq!((q.limit, q.offset), (Some(5), Some(10)));
        assert!(q.order[0].descending);
        let Cond::Filter(f) = &q.filters[0] else {
            panic!()
        };
        assert_eq!(f.value, FilterValue::Text("a'b".into()));
    }

    #[test]
    fn anything_else_is_not_recognized() {
        for sql in [
            "SELECT * FROM items; DROP TABLE items;",
            "SELECT * FROM \"items\" WHERE \"id\" = '1' OR 1=1",
            "SELECT count(*) FROM items",
            "SELECT * FROM items WHERE id = (SELECT 1)",
            "SELECT * FROM items WHERE \"id\"::text; = '1'",
            "DELETE FROM items",
            "SELECT * FROM items UNION SELECT * FROM secrets",
            "SELECT * FROM items WHERE \"id\" = '1' -- comment",
            "SELECT * FROM pg_catalog.pg_authid x",
            "SELECT * FROM \"items\" WHERE \"id\"::text(; = '1'",
            "SELECT * FROM \"unterminated",
        ] {
            assert!(recognize(sql).is_none(), "{sql}");
        }
    }
}
