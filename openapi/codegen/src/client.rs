//! The contract as progenitor (the generated Rust client) needs it.
//!
//! progenitor panics or silently mis-types on several things the contract
//! does (no operationIds, `default` responses, body-less errors next to typed
//! ones, inline response schemas, camelCase twins). Rather than editing
//! `openapi/openapi.yaml`, the client's `build.rs` derives a normalized copy
//! in memory on every build with [`normalize_for_progenitor`]. Each rule is a
//! small function below; `generated/athena-client/README.md` mirrors the list.
//!
//! Order matters and is fixed by [`RULES`]: names first, then parameters,
//! then schemas (twins dropped before lifting so identical schemas dedupe),
//! then responses, then a final check that names the operation progenitor
//! would otherwise panic on without saying which.

use crate::naming::{operation_name, pascal_case, snake_case};
use crate::spec::{CREDENTIAL_HEADERS, METHODS, SDK_OPTIONAL_HEADERS};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The component response whose schema is the standard error envelope
/// (`status`, `message`, `error`, optional `code`, `error_number`,
/// `docs_url`). Used for error responses of operations that type none.
pub const STANDARD_ERROR_RESPONSE: &str = "DefaultServerError5xx";

/// The routing header the client builder sends on every request.
pub const CLIENT_HEADER: &str = "X-Athena-Client";

/// One normalization rule: a name (for the README and error messages) and
/// the function applying it to the whole document.
pub type Rule = (&'static str, fn(&mut Value) -> Result<(), String>);

/// Every rule, in the order applied.
pub const RULES: &[Rule] = &[
    ("operation_ids", add_operation_ids),
    ("credential_headers", drop_credential_headers),
    ("optional_routing_headers", optional_routing_headers),
    ("camel_twin_params", drop_camel_twin_params),
    ("camel_twin_properties", drop_camel_twin_properties),
    ("lift_component_responses", lift_component_responses),
    ("lift_inline_responses", lift_inline_responses),
    ("default_to_5xx", default_to_5xx),
    ("bodyless_errors", fill_bodyless_errors),
    ("shadowed_codes", drop_shadowed_codes),
    ("bodyless_success", drop_bodyless_success_beside_typed),
    ("one_type_per_side", check_one_type_per_side),
];

/// Applies every rule in [`RULES`] to a copy of the raw contract and parses
/// the result as the OpenAPI document progenitor consumes.
pub fn normalize_for_progenitor(raw: &Value) -> Result<openapiv3::OpenAPI, String> {
    let doc = normalize_value(raw)?;
    serde_json::from_value(doc).map_err(|e| format!("normalized contract does not parse: {e}"))
}

/// [`normalize_for_progenitor`] before parsing: the normalized JSON document.
pub fn normalize_value(raw: &Value) -> Result<Value, String> {
    let mut doc = raw.clone();
    for (name, rule) in RULES {
        rule(&mut doc).map_err(|e| format!("normalization rule {name}: {e}"))?;
    }
    Ok(doc)
}

// ---------------------------------------------------------------- helpers

/// Calls `f(method, path, operation)` for every operation, in contract order.
fn for_each_op(
    doc: &mut Value,
    mut f: impl FnMut(&str, &str, &mut Map<String, Value>) -> Result<(), String>,
) -> Result<(), String> {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for method in METHODS {
            if let Some(Value::Object(op)) = item.get_mut(method) {
                f(method, path, op)?;
            }
        }
    }
    Ok(())
}

/// The object a `#/components/<kind>/<name>` reference points at.
fn lookup<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let rest = reference.strip_prefix("#/components/")?;
    let (kind, name) = rest.split_once('/')?;
    doc.get("components")?.get(kind)?.get(name)
}

/// Follows one level of `$ref` (the contract never nests them).
fn resolved<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => lookup(doc, reference).unwrap_or(value),
        None => value,
    }
}

fn is_json(content_type: &str) -> bool {
    content_type == "application/json" || content_type.ends_with("+json")
}

