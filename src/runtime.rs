//! Building the application from configuration: catalog pool and
//! migrations, seeded clients, Redis and S3, handlers, and the server.

use crate::auth::store::KeyStore;
use crate::auth::{AdminKey, Auth};
use crate::catalog::clients;
use crate::config::Config;
use crate::db::direct::DirectPools;
use crate::db::notify;
use crate::db::tenants::Tenants;
use crate::db::{self, migrate, PoolSettings};
use crate::handlers::Handlers;
use crate::http::metrics::Metrics;
use crate::http::server::{App, Limits};
use crate::services::{self, S3};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `ATHENA_CONFIG`: clients to seed into the catalog.
#[derive(Debug, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    clients: Vec<ConfigClient>,
    /// Per-client configuration overrides, copied into the catalog by
    /// `POST /admin/client-configs/seed-from-config` (`client_config_entries`).
    #[serde(default)]
    client_config: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The `client_config` entries of the `ATHENA_CONFIG` file, each checked
/// against the typed schema (`crate::catalog::client_configs`).
pub fn client_config_entries(
    path: &str,
) -> Result<Vec<(String, crate::catalog::client_configs::ClientConfig)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("ATHENA_CONFIG {path}: {e}"))?;
    let file: ConfigFile =
        serde_yaml::from_str(&text).map_err(|e| format!("ATHENA_CONFIG {path}: {e}"))?;
    file.client_config
        .into_iter()
        .map(|(name, value)| {
            crate::catalog::client_configs::ClientConfig::parse(&value)
                .map(|c| (name.clone(), c))
                .map_err(|e| format!("ATHENA_CONFIG client_config.{name}: {e}"))
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct ConfigClient {
    client_name: String,
    pg_uri: Option<String>,
    pg_uri_env_var: Option<String>,
    /// `deferred_writes: {enabled: true}` defers this client's gateway writes.
    #[serde(default)]
    deferred_writes: Option<DeferredWrites>,
}

#[derive(Debug, Deserialize)]
struct DeferredWrites {
    #[serde(default)]
    enabled: bool,
}

/// Clients of the `ATHENA_CONFIG` file with `deferred_writes.enabled`.
fn config_file_deferred(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("ATHENA_CONFIG {path}: {e}"))?;
    let file: ConfigFile =
        serde_yaml::from_str(&text).map_err(|e| format!("ATHENA_CONFIG {path}: {e}"))?;
    Ok(file
        .clients
        .into_iter()
        .filter(|c| c.deferred_writes.as_ref().is_some_and(|d| d.enabled))
        .map(|c| c.client_name)
        .collect())
}

fn config_file_clients(path: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("ATHENA_CONFIG {path}: {e}"))?;
    let file: ConfigFile =
        serde_yaml::from_str(&text).map_err(|e| format!("ATHENA_CONFIG {path}: {e}"))?;
    file.clients
        .into_iter()
        .map(|c| {
            let uri = match (c.pg_uri, c.pg_uri_env_var) {
                (Some(uri), _) => uri,
                (None, Some(var)) => std::env::var(&var).map_err(|_| {
                    format!(
                        "ATHENA_CONFIG: client {} reads {var}, which is not set",
                        c.client_name
                    )
                })?,
                (None, None) => {
                    return Err(format!(
                        "ATHENA_CONFIG: client {} has no pg_uri",
                        c.client_name
                    ))
                }
            };
            Ok((c.client_name, uri))
        })
        .collect()
}

/// Connects to the catalog, retrying while it starts (e.g. under `make serve`).
async fn catalog_pool(config: &Config, settings: PoolSettings) -> Result<db::Pool, String> {
    let pool =
        db::pool(&config.database_url, settings).map_err(|e| format!("DATABASE_URL: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match migrate::run(&pool).await {
            Ok(n) => {
                tracing::info!(applied = n, "catalog migrations are up to date");
                return Ok(pool);
            }
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "catalog not ready, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(format!("catalog database: {e}")),
        }
    }
}

/// The server: its services, background loops and routes. Every loop it
/// supervises is listed in its daemon registry (`crate::supervisor::Loops`).
pub async fn build(config: Config) -> Result<Arc<App>, String> {
    let loops = crate::supervisor::Loops::new();
    loops.scope(build_app(config, loops.clone())).await
}

