//! The billing sink blueprints (issue 15): `GET /admin/webhook-sinks/helpers/billing`
//! and `POST /admin/billing/clients/{client_name}/webhook-sinks/provision`.
//!
//! Three sinks mirror the canonical billing rows of a source client (its
//! `billing` schema: `billing_payments`, `billing_subscriptions`,
//! `billing_invoices`) into tables of the same names in `targetSchema`
//! (default `public`) of a target client (default: the source). They
//! follow `billing.upsert` on their source table (published once a
//! provider webhook or a reconcile committed a changed row) and upsert by
//! `id` into the target, so a replayed event changes nothing.
//! Each blueprint carries a ready-to-post `createBody`, the target's
//! `tableSql` (`CREATE TABLE IF NOT EXISTS`, identifiers quoted) and a
//! `seedSql` sample row. Everything is generated from [`BLUEPRINTS`], so
//! the helper and provisioning cannot disagree.

use crate::domain::identifier::Ident;
use crate::domain::DomainError;
use serde_json::{json, Map, Value};

/// One mirrored billing resource.
pub struct Blueprint {
    /// `payment`, `subscription`, `invoice`.
    pub kind: &'static str,
    /// The sink's name (unique per source client).
    pub name: &'static str,
    /// The source table (`billing.<table>`) and the target's table.
    pub table: &'static str,
}

pub const BLUEPRINTS: &[Blueprint] = &[
    Blueprint {
        kind: "payment",
        name: "billing-payments-mirror",
        table: "billing_payments",
    },
    Blueprint {
        kind: "subscription",
        name: "billing-subscriptions-mirror",
        table: "billing_subscriptions",
    },
    Blueprint {
        kind: "invoice",
        name: "billing-invoices-mirror",
        table: "billing_invoices",
    },
];

/// The event every blueprint follows: a billing row upserted by a
/// provider webhook or a reconcile (`src/billing/`).
pub const ROUTE_KEY: &str = "billing.upsert";

/// Target column, its SQL type, the pointer it takes (into the rows of
/// `billing.billing_payments|subscriptions|invoices`, tenant migration
/// `0008_billing.sql`).
const COLUMNS: &[(&str, &str, &str)] = &[
    ("id", "text PRIMARY KEY", "/row/id"),
    ("connection_id", "text", "/row/connection_id"),
    ("provider", "text", "/row/provider"),
    ("provider_ref", "text", "/row/provider_ref"),
    ("customer_ref", "text", "/row/provider_customer_ref"),
    ("status", "text", "/row/status"),
    ("amount", "numeric", "/row/amount_minor"),
    ("currency", "text", "/row/currency"),
    ("payload", "jsonb", "/row"),
    ("source_event_id", "uuid", "/event_id"),
    (
        "synced_at",
        "timestamptz NOT NULL DEFAULT now()",
        "/occurred_at",
    ),
];

/// Who the sinks are for.
#[derive(Debug, Clone)]
pub struct Scope {
    pub source_client: String,
    pub target_client: String,
    pub target_schema: String,
    pub athena_base_url: Option<String>,
}

