//! Per-client configuration overrides (`athena_client_configs`,
//! `migrations/0007_client_configs_admission.sql`): a typed `config` (the
//! schema below; anything else is refused naming its JSON path) and a free
//! `metadata` object per registered client.
//!
//! The effective configuration of a client is its override over the
//! process defaults (`ATHENA_*`, `ATHENA_CONFIG`): a field left out keeps
//! the default. A change notifies `athena_clients_changed` (a trigger), so
//! every replica drops the client's pool at once and rebuilds it from
//! `ClientConfig::pool_settings` (`src/db/tenants.rs`).

use crate::db::{Pool, PoolSettings};
use crate::domain::DomainError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The typed `config` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_writes: Option<DeferredWrites>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insert_window: Option<InsertWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resilience: Option<Resilience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<BTreeMap<String, bool>>,
}

/// `admission`: the client's side of the limiter (`src/admission/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    /// `false` exempts the client's requests from the limiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u32>,
    /// 0 = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_client_limit_per_window: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeferredWrites {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsertWindow {
    /// Caps the insert window of the client's inserts (0 = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resilience {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquire_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_max: Option<u32>,
}

/// Ranges of the numeric fields: (JSON path, min, max).
const WINDOW_SECONDS: (&str, u64, u64) = ("config.admission.window_seconds", 1, 86_400);
const CLIENT_LIMIT: (&str, u64, u64) = (
    "config.admission.per_client_limit_per_window",
    0,
    1_000_000_000,
);
const MAX_MS: (&str, u64, u64) = (
    "config.insert_window.max_ms",
    0,
    crate::gateway::batch::MAX_WINDOW_MS as u64,
);
const STATEMENT_TIMEOUT: (&str, u64, u64) =
    ("config.resilience.statement_timeout_ms", 1, 3_600_000);
const ACQUIRE_TIMEOUT: (&str, u64, u64) = ("config.resilience.acquire_timeout_ms", 1, 600_000);
const POOL_MAX: (&str, u64, u64) = ("config.resilience.pool_max", 1, 1_000);

fn in_range(value: Option<u64>, (path, min, max): (&str, u64, u64)) -> Result<(), DomainError> {
    match value {
        Some(v) if v < min || v > max => Err(DomainError::Invalid(format!(
            "{path} must be between {min} and {max} (got {v})"
        ))),
        _ => Ok(()),
    }
}

impl ClientConfig {
    /// Parses and checks a `config` object: unknown keys, wrong types and
    /// out-of-range values are refused with the JSON path
    /// (`config.resilience.pool_max`).
    pub fn parse(value: &Value) -> Result<ClientConfig, DomainError> {
        if !value.is_object() {
            return Err(DomainError::Invalid("config must be an object".into()));
        }
        let config: ClientConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let at = match path.as_str() {
                "." | "" => "config".to_string(),
                p => format!("config.{p}"),
            };
            DomainError::Invalid(format!("{at}: {}", e.inner()))
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), DomainError> {
        if let Some(a) = &self.admission {
            in_range(a.window_seconds.map(u64::from), WINDOW_SECONDS)?;
            in_range(a.per_client_limit_per_window, CLIENT_LIMIT)?;
        }
        if let Some(w) = &self.insert_window {
            in_range(w.max_ms, MAX_MS)?;
        }
        if let Some(r) = &self.resilience {
            in_range(r.statement_timeout_ms, STATEMENT_TIMEOUT)?;
            in_range(r.acquire_timeout_ms, ACQUIRE_TIMEOUT)?;
            in_range(r.pool_max.map(u64::from), POOL_MAX)?;
        }
        for name in self.features.iter().flat_map(|f| f.keys()) {
            if name.is_empty() || name.len() > 64 {
                return Err(DomainError::Invalid(format!(
                    "config.features.{name}: feature names are 1-64 characters"
                )));
            }
        }
        Ok(())
    }

    /// The client's pool settings: the override over `defaults`.
    pub fn pool_settings(&self, defaults: PoolSettings) -> PoolSettings {
        let Some(r) = &self.resilience else {
            return defaults;
        };
        PoolSettings {
            max_size: r.pool_max.unwrap_or(defaults.max_size),
            acquire_timeout: r
                .acquire_timeout_ms
                .map_or(defaults.acquire_timeout, Duration::from_millis),
            statement_timeout: r
                .statement_timeout_ms
                .map_or(defaults.statement_timeout, Duration::from_millis),
            ..defaults
        }
    }

    /// `deferred_writes.enabled`, when the override sets it.
    pub fn deferred_writes(&self) -> Option<bool> {
        self.deferred_writes.as_ref().and_then(|d| d.enabled)
    }

    /// `insert_window.max_ms`, when the override sets it.
    pub fn insert_window_max(&self) -> Option<Duration> {
        self.insert_window
            .as_ref()
            .and_then(|w| w.max_ms)
            .map(Duration::from_millis)
    }

    /// Every field as it acts: the override over `defaults`.
    pub fn effective(&self, defaults: &Defaults) -> Value {
        let a = self.admission.clone().unwrap_or_default();
        let pool = self.pool_settings(defaults.pool);
        serde_json::json!({
            "admission": {
                "enabled": a.enabled.unwrap_or(true),
                "window_seconds": a.window_seconds.unwrap_or(defaults.admission.window_secs),
                "per_client_limit_per_window": a
                    .per_client_limit_per_window
                    .unwrap_or(defaults.admission.client_limit),
                "global_limit_per_window": defaults.admission.global_limit,
            },
            "deferred_writes": {
                "enabled": self.deferred_writes().unwrap_or(defaults.deferred_writes),
            },
            "insert_window": {
                "max_ms": self.insert_window_max().map(|d| d.as_millis() as u64),
                "default_ms": defaults.insert_window.as_millis() as u64,
            },
            "resilience": {
                "statement_timeout_ms": pool.statement_timeout.as_millis() as u64,
                "acquire_timeout_ms": pool.acquire_timeout.as_millis() as u64,
                "pool_max": pool.max_size,
            },
            "features": self.features.clone().unwrap_or_default(),
        })
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }
}

