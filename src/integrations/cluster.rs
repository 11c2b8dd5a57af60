//! `GET /health/cluster` (issue 21): every mirror of
//! `ATHENA_CLUSTER_MIRRORS` probed concurrently (`GET /`, 5 s each) through
//! the outbound policy; a mirror that is down, refused or slow is reported
//! `offline` and never fails the answer.

use super::http::{upstream_message, Call};
use super::Integrations;
use serde_json::{json, Value};
use std::time::Duration;

pub const MIRROR_TIMEOUT: Duration = Duration::from_secs(5);

/// One mirror's report (`ClusterMirrorHealth`).
pub async fn probe(service: &Integrations, url: &str) -> Value {
    let offline = |message: String| {
        json!({"url": url, "status": "offline", "latency_ms": null,
               "download_bytes_per_sec": null, "cargo_toml_version": null, "message": message})
    };
    let base = match service.http.check_base_url(url) {
        Ok(b) => b,
        Err(e) => return offline(e.to_string()),
    };
    match service
        .http
        .send(Call::get(format!("{base}/")).timeout(MIRROR_TIMEOUT))
        .await
    {
        Err(e) => offline(e.to_string()),
        Ok(a) if !(200..400).contains(&a.status) => {
            offline(format!("HTTP {}: {}", a.status, upstream_message(&a)))
        }
        Ok(a) => {
            let secs = a.elapsed.as_secs_f64().max(1e-6);
            let version = ["/cargo_toml_version", "/version", "/athena_api"]
                .iter()
                .find_map(|p| a.json.pointer(p).and_then(Value::as_str))
                .map(|v| v.chars().take(64).collect::<String>());
            json!({
                "url": url,
                "status": "online",
                "latency_ms": (a.elapsed.as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
                "download_bytes_per_sec": (a.bytes.len() as f64 / secs).round(),
                "cargo_toml_version": version,
                "message": null,
            })
        }
    }
}

impl Integrations {
    pub async fn cluster_health(self: &std::sync::Arc<Self>) -> Value {
        // One task per mirror: all probed at once, answered in list order.
        let tasks: Vec<_> = self
            .settings
            .cluster_mirrors
            .iter()
            .map(|m| {
                let (service, url) = (self.clone(), m.clone());
                tokio::spawn(async move { probe(&service, &url).await })
            })
            .collect();
        let mut mirrors = Vec::with_capacity(tasks.len());
        for task in tasks {
            mirrors.push(task.await.unwrap_or_else(|_| json!({"status": "offline"})));
        }
        let online = mirrors.iter().filter(|m| m["status"] == "online").count();
        let version = env!("CARGO_PKG_VERSION");
        json!({
            "message": format!("{online} of {} mirrors online", mirrors.len()),
            "version": version,
            "athena_api": "online",
            "cargo_toml_version": version,
            "mirrors": mirrors,
        })
    }
}
