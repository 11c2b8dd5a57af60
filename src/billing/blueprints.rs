//! The canonical billing sink blueprints (issue 15): for payments,
//! subscriptions and invoices, a ready-to-post `createBody` for
//! `POST /admin/webhook-sinks` (camelCase, the sink body of the webhooks
//! family), the target table's SQL and seed SQL. Served by
//! `GET /admin/webhook-sinks/helpers/billing` (`helpers`) and upserted by
//! `POST /admin/billing/clients/{client}/webhook-sinks/provision`.
//!
//! The sinks subscribe to the billing events `billing.payment`,
//! `billing.subscription` and `billing.invoice` (route keys; `data` is the
//! canonical document of the ingest/reconcile answer plus `connectionId`),
//! and map columns with JSON pointers into the published event
//! (`/data/providerRef`).

use crate::http::ApiError;
use serde_json::{json, Map, Value};

/// The helper query (camelCase first, snake_case aliases).
#[derive(Debug, Clone)]
pub struct HelperQuery {
    pub source_client: String,
    pub target_client: Option<String>,
    pub target_schema: Option<String>,
    pub athena_base_url: Option<String>,
}

/// One mirrored kind: (kind, route key, target table).
const KINDS: [(&str, &str, &str); 3] = [
    ("payment", "billing.payment", "billing_payments"),
    (
        "subscription",
        "billing.subscription",
        "billing_subscriptions",
    ),
    ("invoice", "billing.invoice", "billing_invoices"),
];

/// The target columns and the event pointers they are read from.
const COLUMNS: [(&str, &str, &str); 9] = [
    ("provider_ref", "text NOT NULL", "/data/providerRef"),
    ("provider", "text NOT NULL", "/data/provider"),
    ("connection_id", "uuid", "/data/connectionId"),
    ("provider_customer_ref", "text", "/data/providerCustomerRef"),
    (
        "provider_subscription_ref",
        "text",
        "/data/providerSubscriptionRef",
    ),
    ("status", "text", "/data/status"),
    ("amount_minor", "bigint", "/data/amountMinor"),
    ("currency", "text", "/data/currency"),
    ("occurred_at", "timestamptz", "/occurred_at"),
];

/// An SQL identifier: letters, digits, `_`, not starting with a digit.
fn identifier(name: &str, what: &str) -> Result<String, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(name.to_string())
    } else {
        Err(ApiError::invalid_parameter(
            what,
            "must be an SQL identifier (letters, digits, `_`; at most 63)",
        ))
    }
}

fn table_sql(schema: &str, table: &str) -> String {
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty, _)| format!("    {name} {ty}"))
        .collect();
    format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\";\nCREATE TABLE IF NOT EXISTS \"{schema}\".\"{table}\" (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n{},\n    UNIQUE (provider, provider_ref)\n);",
        columns.join(",\n")
    )
}

/// The three blueprints and the shared fields of the helper answer.
pub fn helpers(q: &HelperQuery) -> Result<Map<String, Value>, ApiError> {
    let source = q.source_client.trim();
    if source.is_empty() {
        return Err(ApiError::missing_parameter("query", "client_name"));
    }
    let target = q
        .target_client
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or(source)
        .to_string();
    let schema = identifier(
        q.target_schema.as_deref().unwrap_or("public"),
        "targetSchema",
    )?;
    let base = match q.athena_base_url.as_deref() {
        None => None,
        Some(url) => {
            let parsed = url::Url::parse(url).map_err(|_| {
                ApiError::invalid_parameter("athenaBaseUrl", "must be an absolute URL")
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ApiError::invalid_parameter(
                    "athenaBaseUrl",
                    "must be http(s)",
                ));
            }
            Some(url.trim_end_matches('/').to_string())
        }
    };
    let column_map: Map<String, Value> = COLUMNS
        .iter()
        .map(|(name, _, pointer)| (name.to_string(), json!(pointer)))
        .collect();
    let mut definitions = Vec::new();
    let mut all_sql = Vec::new();
    for (kind, route_key, table) in KINDS {
        let sql = table_sql(&schema, table);
        let create_body = json!({
            "name": format!("billing-{kind}-{source}-to-{target}"),
            "sourceClientName": source,
            "routeKey": route_key,
            "targetClientName": target,
            "targetSchema": schema,
            "targetTable": table,
            "columnMap": column_map,
            "onConflict": {"columns": ["provider", "provider_ref"], "action": "update"},
            "enabled": true,
        });
        definitions.push(json!({
            "kind": kind,
            "routeKey": route_key,
            "targetTable": table,
            "createBody": create_body,
            "tableSql": sql,
            "seedSql": format!(
                "-- rows already projected in the source client (billing.{table}):\nSELECT provider_ref, provider, connection_id, provider_customer_ref, document->>'providerSubscriptionRef' AS provider_subscription_ref, status, amount_minor, currency, updated_at AS occurred_at FROM billing.{table};"
            ),
        }));
        all_sql.push(sql);
    }
    let table_sql = all_sql.join("\n\n");
    let seed_sql: Vec<Value> = definitions.iter().map(|d| d["seedSql"].clone()).collect();
    let seed_sql = seed_sql
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n\n");
    let mut data = Map::new();
    data.insert("sourceClientName".into(), json!(source));
    data.insert("targetClientName".into(), json!(target));
    data.insert("targetSchema".into(), json!(schema));
    data.insert("athenaBaseUrl".into(), json!(base));
    data.insert(
        "createRoute".into(),
        json!(base.map_or("/admin/webhook-sinks".to_string(), |b| format!(
            "{b}/admin/webhook-sinks"
        ))),
    );
    data.insert("tableSql".into(), json!(table_sql));
    data.insert("targetTableSql".into(), json!(table_sql));
    data.insert("targetTableSqlExample".into(), json!(all_sql[0]));
    data.insert("seedSql".into(), json!(seed_sql));
    data.insert("seed_sql".into(), json!(seed_sql));
    data.insert("helpers".into(), Value::Array(definitions.clone()));
    data.insert("definitions".into(), Value::Array(definitions));
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(schema: Option<&str>) -> HelperQuery {
        HelperQuery {
            source_client: "shop".into(),
            target_client: Some("ledger".into()),
            target_schema: schema.map(str::to_string),
            athena_base_url: Some("https://athena.example.com/".into()),
        }
    }

    #[test]
    fn three_blueprints_ready_to_post() {
        let data = helpers(&query(Some("mirror"))).unwrap();
        let defs = data["definitions"].as_array().unwrap();
        let kinds: Vec<&str> = defs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["payment", "subscription", "invoice"]);
        let body = &defs[0]["createBody"];
        assert_eq!(body["sourceClientName"], "shop");
        assert_eq!(body["targetClientName"], "ledger");
        assert_eq!(body["targetSchema"], "mirror");
        assert_eq!(body["columnMap"]["provider_ref"], "/data/providerRef");
        assert!(defs[1]["tableSql"]
            .as_str()
            .unwrap()
            .contains("\"mirror\".\"billing_subscriptions\""));
        assert_eq!(
            data["createRoute"],
            "https://athena.example.com/admin/webhook-sinks"
        );
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(helpers(&query(Some("x; DROP"))).is_err());
        let mut q = query(None);
        q.athena_base_url = Some("ftp://x".into());
        assert!(helpers(&q).is_err());
        q.athena_base_url = None;
        q.source_client = " ".into();
        assert!(helpers(&q).is_err());
        q.source_client = "shop".into();
        q.target_client = None;
        assert_eq!(helpers(&q).unwrap()["targetClientName"], "shop");
    }
}
