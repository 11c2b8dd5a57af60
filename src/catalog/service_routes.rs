//! Tenant service routes (`athena_tenant_service_routes`, issue 13): a
//! binding of one service family to a tenant host, keyed by the pair
//! (`route_key`, `service_key`). The contract declares no fields; the record
//! is `{route_key, service_key, client_name, upstream_url?, is_active,
//! metadata}` (openapi/CHANGES.md, "Tenant hostnames and service routes").
//! Once a host has any binding, a family is served on it only if bound and
//! active (`src/gateway/host_routing.rs`).

use super::public_routes::check_route_key;
use crate::catalog::clients;
use crate::db::Pool;
use crate::domain::DomainError;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// The service families a tenant host can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// `/gateway/*`, `/query/*`, `/rpc/*`, `/data`.
    Gateway,
    /// `/rest/v1/*`.
    Rest,
    /// `/storage/*`.
    Storage,
    /// `/chat/*`.
    Chat,
}

impl ServiceKey {
    pub const ALL: [ServiceKey; 4] = [
        ServiceKey::Gateway,
        ServiceKey::Rest,
        ServiceKey::Storage,
        ServiceKey::Chat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKey::Gateway => "gateway",
            ServiceKey::Rest => "rest",
            ServiceKey::Storage => "storage",
            ServiceKey::Chat => "chat",
        }
    }

    pub fn parse(s: &str) -> Option<ServiceKey> {
        ServiceKey::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The family a route template belongs to, if any.
    pub fn of_route(template: &str) -> Option<ServiceKey> {
        let under = |prefix: &str| {
            template == prefix
                || template
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        if under("/gateway") || under("/query") || under("/rpc") || under("/data") {
            Some(ServiceKey::Gateway)
        } else if under("/rest") {
            Some(ServiceKey::Rest)
        } else if under("/storage") {
            Some(ServiceKey::Storage)
        } else if under("/chat") {
            Some(ServiceKey::Chat)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRoute {
    pub route_key: String,
    pub service_key: String,
    pub client_name: String,
    pub upstream_url: Option<String>,
    pub is_active: bool,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ServiceRoute {
    /// The record as the admin API shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "route_key": self.route_key,
            "service_key": self.service_key,
            "client_name": self.client_name,
            "upstream_url": self.upstream_url,
            "is_active": self.is_active,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// A create-or-replace of one binding.
#[derive(Debug, Clone)]
pub struct Upsert {
    pub route_key: String,
    pub service_key: String,
    pub client_name: String,
    pub upstream_url: Option<String>,
    pub is_active: Option<bool>,
    pub metadata: Option<Map<String, Value>>,
}

/// Fields a PATCH may set; `None` leaves a field as it is; an
/// `upstream_url` of `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub client_name: Option<String>,
    pub upstream_url: Option<Option<String>>,
    pub is_active: Option<bool>,
    pub metadata: Option<Map<String, Value>>,
}

/// `GET` filters (all optional, exact).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub route_key: Option<String>,
    pub service_key: Option<String>,
    pub client_name: Option<String>,
}

const COLUMNS: &str =
    "route_key, service_key, client_name, upstream_url, is_active, metadata, created_at, updated_at";

fn from_row(r: &tokio_postgres::Row) -> ServiceRoute {
    ServiceRoute {
        route_key: r.get(0),
        service_key: r.get(1),
        client_name: r.get(2),
        upstream_url: r.get(3),
        is_active: r.get(4),
        metadata: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
    }
}

pub fn check_service_key(key: &str) -> Result<ServiceKey, DomainError> {
    ServiceKey::parse(key).ok_or_else(|| DomainError::InvalidField {
        field: "service_key".into(),
        reason: "must be one of gateway, rest, storage, chat".into(),
    })
}

/// The client must be registered and not deleted (400 otherwise: it is a
/// field of the body, not the addressed resource).
async fn check_client(pool: &Pool, name: &str) -> Result<(), DomainError> {
    clients::check_name(name)?;
    if clients::get(pool, name).await?.is_none() {
        return Err(DomainError::InvalidField {
            field: "client_name".into(),
            reason: format!("client `{name}` is not registered"),
        });
    }
    Ok(())
}

fn field(field: &str, e: DomainError) -> DomainError {
    match e {
        DomainError::Invalid(reason) => DomainError::InvalidField {
            field: field.into(),
            reason,
        },
        e => e,
    }
}

pub async fn list(pool: &Pool, f: &Filter) -> Result<Vec<ServiceRoute>, DomainError> {
    if let Some(k) = &f.service_key {
        check_service_key(k)?;
    }
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM athena_tenant_service_routes
         WHERE ($1::text IS NULL OR route_key = $1)
           AND ($2::text IS NULL OR service_key = $2)
           AND ($3::text IS NULL OR client_name = $3)
         ORDER BY route_key, service_key"
    );
    Ok(conn
        .query(
            sql.as_str(),
            &[&f.route_key, &f.service_key, &f.client_name],
        )
        .await?
        .iter()
        .map(from_row)
        .collect())
}

/// The bindings of one tenant host (any state).
pub async fn for_route(pool: &Pool, route_key: &str) -> Result<Vec<ServiceRoute>, DomainError> {
    list(
        pool,
        &Filter {
            route_key: Some(route_key.to_string()),
            ..Filter::default()
        },
    )
    .await
}

/// Creates the binding or replaces its fields (`is_active` defaults to
/// true, `metadata` to `{}`).
pub async fn upsert(pool: &Pool, u: &Upsert) -> Result<ServiceRoute, DomainError> {
    check_route_key(&u.route_key).map_err(|e| field("route_key", e))?;
    check_service_key(&u.service_key)?;
    check_client(pool, &u.client_name).await?;
    let metadata = Value::Object(u.metadata.clone().unwrap_or_default());
    let conn = pool.get().await?;
    let sql = format!(
        "INSERT INTO athena_tenant_service_routes
             (route_key, service_key, client_name, upstream_url, is_active, metadata)
         VALUES ($1, $2, $3, $4, COALESCE($5, true), $6)
         ON CONFLICT (route_key, service_key) DO UPDATE SET
             client_name = EXCLUDED.client_name,
             upstream_url = EXCLUDED.upstream_url,
             is_active = EXCLUDED.is_active,
             metadata = EXCLUDED.metadata,
             updated_at = now()
         RETURNING {COLUMNS}"
    );
    let row = conn
        .query_one(
            sql.as_str(),
            &[
                &u.route_key,
                &u.service_key,
                &u.client_name,
                &u.upstream_url,
                &u.is_active,
                &metadata,
            ],
        )
        .await?;
    Ok(from_row(&row))
}

/// Updates a binding; `None` when the pair does not exist.
pub async fn update(
    pool: &Pool,
    route_key: &str,
    service_key: &str,
    c: &Changes,
) -> Result<Option<ServiceRoute>, DomainError> {
    if let Some(client) = &c.client_name {
        check_client(pool, client).await?;
    }
    if check_route_key(route_key).is_err() || ServiceKey::parse(service_key).is_none() {
        return Ok(None);
    }
    let conn = pool.get().await?;
    let sql = format!(
        "UPDATE athena_tenant_service_routes SET
             client_name = COALESCE($3, client_name),
             upstream_url = CASE WHEN $4 THEN $5 ELSE upstream_url END,
             is_active = COALESCE($6, is_active),
             metadata = COALESCE($7, metadata),
             updated_at = now()
         WHERE route_key = $1 AND service_key = $2
         RETURNING {COLUMNS}"
    );
    let set_url = c.upstream_url.is_some();
    let url = c.upstream_url.clone().flatten();
    let metadata = c.metadata.clone().map(Value::Object);
    Ok(conn
        .query_opt(
            sql.as_str(),
            &[
                &route_key,
                &service_key,
                &c.client_name,
                &set_url,
                &url,
                &c.is_active,
                &metadata,
            ],
        )
        .await?
        .as_ref()
        .map(from_row))
}

/// Deletes a binding, returning its last state.
pub async fn delete(
    pool: &Pool,
    route_key: &str,
    service_key: &str,
) -> Result<Option<ServiceRoute>, DomainError> {
    if check_route_key(route_key).is_err() || ServiceKey::parse(service_key).is_none() {
        return Ok(None);
    }
    let conn = pool.get().await?;
    let sql = format!(
        "DELETE FROM athena_tenant_service_routes WHERE route_key = $1 AND service_key = $2
         RETURNING {COLUMNS}"
    );
    Ok(conn
        .query_opt(sql.as_str(), &[&route_key, &service_key])
        .await?
        .as_ref()
        .map(from_row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_routes() {
        let cases = [
            ("/gateway/fetch", Some(ServiceKey::Gateway)),
            ("/gateway/deferred/{request_id}", Some(ServiceKey::Gateway)),
            ("/query/sql", Some(ServiceKey::Gateway)),
            ("/rpc/{function_name}", Some(ServiceKey::Gateway)),
            ("/data", Some(ServiceKey::Gateway)),
            ("/rest/v1/{table}", Some(ServiceKey::Rest)),
            ("/storage/files/{file_id}", Some(ServiceKey::Storage)),
            ("/chat/completions", Some(ServiceKey::Chat)),
            ("/health", None),
            ("/admin/clients", None),
            ("/public/{route_key}/{op}", None),
            ("/database", None),
            ("/gatewayx", None),
        ];
        for (template, family) in cases {
            assert_eq!(ServiceKey::of_route(template), family, "{template}");
        }
    }

    #[test]
    fn service_keys_are_a_closed_set() {
        for k in ServiceKey::ALL {
            assert_eq!(ServiceKey::parse(k.as_str()), Some(k));
        }
        assert!(check_service_key("Gateway").is_err());
        assert!(check_service_key("admin").is_err());
    }
}
