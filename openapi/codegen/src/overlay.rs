//! The derived SDK overlay (`openapi/sdk-overlay.yaml`): what the server
//! accepts beyond the contract so that the official SDK works unmodified
//! (the "accept what the SDK sends" rule of openapi/CHANGES.md):
//!
//! - `widenings`: properties added to, or `required` entries dropped from,
//!   request-body schemas, and component schemas no response uses;
//! - `schemas` and `operations`: operations the SDK calls that the contract
//!   lacks, with the component schemas they need. They are marked
//!   `x-athena-sdk-only` (`spec::Operation::sdk_only`).
//!
//! Applied by `server::generate` to the server's API only. The contract
//! itself (served at `/openapi.yaml`), the conformance suite and the
//! generated client never see it. The file is compiled in, so editing it
//! rebuilds this crate and reruns every build script that uses it.

use crate::families::Families;
use crate::spec::{Contract, METHODS};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The project's overlay.
pub const SDK_OVERLAY: &str = include_str!("../../sdk-overlay.yaml");

/// The OAS extension marking an operation added by the overlay; its value
/// is the operation's `why`.
pub const SDK_ONLY: &str = "x-athena-sdk-only";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    /// YAML anchors only; not applied by itself.
    #[serde(default)]
    pub shapes: Option<Value>,
    /// Component schemas added for the SDK-only operations (names the
    /// contract does not use).
    #[serde(default)]
    pub schemas: Map<String, Value>,
    /// Operations the SDK calls that the contract lacks.
    #[serde(default)]
    pub operations: Vec<SdkOperation>,
    #[serde(default)]
    pub widenings: Vec<Widening>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Widening {
    pub pointer: String,
    pub why: String,
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(default)]
    pub drop_required: Vec<String>,
}

/// Whether an SDK-only operation requires `X-Athena-Client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientHeader {
    Required,
    Optional,
}

/// An operation the SDK calls that the contract does not declare.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdkOperation {
    /// Lowercase HTTP method.
    pub method: String,
    pub path: String,
    /// Must be the family `openapi/families.yaml` gives the path.
    pub family: String,
    pub summary: String,
    /// The SDK reference (module, method, request and response types).
    pub why: String,
    /// Path parameters (OAS 3.0 parameter objects); `X-Athena-Client` is
    /// added from `client`.
    #[serde(default)]
    pub parameters: Vec<Value>,
    pub client: ClientHeader,
    /// The JSON request body's schema (OAS 3.0), required when given.
    #[serde(default)]
    pub request: Option<Value>,
    /// The 200 response's JSON schema (OAS 3.0).
    pub response: Value,
}

impl Overlay {
    pub fn parse(text: &str) -> Result<Overlay, String> {
        let overlay: Overlay = serde_yaml::from_str(text)
            .map_err(|e| format!("openapi/sdk-overlay.yaml does not parse: {e}"))?;
        for w in &overlay.widenings {
            if w.why.trim().is_empty() {
                return Err(format!(
                    "openapi/sdk-overlay.yaml: {} has no `why`",
                    w.pointer
                ));
            }
        }
        for op in &overlay.operations {
            if op.why.trim().is_empty() || op.summary.trim().is_empty() {
                return Err(format!(
                    "openapi/sdk-overlay.yaml: {} {} needs a `summary` and a `why`",
                    op.method, op.path
                ));
            }
        }
        Ok(overlay)
    }

    /// Applies the overlay to a copy of the raw contract: the added
    /// schemas and operations first, then every widening (checked against
    /// every response of the result, the added operations' included).
    pub fn apply(&self, raw: &Value) -> Result<Value, String> {
        let mut out = raw.clone();
        self.add_schemas(&mut out)?;
        if !self.operations.is_empty() {
            let families = Families::project()?;
            for op in &self.operations {
                op.add(&mut out, &families)?;
            }
        }
        let users = response_schema_users(&out);
        for w in &self.widenings {
            w.apply(&mut out, &users)?;
        }
        Ok(out)
    }

