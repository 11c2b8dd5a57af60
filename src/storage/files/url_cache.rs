//! The presigned-URL cache of `GET …/url`: one answer per (client, file,
//! purpose) in Redis (the gateway's pool) until 60 s before the URL
//! expires. The caller's right to read is checked before the cache is
//! looked at (`file_url`); any change of who may reach a file or where it
//! is drops its entries (`forget_urls`). Redis down or slow: no cache, never
//! an error.

use super::*;
use deadpool_redis::redis;
use std::time::Duration;

const PURPOSES: [&str; 3] = ["read", "download", "stream"];
/// A cached URL is dropped this long before it expires.
pub const URL_CACHE_MARGIN: u32 = 60;
/// Longest wait for Redis before going without the cache.
const REDIS_WAIT: Duration = Duration::from_millis(250);

fn key(client: &str, file: Uuid, purpose: &str) -> String {
    format!("athena:files:url:{client}:{file}:{purpose}")
}

async fn timed<T, E>(work: impl std::future::Future<Output = Result<T, E>>) -> Option<T> {
    tokio::time::timeout(REDIS_WAIT, work).await.ok()?.ok()
}

impl Storage {
    /// A cached answer, its `expires_in` brought up to now.
    pub(super) async fn cached_url(
        &self,
        client: &str,
        file: Uuid,
        purpose: &str,
    ) -> Option<Value> {
        let redis = self.redis.as_ref()?;
        let mut conn = timed(redis.get()).await?;
        let text: Option<String> = timed(
            redis::cmd("GET")
                .arg(key(client, file, purpose))
                .query_async(&mut conn),
        )
        .await?;
        let mut value: Value = serde_json::from_str(&text?).ok()?;
        let expires = value["expires_at_epoch_seconds"].as_i64()?;
        let left = expires - Utc::now().timestamp();
        if left <= i64::from(URL_CACHE_MARGIN) {
            return None;
        }
        value["expires_in"] = json!(left);
        value["cache_hit"] = json!(true);
        value["cache_layer"] = json!("redis");
        Some(value)
    }

    /// Keeps `answer` until `URL_CACHE_MARGIN` before its URL expires.
    pub(super) async fn cache_url(
        &self,
        client: &str,
        file: Uuid,
        purpose: &str,
        answer: &Value,
        ttl: u32,
    ) {
        let Some(redis) = &self.redis else { return };
        if ttl <= URL_CACHE_MARGIN {
            return;
        }
        let Some(mut conn) = timed(redis.get()).await else {
            return;
        };
        let _: Option<()> = timed(
            redis::cmd("SET")
                .arg(key(client, file, purpose))
                .arg(answer.to_string())
                .arg("EX")
                .arg(ttl - URL_CACHE_MARGIN)
                .query_async(&mut conn),
        )
        .await;
    }

    /// Drops the cached URLs of a file: call it when the file is deleted,
    /// moved, replaced or its visibility changes.
    pub async fn forget_urls(&self, client: &str, file_id: Uuid) {
        let Some(redis) = &self.redis else { return };
        let Some(mut conn) = timed(redis.get()).await else {
            tracing::warn!(%file_id, "cached URLs not dropped: Redis unreachable");
            return;
        };
        let mut del = redis::cmd("DEL");
        for purpose in PURPOSES {
            del.arg(key(client, file_id, purpose));
        }
        let done: Option<i64> = timed(del.query_async(&mut conn)).await;
        if done.is_none() {
            tracing::warn!(%file_id, "cached URLs not dropped: Redis failed");
        }
    }
}