impl Scope {
    /// The scope from query or body fields (camelCase or snake_case):
    /// `targetClientName` (default the source), `targetSchema` (default
    /// `public`), `athenaBaseUrl` (echoed).
    pub fn from_fields(
        source: &str,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Scope, DomainError> {
        let field = |camel: &str, snake: &str| {
            get(camel)
                .or_else(|| get(snake))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let target_schema =
            field("targetSchema", "target_schema").unwrap_or_else(|| "public".into());
        Ident::parse("schema", &target_schema)
            .map_err(|e| DomainError::invalid_field("targetSchema", format!("{e:?}")))?;
        if target_schema.len() > 63 || target_schema.starts_with("pg_") {
            return Err(DomainError::invalid_field(
                "targetSchema",
                "must be a schema name of at most 63 bytes, not a system schema",
            ));
        }
        Ok(Scope {
            source_client: source.to_string(),
            target_client: field("targetClientName", "target_client_name")
                .unwrap_or_else(|| source.to_string()),
            target_schema,
            athena_base_url: field("athenaBaseUrl", "athena_base_url"),
        })
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Blueprint {
    pub fn create_body(&self, scope: &Scope) -> Value {
        let map: Map<String, Value> = COLUMNS
            .iter()
            .map(|(c, _, p)| (c.to_string(), json!(p)))
            .collect();
        json!({
            "name": self.name,
            "sourceClientName": scope.source_client,
            "routeKey": ROUTE_KEY,
            "sourceTableName": format!("billing.{}", self.table),
            "targetClientName": scope.target_client,
            "targetSchema": scope.target_schema,
            "targetTable": self.table,
            "columnMap": map,
            "onConflict": {"columns": ["id"], "action": "merge"},
            "enabled": true,
        })
    }

    pub fn table_sql(&self, scope: &Scope) -> String {
        let columns: Vec<String> = COLUMNS
            .iter()
            .map(|(c, t, _)| format!("    {} {t}", quoted(c)))
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {}.{} (\n{}\n);",
            quoted(&scope.target_schema),
            quoted(self.table),
            columns.join(",\n")
        )
    }

    pub fn seed_sql(&self, scope: &Scope) -> String {
        format!(
            "INSERT INTO {}.{} (id, provider, status, payload) VALUES ({}, 'seed', 'seed', '{{}}'::jsonb) ON CONFLICT (id) DO NOTHING;",
            quoted(&scope.target_schema),
            quoted(self.table),
            literal(&format!("seed_{}", self.kind))
        )
    }
}

/// `CREATE SCHEMA IF NOT EXISTS` and the three tables (what provisioning
/// runs on the target).
pub fn all_table_sql(scope: &Scope) -> String {
    let mut sql = vec![format!(
        "CREATE SCHEMA IF NOT EXISTS {};",
        quoted(&scope.target_schema)
    )];
    sql.extend(BLUEPRINTS.iter().map(|b| b.table_sql(scope)));
    sql.join("\n")
}

/// Runs [`all_table_sql`] on the target in one transaction (idempotent)
/// and drops the target's schema cache so the sinks see the tables.
pub async fn create_tables(
    tenant: &crate::db::tenants::Tenant,
    scope: &Scope,
) -> Result<(), DomainError> {
    let mut conn = tenant.pool.get().await?;
    let tx = conn.transaction().await?;
    tx.batch_execute(&all_table_sql(scope)).await?;
    tx.commit().await?;
    tenant.schema.invalidate().await;
    Ok(())
}

/// The helper payload (`helpers/billing`; provisioning answers the same
/// fields next to the saved sinks).
pub fn helpers(scope: &Scope) -> Value {
    let helpers: Vec<Value> = BLUEPRINTS
        .iter()
        .map(|b| {
            json!({
                "kind": b.kind,
                "name": b.name,
                "sourceTableName": format!("billing.{}", b.table),
                "targetTable": b.table,
                "createBody": b.create_body(scope),
                "tableSql": b.table_sql(scope),
                "seedSql": b.seed_sql(scope),
            })
        })
        .collect();
    let definitions: Vec<Value> = BLUEPRINTS.iter().map(|b| b.create_body(scope)).collect();
    let table_sql = all_table_sql(scope);
    let seed_sql: Vec<String> = BLUEPRINTS.iter().map(|b| b.seed_sql(scope)).collect();
    let seed_sql = seed_sql.join("\n");
    json!({
        "sourceClientName": scope.source_client,
        "targetClientName": scope.target_client,
        "targetSchema": scope.target_schema,
        "athenaBaseUrl": scope.athena_base_url,
        "routeKey": ROUTE_KEY,
        "helpers": helpers,
        "definitions": definitions,
        "tableSql": table_sql,
        "targetTableSql": table_sql,
        "targetTableSqlExample": BLUEPRINTS[0].table_sql(scope),
        "seedSql": seed_sql,
        "seed_sql": seed_sql,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_parse_as_sinks_and_sql_is_quoted() {
        let scope = Scope::from_fields("shop", &|k| {
            (k == "targetSchema").then(|| "mirror\"x".to_string())
        })
        .unwrap();
        for b in BLUEPRINTS {
            let body = b.create_body(&scope);
            let c =
                crate::catalog::webhook_sinks::Changes::parse(body.as_object().unwrap()).unwrap();
            assert_eq!(c.merged(None).unwrap().target_client_name, "shop");
            assert!(b.table_sql(&scope).contains("\"mirror\"\"x\""));
        }
        let h = helpers(&scope);
        assert_eq!(h["helpers"].as_array().unwrap().len(), 3);
        assert!(h["seedSql"].as_str().unwrap().contains("seed_invoice"));
    }
}
