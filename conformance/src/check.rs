//! Checks every response gets: documented status, JSON that parses, the
//! error envelope for errors, and the documented JSON schema for the rest.

use crate::http::{is_json_media_type, Response};
use athena_codegen::schema::to_json_schema;
use athena_codegen::spec::{Operation, Response as DocResponse, Status};
use jsonschema::Validator;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Statuses any operation may answer although few document them.
pub const EXTRAS: [u16; 8] = [400, 401, 403, 404, 405, 413, 429, 503];

pub fn status_allowed(op: &Operation, code: u16) -> bool {
    op.documents(code) || EXTRAS.contains(&code)
}

/// The project-wide error envelope: `status == "error"`, string `message`
/// and `error`; `code`, `error_number` and `docs_url` have the right types
/// when present.
pub fn check_envelope(body: &Value) -> Result<(), String> {
    let obj = body.as_object().ok_or("error body is not a JSON object")?;
    match obj.get("status") {
        Some(Value::String(s)) if s == "error" => {}
        other => {
            return Err(format!(
                "error envelope: status is {other:?}, expected \"error\""
            ))
        }
    }
    for key in ["message", "error"] {
        if !obj.get(key).is_some_and(Value::is_string) {
            return Err(format!(
                "error envelope: `{key}` is missing or not a string"
            ));
        }
    }
    for key in ["code", "docs_url"] {
        if obj.get(key).is_some_and(|v| !v.is_string() && !v.is_null()) {
            return Err(format!("error envelope: `{key}` is not a string"));
        }
    }
    if obj
        .get("error_number")
        .is_some_and(|v| !v.is_i64() && !v.is_u64() && !v.is_null())
    {
        return Err("error envelope: `error_number` is not an integer".into());
    }
    Ok(())
}

/// The documented response for a concrete code: an explicit code wins over
/// a `4XX` range, which wins over `default`.
pub fn documented_response(op: &Operation, code: u16) -> Option<&DocResponse> {
    op.responses
        .iter()
        .find(|r| r.status == Status::Code(code))
        .or_else(|| {
            op.responses
                .iter()
                .find(|r| r.status == Status::Range(code / 100))
        })
        .or_else(|| op.responses.iter().find(|r| r.status == Status::Default))
}

/// Compiled response validators, cached per (operation, status).
pub struct Validators {
    components: Value,
    cache: HashMap<(String, u16), Result<Validator, String>>,
}

impl Validators {
    pub fn new(component_schemas: &[(String, Value)]) -> Validators {
        let schemas: Map<String, Value> = component_schemas
            .iter()
            .map(|(name, s)| (name.clone(), to_json_schema(s)))
            .collect();
        Validators {
            components: serde_json::json!({ "schemas": schemas }),
            cache: HashMap::new(),
        }
    }

    /// A JSON Schema document for one OAS schema, with the component
    /// schemas alongside so `#/components/schemas/X` resolves.
    pub fn root_document(&self, schema: &Value) -> Value {
        let mut root = Map::new();
        root.insert(
            "$schema".into(),
            Value::String("https://json-schema.org/draft/2020-12/schema".into()),
        );
        root.insert("components".into(), self.components.clone());
        match to_json_schema(schema) {
            Value::Object(converted) => {
                for (k, v) in converted {
                    root.insert(k, v);
                }
            }
            Value::Bool(false) => {
                root.insert("not".into(), Value::Object(Map::new()));
            }
            _ => {}
        }
        Value::Object(root)
    }

