//! Models: every component schema and every inline request/response schema
//! of the contract, generated with typify.
//!
//! Inline schemas are lifted into named definitions first
//! (`PostGatewayFetchRequest`, `PostGatewayFetchResponse200`, …): left inline,
//! typify would name them all after the operation and reuse the first.

use crate::naming::pascal_case;
use crate::schema::{drop_camel_twins, to_json_schema, Twin};
use crate::spec::{Contract, Operation, Status};
use proc_macro2::TokenStream;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use typify::{TypeSpace, TypeSpaceSettings};

/// The Rust type of a request body or response payload.
#[derive(Clone)]
pub enum Payload {
    /// A JSON document of the given model type.
    Json(TokenStream),
    /// Raw bytes (octet-stream, text, yaml, gzip).
    Bytes,
    /// No body.
    Empty,
}

pub struct Models {
    pub tokens: TokenStream,
    /// (operation name) → request body type.
    pub bodies: BTreeMap<String, Payload>,
    /// (operation name, status) → response payload type.
    pub responses: BTreeMap<(String, Status), Payload>,
    /// (operation name) → camelCase twins dropped from its body.
    pub twins: BTreeMap<String, Vec<Twin>>,
}

pub fn is_json(content_type: &str) -> bool {
    content_type == "application/json" || content_type.ends_with("+json")
}

fn status_suffix(status: &Status) -> String {
    match status {
        Status::Code(c) => c.to_string(),
        Status::Range(r) => format!("{r}xx"),
        Status::Default => "Default".to_string(),
    }
}

/// A schema that is exactly `$ref: '#/components/schemas/X'` names `X`.
fn component_ref(schema: &Value) -> Option<String> {
    let obj = schema.as_object()?;
    let reference = obj.get("$ref")?.as_str()?;
    reference
        .strip_prefix("#/components/schemas/")
        .map(str::to_string)
}

/// The camelCase twins among a body's top-level properties, following
/// `$ref`s to component schemas and `allOf` members (typify merges those
/// into the body's one struct, keeping the snake_case field only).
fn body_twins(contract: &Contract, schema: &Value) -> Vec<Twin> {
    fn collect(
        raw: &Value,
        schema: &Value,
        names: &mut BTreeSet<String>,
        seen: &mut BTreeSet<String>,
    ) {
        if let Some(name) = component_ref(schema) {
            if seen.insert(name.clone()) {
                if let Some(target) = raw.pointer(&format!("/components/schemas/{name}")) {
                    collect(raw, target, names, seen);
                }
            }
            return;
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            names.extend(props.keys().cloned());
        }
        for member in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            collect(raw, member, names, seen);
        }
    }
    let mut names = BTreeSet::new();
    collect(&contract.raw, schema, &mut names, &mut BTreeSet::new());
    names
        .iter()
        .filter_map(|camel| {
            let snake = crate::naming::snake_case(camel);
            (snake != *camel && names.contains(&snake)).then(|| Twin {
                camel: camel.clone(),
                snake,
            })
        })
        .collect()
}

pub fn generate(contract: &Contract) -> Result<Models, String> {
    let mut defs: Vec<(String, Value)> = Vec::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for (name, schema) in contract.component_schemas() {
        let mut converted = to_json_schema(&schema);
        drop_camel_twins(&mut converted);
        taken.insert(name.clone());
        defs.push((name, converted));
    }

    // What each operation's body/responses will refer to, by definition name.
    enum Slot {
        Def(String),
        Bytes,
        Empty,
    }
    let mut body_slots: Vec<(String, Slot)> = Vec::new();
    let mut response_slots: Vec<((String, Status), Slot)> = Vec::new();
    let mut twins = BTreeMap::new();
    let mut lift =
        |op: &Operation, suffix: &str, schema: &Value, defs: &mut Vec<(String, Value)>| {
            if let Some(name) = component_ref(schema) {
                return (Slot::Def(name), Vec::new());
            }
            let mut name = format!("{}{}", pascal_case(&op.name), suffix);
            while taken.contains(&name) {
                name.push_str("Body");
            }
            taken.insert(name.clone());
            let mut converted = to_json_schema(schema);
            let found = drop_camel_twins(&mut converted);
            defs.push((name.clone(), converted));
            (Slot::Def(name), found)
        };

    for op in &contract.operations {
        if let Some(body) = &op.body {
            let slot = match (&body.schema, is_json(&body.content_type)) {
                (Some(schema), true) => {
                    let (slot, mut found) = lift(op, "Request", schema, &mut defs);
                    // Twins of a component (or an `allOf` member), which
                    // typify merges into the body's struct, too.
                    for twin in body_twins(contract, schema) {
                        if !found.contains(&twin) {
                            found.push(twin);
                        }
                    }
                    if !found.is_empty() {
                        twins.insert(op.name.clone(), found);
                    }
                    slot
                }
                (None, true) => {
                    let (slot, _) =
                        lift(op, "Request", &Value::Object(Default::default()), &mut defs);
                    slot
                }
                _ => Slot::Bytes,
            };
            body_slots.push((op.name.clone(), slot));
        }
        for resp in &op.responses {
            let key = (op.name.clone(), resp.status.clone());
            let slot = match (&resp.content_type, &resp.schema) {
                (Some(ct), Some(schema)) if is_json(ct) => {
                    let suffix = format!("Response{}", status_suffix(&resp.status));
                    lift(op, &suffix, schema, &mut defs).0
                }
                (Some(ct), None) if is_json(ct) => Slot::Def(String::new()),
                (Some(_), _) => Slot::Bytes,
                (None, _) => Slot::Empty,
            };
            response_slots.push((key, slot));
        }
    }

    let mut settings = TypeSpaceSettings::default();
    settings.with_struct_builder(false);
    settings.with_derive("PartialEq".to_string());
    // Types are referred to as `models::X` from the sibling generated modules.
    settings.with_type_mod("models");
    let mut space = TypeSpace::new(&settings);
    let schemars_defs = defs
        .iter()
        .map(|(name, value)| {
            serde_json::from_value::<schemars::schema::Schema>(value.clone())
                .map(|s| (name.clone(), s))
                .map_err(|e| format!("schema {name} is not a valid JSON Schema: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    space
        .add_ref_types(schemars_defs)
        .map_err(|e| format!("typify could not convert the contract's schemas: {e}"))?;

    let mut ident_of = |name: &str| -> Result<TokenStream, String> {
        if name.is_empty() {
            return Ok(quote::quote!(::serde_json::Value));
        }
        let reference: schemars::schema::Schema = serde_json::from_value(
            serde_json::json!({ "$ref": format!("#/components/schemas/{name}") }),
        )
        .map_err(|e| e.to_string())?;
        let id = space
            .add_type(&reference)
            .map_err(|e| format!("{name}: {e}"))?;
        let ty = space.get_type(&id).map_err(|e| format!("{name}: {e}"))?;
        Ok(ty.ident())
    };
    let mut to_payload = |slot: &Slot| -> Result<Payload, String> {
        Ok(match slot {
            Slot::Def(name) => Payload::Json(ident_of(name)?),
            Slot::Bytes => Payload::Bytes,
            Slot::Empty => Payload::Empty,
        })
    };
    let mut bodies = BTreeMap::new();
    for (op, slot) in &body_slots {
        bodies.insert(op.clone(), to_payload(slot)?);
    }
    let mut responses = BTreeMap::new();
    for (key, slot) in &response_slots {
        responses.insert(key.clone(), to_payload(slot)?);
    }
    Ok(Models {
        tokens: space.to_stream(),
        bodies,
        responses,
        twins,
    })
}
