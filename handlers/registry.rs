use super::Handlers;
use crate::api::operations::OPERATIONS;
use crate::api::{models, params, responses, traits::RegistryApi};
use crate::http::payload::{Binary, Json, NoBody};
use crate::http::server::DOCS_PAGE_PATH;
use crate::http::{ApiResult, HttpResponse, RequestCx};
use http::{header, HeaderValue};
use serde_json::{json, Map, Value};

/// The contract exactly as the project keeps it.
const CONTRACT: &str = include_str!("../openapi/openapi.yaml");

impl RegistryApi for Handlers {
    async fn get_router_registry(&self, _cx: RequestCx) -> ApiResult<responses::GetRouterRegistry> {
        // The contract's operations: the SDK-only ones
        // (openapi/sdk-overlay.yaml) are routed but not the contract's.
        let routes = OPERATIONS
            .iter()
            .filter(|m| !m.sdk_only)
            .map(|m| {
                // `family` is the area (`admin`, `storage`, `gateway`, …), as
                // before the handler families were split.
                obj(json!({
                    "operation": m.name, "method": m.method, "path": m.path,
                    "family": m.area, "summary": m.summary, "admin": m.admin,
                }))
            })
            .collect();
        Ok(responses::GetRouterRegistry::Ok(Json::new(
            models::GetRouterRegistryResponse200(routes),
        )))
    }

    async fn get_registry(
        &self,
        _cx: RequestCx,
        _params: params::GetRegistry,
    ) -> ApiResult<responses::GetRegistry> {
        // Read from the catalog on every call: nothing is cached, so
        // `Cache-Control: no-cache` has nothing to skip.
        let entries = crate::catalog::registry::list(self.tenants.catalog()).await?;
        Ok(responses::GetRegistry::Ok(Json::new(
            models::GetRegistryResponse200(entries),
        )))
    }

    /// One entry of `/registry` by id, as a one-element array; unknown →
    /// `[]` (issue 16). Each call reads the catalog (nothing is cached, so
    /// `Cache-Control: no-cache` always gets the current row).
    async fn get_registry_by_api_registry_id(
        &self,
        _cx: RequestCx,
        params: params::GetRegistryByApiRegistryId,
    ) -> ApiResult<responses::GetRegistryByApiRegistryId> {
        let entry =
            crate::catalog::registry::get(self.tenants.catalog(), &params.api_registry_id).await?;
        Ok(responses::GetRegistryByApiRegistryId::Ok(Json::new(
            models::GetRegistryByApiRegistryIdResponse200(entry.into_iter().collect()),
        )))
    }

    async fn get_openapi_yaml(&self, _cx: RequestCx) -> ApiResult<responses::GetOpenapiYaml> {
        Ok(responses::GetOpenapiYaml::Ok(Binary::new(
            "application/yaml",
            CONTRACT,
        )))
    }

    async fn get_openapi_wss_yaml(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetOpenapiWssYaml> {
        static WSS: std::sync::LazyLock<String> = std::sync::LazyLock::new(wss_contract);
        Ok(responses::GetOpenapiWssYaml::Ok(Binary::new(
            "application/yaml",
            WSS.clone(),
        )))
    }

    async fn get_docs(&self, cx: RequestCx) -> ApiResult<responses::GetDocs> {
        // The contract's Location is an absolute URI; the page is served here.
        let host = cx
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or("127.0.0.1");
        let location = HeaderValue::from_str(&format!("http://{host}{DOCS_PAGE_PATH}"))
            .unwrap_or(HeaderValue::from_static(DOCS_PAGE_PATH));
        Ok(responses::GetDocs::PermanentRedirect(
            NoBody::default().with_header(header::LOCATION, location),
        ))
    }
}

impl Handlers {
    /// A self-contained page listing every operation (no CDN: the machines
    /// serving it may have no internet).
    pub fn docs_page(&self) -> HttpResponse {
        let mut rows = String::new();
        for m in OPERATIONS.iter() {
            rows.push_str(&format!(
                "<tr><td class=m>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                m.method,
                escape(m.path),
                escape(m.summary),
                m.name
            ));
        }
        let page = format!(
            "<!doctype html><html><head><meta charset=utf-8><title>Athena RS API</title>\
             <style>body{{font:14px system-ui,sans-serif;margin:2em}}td{{padding:2px 8px;border-bottom:1px solid #eee}}\
             .m{{font-weight:bold}}</style></head><body><h1>Athena RS {}</h1>\
             <p>The full contract: <a href=\"/openapi.yaml\">/openapi.yaml</a> · WebSocket: \
             <a href=\"/openapi-wss.yaml\">/openapi-wss.yaml</a></p>\
             <table><tr><th>Method</th><th>Path</th><th>Summary</th><th>Operation</th></tr>{rows}</table></body></html>",
            env!("CARGO_PKG_VERSION")
        );
        let mut response = Binary::new("text/html; charset=utf-8", page);
        response
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        crate::http::payload::Payload::into_http(response, http::StatusCode::OK)
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The WebSocket gateway contract: the contract's `/wss/*` paths with its
/// info block, as a standalone OpenAPI document.
fn wss_contract() -> String {
    let mut doc: Value = serde_yaml::from_str(CONTRACT).unwrap_or(Value::Null);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        paths.retain(|p, _| p.starts_with("/wss"));
    }
    if let Some(info) = doc.get_mut("info").and_then(Value::as_object_mut) {
        info.insert(
            "title".into(),
            Value::String("Athena RS WebSocket gateway".into()),
        );
    }
    serde_yaml::to_string(&doc).unwrap_or_default()
}
