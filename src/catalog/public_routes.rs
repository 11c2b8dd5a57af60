//! Public routes: a route key that exposes a chosen set of gateway
//! operations of one client under `/public/{route_key}/{op}`, without the
//! caller ever naming (or seeing) the client.

use crate::api::operations::Operation;
use crate::catalog::clients;
use crate::db::Pool;
use crate::domain::DomainError;
use crate::ttl::TtlCache;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The gateway operations a public route can forward (the contract's `op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Query,
    Fetch,
    Insert,
    Update,
    Delete,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Query, Op::Fetch, Op::Insert, Op::Update, Op::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Query => "query",
            Op::Fetch => "fetch",
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == s)
    }

    /// The canonical gateway operation it forwards to (whose right it needs).
    pub fn gateway_operation(self) -> Operation {
        match self {
            Op::Query => Operation::PostGatewayQuery,
            Op::Fetch => Operation::PostGatewayFetch,
            Op::Insert => Operation::PutGatewayInsert,
            Op::Update => Operation::PostGatewayUpdate,
            Op::Delete => Operation::DeleteGatewayDelete,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PublicRoute {
    pub id: Uuid,
    pub route_key: String,
    pub client_name: String,
    pub allowed_ops: Vec<String>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The response shape (issue 14): `None`/`contract` is the contract's
    /// envelope, `postgrest` PostgREST's bare shape (`src/http/rest_shape.rs`).
    pub rest_shape: Option<String>,
}

impl PublicRoute {
    pub fn allows(&self, op: Op) -> bool {
        self.allowed_ops.iter().any(|o| o == op.as_str())
    }

    /// Whether the route answers in PostgREST's bare shape (issue 14).
    pub fn postgrest_shape(&self) -> bool {
        self.rest_shape.as_deref() == Some(REST_SHAPE_POSTGREST)
    }
}

/// `rest_shape` values (issue 14): the contract's envelope, PostgREST's shape.
pub const REST_SHAPE_CONTRACT: &str = "contract";
pub const REST_SHAPE_POSTGREST: &str = "postgrest";

/// `rest_shape`: `contract` or `postgrest`.
pub fn check_rest_shape(shape: &str) -> Result<(), DomainError> {
    match shape {
        REST_SHAPE_CONTRACT | REST_SHAPE_POSTGREST => Ok(()),
        other => Err(DomainError::Invalid(format!(
            "rest_shape: unknown shape `{other}` (contract or postgrest)"
        ))),
    }
}

/// Fields an update may set; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub client_name: Option<String>,
    pub allowed_ops: Option<Vec<String>>,
    pub is_active: Option<bool>,
    /// Issue 14: `contract` or `postgrest`.
    pub rest_shape: Option<String>,
}

pub(crate) const COLUMNS: &str =
    "id, route_key, client_name, allowed_ops, is_active, created_at, updated_at, rest_shape";

pub(crate) fn from_row(r: &tokio_postgres::Row) -> PublicRoute {
    PublicRoute {
        id: r.get(0),
        route_key: r.get(1),
        client_name: r.get(2),
        allowed_ops: r.get(3),
        is_active: r.get(4),
        created_at: r.get(5),
        updated_at: r.get(6),
        rest_shape: r.get(7),
    }
}

/// Route keys: `^[a-z0-9][a-z0-9_-]{0,62}$` (a URL segment, no escaping).
pub fn check_route_key(key: &str) -> Result<(), DomainError> {
    let ok = !key.is_empty()
        && key.len() <= 63
        && key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(
            "route_key must be 1-63 characters: a-z, 0-9, `_`, `-`, starting with a letter or digit"
                .into(),
        ))
    }
}

