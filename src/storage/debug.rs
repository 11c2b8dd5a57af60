//! `GET /debug/s3`: for every live catalog of a client (or of every
//! client), whether it resolves (its endpoint passes the outbound rule, its
//! secret opens), whether its bucket answers, and its versioning status.
//! No secret and no upstream message is shown.

use super::service::Storage;
use crate::domain::DomainError;
use serde_json::{json, Value};
use std::time::Duration;

/// Longest wait for one catalog's probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most clients reported when none is named.
const MAX_CLIENTS: usize = 50;

/// The public text of a probe failure (its status and code only).
fn failure(e: DomainError) -> Value {
    let api: crate::http::ApiError = e.into();
    json!({ "status": api.code.status().as_u16(), "code": api.code.as_str(), "error": api.detail })
}

impl Storage {
    pub async fn debug_report(
        &self,
        catalog_pool: &crate::db::Pool,
        client: Option<&str>,
    ) -> Result<Value, DomainError> {
        let clients: Vec<String> = match client {
            Some(c) => vec![c.to_string()],
            None => crate::catalog::clients::list(catalog_pool)
                .await?
                .into_iter()
                .filter(|c| c.is_active)
                .take(MAX_CLIENTS)
                .map(|c| c.client_name)
                .collect(),
        };
        let mut out = Vec::new();
        for client in clients {
            let catalogs = match self.catalogs(&client).await {
                Ok(c) => c,
                Err(e) => {
                    out.push(json!({ "client": client, "error": failure(e) }));
                    continue;
                }
            };
            let mut items = Vec::new();
            for c in catalogs.into_iter().filter(|c| c.is_active) {
                let probe = async {
                    let (store, bucket) = self.catalog_store(&client, c.id).await?;
                    let versioning = match &bucket {
                        Some(b) => Some(self.probe_bucket(&store, b).await),
                        None => None,
                    };
                    Ok::<_, DomainError>(versioning)
                };
                let (resolution, reachable, versioning, error) =
                    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
                        Err(_) => ("timeout", Value::Null, Value::Null, Value::Null),
                        Ok(Err(e)) => ("error", Value::Null, Value::Null, failure(e)),
                        Ok(Ok(None)) => ("ok", Value::Null, Value::Null, Value::Null),
                        Ok(Ok(Some(Ok(v)))) => ("ok", json!(true), json!(v), Value::Null),
                        Ok(Ok(Some(Err(e)))) => ("ok", json!(false), Value::Null, failure(e)),
                    };
                items.push(json!({
                    "id": c.id, "name": c.name, "endpoint": c.endpoint, "region": c.region,
                    "bucket": c.bucket, "provider": c.provider,
                    "active_access_key": c.active_access_key,
                    "resolution": resolution, "bucket_reachable": reachable,
                    "versioning": versioning, "error": error,
                }));
            }
            out.push(json!({ "client": client, "catalogs": items }));
        }
        Ok(json!({ "clients": out }))
    }
}
