//! Follows the catalog's change feed and drops what changed from this
//! replica's caches at once: `athena_clients_changed` (a client's pool and
//! record) and `athena_auth_changed` (API keys and enforcement). On any
//! interruption everything is dropped and the listener reconnects.

use super::tenants::Tenants;
use crate::auth::store::KeyStore;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::{AsyncMessage, NoTls};

/// Subscribes before returning (so no change made after start-up is missed),
/// then follows the feed in the background, reconnecting as needed.
pub async fn start(
    database_url: String,
    tenants: Arc<Tenants>,
    keys: Arc<KeyStore>,
) -> Result<(), tokio_postgres::Error> {
    let first = subscribe(&database_url).await?;
    tokio::spawn(async move {
        let mut feed = Some(first);
        loop {
            let subscribed = match feed.take() {
                Some(f) => Ok(f),
                None => subscribe(&database_url).await,
            };
            match subscribed {
                Ok(f) => follow(f, &tenants, &keys).await,
                Err(e) => tracing::warn!(error = %e, "catalog change feed unavailable; retrying"),
            }
            // Anything that changed while we were not listening is unknown.
            tenants.evict_all().await;
            keys.invalidate().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Ok(())
}

struct Feed {
    _client: tokio_postgres::Client,
    /// (channel, payload)
    events: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
}

async fn subscribe(database_url: &str) -> Result<Feed, tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(database_url, NoTls).await?;
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
        .batch_execute("LISTEN athena_clients_changed; LISTEN athena_auth_changed")
        .await?;
    Ok(Feed {
        _client: client,
        events,
    })
}

async fn follow(mut feed: Feed, tenants: &Tenants, keys: &KeyStore) {
    while let Some((channel, payload)) = feed.events.recv().await {
        match channel.as_str() {
            "athena_clients_changed" => tenants.evict(&payload).await,
            _ => keys.invalidate().await,
        }
    }
}
