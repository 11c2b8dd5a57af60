//! The derived SDK overlay (`openapi/sdk-overlay.yaml`): widenings of the
//! contract's request-body schemas so the server's generated request models
//! accept what the official SDK sends (the "accept what the SDK sends" rule of
//! openapi/CHANGES.md).
//!
//! Applied by `server::generate` to the server's request models only. The
//! contract itself, the conformance suite (response schemas) and the
//! generated client never see it. The file is compiled in, so editing it
//! rebuilds this crate and reruns every build script that uses it.

use crate::spec::Contract;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The project's overlay.
pub const SDK_OVERLAY: &str = include_str!("../../sdk-overlay.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    /// YAML anchors only; not applied by itself.
    #[serde(default)]
    pub shapes: Option<Value>,
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
        Ok(overlay)
    }

    /// Applies every widening to a copy of the raw contract.
    pub fn apply(&self, raw: &Value) -> Result<Value, String> {
        let mut out = raw.clone();
        for w in &self.widenings {
            w.apply(&mut out)?;
        }
        Ok(out)
    }
}

/// Whether a pointer lies inside a request body (never a response, a
/// parameter or a shared component schema, which responses may also use).
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
    fn apply(&self, raw: &mut Value) -> Result<(), String> {
        let at = |msg: String| format!("openapi/sdk-overlay.yaml: {}: {msg}", self.pointer);
        let toks = tokens(&self.pointer).map_err(at)?;
        if !is_request_body_pointer(&toks) {
            return Err(at(
                "the overlay only widens request-body schemas (/paths/<path>/<method>/requestBody/… \
                 or /components/requestBodies/…)"
                    .into(),
            ));
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
    fn only_request_bodies_are_widened() {
        for ptr in [
            "/paths/~1gateway~1delete/delete/responses/200/content/application~1json/schema",
            "/components/schemas/Shared",
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

    fn project_contract() -> Contract {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
        Contract::load(&path).expect("the project contract loads")
    }

    #[test]
    fn project_overlay_applies_to_request_bodies_only() {
        let c = project_contract();
        let widened = server_contract(&c).expect("the project overlay applies");
        assert_eq!(widened.operations.len(), c.operations.len());
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
        // The raw contract (served, used by the client) is not modified.
        assert_eq!(
            c.raw.pointer("/paths/~1gateway~1delete/delete/requestBody/content/application~1json/schema/required"),
            Some(&json!(["table_name", "resource_id"]))
        );
    }
}
