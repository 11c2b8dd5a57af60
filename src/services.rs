//! Connections to Redis and the S3-compatible store, and the truthful
//! health probe of every dependency.

use crate::config::S3Config;
use crate::db::Pool;
use serde::Serialize;
use std::time::Duration;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn redis_pool(url: &str) -> Result<deadpool_redis::Pool, String> {
    deadpool_redis::Config::from_url(url)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .map_err(|e| format!("REDIS_URL: {e}"))
}

/// The S3 region/credentials used by storage and backups.
#[derive(Clone)]
pub struct S3 {
    pub region: s3::Region,
    pub credentials: s3::creds::Credentials,
}

impl S3 {
    pub fn new(c: &S3Config) -> Result<S3, String> {
        let region = s3::Region::Custom {
            region: c.region.clone(),
            endpoint: c.endpoint.trim_end_matches('/').to_string(),
        };
        let credentials =
            s3::creds::Credentials::new(Some(&c.access_key), Some(&c.secret_key), None, None, None)
                .map_err(|e| format!("S3 credentials: {e}"))?;
        Ok(S3 {
            region,
            credentials,
        })
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Probe {
    /// `up`, `down` or `not_configured`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Probe {
    fn not_configured() -> Probe {
        Probe {
            status: "not_configured",
            latency_ms: None,
            error: None,
        }
    }

    async fn run<F, E>(check: F) -> Probe
    where
        F: std::future::Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let started = std::time::Instant::now();
        match tokio::time::timeout(PROBE_TIMEOUT, check).await {
            Ok(Ok(())) => Probe {
                status: "up",
                latency_ms: Some(started.elapsed().as_millis() as u64),
                error: None,
            },
            Ok(Err(e)) => Probe {
                status: "down",
                latency_ms: None,
                error: Some(e.to_string()),
            },
            Err(_) => Probe {
                status: "down",
                latency_ms: None,
                error: Some("timed out".into()),
            },
        }
    }
}

pub async fn probe_postgres(pool: &Pool) -> Probe {
    Probe::run(async {
        let conn = pool.get().await.map_err(|e| e.to_string())?;
        conn.simple_query("SELECT 1")
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    })
    .await
}

pub async fn probe_redis(pool: Option<&deadpool_redis::Pool>) -> Probe {
    let Some(pool) = pool else {
        return Probe::not_configured();
    };
    Probe::run(async {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let pong: String = deadpool_redis::redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(format!("unexpected PING reply {pong:?}"))
        }
    })
    .await
}

pub async fn probe_s3(s3: Option<&S3>) -> Probe {
    let Some(s3) = s3 else {
        return Probe::not_configured();
    };
    Probe::run(async {
        s3::Bucket::list_buckets(s3.region.clone(), s3.credentials.clone())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
}
