//! The generic fallback: a request built from the contract alone for every
//! operation without a specific case.

use crate::cases::Ctx;
use crate::http::Request;
use athena_codegen::spec::{Location, Operation};
use serde_json::Value;

pub const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

fn schema_type(schema: &Value) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn first_enum(schema: &Value) -> Option<String> {
    schema
        .get("enum")?
        .as_array()?
        .iter()
        .find(|v| !v.is_null())
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
}

/// A plausible value for a path parameter.
pub fn path_value(schema: &Value) -> String {
    if let Some(e) = first_enum(schema) {
        return e;
    }
    if schema.get("format").and_then(Value::as_str) == Some("uuid") {
        return NIL_UUID.into();
    }
    match schema_type(schema) {
        Some("integer") | Some("number") => "1".into(),
        _ => "conformance-x".into(),
    }
}

/// A plausible value for a required header or query parameter.
pub fn plain_value(schema: &Value) -> String {
    if let Some(e) = first_enum(schema) {
        return e;
    }
    if schema.get("format").and_then(Value::as_str) == Some("uuid") {
        return NIL_UUID.into();
    }
    match schema_type(schema) {
        Some("integer") | Some("number") => "1".into(),
        Some("boolean") => "true".into(),
        _ => "conformance".into(),
    }
}

/// Fills `{param}` segments of the path template.
pub fn fill_path(op: &Operation) -> String {
    let mut path = op.path.clone();
    for p in op.params.iter().filter(|p| p.location == Location::Path) {
        path = path.replace(
            &format!("{{{}}}", p.name),
            &crate::http::encode(&path_value(&p.schema)),
        );
    }
    path
}

/// The generic request for `op`: path filled, required headers and query
/// parameters set, the admin key and client always sent, `{}` as the body
/// when a JSON body is required.
pub fn build(op: &Operation, ctx: &Ctx) -> Request {
    let mut req = Request::new(&op.method, &fill_path(op));
    for p in op.params.iter().filter(|p| p.required) {
        match p.location {
            Location::Path | Location::Cookie => {}
            Location::Query => req = req.query(&p.name, &plain_value(&p.schema)),
            Location::Header => {
                let value = if p.credential {
                    ctx.admin_key
                        .clone()
                        .unwrap_or_else(|| "conformance".into())
                } else if p.name.eq_ignore_ascii_case("authorization") {
                    format!(
                        "Bearer {}",
                        ctx.admin_key.as_deref().unwrap_or("conformance")
                    )
                } else {
                    plain_value(&p.schema)
                };
                req = req.header(&p.name, &value);
            }
        }
    }
    req = ctx.standard_headers(req);
    if let Some(body) = &op.body {
        if body.required && crate::http::is_json_media_type(&body.content_type) {
            req = req.json(Value::Object(Default::default()));
        }
    }
    req
}

/// The request minus every credential (admin key, credential headers,
/// Authorization).
pub fn without_credentials(mut req: Request, op: &Operation) -> Request {
    req = req
        .without_header("X-Athena-Key")
        .without_header("Authorization");
    for p in op.params.iter().filter(|p| p.credential) {
        req = req.without_header(&p.name);
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op<'a>(c: &'a athena_codegen::Contract, name: &str) -> &'a Operation {
        c.operations.iter().find(|o| o.name == name).unwrap()
    }

    #[test]
    fn builds_rest_get_from_the_spec() {
        let c = crate::tests::contract();
        let ctx = Ctx::for_tests();
        let req = build(op(&c, "get_rest_v1_by_table"), &ctx);
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/rest/v1/conformance-x");
        assert!(req
            .headers
            .contains(&("X-Athena-Client".into(), "conformance".into())));
        assert!(req.headers.contains(&("X-Athena-Key".into(), "k".into())));
        // apikey is a required credential header: it carries the key.
        assert!(req.headers.contains(&("apikey".into(), "k".into())));
        assert!(req.body.is_none());
    }

    #[test]
    fn builds_fetch_with_an_empty_json_body() {
        let c = crate::tests::contract();
        let req = build(op(&c, "post_gateway_fetch"), &Ctx::for_tests());
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/gateway/fetch");
        assert_eq!(req.body, Some(serde_json::json!({})));
    }

    #[test]
    fn fills_uuid_and_integer_path_params() {
        let c = crate::tests::contract();
        let ctx = Ctx::for_tests();
        for o in &c.operations {
            let req = build(o, &ctx);
            assert!(!req.path.contains('{'), "{}", req.path);
            for p in o.params.iter().filter(|p| p.location == Location::Path) {
                let v = path_value(&p.schema);
                if p.schema.get("format").and_then(Value::as_str) == Some("uuid") {
                    assert_eq!(v, NIL_UUID);
                }
            }
        }
        let uuid_op = c
            .operations
            .iter()
            .find(|o| {
                o.params
                    .iter()
                    .any(|p| p.location == Location::Path && p.schema["format"] == "uuid")
            })
            .expect("an op with a uuid path param");
        assert!(build(uuid_op, &ctx).path.contains(NIL_UUID));
        let int_op = c
            .operations
            .iter()
            .find(|o| {
                o.params
                    .iter()
                    .any(|p| p.location == Location::Path && p.schema["type"] == "integer")
            })
            .expect("an op with an integer path param");
        let req = build(int_op, &ctx);
        assert!(req.path.split('/').any(|s| s == "1"), "{}", req.path);
    }
}