    fn add_schemas(&self, raw: &mut Value) -> Result<(), String> {
        if self.schemas.is_empty() {
            return Ok(());
        }
        let schemas = raw
            .pointer_mut("/components/schemas")
            .and_then(Value::as_object_mut)
            .ok_or("openapi/sdk-overlay.yaml: the contract has no components/schemas")?;
        for (name, schema) in &self.schemas {
            if schemas.contains_key(name) {
                return Err(format!(
                    "openapi/sdk-overlay.yaml: schema `{name}` is already in the contract; widen it instead"
                ));
            }
            schemas.insert(name.clone(), schema.clone());
        }
        Ok(())
    }
}

impl SdkOperation {
    fn add(&self, raw: &mut Value, families: &Families) -> Result<(), String> {
        let at = |msg: String| {
            format!(
                "openapi/sdk-overlay.yaml: operation {} {}: {msg}",
                self.method, self.path
            )
        };
        if !METHODS.contains(&self.method.as_str()) {
            return Err(at(format!("the method must be one of {METHODS:?}")));
        }
        if !self.path.starts_with('/') {
            return Err(at("the path must start with `/`".into()));
        }
        let family = families.family(None, &self.path);
        if family != self.family {
            return Err(at(format!(
                "openapi/families.yaml puts this path in `{family}`, not `{}`",
                self.family
            )));
        }
        let mut parameters = self.parameters.clone();
        parameters.push(json!({
            "name": "X-Athena-Client",
            "in": "header",
            "required": self.client == ClientHeader::Required,
            "description": "Logical Athena client whose database keeps the storage catalog rows.",
            "schema": {"type": "string"},
        }));
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json!({
                "description": "Success: the standard envelope `{status, message, data}`",
                "content": {"application/json": {"schema": self.response}},
            }),
        );
        for (code, description) in [
            ("400", "Invalid request"),
            ("401", "No or an invalid API key"),
            (
                "403",
                "The API key lacks the operation's right or is bound to another client",
            ),
            ("404", "Unknown resource"),
            ("500", "Internal error"),
            ("501", "Not implemented yet"),
            (
                "503",
                "Storage unavailable (catalog database, ATHENA_SECRET_KEY)",
            ),
        ] {
            responses.insert(code.into(), json!({ "description": description }));
        }
        let mut operation = json!({
            "summary": self.summary,
            "parameters": parameters,
            "responses": responses,
            SDK_ONLY: self.why.trim(),
        });
        if let Some(schema) = &self.request {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema}},
            });
        }
        let paths = raw
            .get_mut("paths")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| at("the contract has no paths".into()))?;
        let item = paths
            .entry(self.path.clone())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| at("the path item is not an object".into()))?;
        if item.contains_key(&self.method) {
            return Err(at(
                "the contract already declares it; widen its request body instead".into(),
            ));
        }
        item.insert(self.method.clone(), operation);
        Ok(())
    }
}

/// Whether a pointer lies inside a request body (never a response or a
/// parameter).
fn is_request_body_pointer(tokens: &[String]) -> bool {
    match tokens {
        [paths, _path, _method, request_body, ..] if paths == "paths" => {
            request_body == "requestBody"
        }
        [components, request_bodies, ..] if components == "components" => {
            request_bodies == "requestBodies"
        }
        _ => false,
    }
}

/// The component schema a pointer lies in (`/components/schemas/<Name>[/…]`).
fn component_schema(tokens: &[String]) -> Option<&str> {
    match tokens {
        [components, schemas, name, ..] if components == "components" && schemas == "schemas" => {
            Some(name)
        }
        _ => None,
    }
}

