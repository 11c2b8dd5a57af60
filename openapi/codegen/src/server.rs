//! Server code generation: typed parameters, response enums, one trait per
//! API family, the operation table and the dispatch from operation to trait
//! method. The output is the crate `athena-api` (`generated/athena-api`,
//! written by its `build.rs`); the runtime pieces the generated code calls
//! (`Inputs`, `Fields`, `ApiError`, the payload wrappers) are hand-written in
//! `athena-runtime` (`generated/athena-runtime`), referred to as
//! `::athena_runtime`. The request context handed to every trait method is
//! the server's own type (`ApiContext::Cx`).

use crate::models::{self, Payload};
use crate::naming::{field_name, pascal_case};
use crate::spec::{Contract, Location, Operation, Param, Status};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Generates the whole server API module as formatted Rust source.
pub fn generate(contract: &Contract) -> Result<String, String> {
    // The server API is the contract plus the SDK overlay
    // (openapi/sdk-overlay.yaml): request models accept what the official
    // SDK sends, and the operations the SDK calls that the contract lacks
    // are generated like the contract's own (`OperationMeta::sdk_only`).
    let mut server = crate::overlay::server_contract(contract)?;
    let models = models::generate(&server)?;
    // The contract's operations in the contract's order, then the SDK's.
    let position = |name: &str| contract.operations.iter().position(|o| o.name == name);
    server
        .operations
        .sort_by_key(|op| position(&op.name).unwrap_or(usize::MAX));
    let contract = &server;
    let model_tokens = &models.tokens;
    let params = params_module(contract);
    let responses = responses_module(contract, &models);
    let operations = operations_module(contract);
    let traits = traits_module(contract, &models);
    let dispatch = dispatch_module(contract, &models);
    let file = quote! {
        /// Models for every schema of the contract (typify).
        #[allow(clippy::all, dead_code, unused_imports, irrefutable_let_patterns)]
        pub mod models {
            #model_tokens
        }
        #params
        #responses
        #operations
        #traits
        #dispatch
    };
    let syntax = syn::parse2::<syn::File>(file)
        .map_err(|e| format!("generated code does not parse: {e}"))?;
    let source = prettyplease::unparse(&syntax);
    // typify skips empty arrays when serializing; a response must say
    // `"data": []`, not leave `data` out (the SDK would then take the whole
    // body as data).
    Ok(source.replace(", skip_serializing_if = \"::std::vec::Vec::is_empty\"", ""))
}

fn ident(s: &str) -> Ident {
    Ident::new(s, Span::call_site())
}

/// Parameters the typed extractor fills: everything but credential slots.
fn value_params(op: &Operation) -> Vec<&Param> {
    op.params.iter().filter(|p| !p.credential).collect()
}

/// Field names for an operation's parameters, unique within the operation.
fn param_fields(op: &Operation) -> Vec<(Ident, &Param)> {
    let params = value_params(op);
    let mut used = BTreeSet::new();
    params
        .into_iter()
        .map(|p| {
            let mut name = field_name(&p.name);
            if !used.insert(name.clone()) {
                name = format!("{name}_{}", location_word(p.location));
                used.insert(name.clone());
            }
            (ident(&name), p)
        })
        .collect()
}

fn location_word(l: Location) -> &'static str {
    match l {
        Location::Path => "path",
        Location::Query => "query",
        Location::Header => "header",
        Location::Cookie => "cookie",
    }
}

fn param_type(schema: &Value) -> TokenStream {
    let ty = schema.get("type").and_then(Value::as_str);
    let format = schema.get("format").and_then(Value::as_str);
    match (ty, format) {
        (Some("string"), Some("uuid")) => quote!(::uuid::Uuid),
        (Some("integer"), _) => quote!(i64),
        (Some("number"), _) => quote!(f64),
        (Some("boolean"), _) => quote!(bool),
        (Some("array"), _) => quote!(::std::vec::Vec<::std::string::String>),
        _ => quote!(::std::string::String),
    }
}

