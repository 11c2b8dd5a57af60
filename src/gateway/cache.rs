//! Optional read cache in Redis for fetches. Entries are keyed by the
//! client, the caller's authorization, the table's write version and the
//! normalized request, so one caller never sees another's results and a
//! write to the table makes older entries unreachable at once (they then
//! expire). Redis trouble never fails a read: the cache is skipped.

use crate::auth::Actor;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Budget for each Redis call on the read path.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Miss,
    /// `Cache-Control: no-cache`.
    Bypass,
    /// Redis failed or timed out; served from Postgres.
    Error,
    /// Caching is not configured.
    Disabled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Bypass => "bypass",
            Outcome::Error => "error",
            Outcome::Disabled => "disabled",
        }
    }
}

/// What a cached read belongs to.
pub struct Scope<'a> {
    pub client: &'a str,
    pub actor: &'a Actor,
    pub schema: &'a str,
    pub table: &'a str,
}

pub struct Lookup {
    pub outcome: Outcome,
    /// The key to store the result under after a miss.
    pub key: Option<String>,
    pub cached: Option<serde_json::Value>,
}

pub struct ReadCache {
    redis: Option<deadpool_redis::Pool>,
    ttl: Duration,
    /// Distinguishes catalogs sharing one Redis: client names are only
    /// unique within a catalog.
    namespace: String,
}

fn actor_id(actor: &Actor) -> String {
    match actor {
        Actor::Admin => "admin".into(),
        Actor::Open => "open".into(),
        Actor::Key(k) => format!("key:{}", k.id),
    }
}

async fn timed<T, E: std::fmt::Display>(
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    match tokio::time::timeout(REDIS_TIMEOUT, f).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "read cache: redis error");
            None
        }
        Err(_) => {
            tracing::debug!("read cache: redis timed out");
            None
        }
    }
}

impl ReadCache {
    /// `ttl` zero or no Redis: caching is off.
    pub fn new(redis: Option<deadpool_redis::Pool>, ttl: Duration, namespace: String) -> Self {
        ReadCache {
            redis: redis.filter(|_| !ttl.is_zero()),
            ttl,
            namespace,
        }
    }

    /// Whether reads are cached at all (Redis configured, TTL above zero).
    pub fn enabled(&self) -> bool {
        self.redis.is_some()
    }

    fn client_version_key(&self, client: &str) -> String {
        format!("athena:{}:v:{client}", self.namespace)
    }

    fn table_version_key(&self, client: &str, schema: &str, table: &str) -> String {
        format!("athena:{}:v:{client}:{schema}.{table}", self.namespace)
    }

    pub async fn lookup(
        &self,
        scope: &Scope<'_>,
        request: &serde_json::Value,
        no_cache: bool,
    ) -> Lookup {
        let Some(redis) = &self.redis else {
            return Lookup {
                outcome: Outcome::Disabled,
                key: None,
                cached: None,
            };
        };
        if no_cache {
            return Lookup {
                outcome: Outcome::Bypass,
                key: None,
                cached: None,
            };
        }
        let failed = Lookup {
            outcome: Outcome::Error,
            key: None,
            cached: None,
        };
        let Some(mut conn) = timed(redis.get()).await else {
            return failed;
        };
        let versions: Option<Vec<Option<i64>>> = timed(
            deadpool_redis::redis::cmd("MGET")
                .arg(self.client_version_key(scope.client))
                .arg(self.table_version_key(scope.client, scope.schema, scope.table))
                .query_async(&mut conn),
        )
        .await;
        let Some(versions) = versions else {
            return failed;
        };
        let mut hasher = Sha256::new();
        for part in [
            scope.client.to_string(),
            actor_id(scope.actor),
            format!("{}.{}", scope.schema, scope.table),
            format!("{:?}", versions),
            request.to_string(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        let key = format!(
            "athena:{}:c:{}",
            self.namespace,
            hex::encode(hasher.finalize())
        );
        let cached: Option<Option<String>> = timed(
            deadpool_redis::redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn),
        )
        .await;
        match cached {
            None => failed,
            Some(Some(text)) => match serde_json::from_str(&text) {
                Ok(v) => Lookup {
                    outcome: Outcome::Hit,
                    key: Some(key),
                    cached: Some(v),
                },
                Err(_) => Lookup {
                    outcome: Outcome::Miss,
                    key: Some(key),
                    cached: None,
                },
            },
            Some(None) => Lookup {
                outcome: Outcome::Miss,
                key: Some(key),
                cached: None,
            },
        }
    }

    pub async fn store(&self, lookup: &Lookup, value: &serde_json::Value) {
        let (Some(redis), Some(key), Outcome::Miss) = (&self.redis, &lookup.key, lookup.outcome)
        else {
            return;
        };
        let Some(mut conn) = timed(redis.get()).await else {
            return;
        };
        let _: Option<()> = timed(
            deadpool_redis::redis::cmd("SET")
                .arg(key)
                .arg(value.to_string())
                .arg("EX")
                .arg(self.ttl.as_secs().max(1))
                .query_async(&mut conn),
        )
        .await;
    }

    /// A write to `schema.table` (or, with `None`, to anything of the
    /// client: raw SQL) makes every cached read of it unreachable.
    pub async fn invalidate(&self, client: &str, table: Option<(&str, &str)>) {
        let Some(redis) = &self.redis else { return };
        let key = match table {
            Some((schema, table)) => self.table_version_key(client, schema, table),
            None => self.client_version_key(client),
        };
        let Some(mut conn) = timed(redis.get()).await else {
            return;
        };
        let bumped: Option<i64> = timed(
            deadpool_redis::redis::cmd("INCR")
                .arg(&key)
                .query_async(&mut conn),
        )
        .await;
        if bumped.is_none() {
            tracing::warn!(
                key,
                "read cache: could not record a write; cached reads expire by TTL"
            );
        }
    }
}
