//! The API registry (`GET /registry`): the APIs this gateway fronts, built
//! from what the catalog records. One entry per live, active client (the
//! tenant the gateway routes `X-Athena-Client` to), one per public route
//! (`/public/{route_key}`), then the rows operators curate in
//! `athena_api_registry` (APIs outside the catalog). Entries name tenants
//! and route keys, so the operation is on the admin surface.

use crate::catalog::{clients, public_routes};
use crate::db::Pool;
use crate::domain::DomainError;
use serde_json::{json, Map, Value};

/// Every entry, clients first (by name), then public routes (by key), then
/// curated rows (by id). Each has `api_registry_id` (unique across kinds),
/// `kind` (`client`, `public_route` or `api`), `name`, `base_url`,
/// `description`, `metadata` and `created_at`.
pub async fn list(pool: &Pool) -> Result<Vec<Map<String, Value>>, DomainError> {
    let mut entries = Vec::new();
    for c in clients::list(pool).await? {
        if c.is_active {
            entries.push(client_entry(&c));
        }
    }
    for r in public_routes::list(pool).await? {
        entries.push(route_entry(&r));
    }
    let conn = pool.get().await?;
    let rows = conn
        .query(&format!("{CURATED} ORDER BY api_registry_id"), &[])
        .await?;
    for row in rows {
        entries.push(curated(&row.get::<_, String>(0))?);
    }
    Ok(entries)
}

/// The entry `api_registry_id` names, as `list` shows it (`GET
/// /registry/{api_registry_id}`): one lookup by its kind's key, `None`
/// when `list` would not show it.
pub async fn get(pool: &Pool, id: &str) -> Result<Option<Map<String, Value>>, DomainError> {
    if let Some(name) = id.strip_prefix("client:") {
        return Ok(clients::get(pool, name)
            .await?
            .filter(|c| c.is_active)
            .map(|c| client_entry(&c)));
    }
    if let Some(key) = id.strip_prefix("public_route:") {
        return Ok(public_routes::get(pool, key)
            .await?
            .map(|r| route_entry(&r)));
    }
    let conn = pool.get().await?;
    match conn
        .query_opt(&format!("{CURATED} WHERE api_registry_id = $1"), &[&id])
        .await?
    {
        Some(row) => curated(&row.get::<_, String>(0)).map(Some),
        None => Ok(None),
    }
}

/// A curated row of `athena_api_registry` as its entry (JSON text).
const CURATED: &str =
    "SELECT json_build_object('api_registry_id', api_registry_id, 'kind', 'api', 'name', name,
        'base_url', base_url, 'description', description, 'metadata', metadata,
        'created_at', created_at)::text
   FROM athena_api_registry";

fn curated(text: &str) -> Result<Map<String, Value>, DomainError> {
    serde_json::from_str::<Map<String, Value>>(text)
        .map_err(|e| DomainError::Internal(format!("decoding a registry row: {e}")))
}

fn client_entry(c: &clients::Client) -> Map<String, Value> {
    object(json!({
        "api_registry_id": format!("client:{}", c.client_name),
        "kind": "client",
        "name": c.client_name,
        // Reached through this gateway with the header below, not at a URL of its own.
        "base_url": Value::Null,
        "description": c.description,
        "metadata": {
            "client_name": c.client_name,
            "routing_header": "X-Athena-Client",
            "source": c.source,
            "is_frozen": c.is_frozen,
        },
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }))
}

fn route_entry(r: &public_routes::PublicRoute) -> Map<String, Value> {
    object(json!({
        "api_registry_id": format!("public_route:{}", r.route_key),
        "kind": "public_route",
        "name": r.route_key,
        "base_url": format!("/public/{}", r.route_key),
        "description": Value::Null,
        "metadata": {
            "client_name": r.client_name,
            "allowed_ops": r.allowed_ops,
            "is_active": r.is_active,
        },
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }))
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