/// Every component schema some response uses (through `$ref`s, followed
/// transitively), with the first response found using it: each response of
/// each operation (`GET /x 200`) and each entry of `components/responses`.
pub fn response_schema_users(raw: &Value) -> BTreeMap<String, String> {
    let schemas = raw
        .pointer("/components/schemas")
        .and_then(Value::as_object);
    let mut users = BTreeMap::new();
    let mut mark = |label: String, response: &Value| {
        let mut seen = BTreeSet::new();
        let mut queue = Vec::new();
        schema_refs(response, &mut queue);
        while let Some(name) = queue.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(schema) = schemas.and_then(|s| s.get(&name)) {
                schema_refs(schema, &mut queue);
            }
        }
        for name in seen {
            users.entry(name).or_insert_with(|| label.clone());
        }
    };
    let responses = raw
        .pointer("/components/responses")
        .and_then(Value::as_object);
    if let Some(paths) = raw.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in METHODS {
                let Some(codes) = item
                    .pointer(&format!("/{method}/responses"))
                    .and_then(Value::as_object)
                else {
                    continue;
                };
                for (code, response) in codes {
                    let label = format!("{} {path} {code}", method.to_uppercase());
                    // A `$ref` to components/responses: that response's schemas.
                    let resolved = response
                        .get("$ref")
                        .and_then(Value::as_str)
                        .and_then(|r| r.strip_prefix("#/components/responses/"))
                        .and_then(|name| responses.and_then(|m| m.get(name)));
                    mark(label, resolved.unwrap_or(response));
                }
            }
        }
    }
    if let Some(responses) = responses {
        for (name, response) in responses {
            mark(format!("components/responses/{name}"), response);
        }
    }
    users
}

/// The component schemas a value names with `$ref`, anywhere inside it.
fn schema_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            for (key, v) in obj {
                match (key.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => {
                        if let Some(name) = r.strip_prefix("#/components/schemas/") {
                            out.push(name.to_string());
                        }
                    }
                    _ => schema_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| schema_refs(v, out)),
        _ => {}
    }
}

/// RFC 6901 tokens of a pointer (`~1` → `/`, `~0` → `~`).
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("`{pointer}` is not a JSON pointer (must start with `/`)"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

impl Widening {
    fn apply(&self, raw: &mut Value, users: &BTreeMap<String, String>) -> Result<(), String> {
        let at = |msg: String| format!("openapi/sdk-overlay.yaml: {}: {msg}", self.pointer);
        let toks = tokens(&self.pointer).map_err(at)?;
        match component_schema(&toks) {
            // A component schema: only while no response uses it, so a
            // widening never reaches a response model.
            Some(name) => {
                if let Some(response) = users.get(name) {
                    return Err(at(format!(
                        "component schema `{name}` is used by the response {response}; the overlay \
                         only widens schemas no response uses"
                    )));
                }
            }
            None if is_request_body_pointer(&toks) => {}
            None => {
                return Err(at(
                    "the overlay only widens request-body schemas (/paths/<path>/<method>/requestBody/…, \
                     /components/requestBodies/…) and component schemas no response uses \
                     (/components/schemas/<Name>[/…])"
                        .into(),
                ))
            }
        }
        let schema = raw
            .pointer_mut(&self.pointer)
            .ok_or_else(|| at("does not resolve in openapi/openapi.yaml".into()))?;
        let obj = schema
            .as_object_mut()
            .ok_or_else(|| at("does not point at a schema object".into()))?;
        if obj.contains_key("$ref") {
            return Err(at(
                "points at a $ref; widen the request body's own schema instead".into(),
            ));
        }
        if !self.properties.is_empty() {
            let props = obj
                .entry("properties")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .ok_or_else(|| at("`properties` is not an object".into()))?;
            for (name, schema) in &self.properties {
                props.insert(name.clone(), schema.clone());
            }
        }
        for name in &self.drop_required {
            let required = obj
                .get_mut("required")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| {
                    at(format!(
                        "drop_required `{name}`: the schema has no `required`"
                    ))
                })?;
            let before = required.len();
            required.retain(|r| r.as_str() != Some(name));
            if required.len() == before {
                return Err(at(format!(
                    "drop_required `{name}`: not in the schema's `required`"
                )));
            }
            if required.is_empty() {
                obj.remove("required");
            }
        }
        Ok(())
    }
}

/// The contract as the server's request models see it: the project's
/// overlay applied to the raw document, reparsed.
pub fn server_contract(contract: &Contract) -> Result<Contract, String> {
    let overlay = Overlay::parse(SDK_OVERLAY)?;
    with_overlay(contract, &overlay)
}

