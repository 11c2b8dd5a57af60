//! Tenant hostname onboarding (`PUT /admin/tenant-hostnames/{tenant}`,
//! issue 13): the tenant label becomes the public route of a client
//! (`athena_public_routes`, route key = label), which host routing
//! (`src/gateway/host_routing.rs`) follows for `{label}.<wildcard suffix>`;
//! optionally the client's public PostgreSQL endpoint is recorded in its
//! metadata. One transaction, under the client's row lock.

use super::public_routes::{check_ops, check_route_key, PublicRoute};
use crate::db::Pool;
use crate::domain::DomainError;
use serde_json::{json, Map, Value};

/// What the PUT asks for, already defaulted (see `Onboarding::from_body`).
#[derive(Debug, Clone)]
pub struct Onboarding {
    /// The normalized label (lowercase, route-key grammar).
    pub tenant: String,
    pub client_name: String,
    /// `None`: keep the existing route's operations (a new route gets
    /// `DEFAULT_OPS`).
    pub allowed_ops: Option<Vec<String>>,
    pub enable_http_route: bool,
    pub persist_in_catalog: bool,
    /// `Some((host, port))` when the PostgreSQL binding is enabled.
    pub postgres_binding: Option<(String, u16)>,
    pub route_metadata: Map<String, Value>,
}

/// Operations a new host route allows when the body names none: the row
/// operations, never raw SQL (`query` is exposed only deliberately).
pub const DEFAULT_OPS: [&str; 4] = ["fetch", "insert", "update", "delete"];

/// The tenant label: one DNS label, lowercased, in the route-key grammar
/// (`^[a-z0-9][a-z0-9_-]{0,62}$`).
pub fn normalize_tenant(raw: &str) -> Result<String, DomainError> {
    let tenant = raw.trim().to_ascii_lowercase();
    check_route_key(&tenant).map_err(|_| DomainError::InvalidField {
        field: "tenant".into(),
        reason: "must be one host label of 1-63 characters: a-z, 0-9, `_`, `-`, starting with a letter or digit".into(),
    })?;
    Ok(tenant)
}

/// A public host name: 1-253 characters of letters, digits, `-`, `.`
/// (lowercased), no empty label.
pub fn check_public_host(host: &str) -> Result<String, DomainError> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(host)
    } else {
        Err(DomainError::InvalidField {
            field: "public_host".into(),
            reason: "must be a host name (letters, digits, `-`, dot-separated labels)".into(),
        })
    }
}

/// The outcome, as answered and as readable back.
#[derive(Debug, Clone)]
pub struct Onboarded {
    pub route: Option<PublicRoute>,
    /// The client's metadata after the change.
    pub metadata: Value,
}

/// Applies `o` in one transaction: the client (registered, active, not
/// frozen, else 404) is locked, the public route upserted (re-activated;
/// one of another client is refused, 400), the metadata merged.
pub async fn put(pool: &Pool, o: &Onboarding) -> Result<Onboarded, DomainError> {
    let ops = o.allowed_ops.as_deref().map(check_ops).transpose()?;
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let client = tx
        .query_opt(
            "SELECT is_active, is_frozen, metadata FROM athena_clients
             WHERE client_name = $1 AND deleted_at IS NULL FOR UPDATE",
            &[&o.client_name],
        )
        .await?;
    let metadata: Value = match client {
        Some(r) if r.get::<_, bool>(0) && !r.get::<_, bool>(1) => r.get(2),
        _ => return Err(DomainError::not_found("client", o.client_name.clone())),
    };
    let route = match o.enable_http_route {
        false => None,
        true => {
            let defaults: Vec<String> = DEFAULT_OPS.iter().map(|s| s.to_string()).collect();
            let sql = format!(
                "INSERT INTO athena_public_routes (route_key, client_name, allowed_ops)
                 VALUES ($1, $2, COALESCE($3::text[], $4::text[]))
                 ON CONFLICT (route_key) DO UPDATE SET
                     allowed_ops = COALESCE($3::text[], athena_public_routes.allowed_ops),
                     is_active = true,
                     updated_at = now()
                 WHERE athena_public_routes.client_name = EXCLUDED.client_name
                 RETURNING {}",
                super::public_routes::COLUMNS
            );
            // A host that routes to another client is never moved by this
            // call: its public route is the other tenant's (change it
            // through /admin/public-routes).
            let row = tx
                .query_opt(sql.as_str(), &[&o.tenant, &o.client_name, &ops, &defaults])
                .await?
                .ok_or_else(|| {
                    DomainError::Invalid(format!(
                        "tenant host `{}` already routes to another client; \
                         change or delete its public route first",
                        o.tenant
                    ))
                })?;
            Some(super::public_routes::from_row(&row))
        }
    };
    let metadata = match o.persist_in_catalog {
        false => metadata,
        true => {
            let patch = metadata_patch(o);
            tx.query_one(
                "UPDATE athena_clients SET metadata = metadata || $2, updated_at = now()
                 WHERE client_name = $1 RETURNING metadata",
                &[&o.client_name, &patch],
            )
            .await?
            .get(0)
        }
    };
    tx.commit().await?;
    Ok(Onboarded { route, metadata })
}

/// The keys merged into the client's metadata: `tenant_hostname`, the
/// route metadata when given, and `public_host`/`public_port` when the
/// PostgreSQL binding is enabled.
fn metadata_patch(o: &Onboarding) -> Value {
    let mut patch = Map::new();
    patch.insert("tenant_hostname".into(), json!(o.tenant));
    if !o.route_metadata.is_empty() {
        patch.insert(
            "tenant_route_metadata".into(),
            Value::Object(o.route_metadata.clone()),
        );
    }
    if let Some((host, port)) = &o.postgres_binding {
        patch.insert("public_host".into(), json!(host));
        patch.insert("public_port".into(), json!(port));
    }
    Value::Object(patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_labels() {
        assert_eq!(normalize_tenant("Acme").unwrap(), "acme");
        assert_eq!(normalize_tenant("a-b_2").unwrap(), "a-b_2");
        for bad in ["", "a.b", "a b", "-x", "ä", &"x".repeat(64), "a/b"] {
            assert!(normalize_tenant(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn public_hosts() {
        assert_eq!(check_public_host("PG.Acme.test.").unwrap(), "pg.acme.test");
        for bad in ["", "a..b", "a b", "a/b", "x:5432", &"x".repeat(64)] {
            assert!(check_public_host(bad).is_err(), "{bad:?}");
        }
    }
}
