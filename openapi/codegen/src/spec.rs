//! The contract as the generators and the conformance suite see it: every
//! operation with its derived name and family, parameters and responses with
//! component `$ref`s resolved, credential slots told apart from plain headers.

use crate::naming;
use openapiv3::{
    OpenAPI, Parameter, ParameterSchemaOrContent, ReferenceOr, RequestBody, Response as OaResponse,
    StatusCode,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

pub const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Header names that carry a credential rather than data. A credential is
/// resolved by the auth code (any accepted spelling, Bearer or `?api_key=`),
/// never by the typed extractor, so a missing key is a 401, not a 400.
pub const CREDENTIAL_HEADERS: [&str; 4] = ["apikey", "x-api-key", "x-athena-key", "x-api-key"];

/// Headers the contract marks required that the official SDK never sends:
/// accepted when absent (recorded in openapi/CHANGES.md).
pub const SDK_OPTIONAL_HEADERS: [(&str, &str, &str); 2] = [
    ("put", "/gateway/insert", "x-company-id"),
    ("put", "/gateway/insert", "x-organization-id"),
];

/// Paths that need the static admin key whether or not they declare it.
pub fn is_admin_path(path: &str) -> bool {
    path.starts_with("/admin/")
        || path == "/admin"
        || path.starts_with("/debug/")
        || matches!(
            path,
            "/gateway/deferred/flush" | "/schema/clients" | "/clients" | "/registry"
        )
        // Issue 21: they take credentials and URLs (openapi/CHANGES.md).
        || path.starts_with("/typesense/")
        || path == "/api/v2/supabase/ssl_enforcement"
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    Path,
    Query,
    Header,
    Cookie,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: Location,
    pub required: bool,
    /// OAS schema of the parameter (`{}` when the contract gives none).
    pub schema: Value,
    pub credential: bool,
}

#[derive(Debug, Clone)]
pub struct Body {
    pub content_type: String,
    pub required: bool,
    pub schema: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Code(u16),
    /// `4XX`/`5XX`: the first digit.
    Range(u16),
    Default,
}

impl Status {
    /// Whether a concrete status code is covered by this documented status.
    pub fn covers(&self, code: u16) -> bool {
        match self {
            Status::Code(c) => *c == code,
            Status::Range(r) => code / 100 == *r,
            Status::Default => true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: Status,
    pub description: String,
    /// The first media type (JSON preferred) and its schema.
    pub content_type: Option<String>,
    pub schema: Option<Value>,
    pub headers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub method: String,
    pub path: String,
    pub name: String,
    /// The generated trait (`<Family>Api`) and handler module it belongs to
    /// (`crate::families`, `openapi/families.yaml`).
    pub family: String,
    /// Its area: first tag, else first path segment (`naming::area`); the
    /// family before `/admin` and `/storage` were split, still reported by
    /// `GET /router/registry`.
    pub area: String,
    pub summary: String,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Response>,
    /// Needs the static admin key (`ATHENA_KEY_12`).
    pub admin: bool,
    /// Not in the contract: added by the SDK overlay
    /// (`openapi/sdk-overlay.yaml`, `overlay::SDK_ONLY`).
    pub sdk_only: bool,
}

impl Operation {
    pub fn documents(&self, code: u16) -> bool {
        // An explicit code wins over a range or `default`.
        self.responses.iter().any(|r| r.status.covers(code))
    }
}

pub struct Contract {
    pub api: OpenAPI,
    pub raw: Value,
    pub operations: Vec<Operation>,
}

#[derive(Debug)]
pub struct SpecError(pub String);

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

fn err(msg: impl Into<String>) -> SpecError {
    SpecError(msg.into())
}

impl Contract {
    pub fn load(path: &Path) -> Result<Contract, SpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("reading {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Contract, SpecError> {
        let api: OpenAPI =
            serde_yaml::from_str(text).map_err(|e| err(format!("parsing the contract: {e}")))?;
        let raw: Value =
            serde_yaml::from_str(text).map_err(|e| err(format!("parsing the contract: {e}")))?;
        let families = crate::families::Families::project().map_err(err)?;
        let mut operations = Vec::new();
        for (path, item) in &api.paths.paths {
            let item = item
                .as_item()
                .ok_or_else(|| err(format!("{path}: path item $ref is not supported")))?;
            for (method, op) in item.iter() {
                if !METHODS.contains(&method) {
                    continue;
                }
                let mut params = Vec::new();
                for p in item.parameters.iter().chain(op.parameters.iter()) {
                    params.push(resolve_param(&api, p, method, path)?);
                }
                check_path_params(path, method, &params)?;
                let body = match &op.request_body {
                    Some(b) => Some(resolve_body(&api, b, method, path)?),
                    None => None,
                };
                let mut responses = Vec::new();
                for (status, resp) in &op.responses.responses {
                    let status = match status {
                        StatusCode::Code(c) => Status::Code(*c),
                        StatusCode::Range(r) => Status::Range(*r),
                    };
                    responses.push(resolve_response(&api, status, resp, method, path)?);
                }
                if let Some(d) = &op.responses.default {
                    responses.push(resolve_response(&api, Status::Default, d, method, path)?);
                }
                responses.sort_by(|a, b| a.status.cmp(&b.status));
                let admin = is_admin_path(path)
                    || op.parameters.iter().any(|p| {
                        matches!(p, ReferenceOr::Reference { reference } if reference.ends_with("/AdminApiKeyHeader"))
                    });
                let tag = op.tags.first().map(String::as_str);
                operations.push(Operation {
                    method: method.to_string(),
                    path: path.clone(),
                    name: naming::operation_name(method, path),
                    family: families.family(tag, path),
                    area: naming::area(tag, path),
                    summary: op.summary.clone().unwrap_or_default(),
                    params,
                    body,
                    responses,
                    admin,
                    sdk_only: op.extensions.contains_key(crate::overlay::SDK_ONLY),
                });
            }
        }
        let mut seen = BTreeMap::new();
        for op in &operations {
            if let Some(other) = seen.insert(op.name.clone(), format!("{} {}", op.method, op.path))
            {
                return Err(err(format!(
                    "operation name {} is derived twice: {other} and {} {}",
                    op.name, op.method, op.path
                )));
            }
        }
        Ok(Contract {
            api,
            raw,
            operations,
        })
    }

    /// Component schemas as raw OAS values, in contract order.
    pub fn component_schemas(&self) -> Vec<(String, Value)> {
        self.raw["components"]["schemas"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

fn check_path_params(path: &str, method: &str, params: &[Param]) -> Result<(), SpecError> {
    for segment in path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if !params
                .iter()
                .any(|p| p.location == Location::Path && p.name == name)
            {
                return Err(err(format!(
                    "{method} {path}: path parameter {{{name}}} is not declared"
                )));
            }
        }
    }
    Ok(())
}

fn component<'a, T>(
    map: &'a indexmap::IndexMap<String, ReferenceOr<T>>,
    reference: &str,
    kind: &str,
    at: &str,
) -> Result<&'a T, SpecError> {
    let prefix = format!("#/components/{kind}/");
    let name = reference
        .strip_prefix(&prefix)
        .ok_or_else(|| err(format!("{at}: unsupported $ref {reference}")))?;
    match map.get(name) {
        Some(ReferenceOr::Item(item)) => Ok(item),
        Some(ReferenceOr::Reference { .. }) => Err(err(format!("{at}: nested $ref {reference}"))),
        None => Err(err(format!("{at}: $ref {reference} points nowhere"))),
    }
}

fn components(api: &OpenAPI) -> Result<&openapiv3::Components, SpecError> {
    api.components
        .as_ref()
        .ok_or_else(|| err("the contract has no components"))
}

fn resolve_param(
    api: &OpenAPI,
    p: &ReferenceOr<Parameter>,
    method: &str,
    path: &str,
) -> Result<Param, SpecError> {
    let at = format!("{method} {path}");
    let p = match p {
        ReferenceOr::Item(p) => p,
        ReferenceOr::Reference { reference } => {
            component(&components(api)?.parameters, reference, "parameters", &at)?
        }
    };
    let (data, location) = match p {
        Parameter::Path { parameter_data, .. } => (parameter_data, Location::Path),
        Parameter::Query { parameter_data, .. } => (parameter_data, Location::Query),
        Parameter::Header { parameter_data, .. } => (parameter_data, Location::Header),
        Parameter::Cookie { parameter_data, .. } => (parameter_data, Location::Cookie),
    };
    let schema = match &data.format {
        ParameterSchemaOrContent::Schema(s) => serde_json::to_value(s).unwrap_or(Value::Null),
        ParameterSchemaOrContent::Content(_) => Value::Object(Default::default()),
    };
    let lower = data.name.to_ascii_lowercase();
    let credential = location == Location::Header && CREDENTIAL_HEADERS.contains(&lower.as_str());
    let sdk_optional = SDK_OPTIONAL_HEADERS
        .iter()
        .any(|(m, p, h)| *m == method && *p == path && *h == lower);
    Ok(Param {
        name: data.name.clone(),
        location,
        required: (data.required || location == Location::Path) && !sdk_optional,
        schema,
        credential,
    })
}

fn resolve_body(
    api: &OpenAPI,
    b: &ReferenceOr<RequestBody>,
    method: &str,
    path: &str,
) -> Result<Body, SpecError> {
    let at = format!("{method} {path}");
    let b = match b {
        ReferenceOr::Item(b) => b,
        ReferenceOr::Reference { reference } => component(
            &components(api)?.request_bodies,
            reference,
            "requestBodies",
            &at,
        )?,
    };
    let (content_type, media) = b
        .content
        .iter()
        .find(|(ct, _)| ct.as_str() == "application/json")
        .or_else(|| b.content.iter().next())
        .ok_or_else(|| err(format!("{at}: request body without content")))?;
    Ok(Body {
        content_type: content_type.clone(),
        required: b.required,
        schema: media
            .schema
            .as_ref()
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null)),
    })
}

