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

mod client;
mod lexer;
mod plan;
mod translate;

pub use client::*;
use lexer::{lex, render, span, split};
pub use plan::*;
use translate::{statement, Diags, Schema};

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

#[cfg(test)]
mod tests {
    use super::translate::UUID_V4;
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