/// `allowed_ops`: at least one of the closed set, deduplicated, in the
/// order given.
pub fn check_ops(ops: &[String]) -> Result<Vec<String>, DomainError> {
    if ops.is_empty() {
        return Err(DomainError::Invalid(
            "allowed_ops must name at least one operation".into(),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(ops.len());
    for op in ops {
        let op = Op::parse(op).ok_or_else(|| {
            DomainError::Invalid(format!(
                "allowed_ops: unknown operation `{op}` (one of query, fetch, insert, update, delete)"
            ))
        })?;
        if !out.iter().any(|o| o == op.as_str()) {
            out.push(op.as_str().to_string());
        }
    }
    Ok(out)
}

/// The client must be registered and not deleted.
async fn check_client(pool: &Pool, name: &str) -> Result<(), DomainError> {
    clients::check_name(name)?;
    if clients::get(pool, name).await?.is_none() {
        return Err(DomainError::Invalid(format!(
            "client `{name}` is not registered"
        )));
    }
    Ok(())
}

pub async fn list(pool: &Pool) -> Result<Vec<PublicRoute>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM athena_public_routes ORDER BY route_key");
    Ok(conn
        .query(sql.as_str(), &[])
        .await?
        .iter()
        .map(from_row)
        .collect())
}

pub async fn get(pool: &Pool, route_key: &str) -> Result<Option<PublicRoute>, DomainError> {
    // A key outside the grammar cannot exist: no catalog round trip.
    if check_route_key(route_key).is_err() {
        return Ok(None);
    }
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM athena_public_routes WHERE route_key = $1");
    Ok(conn
        .query_opt(sql.as_str(), &[&route_key])
        .await?
        .as_ref()
        .map(from_row))
}

/// Creates a route (active). A taken key is `Conflict` (409).
pub async fn create(
    pool: &Pool,
    route_key: &str,
    client_name: &str,
    allowed_ops: &[String],
    rest_shape: Option<&str>,
) -> Result<PublicRoute, DomainError> {
    check_route_key(route_key)?;
    let ops = check_ops(allowed_ops)?;
    rest_shape.map(check_rest_shape).transpose()?;
    check_client(pool, client_name).await?;
    let conn = pool.get().await?;
    let sql = format!(
        "INSERT INTO athena_public_routes (route_key, client_name, allowed_ops, rest_shape)
         VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
    );
    let row = conn
        .query_one(sql.as_str(), &[&route_key, &client_name, &ops, &rest_shape])
        .await
        .map_err(|e| match e.code().map(|s| s.code()) {
            Some("23505") => {
                DomainError::Conflict(format!("public route `{route_key}` already exists"))
            }
            _ => DomainError::from(e),
        })?;
    Ok(from_row(&row))
}

/// Updates a route; `None` when there is none.
pub async fn update(
    pool: &Pool,
    route_key: &str,
    c: &Changes,
) -> Result<Option<PublicRoute>, DomainError> {
    let ops = c.allowed_ops.as_deref().map(check_ops).transpose()?;
    c.rest_shape.as_deref().map(check_rest_shape).transpose()?;
    if let Some(client) = &c.client_name {
        check_client(pool, client).await?;
    }
    if check_route_key(route_key).is_err() {
        return Ok(None);
    }
    let conn = pool.get().await?;
    let sql = format!(
        "UPDATE athena_public_routes SET
             client_name = COALESCE($2, client_name),
             allowed_ops = COALESCE($3, allowed_ops),
             is_active = COALESCE($4, is_active),
             rest_shape = COALESCE($5, rest_shape),
             updated_at = now()
         WHERE route_key = $1
         RETURNING {COLUMNS}"
    );
    Ok(conn
        .query_opt(
            sql.as_str(),
            &[
                &route_key,
                &c.client_name,
                &ops,
                &c.is_active,
                &c.rest_shape,
            ],
        )
        .await?
        .as_ref()
        .map(from_row))
}

/// Deletes a route, returning its last state.
pub async fn delete(pool: &Pool, route_key: &str) -> Result<Option<PublicRoute>, DomainError> {
    if check_route_key(route_key).is_err() {
        return Ok(None);
    }
    let conn = pool.get().await?;
    let sql = format!("DELETE FROM athena_public_routes WHERE route_key = $1 RETURNING {COLUMNS}");
    Ok(conn
        .query_opt(sql.as_str(), &[&route_key])
        .await?
        .as_ref()
        .map(from_row))
}

/// How long a replica trusts its copy of a route when a change
/// notification was missed: changes made through this replica apply at
/// once (`RouteCache::forget`), through another one as soon as the
/// catalog's `athena_routes_changed` notification arrives
/// (`src/db/notify.rs`, `RouteCache::clear`), within this at worst.
const ROUTE_TTL: Duration = Duration::from_secs(2);

/// This replica's route lookups, found and not found alike, so unknown keys
/// do not reach the catalog more than once per TTL.
pub struct RouteCache(TtlCache<String, Option<Arc<PublicRoute>>>);

impl Default for RouteCache {
    fn default() -> Self {
        RouteCache(TtlCache::new(ROUTE_TTL, 4096))
    }
}

impl RouteCache {
    /// The route `key`, cached.
    pub async fn get(
        &self,
        catalog: &Pool,
        key: &str,
    ) -> Result<Option<Arc<PublicRoute>>, DomainError> {
        self.0
            .get_or_load(key.to_string(), async {
                Ok(get(catalog, key).await?.map(Arc::new))
            })
            .await
    }

    /// Drops this replica's copy of a route after an admin change.
    pub fn forget(&self, key: &str) {
        self.0.remove(key);
    }

    /// Drops every cached route (a route changed on some replica).
    pub fn clear(&self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys() {
        for ok in ["a", "shop", "0day", "my-route_2", &"x".repeat(63)] {
            assert!(check_route_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-x",
            "_x",
            "Shop",
            "a b",
            "a/b",
            "a.b",
            "ä",
            &"x".repeat(64),
        ] {
            assert!(check_route_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ops_come_from_the_closed_set() {
        let ops = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_ops(&ops(&["fetch", "insert", "fetch"])).unwrap(),
            ops(&["fetch", "insert"])
        );
        assert!(check_ops(&[]).is_err());
        assert!(check_ops(&ops(&["fetch", "drop"])).is_err());
        assert!(check_ops(&ops(&["FETCH"])).is_err());
        for op in Op::ALL {
            assert_eq!(Op::parse(op.as_str()), Some(op));
            let rule = crate::auth::access::rule(op.gateway_operation());
            assert!(rule.right().is_some(), "{op:?}");
        }
    }
}
