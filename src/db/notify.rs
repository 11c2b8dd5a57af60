//! Follows the catalog's change feed and drops what changed from this
//! replica's caches at once: `athena_clients_changed` (a client's pool and
//! record), `athena_auth_changed` (API keys and enforcement) and
//! `athena_routes_changed` (public and service routes) and
//! `athena_events_changed` (event subscriptions: webhooks). On any
//! interruption (or failure of the listener itself) everything is dropped
//! and the listener is restarted.

use super::tenants::Tenants;
use crate::auth::store::KeyStore;
use crate::events::Outbox;
use crate::gateway::host_routing::HostRouting;
use crate::supervisor::{supervise, Backoff};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::AsyncMessage;

/// `application_name` of the listener's connection (visible in
/// `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "athena-catalog-listener";

/// Reconnection backoff: quick at first, at most 5 s apart, so a change made
/// after Postgres comes back is seen soon.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(250),
    max: Duration::from_secs(5),
    healthy: Duration::from_secs(30),
};

/// Subscribes before returning (so no change made after start-up is missed),
/// then follows the feed in the background under a supervisor
/// (`src/supervisor.rs`): when the connection drops, or anything in the
/// listener fails or panics, it is restarted with backoff, and the caches
/// are dropped (what changed while nobody listened is unknown).
pub async fn start(
    database_url: String,
    tenants: Arc<Tenants>,
    keys: Arc<KeyStore>,
    routes: Arc<HostRouting>,
    events: Arc<Outbox>,
) -> Result<(), tokio_postgres::Error> {
    let first = Arc::new(Mutex::new(Some(
        subscribe(&database_url, tenants.default_settings().tls).await?,
    )));
    supervise("catalog change listener", BACKOFF, move || {
        let (url, tenants, keys) = (database_url.clone(), tenants.clone(), keys.clone());
        let routes = routes.clone();
        let events = events.clone();
        let first = first.lock().unwrap_or_else(|e| e.into_inner()).take();
        async move {
            let feed = match first {
                Some(feed) => feed,
                None => match subscribe(&url, tenants.default_settings().tls).await {
                    Ok(feed) => {
                        tenants.evict_all().await;
                        keys.invalidate().await;
                        routes.invalidate();
                        events.invalidate();
                        tracing::info!("catalog change feed resubscribed");
                        feed
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "catalog change feed unavailable");
                        return;
                    }
                },
            };
            follow(feed, &tenants, &keys, &routes, &events).await;
            // Until resubscribed, changes go unnoticed: forget everything.
            tenants.evict_all().await;
            keys.invalidate().await;
            routes.invalidate();
            events.invalidate();
        }
    });
    Ok(())
}

struct Feed {
    _client: tokio_postgres::Client,
    /// (channel, payload)
    events: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
}

async fn subscribe(
    database_url: &str,
    tls: super::tls::PgTls,
) -> Result<Feed, tokio_postgres::Error> {
    // The catalog URI's own sslmode (`src/db/tls.rs`); a URI that does not
    // parse there gets tokio-postgres' own error.
    let (mut config, mode) = match super::tls::config_from_uri(database_url) {
        Ok(parsed) => parsed,
        Err(_) => (database_url.parse()?, super::tls::SslMode::Prefer),
    };
    config.application_name(APPLICATION_NAME);
    let (client, mut connection) = config.connect(tls.connector(mode)).await?;
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for notifications to arrive; the task
    // ends (closing the channel) when the connection does.
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx
                        .send((n.channel().to_string(), n.payload().to_string()))
                        .is_err()
                    {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "catalog change feed connection failed");
                    return;
                }
                None => return,
            }
        }
    });
    client
        .batch_execute(
            "LISTEN athena_clients_changed; LISTEN athena_auth_changed; LISTEN athena_routes_changed; \
             LISTEN athena_events_changed; LISTEN athena_schema_changed",
        )
        .await?;
    Ok(Feed {
        _client: client,
        events,
    })
}

async fn follow(
    mut feed: Feed,
    tenants: &Tenants,
    keys: &KeyStore,
    routes: &HostRouting,
    events: &Outbox,
) {
    while let Some((channel, payload)) = feed.events.recv().await {
        match channel.as_str() {
            "athena_clients_changed" => tenants.evict(&payload).await,
            // Routing lookups are few and cheap: drop them all.
            "athena_routes_changed" => routes.invalidate(),
            "athena_events_changed" => events.invalidate(),
            // Management DDL on some replica (`src/management/`): this
            // client's introspection cache.
            "athena_schema_changed" => tenants.invalidate_schema(&payload).await,
            _ => keys.invalidate().await,
        }
    }
}
