//! Verification of API keys on the hot path. Key records and enforcement
//! settings are cached briefly and dropped the moment the catalog changes
//! (LISTEN `athena_auth_changed`), so a revoked, expired or deactivated key
//! is refused at once on every replica. An outage of the catalog is a 503,
//! never "enforcement off".

use super::keys;
use crate::catalog::api_keys::{self, ApiKey};
use crate::db::Pool;
use crate::domain::DomainError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

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

#[derive(Default)]
struct Cache {
    /// Bumped by every invalidation: a record read from the catalog before
    /// an invalidation is not cached after it (no refill racing a revoke).
    generation: u64,
    keys: HashMap<String, (Option<Arc<ApiKey>>, Instant)>,
    /// Shared, so the per-request check clones a pointer, not the map.
    enforcement: Option<(Arc<Enforcement>, Instant)>,
    used: HashMap<uuid::Uuid, Instant>,
}

pub struct KeyStore {
    catalog: Pool,
    pepper: Vec<u8>,
    cache: RwLock<Cache>,
}

impl KeyStore {
    pub async fn open(catalog: Pool) -> Result<KeyStore, DomainError> {
        let pepper = api_keys::pepper(&catalog).await?;
        Ok(KeyStore {
            catalog,
            pepper,
            cache: RwLock::default(),
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
        let mut cache = self.cache.write().await;
        cache.generation += 1;
        cache.keys.clear();
        cache.enforcement = None;
    }

    /// Whether requests for `client` must carry a valid key: the client's
    /// override, else the global setting.
    pub async fn enforced_for(&self, client: Option<&str>) -> Result<bool, DomainError> {
        let (cached, generation) = {
            let cache = self.cache.read().await;
            (cache.enforcement.clone(), cache.generation)
        };
        let enforcement = match cached {
            Some((e, at)) if at.elapsed() < TTL => e,
            _ => {
                let global = api_keys::global_enforcement(&self.catalog)
                    .await?
                    .enforce_api_keys;
                let clients = api_keys::client_enforcements(&self.catalog)
                    .await?
                    .into_iter()
                    .map(|c| (c.client_name, c.enforce_api_keys))
                    .collect();
                let e = Arc::new(Enforcement { global, clients });
                let mut cache = self.cache.write().await;
                if cache.generation == generation {
                    cache.enforcement = Some((e.clone(), Instant::now()));
                }
                e
            }
        };
        Ok(client
            .and_then(|c| enforcement.clients.get(c).copied())
            .unwrap_or(enforcement.global))
    }

    /// The active, unexpired key record for a presented key.
    pub async fn verify(&self, presented: &str) -> Result<Arc<ApiKey>, KeyError> {
        let parts = keys::parse(presented).ok_or(KeyError::Invalid)?;
        let (cached, generation) = {
            let cache = self.cache.read().await;
            (cache.keys.get(parts.public_id).cloned(), cache.generation)
        };
        let record = match cached {
            Some((record, at)) if at.elapsed() < TTL => record,
            _ => {
                let record = api_keys::key_by_public_id(&self.catalog, parts.public_id)
                    .await
                    .map_err(KeyError::Store)?
                    .map(Arc::new);
                let mut cache = self.cache.write().await;
                // Read before an invalidation that happened meanwhile: use
                // it for this request only (it was current when it began),
                // never for the next one.
                if cache.generation == generation {
                    if cache.keys.len() >= MAX_CACHED_KEYS {
                        cache.keys.retain(|_, (_, at)| at.elapsed() < TTL);
                        if cache.keys.len() >= MAX_CACHED_KEYS {
                            cache.keys.clear();
                        }
                    }
                    cache.keys.insert(
                        parts.public_id.to_string(),
                        (record.clone(), Instant::now()),
                    );
                }
                record
            }
        };
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
        {
            let mut cache = self.cache.write().await;
            if cache
                .used
                .get(&id)
                .is_some_and(|at| at.elapsed() < USAGE_EVERY)
            {
                return;
            }
            cache.used.insert(id, Instant::now());
        }
        let pool = self.catalog.clone();
        tokio::spawn(async move {
            if let Err(e) = api_keys::record_use(&pool, id).await {
                tracing::debug!(error = %e, "recording key use failed");
            }
        });
    }
}