fn resolve_response(
    api: &OpenAPI,
    status: Status,
    r: &ReferenceOr<OaResponse>,
    method: &str,
    path: &str,
) -> Result<Response, SpecError> {
    let at = format!("{method} {path}");
    let r = match r {
        ReferenceOr::Item(r) => r,
        ReferenceOr::Reference { reference } => {
            component(&components(api)?.responses, reference, "responses", &at)?
        }
    };
    let media = r
        .content
        .iter()
        .find(|(ct, _)| ct.as_str() == "application/json")
        .or_else(|| r.content.iter().next());
    Ok(Response {
        status,
        description: r.description.clone(),
        content_type: media.map(|(ct, _)| ct.clone()),
        schema: media
            .and_then(|(_, m)| m.schema.as_ref())
            .map(|s| serde_json::to_value(s).unwrap_or(Value::Null)),
        headers: r.headers.keys().cloned().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> Contract {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
        Contract::load(&path).expect("the project contract loads")
    }

    #[test]
    fn contract_has_all_operations_with_unique_names() {
        let c = contract();
        assert_eq!(c.operations.len(), 290);
        let names: std::collections::BTreeSet<_> = c.operations.iter().map(|o| &o.name).collect();
        assert_eq!(names.len(), 290);
    }

    #[test]
    fn credentials_are_not_plain_parameters() {
        let c = contract();
        let fetch = c
            .operations
            .iter()
            .find(|o| o.name == "post_gateway_fetch")
            .unwrap();
        assert!(fetch
            .params
            .iter()
            .any(|p| p.name == "apikey" && p.credential));
        assert!(fetch
            .params
            .iter()
            .any(|p| p.name == "X-Athena-Client" && !p.credential));
        let insert = c
            .operations
            .iter()
            .find(|o| o.name == "put_gateway_insert")
            .unwrap();
        assert!(insert
            .params
            .iter()
            .filter(|p| p.name.eq_ignore_ascii_case("x-company-id"))
            .all(|p| !p.required));
    }

    #[test]
    fn admin_surface_fails_closed() {
        let c = contract();
        for op in &c.operations {
            if op.path.starts_with("/admin/") {
                assert!(op.admin, "{} {}", op.method, op.path);
            }
        }
        let flush = c
            .operations
            .iter()
            .find(|o| o.path == "/gateway/deferred/flush")
            .unwrap();
        assert!(flush.admin);
        // Its entries name tenants and route keys.
        let registry = c.operations.iter().find(|o| o.path == "/registry").unwrap();
        assert!(registry.admin);
    }
}
