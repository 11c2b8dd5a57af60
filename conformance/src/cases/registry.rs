//! Registry family: the router registry, the API registry, the served
//! contracts and the docs redirect.

use super::{Case, Ctx};
use athena_codegen::spec::METHODS;
use serde_json::Value;
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
            "API registry is an array",
            ctx.request("get", "/registry"),
            200,
        )
        .check_json(|b| {
            b.as_array()
                .map(|_| ())
                .ok_or_else(|| "body is not an array".into())
        }),
        Case::new(
            "get_registry",
            "API registry honours Cache-Control: no-cache",
            ctx.request("get", "/registry")
                .header("Cache-Control", "no-cache"),
            200,
        )
        .check_json(|b| {
            b.as_array()
                .map(|_| ())
                .ok_or_else(|| "body is not an array".into())
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
