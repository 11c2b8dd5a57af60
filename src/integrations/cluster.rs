//! `GET /health/cluster` (issue 21): every mirror of
//! `ATHENA_CLUSTER_MIRRORS` probed concurrently (`GET /`, 5 s each) through
//! the outbound policy; a mirror that is down, refused or slow is reported
//! `offline` and never fails the answer.
//!
//! The route is public, so it is no amplifier: one probe round at a time
//! (a single-flight lock), its report reused for [`CACHE_FOR`], each mirror
//! answer read up to [`MIRROR_CAP`] bytes, and the echoed `url` stripped of
//! any userinfo.

use super::http::{upstream_message, Call};
use super::Integrations;
use serde_json::{json, Value};
use std::time::Duration;

pub const MIRROR_TIMEOUT: Duration = Duration::from_secs(5);
/// A report is served again for this long.
pub const CACHE_FOR: Duration = Duration::from_secs(5);
/// Largest mirror answer read.
pub const MIRROR_CAP: usize = 64 * 1024;

/// The last report and when it was made; the lock is held during a probe
/// round, so concurrent requests wait for it instead of probing again.
#[derive(Default)]
pub struct ClusterCache(tokio::sync::Mutex<Option<(std::time::Instant, Value)>>);

/// A mirror URL as echoed: without userinfo (the configured value may
/// carry credentials).
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.username().is_empty() && u.password().is_none() => url.to_string(),
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url
            .rsplit_once('@')
            .map(|(_, host)| host.to_string())
            .unwrap_or_else(|| url.to_string()),
    }
}

/// One mirror's report (`ClusterMirrorHealth`).
pub async fn probe(service: &Integrations, url: &str) -> Value {
    let raw = url;
    let url = shown(raw);
    let url = url.as_str();
    let offline = |message: String| {
        json!({"url": url, "status": "offline", "latency_ms": null,
               "download_bytes_per_sec": null, "cargo_toml_version": null, "message": message})
    };
    let base = match service.http.check_base_url(raw) {
        Ok(b) => b,
        Err(e) => return offline(e.to_string()),
    };
    match service
        .http
        .send(
            Call::get(format!("{base}/"))
                .timeout(MIRROR_TIMEOUT)
                .cap(MIRROR_CAP),
        )
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
        let mut cached = self.cluster.0.lock().await;
        if let Some((at, report)) = cached.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return report.clone();
            }
        }
        let report = self.probe_mirrors().await;
        *cached = Some((std::time::Instant::now(), report.clone()));
        report
    }

    async fn probe_mirrors(self: &std::sync::Arc<Self>) -> Value {
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