fn enum_values(schema: &Value) -> Vec<String> {
    schema
        .get("enum")
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn params_module(contract: &Contract) -> TokenStream {
    let structs = contract.operations.iter().filter(|op| !value_params(op).is_empty()).map(|op| {
        let name = format_ident!("{}", pascal_case(&op.name));
        let fields = param_fields(op);
        let decls = fields.iter().map(|(field, p)| {
            let ty = param_type(&p.schema);
            let doc = format!("`{}` ({})", p.name, location_word(p.location));
            if p.required {
                quote!(#[doc = #doc] pub #field: #ty,)
            } else {
                quote!(#[doc = #doc] pub #field: ::std::option::Option<#ty>,)
            }
        });
        let inits = fields.iter().map(|(field, p)| {
            let wire = &p.name;
            let allowed = enum_values(&p.schema);
            let getter = match (p.location, p.required) {
                (Location::Path, _) => quote!(inputs.path_param(#wire)),
                (Location::Query, true) => quote!(inputs.required_query(#wire)),
                (Location::Query, false) => quote!(inputs.query(#wire)),
                (Location::Header, true) => quote!(inputs.required_header(#wire)),
                (Location::Header, false) => quote!(inputs.header(#wire)),
                (Location::Cookie, true) => quote!(inputs.required_cookie(#wire)),
                (Location::Cookie, false) => quote!(inputs.cookie(#wire)),
            };
            if allowed.is_empty() {
                quote!(#field: #getter?,)
            } else {
                let check = if p.required {
                    quote!(::athena_runtime::extract::one_of(#wire, &value, &[#(#allowed),*])?;)
                } else {
                    quote!(if let Some(value) = &value { ::athena_runtime::extract::one_of(#wire, value, &[#(#allowed),*])?; })
                };
                let ty = param_type(&p.schema);
                let full = if p.required { ty } else { quote!(::std::option::Option<#ty>) };
                quote!(#field: { let value: #full = #getter?; #check value },)
            }
        });
        let doc = format!("Typed parameters of `{} {}`.", op.method.to_uppercase(), op.path);
        quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, Default)]
            pub struct #name { #(#decls)* }
            impl #name {
                pub fn extract(inputs: &::athena_runtime::extract::Fields<'_>) -> ::std::result::Result<Self, ::athena_runtime::ApiError> {
                    Ok(Self { #(#inits)* })
                }
            }
        }
    });
    quote! {
        /// Typed path, query, header and cookie parameters, one struct per operation.
        #[allow(clippy::all, dead_code)]
        pub mod params { #(#structs)* }
    }
}

fn variant_name(status: &Status) -> Ident {
    let name = match status {
        Status::Code(code) => match code {
            200 => "Ok".to_string(),
            201 => "Created".to_string(),
            202 => "Accepted".to_string(),
            204 => "NoContent".to_string(),
            206 => "PartialContent".to_string(),
            301 => "MovedPermanently".to_string(),
            302 => "Found".to_string(),
            304 => "NotModified".to_string(),
            307 => "TemporaryRedirect".to_string(),
            308 => "PermanentRedirect".to_string(),
            400 => "BadRequest".to_string(),
            401 => "Unauthorized".to_string(),
            403 => "Forbidden".to_string(),
            404 => "NotFound".to_string(),
            405 => "MethodNotAllowed".to_string(),
            409 => "Conflict".to_string(),
            410 => "Gone".to_string(),
            413 => "PayloadTooLarge".to_string(),
            415 => "UnsupportedMediaType".to_string(),
            422 => "UnprocessableEntity".to_string(),
            423 => "Locked".to_string(),
            429 => "TooManyRequests".to_string(),
            500 => "InternalServerError".to_string(),
            501 => "NotImplemented".to_string(),
            502 => "BadGateway".to_string(),
            503 => "ServiceUnavailable".to_string(),
            504 => "GatewayTimeout".to_string(),
            other => format!("Status{other}"),
        },
        Status::Range(r) => format!("Status{r}xx"),
        Status::Default => "Default".to_string(),
    };
    ident(&name)
}

fn payload_type(payload: &Payload) -> TokenStream {
    match payload {
        Payload::Json(ty) => quote!(::athena_runtime::payload::Json<#ty>),
        Payload::Bytes => quote!(::athena_runtime::payload::Binary),
        Payload::Empty => quote!(::athena_runtime::payload::NoBody),
    }
}

fn responses_module(contract: &Contract, models: &models::Models) -> TokenStream {
    let enums = contract.operations.iter().map(|op| {
        let name = format_ident!("{}", pascal_case(&op.name));
        let mut variants = Vec::new();
        let mut arms = Vec::new();
        for resp in &op.responses {
            let variant = variant_name(&resp.status);
            let payload = &models.responses[&(op.name.clone(), resp.status.clone())];
            // Error responses that declare no body still carry the standard envelope.
            let is_error = match &resp.status {
                Status::Code(code) => *code >= 400,
                Status::Range(r) => *r >= 4,
                Status::Default => true,
            };
            // Successes that declare no body but are not body-less by nature
            // (204, 205) still answer JSON: the contract forgot the schema.
            let is_undocumented_success = matches!(&resp.status,
                Status::Code(code) if (200..300).contains(code) && *code != 204 && *code != 205);
            let ty = match payload {
                Payload::Empty if is_error => quote!(::athena_runtime::payload::Json<::athena_runtime::ErrorEnvelope>),
                Payload::Empty if is_undocumented_success => quote!(::athena_runtime::payload::Json<::serde_json::Value>),
                other => payload_type(other),
            };
            let doc = resp.description.trim().to_string();
            match &resp.status {
                Status::Code(code) => {
                    variants.push(quote!(#[doc = #doc] #variant(#ty),));
                    arms.push(quote!(Self::#variant(p) => ::athena_runtime::payload::Payload::into_http(p, ::http::StatusCode::from_u16(#code).expect("documented status"))));
                }
                Status::Range(_) | Status::Default => {
                    variants.push(quote!(#[doc = #doc] #variant(::http::StatusCode, #ty),));
                    arms.push(quote!(Self::#variant(status, p) => ::athena_runtime::payload::Payload::into_http(p, status)));
                }
            }
        }
        let doc = format!("Documented responses of `{} {}`.", op.method.to_uppercase(), op.path);
        quote! {
            #[doc = #doc]
            #[derive(Debug)]
            pub enum #name { #(#variants)* }
            impl #name {
                pub fn into_http(self) -> ::athena_runtime::HttpResponse {
                    match self { #(#arms,)* }
                }
            }
        }
    });
    quote! {
        /// One enum per operation, one variant per documented status.
        #[allow(clippy::all, dead_code, clippy::large_enum_variant)]
        pub mod responses {
            use super::models;
            #(#enums)*
        }
    }
}

/// Pairs of templates where a literal segment sits beside a `{param}` one at
/// the same position with equal prefixes: the literal must win.
fn literal_param_pairs(contract: &Contract) -> Vec<(String, String)> {
    let paths: BTreeSet<&str> = contract
        .operations
        .iter()
        .map(|o| o.path.as_str())
        .collect();
    let split = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let is_param = |s: &str| s.starts_with('{');
    let mut pairs = Vec::new();
    for a in &paths {
        for b in &paths {
            let (sa, sb) = (split(a), split(b));
            if sa.len() != sb.len() || a == b {
                continue;
            }
            // First differing position: literal in a, param in b.
            let Some(i) = (0..sa.len())
                .find(|&i| !(sa[i] == sb[i] || (is_param(&sa[i]) && is_param(&sb[i]))))
            else {
                continue;
            };
            if !is_param(&sa[i]) && is_param(&sb[i]) {
                pairs.push((a.to_string(), b.to_string()));
            }
        }
    }
    pairs
}

fn operations_module(contract: &Contract) -> TokenStream {
    let count = contract.operations.len();
    let variants: Vec<Ident> = contract
        .operations
        .iter()
        .map(|op| format_ident!("{}", pascal_case(&op.name)))
        .collect();
    let metas = contract
        .operations
        .iter()
        .zip(&variants)
        .map(|(op, variant)| {
            let name = &op.name;
            let method = op.method.to_uppercase();
            let path = &op.path;
            let family = &op.family;
            let area = &op.area;
            let summary = &op.summary;
            let admin = op.admin;
            let sdk_only = op.sdk_only;
            let credential = op.params.iter().any(|p| p.credential);
            let statuses: Vec<u16> = op
                .responses
                .iter()
                .filter_map(|r| match r.status {
                    Status::Code(c) => Some(c),
                    _ => None,
                })
                .collect();
            quote! {
                OperationMeta {
                    operation: Operation::#variant, name: #name, method: #method, path: #path,
                    family: #family, area: #area, summary: #summary, admin: #admin, sdk_only: #sdk_only, credential: #credential,
                    statuses: &[#(#statuses),*],
                }
            }
        });
    let indices = (0..count).map(|i| quote!(#i));
    let pairs = literal_param_pairs(contract);
    let pair_tokens = pairs.iter().map(|(a, b)| quote!((#a, #b)));
    quote! {
        /// Every operation of the contract (then the SDK overlay's) and its metadata.
        #[allow(clippy::all, dead_code)]
        pub mod operations {
            /// One variant per operation; the name is derived from method + path.
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub enum Operation { #(#variants,)* }

            #[derive(Debug)]
            pub struct OperationMeta {
                pub operation: Operation,
                /// The derived operation name (`post_gateway_fetch`).
                pub name: &'static str,
                pub method: &'static str,
                /// The path template (`/rest/v1/{table}`).
                pub path: &'static str,
                /// The family: its trait is `<Family>Api` (`openapi/families.yaml`).
                pub family: &'static str,
                /// The area (first tag, else first path segment), which
                /// `GET /router/registry` reports as `family`.
                pub area: &'static str,
                pub summary: &'static str,
                /// Needs the static admin key.
                pub admin: bool,
                /// Not in the contract: an operation the official SDK calls,
                /// added by `openapi/sdk-overlay.yaml`. `GET /openapi.yaml`,
                /// the generated client and the conformance suite do not
                /// know it.
                pub sdk_only: bool,
                /// Declares an API-key credential slot.
                pub credential: bool,
                /// Documented status codes (ranges and `default` excluded).
                pub statuses: &'static [u16],
            }

            pub static OPERATIONS: [OperationMeta; #count] = [#(#metas,)*];

            impl Operation {
                pub fn meta(self) -> &'static OperationMeta {
                    let index = match self { #(Operation::#variants => #indices,)* };
                    &OPERATIONS[index]
                }
            }

            /// Templates where a literal segment must beat a `{param}` sibling.
            pub static LITERAL_PARAM_PAIRS: &[(&str, &str)] = &[#(#pair_tokens,)*];
        }
    }
}

struct MethodSig {
    name: Ident,
    params_ty: Option<TokenStream>,
    body_ty: Option<TokenStream>,
    response_ty: TokenStream,
    variant: Ident,
}

fn method_sig(op: &Operation, models: &models::Models) -> MethodSig {
    let pascal = format_ident!("{}", pascal_case(&op.name));
    let params_ty = (!value_params(op).is_empty()).then(|| quote!(params::#pascal));
    let body_ty = op.body.as_ref().map(|b| {
        let inner = match &models.bodies[&op.name] {
            Payload::Json(ty) => ty.clone(),
            Payload::Bytes | Payload::Empty => quote!(::bytes::Bytes),
        };
        if b.required {
            inner
        } else {
            quote!(::std::option::Option<#inner>)
        }
    });
    MethodSig {
        name: ident(&op.name),
        params_ty,
        body_ty,
        response_ty: quote!(responses::#pascal),
        variant: pascal,
    }
}

fn trait_name(family: &str) -> Ident {
    format_ident!("{}Api", pascal_case(family))
}

fn traits_module(contract: &Contract, models: &models::Models) -> TokenStream {
    let mut families: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in &contract.operations {
        families.entry(op.family.as_str()).or_default().push(op);
    }
    let traits = families.iter().map(|(family, ops)| {
        let name = trait_name(family);
        let methods = ops.iter().map(|op| {
            let sig = method_sig(op, models);
            let MethodSig { name, response_ty, variant, .. } = &sig;
            let params_arg = sig.params_ty.as_ref().map(|t| quote!(params: #t,));
            let body_arg = sig.body_ty.as_ref().map(|t| quote!(body: #t,));
            let unused_params = sig.params_ty.as_ref().map(|_| quote!(let _ = params;));
            let unused_body = sig.body_ty.as_ref().map(|_| quote!(let _ = body;));
            let doc = format!("`{} {}` — {}", op.method.to_uppercase(), op.path, op.summary);
            quote! {
                #[doc = #doc]
                fn #name(&self, cx: Self::Cx, #params_arg #body_arg)
                    -> impl ::std::future::Future<Output = ::athena_runtime::ApiResult<#response_ty>> + Send {
                    let _ = cx;
                    #unused_params
                    #unused_body
                    let meta = super::operations::Operation::#variant.meta();
                    async move { Err(::athena_runtime::ApiError::not_implemented(meta.method, meta.path, meta.name)) }
                }
            }
        });
        let doc = format!("Operations of the `{family}` family. Unimplemented methods answer 501 `not_implemented`.");
        quote! {
            #[doc = #doc]
            pub trait #name: ApiContext { #(#methods)* }
        }
    });
    let all: Vec<Ident> = families.keys().map(|f| trait_name(f)).collect();
    quote! {
        /// One trait per API family, one async method per operation.
        #[allow(clippy::all, unused_variables)]
        pub mod traits {
            use super::{models, params, responses};
            /// The request context every operation method receives: the
            /// server's own type (`impl ApiContext for Handlers { type Cx =
            /// RequestCx; }`), so this crate does not know it. Handler impls
            /// may spell the concrete type in their signatures.
            pub trait ApiContext: Send + Sync + 'static {
                type Cx: Send + 'static;
            }
            #(#traits)*
            /// Everything the dispatcher needs: all family traits together.
            pub trait Api: #(#all)+* {}
            impl<T: #(#all)+*> Api for T {}
        }
    }
}

/// What an operation's decoder returns: its parameters and body, in the
/// order the trait method takes them; `None` when it takes neither.
fn decoded_shape(sig: &MethodSig) -> Option<(TokenStream, TokenStream)> {
    match (&sig.params_ty, &sig.body_ty) {
        (None, None) => None,
        (Some(p), None) => Some((quote!(#p), quote!(params))),
        (None, Some(b)) => Some((quote!(#b), quote!(body))),
        (Some(p), Some(b)) => Some((quote!((#p, #b)), quote!((params, body)))),
    }
}

fn dispatch_module(contract: &Contract, models: &models::Models) -> TokenStream {
    // One plain (non-generic) decoder per operation, so parameter parsing and
    // body deserialization are compiled once, in this crate, and not again
    // in every crate that instantiates the generic `dispatch`.
    let decoders = contract.operations.iter().filter_map(|op| {
        let sig = method_sig(op, models);
        let (ty, pattern) = decoded_shape(&sig)?;
        let name = &sig.name;
        let params = sig
            .params_ty
            .as_ref()
            .map(|t| quote!(let params = #t::extract(fields)?;));
        let body = op.body.as_ref().map(|b| {
            let twins = models.twins.get(&op.name).cloned().unwrap_or_default();
            let aliases = twins.iter().map(|t| {
                let (camel, snake) = (&t.camel, &t.snake);
                quote!((#camel, #snake))
            });
            match (&models.bodies[&op.name], b.required) {
                (Payload::Json(_), true) => {
                    quote!(let body = fields.required_json(&[#(#aliases),*])?;)
                }
                (Payload::Json(_), false) => quote!(let body = fields.json(&[#(#aliases),*])?;),
                (_, true) => quote!(let body = fields.required_bytes()?;),
                (_, false) => quote!(let body = fields.bytes();),
            }
        });
        Some(quote! {
            pub fn #name(fields: &Fields<'_>) -> ::athena_runtime::ApiResult<#ty> {
                #params
                #body
                Ok(#pattern)
            }
        })
    });
    let arms = contract.operations.iter().map(|op| {
        let sig = method_sig(op, models);
        let MethodSig { name, .. } = &sig;
        let family = trait_name(&op.family);
        let decode = decoded_shape(&sig)
            .map(|(_, pattern)| quote!(let #pattern = decode::#name(&inputs.fields())?;));
        let params_arg = sig.params_ty.as_ref().map(|_| quote!(params,));
        let body_arg = sig.body_ty.as_ref().map(|_| quote!(body,));
        quote! {
            #[inline(never)]
            pub(super) fn #name<H, C>(handlers: Arc<H>, inputs: Inputs<C>) -> DispatchFuture
            where
                H: Api,
                C: RequestContext<Cx = <H as super::super::traits::ApiContext>::Cx>,
            {
                Box::pin(async move {
                    let cx = inputs.authorize().await?;
                    #decode
                    let response = <H as super::super::traits::#family>::#name(&*handlers, cx, #params_arg #body_arg).await?;
                    Ok(response.into_http())
                })
            }
        }
    });
    let calls = contract.operations.iter().map(|op| {
        let sig = method_sig(op, models);
        let MethodSig { name, variant, .. } = &sig;
        quote!(Operation::#variant => run::#name(handlers, inputs))
    });
    quote! {
        /// Operation → extraction → trait method → HTTP response.
        #[allow(clippy::all)]
        pub mod dispatch {
            use super::operations::Operation;
            use super::traits::Api;
            use ::athena_runtime::extract::{Inputs, RequestContext};
            use ::std::sync::Arc;

            pub type DispatchFuture = ::std::pin::Pin<Box<dyn ::std::future::Future<Output = ::athena_runtime::ApiResult<::athena_runtime::HttpResponse>> + Send>>;

            /// Typed parameters and body of each operation, from the raw inputs.
            #[allow(unused_imports)]
            pub mod decode {
                use super::super::{models, params};
                use ::athena_runtime::extract::Fields;
                #(#decoders)*
            }

            /// Runs one operation. Credentials are checked before any
            /// parameter is parsed, so a missing key is a 401, not a 400.
            pub fn dispatch<H, C>(handlers: Arc<H>, operation: Operation, inputs: Inputs<C>) -> DispatchFuture
            where
                H: Api,
                C: RequestContext<Cx = <H as super::traits::ApiContext>::Cx>,
            {
                match operation { #(#calls,)* }
            }

            /// One function per operation: each builds its own future, so
            /// `dispatch` itself keeps a small stack frame (an unoptimized
            /// build would otherwise reserve room for all of them at once).
            mod run {
                use super::*;
                #(#arms)*
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn contract_text() -> String {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml"))
            .unwrap()
    }

    /// A property added to a schema in the contract reaches the generated
    /// model with no hand edit.
    #[test]
    fn schema_changes_flow_into_models() {
        let anchor = "runtime routing and management.\n      properties:\n";
        let original = contract_text();
        assert!(original.contains(anchor), "fixture anchor moved");
        let text = original.replacen(
            anchor,
            &format!("{anchor}        brand_new_field:\n          type: string\n"),
            1,
        );
        let contract = Contract::parse(&text).expect("modified contract parses");
        let code = generate(&contract).expect("generates");
        let start = code
            .find("pub struct AthenaClientRecord")
            .expect("model generated");
        let body = &code[start..start + code[start..].find("\n    }").unwrap()];
        assert!(body.contains("pub brand_new_field"), "{body}");
    }

    /// The overlay's `StorageS3Connection` widening reaches every request
    /// model merged from it (allOf), and `s3Id` is accepted as `s3_id`.
    #[test]
    fn s3_connection_widening_reaches_the_merged_request_models() {
        let code = generate(&Contract::parse(&contract_text()).unwrap()).unwrap();
        for model in [
            "StorageS3Connection",
            "StorageS3Credentials",
            "StorageListObjectsRequest",
            "StorageGetObjectRequest",
            "StorageRenameFolderRequest",
            "StorageSetBucketCorsRequest",
        ] {
            let start = code
                .find(&format!("pub struct {model} {{"))
                .unwrap_or_else(|| panic!("{model}"));
            let body = &code[start..start + code[start..].find("\n    }").unwrap()];
            for field in [
                "endpoint",
                "region",
                "access_key_id",
                "secret_key",
                "s3_id",
                "session_token",
            ] {
                assert!(
                    body.contains(&format!(
                        "pub {field}: ::std::option::Option<::std::string::String>"
                    )),
                    "{model}.{field}: {body}"
                );
            }
            if model != "StorageS3Connection" {
                assert!(
                    body.contains("pub bucket: ::std::string::String"),
                    "{model}: {body}"
                );
            }
        }
        let list = &code[code.find("pub fn post_storage_objects(").unwrap()..];
        let list = &list[..list.find("Ok(").unwrap()];
        assert!(list.contains(r#"("s3Id", "s3_id")"#), "{list}");
    }

    #[test]
    fn every_operation_gets_a_trait_method_and_a_dispatch_arm() {
        let contract = Contract::parse(&contract_text()).unwrap();
        let code = generate(&contract).unwrap();
        // The SDK overlay's operations (openapi/sdk-overlay.yaml) too.
        let server = crate::overlay::server_contract(&contract).unwrap();
        assert!(server.operations.iter().any(|o| o.sdk_only));
        assert!(code.contains("sdk_only: true"));
        for op in &server.operations {
            assert!(code.contains(&format!("fn {}(", op.name)), "{}", op.name);
            assert!(
                code.contains(&format!("Operation::{} =>", pascal_case(&op.name))),
                "{}",
                op.name
            );
        }
    }
}
