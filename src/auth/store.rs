//! Verification of API keys on the hot path. Key records and enforcement
//! settings are cached briefly and dropped the moment the catalog changes
//! (LISTEN `athena_auth_changed`), so a revoked, expired or deactivated key
//! is refused at once on every replica. An outage of the catalog is a 503,
//! never "enforcement off".

use super::keys;
use crate::catalog::api_keys::{self, ApiKey};
use crate::db::Pool;
use crate::domain::DomainError;
use crate::ttl::TtlCache;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Bound on staleness should a notification ever be missed.
const TTL: Duration = Duration::from_secs(30);
/// `last_used_at` is written at most this often per key.
const USAGE_EVERY: Duration = Duration::from_secs(60);
/// Most key records (found or not) cached: presenting random key ids
/// cannot grow memory without bound.
const MAX_CACHED_KEYS: usize = 4096;

#[derive(Debug)]
pub enum KeyError {
    Invalid,
    Inactive,
    Expired,
    Store(DomainError),
}

struct Enforcement {
    global: bool,
    clients: HashMap<String, bool>,
}

pub struct KeyStore {
    catalog: Pool,
    pepper: Vec<u8>,
    /// Key records by public id, found or not. An invalidation bumps the
    /// cache's generation: a record read from the catalog before it is not
    /// cached after it (no refill racing a revoke).
    keys: TtlCache<String, Option<Arc<ApiKey>>>,
    /// The enforcement settings (one entry), shared so the per-request
    /// check clones a pointer, not the map.
    enforcement: TtlCache<(), Arc<Enforcement>>,
    /// When each key's use was last recorded.
    used: TtlCache<uuid::Uuid, ()>,
    /// The IP rules (issue 13), dropped with the rest.
    ip: super::ip_policy::PolicyCache,
}

impl KeyStore {
    pub async fn open(catalog: Pool) -> Result<KeyStore, DomainError> {
        let pepper = api_keys::pepper(&catalog).await?;
        Ok(KeyStore {
            pepper,
            keys: TtlCache::new(TTL, MAX_CACHED_KEYS),
            enforcement: TtlCache::new(TTL, 1),
            used: TtlCache::new(USAGE_EVERY, MAX_CACHED_KEYS),
            ip: super::ip_policy::PolicyCache::new(catalog.clone()),
            catalog,
        })
    }

    /// A stable, non-secret identifier of this catalog (derived from the
    /// pepper), for namespacing shared stores such as the Redis cache.
    pub fn catalog_id(&self) -> String {
        hex::encode(&keys::hash(&self.pepper, "athena catalog id")[..8])
    }

    pub fn hash(&self, secret: &str) -> Vec<u8> {
        keys::hash(&self.pepper, secret)
    }

    /// Drops everything cached (the catalog changed).
    pub async fn invalidate(&self) {
        self.keys.clear();
        self.enforcement.clear();
        self.ip.invalidate();
    }

    /// The IP policy's cached rules.
    pub fn ip_policy(&self) -> &super::ip_policy::PolicyCache {
        &self.ip
    }

    /// Whether requests for `client` must carry a valid key: the client's
    /// override, else the global setting.
    pub async fn enforced_for(&self, client: Option<&str>) -> Result<bool, DomainError> {
        let enforcement = self
            .enforcement
            .get_or_load((), async {
                let global = api_keys::global_enforcement(&self.catalog)
                    .await?
                    .enforce_api_keys;
                let clients = api_keys::client_enforcements(&self.catalog)
                    .await?
                    .into_iter()
                    .map(|c| (c.client_name, c.enforce_api_keys))
                    .collect();
                Ok::<_, DomainError>(Arc::new(Enforcement { global, clients }))
            })
            .await?;
        Ok(client
            .and_then(|c| enforcement.clients.get(c).copied())
            .unwrap_or(enforcement.global))
    }

    /// The active, unexpired key record for a presented key.
    pub async fn verify(&self, presented: &str) -> Result<Arc<ApiKey>, KeyError> {
        let parts = keys::parse(presented).ok_or(KeyError::Invalid)?;
        // Read before an invalidation that happened meanwhile: used for
        // this request only (it was current when it began), never cached.
        let record = self
            .keys
            .get_or_load(parts.public_id.to_string(), async {
                api_keys::key_by_public_id(&self.catalog, parts.public_id)
                    .await
                    .map(|r| r.map(Arc::new))
            })
            .await
            .map_err(KeyError::Store)?;
        let record = record.ok_or(KeyError::Invalid)?;
        if !crate::auth::constant_time_eq(&self.hash(parts.secret), &record.secret_hash) {
            return Err(KeyError::Invalid);
        }
        if !record.is_active {
            return Err(KeyError::Inactive);
        }
        if record.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
            return Err(KeyError::Expired);
        }
        self.note_use(record.id).await;
        Ok(record)
    }

    /// Records use in the background, at most once a minute per key.
    async fn note_use(&self, id: uuid::Uuid) {
        if self.used.get(&id).is_some() {
            return;
        }
        self.used.insert(id, ());
        let pool = self.catalog.clone();
        tokio::spawn(async move {
            if let Err(e) = api_keys::record_use(&pool, id).await {
                tracing::debug!(error = %e, "recording key use failed");
            }
        });
    }
}