    /// Validates `body` against the schema documented for `op` at `code`
    /// (no schema documented: passes).
    pub fn validate(&mut self, op: &Operation, code: u16, body: &Value) -> Result<(), String> {
        let Some(schema) = documented_response(op, code).and_then(|r| r.schema.as_ref()) else {
            return Ok(());
        };
        let key = (op.name.clone(), code);
        if !self.cache.contains_key(&key) {
            let root = self.root_document(schema);
            let compiled = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .build(&root)
                .map_err(|e| format!("documented schema for {code} does not compile: {e}"));
            self.cache.insert(key.clone(), compiled);
        }
        let validator = self.cache[&key].as_ref().map_err(Clone::clone)?;
        let errors: Vec<String> = validator
            .iter_errors(body)
            .take(3)
            .map(|e| format!("{} at `{}`", e, e.instance_path))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "body does not match the documented {code} schema: {}",
                errors.join("; ")
            ))
        }
    }
}

/// The checks every case's response gets, whatever the case expects.
pub fn check_response(
    op: &Operation,
    resp: &Response,
    validators: &mut Validators,
) -> Result<(), String> {
    let code = resp.status;
    if code == 501 {
        return Err("not implemented".into());
    }
    if !status_allowed(op, code) {
        return Err(format!(
            "status {code} is not documented: {}",
            resp.snippet()
        ));
    }
    let doc = documented_response(op, code);
    if code >= 400 {
        // Every error is the envelope, whatever the contract documents.
        if !resp.is_json() {
            return Err(format!(
                "{code} error body is not JSON (content-type {:?}): {}",
                resp.content_type(),
                resp.snippet()
            ));
        }
        let body = resp.json()?;
        // The envelope is the contract for errors; documented error schemas
        // are not checked (some contradict the envelope, e.g. D1 migrate 400).
        return check_envelope(&body).map_err(|e| format!("{code}: {e}: {}", resp.snippet()));
    }
    let documented_json = doc
        .and_then(|d| d.content_type.as_deref())
        .is_some_and(is_json_media_type);
    if resp.is_json() {
        let body = resp.json()?;
        if documented_json {
            validators.validate(op, code, &body)?;
        }
    } else if documented_json && doc.is_some_and(|d| d.schema.is_some()) && code != 204 {
        return Err(format!(
            "{code} documents a JSON body but the response has content-type {:?}",
            resp.content_type()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_accepts_the_server_shape() {
        let v = json!({"status":"error","message":"Not found","error":"no route","code":"route_not_found",
            "error_number":4041,"docs_url":"https://x/docs#4041"});
        assert!(check_envelope(&v).is_ok());
        assert!(check_envelope(&json!({"status":"error","message":"m","error":"e"})).is_ok());
    }

    #[test]
    fn envelope_rejects_other_shapes() {
        assert!(check_envelope(&json!([])).is_err());
        assert!(check_envelope(&json!({"status":"success","message":"m","error":"e"})).is_err());
        assert!(check_envelope(&json!({"status":"error","message":"m"})).is_err());
        assert!(check_envelope(&json!({"status":"error","message":1,"error":"e"})).is_err());
        assert!(check_envelope(
            &json!({"status":"error","message":"m","error":"e","error_number":"x"})
        )
        .is_err());
    }

    #[test]
    fn validates_against_documented_schema_with_refs() {
        let c = crate::tests::contract();
        let mut v = Validators::new(&c.component_schemas());
        let fetch = c
            .operations
            .iter()
            .find(|o| o.name == "post_gateway_fetch")
            .unwrap();
        assert!(v
            .validate(
                fetch,
                200,
                &json!({"status":"success","message":"m","data":[{"a":1}]})
            )
            .is_ok());
        assert!(v
            .validate(fetch, 200, &json!({"status":"nope","data":[]}))
            .is_err());
        assert!(v
            .validate(fetch, 200, &json!({"status":"success","data":[1]}))
            .is_err());
        // Every documented JSON schema of the contract compiles.
        for op in &c.operations {
            for r in &op.responses {
                if let (Some(s), Status::Code(code)) = (&r.schema, &r.status) {
                    let root = v.root_document(s);
                    assert!(
                        jsonschema::options()
                            .with_draft(jsonschema::Draft::Draft202012)
                            .build(&root)
                            .is_ok(),
                        "{} {code}",
                        op.name
                    );
                }
            }
        }
    }
}