/// What a client gets without an override.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub pool: PoolSettings,
    pub admission: crate::admission::Settings,
    pub insert_window: Duration,
    /// `ATHENA_DEFERRED_CLIENTS`, the YAML or the client metadata.
    pub deferred_writes: bool,
}

/// One stored override.
#[derive(Debug, Clone)]
pub struct Stored {
    pub client_name: String,
    pub config: ClientConfig,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Stored {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "client_name": self.client_name,
            "config": self.config.to_value(),
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

const COLUMNS: &str = "client_name, config, metadata, created_at, updated_at";

/// A stored row; a config that no longer parses (edited by hand) counts as
/// no override rather than failing every request of the client.
fn from_row(r: &tokio_postgres::Row) -> Stored {
    let name: String = r.get(0);
    let config = ClientConfig::parse(&r.get::<_, Value>(1)).unwrap_or_else(|e| {
        tracing::warn!(client = %name, error = %e, "stored client config ignored");
        ClientConfig::default()
    });
    Stored {
        client_name: name,
        config,
        metadata: r.get(2),
        created_at: r.get(3),
        updated_at: r.get(4),
    }
}

pub async fn list(pool: &Pool) -> Result<Vec<Stored>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM athena_client_configs ORDER BY client_name");
    Ok(conn.query(&sql, &[]).await?.iter().map(from_row).collect())
}

pub async fn get(pool: &Pool, client: &str) -> Result<Option<Stored>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {COLUMNS} FROM athena_client_configs WHERE client_name = $1");
    Ok(conn
        .query_opt(&sql, &[&client])
        .await?
        .as_ref()
        .map(from_row))
}

/// Creates or replaces a live client's override; `None` when the client
/// is not registered (or deleted).
pub async fn put(
    pool: &Pool,
    client: &str,
    config: &ClientConfig,
    metadata: &Value,
) -> Result<Option<Stored>, DomainError> {
    let conn = pool.get().await?;
    let sql = format!(
        "INSERT INTO athena_client_configs (client_name, config, metadata)
         SELECT client_name, $2, $3 FROM athena_clients
          WHERE client_name = $1 AND deleted_at IS NULL
         ON CONFLICT (client_name) DO UPDATE SET
             config = EXCLUDED.config, metadata = EXCLUDED.metadata, updated_at = now()
         RETURNING {COLUMNS}"
    );
    Ok(conn
        .query_opt(&sql, &[&client, &config.to_value(), metadata])
        .await?
        .as_ref()
        .map(from_row))
}

/// Removes the override (the client falls back to the defaults); whether
/// there was one.
pub async fn delete(pool: &Pool, client: &str) -> Result<bool, DomainError> {
    let conn = pool.get().await?;
    Ok(conn
        .execute(
            "DELETE FROM athena_client_configs WHERE client_name = $1",
            &[&client],
        )
        .await?
        > 0)
}

/// What a seed did.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Seeded {
    /// Clients whose override was created.
    pub seeded: Vec<String>,
    /// Clients left alone: an override exists, or the client is not registered.
    pub skipped: Vec<String>,
}

/// Copies `entries` (the `ATHENA_CONFIG` file's `client_config`) without
/// overwriting an existing override, in one transaction.
pub async fn seed(pool: &Pool, entries: &[(String, ClientConfig)]) -> Result<Seeded, DomainError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let mut out = Seeded::default();
    for (client, config) in entries {
        let inserted = tx
            .execute(
                "INSERT INTO athena_client_configs (client_name, config, metadata)
                 SELECT client_name, $2, '{\"source\": \"config\"}'::jsonb FROM athena_clients
                  WHERE client_name = $1 AND deleted_at IS NULL
                 ON CONFLICT (client_name) DO NOTHING",
                &[client, &config.to_value()],
            )
            .await?;
        match inserted {
            0 => out.skipped.push(client.clone()),
            _ => out.seeded.push(client.clone()),
        }
    }
    tx.commit().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(v: Value) -> String {
        match ClientConfig::parse(&v) {
            Err(DomainError::Invalid(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn paths_are_named() {
        assert!(refused(json!({"resilience": {"pool_max": 0}}))
            .starts_with("config.resilience.pool_max"));
        assert!(refused(json!({"admission": {"window_seconds": "x"}}))
            .starts_with("config.admission.window_seconds"));
        assert!(refused(json!({"admission": {"nope": 1}})).contains("nope"));
        assert!(refused(json!({"other": {}})).contains("other"));
        assert!(refused(json!({"features": {"a": 1}})).starts_with("config.features.a"));
    }

    #[test]
    fn overrides_apply_over_defaults() {
        let c = ClientConfig::parse(&json!({
            "resilience": {"pool_max": 3, "statement_timeout_ms": 250},
            "features": {"beta": true}
        }))
        .unwrap();
        let d = PoolSettings {
            max_size: 10,
            connect_timeout: Duration::from_secs(1),
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(30),
            tls: Default::default(),
        };
        let s = c.pool_settings(d);
        assert_eq!(s.max_size, 3);
        assert_eq!(s.statement_timeout, Duration::from_millis(250));
        assert_eq!(s.acquire_timeout, d.acquire_timeout);
    }
}