/// A JSON string of `v` with object keys sorted at every level, so two
/// schemas compare equal whatever order their keys were written in.
fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<_, _> = m.iter().map(|(k, v)| (k.clone(), sort(v))).collect();
                Value::Object(sorted.into_iter().collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// Ordering key of a response status: codes, then ranges, then `default`
/// (the order progenitor matches them in).
fn status_order(status: &str) -> (u8, u16) {
    if let Ok(code) = status.parse::<u16>() {
        (0, code)
    } else if let Some(d) = status
        .strip_suffix("XX")
        .or_else(|| status.strip_suffix("xx"))
    {
        (1, d.parse::<u16>().map(|d| d * 100).unwrap_or(0))
    } else {
        (2, 0)
    }
}

fn is_error_status(status: &str) -> bool {
    status.starts_with('4') || status.starts_with('5')
}

fn is_success_status(status: &str) -> bool {
    status.starts_with('2') || status == "101"
}

/// The JSON schema of a response (following a response `$ref`), if any.
fn json_schema_of<'a>(doc: &'a Value, response: &'a Value) -> Option<&'a Value> {
    let content = resolved(doc, response).get("content")?.as_object()?;
    content
        .iter()
        .find(|(ct, _)| is_json(ct))
        .and_then(|(_, m)| m.get("schema"))
}

/// What Rust type progenitor gives a response: its JSON schema, raw bytes
/// for any other media type, or nothing.
fn type_key(doc: &Value, response: &Value) -> String {
    let r = resolved(doc, response);
    match r.get("content").and_then(Value::as_object) {
        Some(content) if !content.is_empty() => match json_schema_of(doc, response) {
            Some(schema) => canonical(schema),
            None => "<bytes>".to_string(),
        },
        _ => "<none>".to_string(),
    }
}

fn responses_mut(op: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    op.get_mut("responses").and_then(Value::as_object_mut)
}

/// Component schema names plus a method to claim a fresh one.
struct Names(BTreeSet<String>);

impl Names {
    fn of(doc: &Value) -> Names {
        let taken = doc["components"]["schemas"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        Names(taken)
    }

    fn claim(&mut self, wanted: &str) -> String {
        let mut name = wanted.to_string();
        let mut n = 2;
        while self.0.contains(&name) {
            name = format!("{wanted}{n}");
            n += 1;
        }
        self.0.insert(name.clone());
        name
    }
}

/// Lifted schemas: one component per distinct (canonical) schema.
struct Lifter {
    names: Names,
    by_content: BTreeMap<String, String>,
    new: Vec<(String, Value)>,
}

impl Lifter {
    fn new(doc: &Value) -> Lifter {
        Lifter {
            names: Names::of(doc),
            by_content: BTreeMap::new(),
            new: Vec::new(),
        }
    }

    /// The `$ref` standing for `schema`, named `wanted` unless an identical
    /// schema was lifted before.
    fn lift(&mut self, wanted: &str, schema: &Value) -> Value {
        let key = canonical(schema);
        let name = match self.by_content.get(&key) {
            Some(name) => name.clone(),
            None => {
                let name = self.names.claim(wanted);
                self.by_content.insert(key, name.clone());
                self.new.push((name.clone(), schema.clone()));
                name
            }
        };
        serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    fn finish(self, doc: &mut Value) -> Result<(), String> {
        let schemas = doc
            .get_mut("components")
            .and_then(Value::as_object_mut)
            .ok_or("the contract has no components")?
            .entry("schemas")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or("components.schemas is not an object")?;
        for (name, schema) in self.new {
            schemas.insert(name, schema);
        }
        Ok(())
    }
}

/// Replaces each inline JSON schema of `content` (a response's or request
/// body's `content` map) with a `$ref` from `lifter`.
fn lift_content(content: Option<&mut Value>, lifter: &mut Lifter, wanted: &str) {
    let Some(Value::Object(content)) = content else {
        return;
    };
    for (ct, media) in content.iter_mut() {
        if !is_json(ct) {
            continue;
        }
        if let Some(schema) = media.get_mut("schema") {
            if schema.get("$ref").is_none() {
                *schema = lifter.lift(wanted, schema);
            }
        }
    }
}

/// Name and location of a parameter (following a parameter `$ref`).
fn param_id(doc: &Value, param: &Value) -> (String, String) {
    let p = resolved(doc, param);
    (
        p["name"].as_str().unwrap_or_default().to_string(),
        p["in"].as_str().unwrap_or_default().to_string(),
    )
}

/// Rewrites the parameter lists of the path item and the operation with
/// `f(doc, method, path, params)`. Path-level parameters are first copied
/// onto each operation so a rule can treat operations independently.
fn edit_params(
    doc: &mut Value,
    f: impl Fn(&Value, &str, &str, &mut Vec<Value>),
) -> Result<(), String> {
    let snapshot = doc.clone();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        let shared = match item.remove("parameters") {
            Some(Value::Array(shared)) => shared,
            _ => Vec::new(),
        };
        for method in METHODS {
            let Some(Value::Object(op)) = item.get_mut(method) else {
                continue;
            };
            let own = match op.remove("parameters") {
                Some(Value::Array(own)) => own,
                _ => Vec::new(),
            };
            // An operation's own parameter overrides a path-level one.
            let mut params: Vec<Value> = shared
                .iter()
                .filter(|s| {
                    !own.iter()
                        .any(|o| param_id(&snapshot, o) == param_id(&snapshot, s))
                })
                .cloned()
                .collect();
            params.extend(own);
            f(&snapshot, method, path, &mut params);
            if !params.is_empty() {
                op.insert("parameters".into(), Value::Array(params));
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ rules

/// Every operation gets `operationId` = [`operation_name`]`(method, path)`
/// (`post /gateway/fetch` → `post_gateway_fetch`), the project's one naming
/// rule; an operationId already in the contract is replaced so client method
/// names always match the server's operation names.
pub fn add_operation_ids(doc: &mut Value) -> Result<(), String> {
    let mut seen = BTreeMap::new();
    for_each_op(doc, |method, path, op| {
        let name = operation_name(method, path);
        if let Some(other) = seen.insert(name.clone(), format!("{method} {path}")) {
            return Err(format!(
                "operationId {name} derived twice: {other} and {method} {path}"
            ));
        }
        op.insert("operationId".into(), Value::String(name));
        Ok(())
    })
}

/// Credential header parameters (`apikey`, `x-api-key`, `X-API-Key`,
/// `X-Athena-Key`, including the `AdminApiKeyHeader` component) are removed:
/// the client sends the key as `X-Athena-Key` on every request (see
/// `AthenaClientBuilder`), which the server accepts for every credential slot.
pub fn drop_credential_headers(doc: &mut Value) -> Result<(), String> {
    edit_params(doc, |doc, _, _, params| {
        params.retain(|p| {
            let (name, location) = param_id(doc, p);
            !(location == "header"
                && CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        });
    })
}

/// `X-Athena-Client` (sent on every request by the client builder) and the
/// headers the server accepts when absent ([`SDK_OPTIONAL_HEADERS`]) become
/// optional, so a call need not repeat them. A value given on a call
/// overrides the builder's default header.
pub fn optional_routing_headers(doc: &mut Value) -> Result<(), String> {
    edit_params(doc, |doc, method, path, params| {
        for p in params.iter_mut() {
            let (name, location) = param_id(doc, p);
            let lower = name.to_ascii_lowercase();
            let optional = location == "header"
                && (lower == CLIENT_HEADER.to_ascii_lowercase()
                    || SDK_OPTIONAL_HEADERS
                        .iter()
                        .any(|(m, pth, h)| *m == method && *pth == path && *h == lower));
            if optional {
                let mut inline = resolved(doc, p).clone();
                inline["required"] = Value::Bool(false);
                *p = inline;
            }
        }
    })
}

/// A camelCase parameter next to its snake_case twin in the same location
/// (`targetSchema`/`target_schema`, `athenaBaseUrl`/`athena_base_url`) is
/// dropped: both would become the same Rust argument. The server accepts
/// either spelling.
pub fn drop_camel_twin_params(doc: &mut Value) -> Result<(), String> {
    edit_params(doc, |doc, _, _, params| {
        let ids: Vec<(String, String)> = params.iter().map(|p| param_id(doc, p)).collect();
        params.retain(|p| {
            let (name, location) = param_id(doc, p);
            let snake = snake_case(&name);
            snake == name || !ids.iter().any(|(n, l)| *n == snake && *l == location)
        });
    })
}

/// camelCase properties next to their snake_case twin (`sortBy`/`sort_by`)
/// are dropped from every schema (components, request bodies, responses, at
/// every nesting level) with `schema::drop_camel_twins`: both would become
/// the same Rust field. Requests still send, and responses may still carry,
/// either spelling.
pub fn drop_camel_twin_properties(doc: &mut Value) -> Result<(), String> {
    fn content_schemas(holder: &mut Value) {
        if let Some(Value::Object(content)) = holder.get_mut("content") {
            for media in content.values_mut() {
                if let Some(schema) = media.get_mut("schema") {
                    crate::schema::drop_camel_twins(schema);
                }
            }
        }
    }
    if let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas") {
        for schema in schemas.values_mut() {
            crate::schema::drop_camel_twins(schema);
        }
    }
    for kind in ["responses", "requestBodies"] {
        if let Some(Value::Object(items)) = doc.pointer_mut(&format!("/components/{kind}")) {
            items.values_mut().for_each(content_schemas);
        }
    }
    for_each_op(doc, |_, _, op| {
        if let Some(body) = op.get_mut("requestBody") {
            content_schemas(body);
        }
        if let Some(responses) = responses_mut(op) {
            responses.values_mut().for_each(content_schemas);
        }
        Ok(())
    })
}

/// The inline JSON schema of each `components.responses` entry moves to
/// `components.schemas` under the response's name; identical schemas share
/// one component (the contract's `BadRequestError`, `UnauthorizedError` and
/// `DefaultServerError5xx` are one envelope, so they stay one Rust type).
pub fn lift_component_responses(doc: &mut Value) -> Result<(), String> {
    let mut lifter = Lifter::new(doc);
    if let Some(Value::Object(responses)) = doc.pointer_mut("/components/responses") {
        // The standard envelope first, so it keeps its own name.
        let mut names: Vec<String> = responses.keys().cloned().collect();
        names.sort_by_key(|n| n != STANDARD_ERROR_RESPONSE);
        for name in names {
            if let Some(response) = responses.get_mut(&name) {
                lift_content(response.get_mut("content"), &mut lifter, &name);
            }
        }
    }
    lifter.finish(doc)
}

/// Inline JSON response schemas move to `components.schemas` as
/// `<Operation>Response<status>` (`PostGatewayFetchResponse400`); identical
/// schemas share one component. Left inline, progenitor names every response
/// of an operation `<Operation>Response` and typify reuses the first type of
/// a name, so errors would silently get the success type.
pub fn lift_inline_responses(doc: &mut Value) -> Result<(), String> {
    let mut lifter = Lifter::new(doc);
    // Dedupe against the schemas lifted from component responses too.
    if let Some(Value::Object(schemas)) = doc.pointer("/components/schemas") {
        for (name, schema) in schemas {
            lifter
                .by_content
                .entry(canonical(schema))
                .or_insert_with(|| name.clone());
        }
    }
    for_each_op(doc, |method, path, op| {
        let base = pascal_case(&operation_name(method, path));
        if let Some(responses) = responses_mut(op) {
            for (status, response) in responses.iter_mut() {
                let suffix = if status == "default" {
                    "Default".to_string()
                } else {
                    status.to_lowercase()
                };
                lift_content(
                    response.get_mut("content"),
                    &mut lifter,
                    &format!("{base}Response{suffix}"),
                );
            }
        }
        Ok(())
    })?;
    lifter.finish(doc)
}

/// A `default` response becomes `5XX` (dropped if the operation already has
/// one). progenitor counts `default` as both a success and an error type,
/// which panics when an operation also has a typed 2xx.
pub fn default_to_5xx(doc: &mut Value) -> Result<(), String> {
    for_each_op(doc, |_, _, op| {
        if let Some(responses) = responses_mut(op) {
            if let Some(default) = responses.remove("default") {
                if !responses.contains_key("5XX") {
                    responses.insert("5XX".into(), default);
                }
            }
        }
        Ok(())
    })
}

/// A 4xx/5xx response without a body gets the operation's error body: the
/// JSON schema of its first typed error response, else the standard error
/// envelope ([`STANDARD_ERROR_RESPONSE`]); the server sends the envelope on
/// every error. Without this, progenitor sees two error types (`()` and the
/// envelope) and panics.
pub fn fill_bodyless_errors(doc: &mut Value) -> Result<(), String> {
    let snapshot = doc.clone();
    let standard = snapshot
        .pointer(&format!("/components/responses/{STANDARD_ERROR_RESPONSE}"))
        .and_then(|r| json_schema_of(&snapshot, r))
        .cloned();
    for_each_op(doc, |_, _, op| {
        let Some(responses) = responses_mut(op) else {
            return Ok(());
        };
        let mut statuses: Vec<String> = responses
            .keys()
            .filter(|s| is_error_status(s))
            .cloned()
            .collect();
        statuses.sort_by_key(|s| status_order(s));
        let body = statuses
            .iter()
            .find_map(|s| json_schema_of(&snapshot, &responses[s.as_str()]).cloned())
            .or_else(|| standard.clone());
        let Some(body) = body else { return Ok(()) };
        for status in statuses {
            let response = responses.get_mut(&status).expect("status listed above");
            let has_content = resolved(&snapshot, response)
                .get("content")
                .and_then(Value::as_object)
                .is_some_and(|c| !c.is_empty());
            if !has_content {
                let mut inline = resolved(&snapshot, response).clone();
                inline["content"] = serde_json::json!({ "application/json": { "schema": body } });
                *response = inline;
            }
        }
        Ok(())
    })
}

/// An explicit code covered by a range of the same operation (`503` beside
/// `5XX`) is dropped when both have the same body: progenitor matches the
/// range first, so the code would be an unreachable pattern. Different
/// bodies are an error naming the operation.
pub fn drop_shadowed_codes(doc: &mut Value) -> Result<(), String> {
    let snapshot = doc.clone();
    for_each_op(doc, |method, path, op| {
        let Some(responses) = responses_mut(op) else {
            return Ok(());
        };
        let ranges: Vec<String> = responses
            .keys()
            .filter(|s| s.len() == 3 && s[1..].eq_ignore_ascii_case("xx"))
            .cloned()
            .collect();
        for range in ranges {
            let range_key = type_key(&snapshot, &responses[range.as_str()]);
            let shadowed: Vec<String> = responses
                .keys()
                .filter(|s| s.parse::<u16>().is_ok() && s.as_bytes()[0] == range.as_bytes()[0])
                .cloned()
                .collect();
            for code in shadowed {
                if type_key(&snapshot, &responses[code.as_str()]) != range_key {
                    return Err(format!(
                        "{method} {path}: response {code} and {range} have different bodies"
                    ));
                }
                responses.remove(&code);
            }
        }
        Ok(())
    })
}

/// A body-less 2xx beside a typed 2xx (the `204` next to the JSON `200` of
/// `post`/`patch`/`delete /rest/v1/{table}`) is dropped: progenitor allows one
/// success type. Such a 204 then surfaces as `Error::UnexpectedResponse`.
pub fn drop_bodyless_success_beside_typed(doc: &mut Value) -> Result<(), String> {
    let snapshot = doc.clone();
    for_each_op(doc, |_, _, op| {
        let Some(responses) = responses_mut(op) else {
            return Ok(());
        };
        let success: Vec<String> = responses
            .keys()
            .filter(|s| is_success_status(s))
            .cloned()
            .collect();
        let typed = success
            .iter()
            .any(|s| type_key(&snapshot, &responses[s.as_str()]) != "<none>");
        if typed {
            for s in success {
                if type_key(&snapshot, &responses[s.as_str()]) == "<none>" {
                    responses.remove(&s);
                }
            }
        }
        Ok(())
    })
}

/// Check (changes nothing): every operation has at most one success type and
/// one error type, as progenitor asserts (`response_types.len() <= 1`) —
/// but here the failing operation is named.
pub fn check_one_type_per_side(doc: &mut Value) -> Result<(), String> {
    let snapshot = doc.clone();
    for_each_op(doc, |method, path, op| {
        let Some(responses) = responses_mut(op) else {
            return Ok(());
        };
        for (side, pick) in [
            ("success", is_success_status as fn(&str) -> bool),
            ("error", is_error_status),
        ] {
            let types: BTreeSet<String> = responses
                .iter()
                .filter(|(s, _)| pick(s))
                .map(|(_, r)| type_key(&snapshot, r))
                .collect();
            if types.len() > 1 {
                return Err(format!(
                    "{method} {path}: {} different {side} response types",
                    types.len()
                ));
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> Value {
        json!({"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}})
    }

    fn doc(paths: Value) -> Value {
        json!({
            "openapi": "3.0.3",
            "info": {"title": "t", "version": "1"},
            "paths": paths,
            "components": {
                "schemas": {},
                "parameters": {
                    "AdminApiKeyHeader": {"name": "apikey", "in": "header", "required": true, "schema": {"type": "string"}}
                },
                "responses": {
                    "DefaultServerError5xx": {"description": "e", "content": {"application/json": {"schema": envelope()}}},
                    "BadRequestError": {"description": "b", "content": {"application/json": {"schema": envelope()}}}
                }
            }
        })
    }

    fn ok() -> Value {
        json!({"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}})
    }

    #[test]
    fn operation_ids_use_the_naming_rule() {
        let mut d = doc(
            json!({"/rest/v1/{table}": {"get": {"responses": {}}}, "/": {"get": {"responses": {}}}}),
        );
        add_operation_ids(&mut d).unwrap();
        assert_eq!(
            d["paths"]["/rest/v1/{table}"]["get"]["operationId"],
            "get_rest_v1_by_table"
        );
        assert_eq!(d["paths"]["/"]["get"]["operationId"], "get_root");
    }

    #[test]
    fn credential_headers_are_dropped_including_path_level_and_refs() {
        let mut d = doc(json!({"/a": {
            "parameters": [{"name": "x-api-key", "in": "header", "schema": {"type": "string"}}],
            "get": {"parameters": [
                {"$ref": "#/components/parameters/AdminApiKeyHeader"},
                {"name": "X-Athena-Key", "in": "header", "schema": {"type": "string"}},
                {"name": "apikey", "in": "query", "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer"}}
            ], "responses": {}}
        }}));
        drop_credential_headers(&mut d).unwrap();
        let names: Vec<_> = d["paths"]["/a"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["apikey", "limit"]);
        assert!(d["paths"]["/a"].get("parameters").is_none());
    }

    #[test]
    fn routing_headers_become_optional() {
        let mut d = doc(json!({"/gateway/insert": {"put": {"parameters": [
            {"name": "X-Athena-Client", "in": "header", "required": true, "schema": {"type": "string"}},
            {"name": "X-Company-Id", "in": "header", "required": true, "schema": {"type": "string"}},
            {"name": "X-Other", "in": "header", "required": true, "schema": {"type": "string"}}
        ], "responses": {}}}}));
        optional_routing_headers(&mut d).unwrap();
        let required: Vec<_> = d["paths"]["/gateway/insert"]["put"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["required"].as_bool().unwrap())
            .collect();
        assert_eq!(required, [false, false, true]);
    }

    #[test]
    fn camel_twin_params_are_dropped() {
        let mut d = doc(json!({"/h": {"get": {"parameters": [
            {"name": "target_schema", "in": "query", "schema": {"type": "string"}},
            {"name": "targetSchema", "in": "query", "schema": {"type": "string"}},
            {"name": "clientName", "in": "query", "schema": {"type": "string"}}
        ], "responses": {}}}}));
        drop_camel_twin_params(&mut d).unwrap();
        let names: Vec<_> = d["paths"]["/h"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["target_schema", "clientName"]);
    }

    #[test]
    fn camel_twin_properties_are_dropped_from_bodies() {
        let mut d = doc(json!({"/f": {"post": {
            "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                "sortBy": {"type": "string"}, "sort_by": {"type": "string"}}}}}},
            "responses": {}
        }}}));
        drop_camel_twin_properties(&mut d).unwrap();
        let props = &d["paths"]["/f"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"];
        assert!(props.get("sortBy").is_none() && props.get("sort_by").is_some());
    }

    #[test]
    fn identical_component_responses_share_one_schema() {
        let mut d = doc(json!({}));
        lift_component_responses(&mut d).unwrap();
        let r = |n: &str| {
            d["components"]["responses"][n]["content"]["application/json"]["schema"]["$ref"].clone()
        };
        assert_eq!(
            r("BadRequestError"),
            json!("#/components/schemas/DefaultServerError5xx")
        );
        assert_eq!(r("DefaultServerError5xx"), r("BadRequestError"));
        assert_eq!(d["components"]["schemas"].as_object().unwrap().len(), 1);
    }

    #[test]
    fn inline_responses_are_lifted_with_unique_names() {
        let mut d = doc(json!({"/f": {"post": {"responses": {
            "200": ok(),
            "400": {"description": "b", "content": {"application/json": {"schema": {"type": "string"}}}},
            "500": {"description": "e", "content": {"application/json": {"schema": envelope()}}}
        }}}}));
        d["components"]["schemas"]["PostFResponse200"] = json!({"type": "integer"});
        lift_component_responses(&mut d).unwrap();
        lift_inline_responses(&mut d).unwrap();
        let r = |s: &str| {
            d["paths"]["/f"]["post"]["responses"][s]["content"]["application/json"]["schema"]
                ["$ref"]
                .clone()
        };
        assert_eq!(r("200"), json!("#/components/schemas/PostFResponse2002"));
        assert_eq!(r("400"), json!("#/components/schemas/PostFResponse400"));
        // Identical to the lifted envelope: reuses it.
        assert_eq!(
            r("500"),
            json!("#/components/schemas/DefaultServerError5xx")
        );
    }

    #[test]
    fn default_becomes_5xx() {
        let mut d = doc(
            json!({"/c": {"get": {"responses": {"200": ok(), "default": {"description": "d"}}}}}),
        );
        default_to_5xx(&mut d).unwrap();
        let r = &d["paths"]["/c"]["get"]["responses"];
        assert!(r.get("default").is_none() && r.get("5XX").is_some());
    }

    #[test]
    fn bodyless_errors_get_the_operation_error_body_or_the_envelope() {
        let mut d = doc(json!({
            "/a": {"get": {"responses": {"200": ok(), "404": {"description": "n"},
                "500": {"description": "e", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/E"}}}}}}},
            "/b": {"get": {"responses": {"200": ok(), "401": {"description": "u"}}}}
        }));
        fill_bodyless_errors(&mut d).unwrap();
        assert_eq!(
            d["paths"]["/a"]["get"]["responses"]["404"]["content"]["application/json"]["schema"],
            json!({"$ref": "#/components/schemas/E"})
        );
        assert_eq!(
            d["paths"]["/b"]["get"]["responses"]["401"]["content"]["application/json"]["schema"],
            envelope()
        );
        assert_eq!(
            d["paths"]["/b"]["get"]["responses"]["401"]["description"],
            "u"
        );
    }

    #[test]
    fn codes_shadowed_by_a_range_are_dropped_or_reported() {
        let e =
            json!({"description": "e", "content": {"application/json": {"schema": envelope()}}});
        let mut d = doc(
            json!({"/c": {"get": {"responses": {"200": ok(), "503": e.clone(), "5XX": e.clone(), "404": e.clone()}}}}),
        );
        drop_shadowed_codes(&mut d).unwrap();
        let r = d["paths"]["/c"]["get"]["responses"].as_object().unwrap();
        assert_eq!(r.keys().collect::<Vec<_>>(), ["200", "404", "5XX"]);

        let mut d =
            doc(json!({"/c": {"get": {"responses": {"503": {"description": "x"}, "5XX": e}}}}));
        let err = drop_shadowed_codes(&mut d).unwrap_err();
        assert!(err.contains("get /c"), "{err}");
    }

    #[test]
    fn bodyless_success_beside_typed_is_dropped() {
        let mut d = doc(json!({
            "/rest/v1/{table}": {"post": {"responses": {"200": ok(), "204": {"description": "n"}}}},
            "/x": {"delete": {"responses": {"204": {"description": "n"}}}}
        }));
        drop_bodyless_success_beside_typed(&mut d).unwrap();
        assert!(d["paths"]["/rest/v1/{table}"]["post"]["responses"]
            .get("204")
            .is_none());
        assert!(d["paths"]["/x"]["delete"]["responses"].get("204").is_some());
    }

    #[test]
    fn check_names_the_operation() {
        let mut d =
            doc(json!({"/m": {"get": {"responses": {"200": ok(), "201": {"description": "n"}}}}}));
        let err = check_one_type_per_side(&mut d).unwrap_err();
        assert!(err.contains("get /m") && err.contains("success"), "{err}");
    }

    #[test]
    fn the_project_contract_normalizes_for_every_operation() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
        let contract = crate::Contract::load(&path).unwrap();
        let api = normalize_for_progenitor(&contract.raw).unwrap();
        let mut ids = BTreeSet::new();
        for (_, item) in api.paths.iter() {
            for (_, op) in item.as_item().unwrap().iter() {
                ids.insert(op.operation_id.clone().unwrap());
                assert!(op.responses.default.is_none());
            }
        }
        let names: BTreeSet<_> = contract.operations.iter().map(|o| o.name.clone()).collect();
        assert_eq!(ids, names);
        assert_eq!(ids.len(), 290);
    }
}
