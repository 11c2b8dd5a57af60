//! OpenAPI 3.0 schema objects → JSON Schema.
//!
//! typify and the conformance validator both speak JSON Schema; OAS 3.0 adds
//! `nullable` and a few keywords JSON Schema does not know. The conversion is
//! shared so the generated models and the response validator agree on what
//! the contract means.

use serde_json::{Map, Value};

/// Converts one OAS 3.0 schema (and everything nested in it) to JSON Schema.
/// `$ref`s to `#/components/schemas/X` are kept as they are.
pub fn to_json_schema(schema: &Value) -> Value {
    let Value::Object(obj) = schema else {
        return schema.clone();
    };
    if let Some(reference) = obj.get("$ref") {
        // OAS 3.0: siblings of $ref are ignored.
        return Value::Object(Map::from_iter([("$ref".to_string(), reference.clone())]));
    }
    let mut out = Map::new();
    for (key, value) in obj {
        match key.as_str() {
            "nullable" | "example" | "discriminator" | "xml" | "externalDocs" => {}
            "properties" | "patternProperties" => {
                let props = value
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), to_json_schema(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" | "not" => {
                out.insert(key.clone(), to_json_schema(value));
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list = value
                    .as_array()
                    .map(|a| a.iter().map(to_json_schema).collect())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Array(list));
            }
            "exclusiveMinimum" | "exclusiveMaximum" => {
                // OAS 3.0 booleans modify minimum/maximum (draft 4 style).
                let bound = if key == "exclusiveMinimum" {
                    "minimum"
                } else {
                    "maximum"
                };
                if value == &Value::Bool(true) {
                    if let Some(limit) = obj.get(bound) {
                        out.insert(key.clone(), limit.clone());
                    }
                } else if value.is_number() {
                    out.insert(key.clone(), value.clone());
                }
            }
            "minimum" | "maximum" => {
                let exclusive = if key == "minimum" {
                    "exclusiveMinimum"
                } else {
                    "exclusiveMaximum"
                };
                if obj.get(exclusive) != Some(&Value::Bool(true)) {
                    out.insert(key.clone(), value.clone());
                }
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        return make_nullable(out);
    }
    Value::Object(out)
}

fn make_nullable(mut schema: Map<String, Value>) -> Value {
    if let Some(Value::Array(values)) = schema.get_mut("enum") {
        if !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
    }
    match schema.get("type").cloned() {
        Some(Value::String(t)) => {
            schema.insert(
                "type".into(),
                Value::Array(vec![Value::String(t), "null".into()]),
            );
            Value::Object(schema)
        }
        Some(_) => Value::Object(schema),
        None if schema.contains_key("allOf")
            || schema.contains_key("oneOf")
            || schema.contains_key("anyOf") =>
        {
            serde_json::json!({ "anyOf": [Value::Object(schema), { "type": "null" }] })
        }
        // No type at all already admits null.
        None => Value::Object(schema),
    }
}

/// A camelCase property that duplicates a snake_case sibling (`sortBy` next
/// to `sort_by`). Both become the same Rust field, so generated models keep
/// the snake_case one and requests may still send the camelCase spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Twin {
    pub camel: String,
    pub snake: String,
}

/// Removes camelCase twins from the properties of an object schema (and of
/// nested schemas), returning the twins found at the top level.
pub fn drop_camel_twins(schema: &mut Value) -> Vec<Twin> {
    let mut top = Vec::new();
    drop_twins_rec(schema, &mut top, true);
    top
}

fn drop_twins_rec(schema: &mut Value, top: &mut Vec<Twin>, is_top: bool) {
    let Value::Object(obj) = schema else { return };
    let mut dropped = Vec::new();
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        let names: Vec<String> = props.keys().cloned().collect();
        for name in names {
            let snake = crate::naming::snake_case(&name);
            if snake != name && props.contains_key(&snake) {
                props.remove(&name);
                dropped.push(Twin { camel: name, snake });
            }
        }
        for value in props.values_mut() {
            drop_twins_rec(value, top, false);
        }
    }
    if let Some(Value::Array(required)) = obj.get_mut("required") {
        required.retain(|r| !dropped.iter().any(|t| r.as_str() == Some(t.camel.as_str())));
    }
    if is_top {
        top.extend(dropped);
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(v) = obj.get_mut(key) {
            drop_twins_rec(v, top, false);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = obj.get_mut(key) {
            for v in list {
                drop_twins_rec(v, top, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nullable_becomes_type_union() {
        let s = to_json_schema(&json!({"type": "string", "nullable": true, "example": "x"}));
        assert_eq!(s, json!({"type": ["string", "null"]}));
    }

    #[test]
    fn nullable_enum_admits_null() {
        let s = to_json_schema(&json!({"type": "string", "enum": ["a"], "nullable": true}));
        assert_eq!(s, json!({"type": ["string", "null"], "enum": ["a", null]}));
    }

    #[test]
    fn nullable_composition_wraps_in_any_of() {
        let s = to_json_schema(
            &json!({"allOf": [{"$ref": "#/components/schemas/A"}], "nullable": true}),
        );
        assert_eq!(
            s,
            json!({"anyOf": [{"allOf": [{"$ref": "#/components/schemas/A"}]}, {"type": "null"}]})
        );
    }

    #[test]
    fn ref_siblings_are_dropped_and_nesting_converted() {
        let s = to_json_schema(&json!({
            "type": "object",
            "properties": {
                "a": {"$ref": "#/components/schemas/A", "description": "x"},
                "b": {"type": "array", "items": {"type": "integer", "nullable": true}}
            }
        }));
        assert_eq!(
            s["properties"]["a"],
            json!({"$ref": "#/components/schemas/A"})
        );
        assert_eq!(
            s["properties"]["b"]["items"]["type"],
            json!(["integer", "null"])
        );
    }

    #[test]
    fn exclusive_bounds_follow_draft_2019() {
        let s = to_json_schema(&json!({"type": "integer", "minimum": 1, "exclusiveMinimum": true}));
        assert_eq!(s, json!({"type": "integer", "exclusiveMinimum": 1}));
    }

    #[test]
    fn camel_twins_are_dropped_at_every_level() {
        let mut s = json!({"type": "object", "properties": {
            "sortBy": {"type": "string"}, "sort_by": {"type": "string"},
            "nested": {"type": "object", "properties": {"aB": {}, "a_b": {}}}
        }});
        let twins = drop_camel_twins(&mut s);
        assert_eq!(
            twins,
            vec![Twin {
                camel: "sortBy".into(),
                snake: "sort_by".into()
            }]
        );
        assert!(s["properties"].get("sortBy").is_none());
        assert!(s["properties"]["nested"]["properties"].get("aB").is_none());
    }
}