pub fn with_overlay(contract: &Contract, overlay: &Overlay) -> Result<Contract, String> {
    let widened = overlay.apply(&contract.raw)?;
    // JSON is YAML: reuse the one parser (and its checks).
    let text = serde_json::to_string(&widened).map_err(|e| e.to_string())?;
    Contract::parse(&text).map_err(|e| format!("the contract with the SDK overlay: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw() -> Value {
        json!({
            "paths": {"/gateway/delete": {"delete": {
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"table_name": {"type": "string"}, "resource_id": {"type": "string"}},
                    "required": ["table_name", "resource_id"]
                }}}},
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}}
            }}},
            "components": {"schemas": {"Shared": {"type": "object"}}}
        })
    }

    const PTR: &str =
        "/paths/~1gateway~1delete/delete/requestBody/content/application~1json/schema";

    fn overlay(yaml: &str) -> Result<Value, String> {
        Overlay::parse(yaml)?.apply(&raw())
    }

    #[test]
    fn adds_replaces_and_drops_required() {
        let out = overlay(&format!(
            "widenings:\n  - pointer: {PTR}\n    why: SDK §0.9\n    properties:\n      resource_id: {{description: any}}\n      conditions: {{type: array}}\n    drop_required: [resource_id]\n"
        ))
        .unwrap();
        let schema = out.pointer(PTR).unwrap();
        assert_eq!(
            schema["properties"]["resource_id"],
            json!({"description": "any"})
        );
        assert_eq!(schema["properties"]["conditions"], json!({"type": "array"}));
        assert_eq!(
            schema["properties"]["table_name"],
            json!({"type": "string"})
        );
        assert_eq!(schema["required"], json!(["table_name"]));
        // The response schema is untouched.
        assert_eq!(
            out["paths"]["/gateway/delete"]["delete"]["responses"],
            raw()["paths"]["/gateway/delete"]["delete"]["responses"]
        );
    }

    #[test]
    fn unresolvable_pointers_fail_clearly() {
        let e = overlay(
            "widenings:\n  - pointer: /paths/~1nope/post/requestBody/content/application~1json/schema\n    why: x\n",
        )
        .unwrap_err();
        assert!(e.contains("does not resolve"), "{e}");
        let e = overlay(&format!(
            "widenings:\n  - pointer: {PTR}\n    why: x\n    drop_required: [nope]\n"
        ))
        .unwrap_err();
        assert!(e.contains("not in the schema's `required`"), "{e}");
        let e = overlay("widenings:\n  - pointer: no-slash\n    why: x\n").unwrap_err();
        assert!(e.contains("not a JSON pointer"), "{e}");
    }

    #[test]
    fn only_request_bodies_and_unused_components_are_widened() {
        for ptr in [
            "/paths/~1gateway~1delete/delete/responses/200/content/application~1json/schema",
            "/paths/~1gateway~1delete/delete/parameters",
            "/info",
        ] {
            let e = overlay(&format!(
                "widenings:\n  - pointer: {ptr}\n    why: x\n    properties: {{a: {{}}}}\n"
            ))
            .unwrap_err();
            assert!(e.contains("only widens request-body"), "{ptr}: {e}");
        }
        assert!(overlay(&format!("widenings:\n  - pointer: {PTR}\n    why: ''\n")).is_err());
        assert!(overlay("widenings: []\nbogus: 1\n").is_err());
    }

    /// A contract where `Conn` is used by a request body only, `Row` by a
    /// response through two `$ref`s (`List` → `Row`), `Err` by a shared
    /// response of components/responses, `Cause` only through `Err`.
    fn raw_with_components() -> Value {
        json!({
            "paths": {"/things": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {
                        "allOf": [{"$ref": "#/components/schemas/Conn"}, {"type": "object"}]
                    }}}},
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {"schema": {
                            "type": "object", "properties": {"data": {"$ref": "#/components/schemas/List"}}
                        }}}},
                        "500": {"$ref": "#/components/responses/Failed"}
                    }
                }
            }},
            "components": {
                "schemas": {
                    "Conn": {"type": "object", "required": ["endpoint"], "properties": {"endpoint": {"type": "string"}}},
                    "List": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}},
                    "Row": {"type": "object", "properties": {"id": {"type": "string"}}},
                    "Err": {"type": "object", "properties": {"cause": {"$ref": "#/components/schemas/Cause"}}},
                    "Cause": {"type": "object"}
                },
                "responses": {"Failed": {"description": "failed", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Err"
                }}}}}
            }
        })
    }

    #[test]
    fn response_schema_users_follow_refs_transitively() {
        let users = response_schema_users(&raw_with_components());
        assert_eq!(
            users.get("List").map(String::as_str),
            Some("POST /things 200")
        );
        assert_eq!(
            users.get("Row").map(String::as_str),
            Some("POST /things 200")
        );
        assert_eq!(
            users.get("Err").map(String::as_str),
            Some("POST /things 500")
        );
        assert_eq!(
            users.get("Cause").map(String::as_str),
            Some("POST /things 500")
        );
        assert!(!users.contains_key("Conn"), "{users:?}");
    }

    #[test]
    fn component_widenings_only_where_no_response_uses_the_schema() {
        let apply = |ptr: &str| {
            Overlay::parse(&format!(
                "widenings:\n  - pointer: {ptr}\n    why: x\n    properties: {{s3_id: {{type: string}}}}\n    drop_required: [endpoint]\n"
            ))
            .unwrap()
            .apply(&raw_with_components())
        };
        let out = apply("/components/schemas/Conn").unwrap();
        let conn = &out["components"]["schemas"]["Conn"];
        assert_eq!(conn["properties"]["s3_id"], json!({"type": "string"}));
        assert!(conn.get("required").is_none());
        for (ptr, user) in [
            ("/components/schemas/Row", "POST /things 200"),
            ("/components/schemas/List/items", "POST /things 200"),
            ("/components/schemas/Cause", "POST /things 500"),
        ] {
            let e = apply(ptr).unwrap_err();
            assert!(
                e.contains(&format!("used by the response {user}")),
                "{ptr}: {e}"
            );
        }
        let e = apply("/components/schemas/Nope").unwrap_err();
        assert!(e.contains("does not resolve"), "{e}");
    }

    fn sdk_operation(extra: &str) -> String {
        format!(
            "operations:\n  - method: post\n    path: /storage/buckets/policy\n    family: storage_buckets\n    summary: s\n    why: SDK\n    client: optional\n    request: {{type: object}}\n    response: {{type: object}}\n{extra}"
        )
    }

    #[test]
    fn sdk_operations_are_added_marked_with_their_family_checked() {
        let out = Overlay::parse(&sdk_operation(""))
            .unwrap()
            .apply(&raw())
            .unwrap();
        let op = &out["paths"]["/storage/buckets/policy"]["post"];
        assert_eq!(op[SDK_ONLY], "SDK");
        assert_eq!(op["parameters"][0]["name"], "X-Athena-Client");
        assert_eq!(op["parameters"][0]["required"], false);
        assert_eq!(op["requestBody"]["required"], true);
        assert!(op["responses"]["200"]["content"]["application/json"]["schema"].is_object());
        assert!(op["responses"]["401"].is_object());
        // The contract's own operation is untouched.
        assert_eq!(
            out["paths"]["/gateway/delete"],
            raw()["paths"]["/gateway/delete"]
        );

        let e = Overlay::parse(&sdk_operation("").replace("storage_buckets", "storage_policy"))
            .unwrap()
            .apply(&raw())
            .unwrap_err();
        assert!(e.contains("puts this path in `storage_buckets`"), "{e}");
        let e = Overlay::parse(
            &sdk_operation("")
                .replace("/storage/buckets/policy", "/gateway/delete")
                .replace("method: post", "method: delete")
                .replace("storage_buckets", "gateway"),
        )
        .unwrap()
        .apply(&raw())
        .unwrap_err();
        assert!(e.contains("already declares it"), "{e}");
        let e = Overlay::parse(&sdk_operation("schemas:\n  Shared: {type: object}\n"))
            .unwrap()
            .apply(&raw())
            .unwrap_err();
        assert!(e.contains("already in the contract"), "{e}");
        assert!(Overlay::parse(&sdk_operation("").replace("why: SDK", "why: ' '")).is_err());
        assert!(
            Overlay::parse(&sdk_operation("").replace("client: optional", "client: maybe"))
                .is_err()
        );
    }

    /// A response of an SDK-only operation counts too: a widening may not
    /// reach it through a shared schema.
    #[test]
    fn widenings_see_the_sdk_operations_responses() {
        let yaml = format!(
            "{}schemas:\n  Added: {{type: object, properties: {{a: {{type: string}}}}}}\nwidenings:\n  - pointer: /components/schemas/Shared\n    why: x\n",
            sdk_operation("").replace(
                "response: {type: object}",
                "response: {type: object, properties: {x: {$ref: '#/components/schemas/Shared'}}}"
            )
        );
        let e = Overlay::parse(&yaml).unwrap().apply(&raw()).unwrap_err();
        assert!(
            e.contains("used by the response POST /storage/buckets/policy 200"),
            "{e}"
        );
    }

    fn project_contract() -> Contract {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
        Contract::load(&path).expect("the project contract loads")
    }

    #[test]
    fn project_overlay_widens_requests_and_adds_sdk_operations() {
        let c = project_contract();
        let widened = server_contract(&c).expect("the project overlay applies");
        let find = |c: &Contract, name: &str| {
            c.operations
                .iter()
                .find(|o| o.name == name)
                .cloned()
                .unwrap()
        };
        let delete = find(&widened, "delete_gateway_delete");
        let schema = delete.body.unwrap().schema.unwrap();
        assert_eq!(schema["required"], json!(["table_name"]));
        assert!(schema["properties"]["conditions"].is_object());
        let insert = find(&widened, "put_gateway_insert");
        assert!(
            insert.body.unwrap().schema.unwrap()["properties"]["insert_body"]["oneOf"].is_array()
        );
        // Responses are the contract's own.
        for name in [
            "delete_gateway_delete",
            "put_gateway_insert",
            "post_gateway_fetch",
        ] {
            let (a, b) = (find(&c, name), find(&widened, name));
            assert_eq!(
                serde_json::to_string(&a.responses.iter().map(|r| &r.schema).collect::<Vec<_>>())
                    .unwrap(),
                serde_json::to_string(&b.responses.iter().map(|r| &r.schema).collect::<Vec<_>>())
                    .unwrap()
            );
        }
        // The S3 connection accepts a catalog id; inline credentials are optional.
        let conn = widened
            .raw
            .pointer("/components/schemas/StorageS3Connection")
            .unwrap();
        assert!(conn["properties"]["s3_id"].is_object() && conn["properties"]["s3Id"].is_object());
        assert!(conn.get("required").is_none());
        // The SDK-only operations: after the contract's, marked, none in the contract.
        let sdk: Vec<_> = widened.operations.iter().filter(|o| o.sdk_only).collect();
        assert_eq!(sdk.len(), 30);
        assert_eq!(widened.operations.len(), c.operations.len() + 30);
        assert!(c.operations.iter().all(|o| !o.sdk_only));
        for op in &sdk {
            assert!(
                !c.operations.iter().any(|o| o.name == op.name),
                "{}",
                op.name
            );
            // Storage's (end-user routes), billing's (issue 15: the
            // connection PATCH/DELETE and `/debug/billing`, admin routes)
            // and chat's (issue 20: the dm resolve, an end-user route).
            let storage = op.path.starts_with("/storage/") && !op.admin;
            let billing = op.path.starts_with("/admin/billing/") || op.path == "/debug/billing";
            let chat = op.path == "/chat/rooms/direct/resolve" && !op.admin;
            assert!(storage || billing || chat, "{}", op.name);
        }
        assert_eq!(
            find(&widened, "get_storage_providers").family,
            "storage_connections"
        );
        assert_eq!(
            find(&widened, "post_chat_rooms_direct_resolve").family,
            "chat"
        );
        assert_eq!(
            find(&widened, "delete_storage_connections_by_id").family,
            "storage_connections"
        );
        assert_eq!(
            find(&widened, "post_storage_objects_post_policy").family,
            "storage_objects"
        );
        assert_eq!(
            find(&widened, "post_storage_buckets_public_access_set").family,
            "storage_buckets"
        );
        // The raw contract (served, used by the client) is not modified.
        assert_eq!(
            c.raw.pointer("/paths/~1gateway~1delete/delete/requestBody/content/application~1json/schema/required"),
            Some(&json!(["table_name", "resource_id"]))
        );
    }
}