async fn build_app(
    config: Config,
    loops: Arc<crate::supervisor::Loops>,
) -> Result<Arc<App>, String> {
    let settings = PoolSettings {
        max_size: config.pool_max_size,
        connect_timeout: config.pool_connect_timeout,
        acquire_timeout: config.pool_acquire_timeout,
        statement_timeout: config.statement_timeout,
        tls: db::tls::PgTls::load(config.pg_ssl_root_cert.as_deref())?,
    };
    let catalog = catalog_pool(&config, settings).await?;
    let tenants = Arc::new(Tenants::new(
        catalog,
        settings,
        config.raw_sql_role.clone().map(|user| crate::db::Login {
            user,
            password: config.raw_sql_password.clone(),
        }),
    ));
    let mut deferred_clients = config.deferred_clients.clone();
    if let Some(path) = &config.config_file {
        deferred_clients.extend(config_file_deferred(path)?);
    }
    let deferred = Arc::new(crate::gateway::deferred::Queue::new(
        tenants.catalog().clone(),
        tenants.clone(),
        deferred_clients,
        config.deferred_stale_after,
        crate::http::stored_failure,
    ));
    if let Some(path) = &config.config_file {
        let seeds = config_file_clients(path)?;
        clients::seed(tenants.catalog(), &seeds, "config")
            .await
            .map_err(|e| format!("seeding clients: {e}"))?;
    }
    if !config.seed_clients.is_empty() {
        clients::seed(tenants.catalog(), &config.seed_clients, "env")
            .await
            .map_err(|e| format!("seeding clients: {e}"))?;
    }
    let keys = Arc::new(
        KeyStore::open(tenants.catalog().clone())
            .await
            .map_err(|e| format!("opening the API key store: {e}"))?,
    );
    // Host routing and the route caches it shares with public routes
    // (issue 13, `src/gateway/host_routing.rs`).
    let routing = Arc::new(crate::gateway::host_routing::HostRouting::new(
        config.wildcard_host.clone(),
        tenants.catalog().clone(),
        Arc::default(),
        Arc::new(crate::outbound::OutboundPolicy::from_config(&config)),
    ));
    // Events out (issue 15, `src/events/`): the outbox and its
    // subscription index, dropped by the change listener below.
    let events = Arc::new(crate::events::Outbox::new(
        tenants.catalog().clone(),
        config.events.clone(),
        vec![
            Box::new(crate::catalog::webhooks::WebhookSource),
            Box::new(crate::catalog::webhook_sinks::SinkSource),
        ],
    ));
    notify::start(
        config.database_url.clone(),
        tenants.clone(),
        keys.clone(),
        routing.clone(),
        events.clone(),
    )
    .await
    .map_err(|e| format!("subscribing to catalog changes: {e}"))?;
    let redis = config
        .redis_url
        .as_deref()
        .map(services::redis_pool)
        .transpose()?;
    let s3 = config.s3.as_ref().map(S3::new).transpose()?;
    let metrics = Arc::new(Metrics::default());
    let admission = Arc::new(crate::admission::Admission::new(
        config.admission.clone(),
        redis.clone(),
        keys.catalog_id(),
        tenants.clone(),
        deferred.clone(),
    ));
    let auth = Arc::new(
        Auth::new(
            AdminKey::new(config.admin_key.clone()),
            keys.clone(),
            config.trusted_proxies.clone(),
        )
        .with_admission(admission.clone()),
    );
    let limits = Limits {
        max_body_bytes: config.max_body_bytes,
        max_upload_bytes: config.max_upload_bytes,
        request_timeout: config.request_timeout,
        header_read_timeout: config.header_read_timeout,
        shutdown_grace: config.shutdown_grace,
        max_connections: config.max_connections,
        load: crate::http::load::Load::new(config.max_in_flight),
    };
    // One outbound policy for every connection the gateway makes on a
    // caller's behalf (security.md §11).
    let outbound = Arc::new(crate::outbound::OutboundPolicy::from_config(&config));
    let direct = Arc::new(DirectPools::new(
        settings,
        crate::db::direct::DirectOptions::from_config(&config, outbound.clone()),
    ));
    let cache =
        crate::gateway::cache::ReadCache::new(redis.clone(), config.cache_ttl, keys.catalog_id());
    let workers = config.deferred_workers;
    let d1 = config.d1.clone().map(|c| {
        Arc::new(crate::gateway::d1::D1Client::new(
            c,
            config.request_timeout,
            outbound.clone(),
        ))
    });
    let webhooks = Arc::new(crate::events::webhooks::Webhooks::new(
        tenants.catalog().clone(),
        config.secrets.clone(),
        &outbound,
    ));
    let config = Arc::new(config);
    let gateway = Arc::new(crate::gateway::service::Gateway {
        events: events.clone(),
        config: config.clone(),
        tenants: tenants.clone(),
        direct,
        cache,
        deferred: deferred.clone(),
        insert_windows: Default::default(),
        d1,
    });
    // Webhook sinks write into target clients through the gateway.
    let sinks = Arc::new(crate::events::sinks::Sinks::new(
        tenants.catalog().clone(),
        gateway.clone(),
    ));
    crate::events::spawn_workers(
        events.clone(),
        vec![webhooks.clone(), sinks],
        Some(limits.load.clone()),
    );
    crate::gateway::deferred::spawn_workers(deferred, gateway.clone(), workers);
    let storage = Arc::new(crate::storage::service::Storage {
        tenants: tenants.clone(),
        s3: crate::storage::s3::S3::new(&outbound),
        secrets: config.secrets.clone(),
        outbound: outbound.clone(),
        allow_http: config.storage_allow_http,
        stores: crate::storage::service::store_cache(),
        redis: redis.clone(),
    });
    let sessions = config
        .auth_url
        .as_deref()
        .map(|url| crate::auth::session::Sessions::new(url, &outbound))
        .transpose()?;
    let end_users = Arc::new(crate::auth::end_user::EndUsers {
        jwt: config.auth_jwt.clone(),
        sessions,
    });
    // Issue 16: the DDL audit log (catalog or ATHENA_LOGGING_DATABASE_URL).
    let audit = Arc::new(
        crate::audit::ddl::AuditStore::open(
            tenants.catalog(),
            config.logging_database_url.as_deref(),
            settings,
        )
        .await?,
    );
    // Billing (issue 15): provider connections and webhook ingestion.
    let billing = Arc::new(crate::billing::Billing {
        tenants: tenants.clone(),
        secrets: config.secrets.clone(),
        outbound: outbound.clone(),
        api: crate::billing::providers::ProviderApi::new(&outbound),
        auth_configured: config.auth_url.is_some(),
    });
    // Chat (issue 20): rooms and messages in each tenant's athena_chat.
    let chat = Arc::new(crate::chat::Chat {
        tenants: tenants.clone(),
        storage: storage.clone(),
    });
    // Issue 19: the operation log, boot pipeline templates, health collectors.
    let insights = Arc::new(crate::stats::Insights::start(&config, tenants.clone())?);
    // Provisioning (issue 21): tenant schema, local databases, clones.
    let provision = Arc::new(crate::provision::Provisioning {
        tenants: tenants.clone(),
        direct: gateway.direct.clone(),
        secrets: config.secrets.clone(),
        outbound: outbound.clone(),
        clones: Arc::new(crate::provision::clones::Clones::new(
            config.provision.clone_lease,
        )),
        settings: config.provision.clone(),
    });
    crate::provision::clones::spawn_workers(provision.clone());
    // Issue 18: backups to S3 (jobs, schedules, daemon registry).
    let backups = Arc::new(
        crate::backups::Backups::new(
            config.backups.clone(),
            tenants.clone(),
            config.s3.as_ref(),
            config.storage_allow_http,
            config.secrets.clone(),
            outbound.clone(),
            events.clone(),
        )
        .await,
    );
    crate::backups::worker::spawn(backups.clone());
    crate::backups::daemons::spawn(backups.clone(), loops);
    // Integrations (issue 21): providers, Typesense, Supabase, mirrors.
    let integrations = Arc::new(
        crate::integrations::Integrations::start(
            config.integrations.clone(),
            tenants.clone(),
            config.secrets.clone(),
            outbound.clone(),
        )
        .await?,
    );
    let handlers = Arc::new(Handlers {
        integrations,
        config,
        tenants,
        gateway,
        storage,
        end_users,
        redis,
        s3,
        keys,
        admission,
        public_routes: routing.public.clone(),
        routing,
        events,
        webhooks,
        outbound,
        billing,
        metrics: metrics.clone(),
        started: Instant::now(),
        audit,
        chat,
        insights,
        provision,
        backups,
    });
    Ok(Arc::new(App::new(handlers, auth, metrics, limits)))
}
