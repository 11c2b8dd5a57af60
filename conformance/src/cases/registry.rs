//! Registry family: the router registry, the API registry, the served
//! contracts and the docs redirect.

use super::{Case, Ctx};
use athena_codegen::spec::METHODS;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Counts the operations of an OpenAPI document.
pub fn count_operations(doc: &serde_yaml::Value) -> usize {
    doc.get("paths")
        .and_then(serde_yaml::Value::as_mapping)
        .map(|paths| {
            paths
                .values()
                .filter_map(serde_yaml::Value::as_mapping)
                .map(|item| {
                    item.keys()
                        .filter(|k| k.as_str().is_some_and(|k| METHODS.contains(&k)))
                        .count()
                })
                .sum()
        })
        .unwrap_or(0)
}

fn yaml(r: &crate::http::Response) -> Result<serde_yaml::Value, String> {
    match r.content_type() {
        Some(ct) if ct.contains("yaml") => {}
        other => return Err(format!("content-type {other:?}, want application/yaml")),
    }
    serde_yaml::from_slice(&r.body).map_err(|e| format!("body is not YAML: {e}"))
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let uri = ctx
        .tenant_db_url
        .clone()
        .unwrap_or_else(|| "postgres://conformance@127.0.0.1:1/none".into());
    let uri_gone = uri.clone();
    let route = format!("conf-reg-{}", uuid::Uuid::new_v4().simple());
    let names = ctx.op_names.clone();
    let count = names.len();
    vec![
        Case::new(
            "get_openapi_yaml",
            "serves the contract",
            ctx.request("get", "/openapi.yaml"),
            200,
        )
        .check(move |r| {
            let doc = yaml(r)?;
            super::expect_eq(
                "operations in the served contract",
                count_operations(&doc),
                count,
            )
        }),
        Case::new(
            "get_openapi_wss_yaml",
            "serves the WebSocket contract",
            ctx.request("get", "/openapi-wss.yaml"),
            200,
        )
        .check(|r| {
            let doc = yaml(r)?;
            if doc.get("openapi").is_none() && doc.get("asyncapi").is_none() {
                return Err("no `openapi` version key".into());
            }
            Ok(())
        }),
        Case::new(
            "get_docs",
            "docs redirect",
            ctx.request("get", "/docs"),
            308,
        )
        .check(|r| match r.header("location") {
            Some(l) if !l.trim().is_empty() => Ok(()),
            _ => Err("no Location header".into()),
        }),
        Case::new(
            "get_router_registry",
            "lists every operation",
            ctx.request("get", "/router/registry"),
            200,
        )
        .check_json(move |b| {
            let entries = b.as_array().ok_or("body is not an array")?;
            super::expect_eq("entries", entries.len(), count)?;
            let listed: BTreeSet<String> = entries
                .iter()
                .filter_map(|e| {
                    e.get("operation")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect();
            let missing: Vec<_> = names.difference(&listed).take(5).collect();
            if !missing.is_empty() {
                return Err(format!("operations missing from the registry: {missing:?}"));
            }
            Ok(())
        }),
        Case::new(
            "get_registry",
            "a registered client and a public route are listed",
            ctx.request("get", "/registry"),
            200,
        )
        .after(
            ctx.request("post", "/admin/clients")
                .json(json!({"client_name": "conf_registry", "pg_uri": uri, "description": "in the registry"})),
        )
        .after(ctx.request("post", "/admin/public-routes").json(
            json!({"route_key": route, "client_name": "conf_registry", "allowed_ops": ["fetch"]}),
        ))
        .check_json({
            let route = route.clone();
            move |b| {
                let entries = b.as_array().ok_or("body is not an array")?;
                let find = |id: &str| entries.iter().find(|e| e["api_registry_id"] == id);
                let client = find("client:conf_registry").ok_or("the registered client is not listed")?;
                super::expect_json(
                    "client entry",
                    (&client["kind"], &client["name"], &client["description"]),
                    (&json!("client"), &json!("conf_registry"), &json!("in the registry")),
                )?;
                let r = find(&format!("public_route:{route}")).ok_or("the public route is not listed")?;
                super::expect_json(
                    "route entry",
                    (&r["kind"], &r["base_url"], &r["metadata"]["client_name"]),
                    (&json!("public_route"), &json!(format!("/public/{route}")), &json!("conf_registry")),
                )
            }
        }),
        Case::new(
            "get_registry",
            "a deleted client leaves the registry (Cache-Control: no-cache)",
            ctx.request("get", "/registry")
                .header("Cache-Control", "no-cache"),
            200,
        )
        .after(
            ctx.request("post", "/admin/clients")
                .json(json!({"client_name": "conf_unregistered", "pg_uri": uri_gone})),
        )
        .after(ctx.request("delete", "/admin/clients/conf_unregistered"))
        .check_json(|b| {
            let entries = b.as_array().ok_or("body is not an array")?;
            let listed = entries
                .iter()
                .any(|e| e["api_registry_id"] == "client:conf_unregistered");
            super::expect_eq("deleted client listed", listed, false)
        }),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_operations_of_the_contract() {
        let text = std::fs::read_to_string(crate::cli::default_spec()).unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(
            super::count_operations(&doc),
            crate::tests::contract().operations.len()
        );
    }
}
