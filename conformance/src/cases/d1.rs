//! `POST /gateway/sql/d1/migrate`: PostgreSQL → Cloudflare D1 preview,
//! strict-mode refusal, the execute-mode client requirement and, since the
//! conformance server has no D1 account (`ATHENA_D1_*` unset), execution's
//! documented 503.

use super::{envelope, expect_eq, Case, Ctx};
use serde_json::{json, Value};

const OP: &str = "post_gateway_sql_d1_migrate";
const PATH: &str = "/gateway/sql/d1/migrate";

const SCRIPT: &str = "SET statement_timeout = 0;
CREATE TABLE IF NOT EXISTS conformance_d1_notes (id bigserial PRIMARY KEY, ref uuid DEFAULT gen_random_uuid(), meta jsonb, price numeric(8,2), created_at timestamptz DEFAULT now());
CREATE INDEX CONCURRENTLY conformance_d1_notes_created ON conformance_d1_notes (created_at);";

fn body(script: &str, dry_run: bool) -> Value {
    json!({"driver": "d1", "dbName": "conformance", "schemaSql": script, "dryRun": dry_run})
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let no_client = ctx.request("post", PATH).without_header("X-Athena-Client");
    vec![
        Case::new(
            OP,
            "preview converts PostgreSQL to D1",
            no_client.clone().json(body(SCRIPT, true)),
            200,
        )
        .check_json(|b| {
            expect_eq("status", &b["status"], &json!("preview"))?;
            expect_eq(
                "skipped SET",
                &b["statements"][0]["action"],
                &json!("skipped"),
            )?;
            let sql = b["convertedSql"].as_str().unwrap_or_default();
            for part in [
                "id integer PRIMARY KEY AUTOINCREMENT",
                "meta text",
                "price real",
                "created_at text DEFAULT CURRENT_TIMESTAMP",
                "CREATE INDEX conformance_d1_notes_created ON",
            ] {
                if !sql.contains(part) {
                    return Err(format!("convertedSql lacks {part:?}: {sql}"));
                }
            }
            Ok(())
        }),
        Case::new(
            OP,
            "unsupported construct in strict mode",
            ctx.request("post", PATH)
                .json(body("CREATE EXTENSION IF NOT EXISTS pgcrypto", true)),
            422,
        )
        .check_json(|b| {
            expect_eq(
                "error code",
                &b["errors"][0]["code"],
                &json!("unsupported.extension"),
            )
        }),
        Case::new(
            OP,
            "execution needs X-Athena-Client",
            no_client.json(body("CREATE TABLE x (a text)", false)),
            400,
        )
        .check(envelope),
        Case::new(
            OP,
            "execution without a configured D1 account",
            ctx.request("post", PATH)
                .json(body("CREATE TABLE x (a text)", false)),
            503,
        )
        .check(envelope),
    ]
}
