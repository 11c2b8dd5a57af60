//! The billing tables of a tenant (`billing.billing_*`): connections,
//! documents and handled webhooks. Values are bound, table names are
//! constants ([`Kind::table`]).

use super::providers::{Document, Provider};
use super::Connection;
use crate::db::tenants::Tenant;
use crate::domain::DomainError;
use serde_json::{json, Value};
use tokio_postgres::Row;
use uuid::Uuid;

const COLUMNS: &str = "id, client_name, provider, provider_account_id, owner_kind, owner_id, mode,
    display_name, config, scopes, api_key_sealed, webhook_secret_sealed, created_at, updated_at,
    deleted_at";

fn connection(row: &Row) -> Result<Connection, DomainError> {
    let provider: String = row.get("provider");
    Ok(Connection {
        id: row.get("id"),
        client_name: row.get("client_name"),
        provider: Provider::parse(&provider)
            .ok_or_else(|| DomainError::Internal(format!("unknown billing provider {provider}")))?,
        provider_account_id: row.get("provider_account_id"),
        owner_kind: row.get("owner_kind"),
        owner_id: row.get("owner_id"),
        mode: row.get("mode"),
        display_name: row.get("display_name"),
        config: row.get("config"),
        scopes: row.get("scopes"),
        api_key_sealed: row.get("api_key_sealed"),
        webhook_secret_sealed: row.get("webhook_secret_sealed"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        deleted_at: row.get("deleted_at"),
    })
}

pub async fn get(
    tenant: &Tenant,
    client: &str,
    id: Uuid,
) -> Result<Option<Connection>, DomainError> {
    let conn = tenant.pool.get().await?;
    conn.query_opt(
        &format!(
            "SELECT {COLUMNS} FROM billing.billing_provider_connections
              WHERE id = $1 AND client_name = $2"
        ),
        &[&id, &client],
    )
    .await?
    .as_ref()
    .map(connection)
    .transpose()
}

/// List filters (`ownerKind`, `ownerId`, `provider`, `mode`, `includeDeleted`).
#[derive(Debug, Default)]
pub struct Filter {
    pub owner_kind: Option<String>,
    pub owner_id: Option<String>,
    pub provider: Option<String>,
    pub mode: Option<String>,
    pub include_deleted: bool,
}

pub async fn list(
    tenant: &Tenant,
    client: &str,
    f: &Filter,
) -> Result<Vec<Connection>, DomainError> {
    let conn = tenant.pool.get().await?;
    let rows = conn
        .query(
            &format!(
                "SELECT {COLUMNS} FROM billing.billing_provider_connections
                  WHERE client_name = $1
                    AND ($2::text IS NULL OR owner_kind = $2)
                    AND ($3::text IS NULL OR owner_id = $3)
                    AND ($4::text IS NULL OR provider = $4)
                    AND ($5::text IS NULL OR mode = $5)
                    AND ($6 OR deleted_at IS NULL)
                  ORDER BY created_at, id"
            ),
            &[
                &client,
                &f.owner_kind,
                &f.owner_id,
                &f.provider,
                &f.mode,
                &f.include_deleted,
            ],
        )
        .await?;
    rows.iter().map(connection).collect()
}

/// A new connection row (credentials already sealed for `id`).
pub async fn insert(tenant: &Tenant, c: &Connection) -> Result<Connection, DomainError> {
    let conn = tenant.pool.get().await?;
    let row = conn
        .query_one(
            &format!(
                "INSERT INTO billing.billing_provider_connections
                   (id, client_name, provider, provider_account_id, owner_kind, owner_id, mode,
                    display_name, config, scopes, api_key_sealed, webhook_secret_sealed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 RETURNING {COLUMNS}"
            ),
            &[
                &c.id,
                &c.client_name,
                &c.provider.as_str(),
                &c.provider_account_id,
                &c.owner_kind,
                &c.owner_id,
                &c.mode,
                &c.display_name,
                &c.config,
                &c.scopes,
                &c.api_key_sealed,
                &c.webhook_secret_sealed,
            ],
        )
        .await?;
    connection(&row)
}

/// Writes every field of `c` back (the caller merged the patch), a live
/// row only; `None` when it is gone.
pub async fn update(tenant: &Tenant, c: &Connection) -> Result<Option<Connection>, DomainError> {
    let conn = tenant.pool.get().await?;
    conn.query_opt(
        &format!(
            "UPDATE billing.billing_provider_connections
                SET provider_account_id = $3, owner_kind = $4, owner_id = $5, mode = $6,
                    display_name = $7, config = $8, scopes = $9, api_key_sealed = $10,
                    webhook_secret_sealed = $11, updated_at = now()
              WHERE id = $1 AND client_name = $2 AND deleted_at IS NULL
              RETURNING {COLUMNS}"
        ),
        &[
            &c.id,
            &c.client_name,
            &c.provider_account_id,
            &c.owner_kind,
            &c.owner_id,
            &c.mode,
            &c.display_name,
            &c.config,
            &c.scopes,
            &c.api_key_sealed,
            &c.webhook_secret_sealed,
        ],
    )
    .await?
    .as_ref()
    .map(connection)
    .transpose()
}

/// Soft delete: the row stays (its documents and events refer to it), its
/// credentials are dropped.
pub async fn soft_delete(
    tenant: &Tenant,
    client: &str,
    id: Uuid,
) -> Result<Option<Connection>, DomainError> {
    let conn = tenant.pool.get().await?;
    conn.query_opt(
        &format!(
            "UPDATE billing.billing_provider_connections
                SET deleted_at = now(), updated_at = now(), api_key_sealed = NULL,
                    webhook_secret_sealed = NULL
              WHERE id = $1 AND client_name = $2 AND deleted_at IS NULL
              RETURNING {COLUMNS}"
        ),
        &[&id, &client],
    )
    .await?
    .as_ref()
    .map(connection)
    .transpose()
}

/// Upserts the document's row in its table: the row as stored (JSON), or
/// `None` when a newer observation was already there (nothing changed).
pub async fn upsert_document(
    tx: &tokio_postgres::Transaction<'_>,
    c: &Connection,
    doc: &Document,
    document: &Value,
    observed_at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Value>, DomainError> {
    let row = tx
        .query_opt(
            &format!(
                "INSERT INTO {} AS t (id, connection_id, client_name, provider, provider_ref,
                 provider_customer_ref, status, amount_minor, currency, document, provider_payload,
                 observed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (connection_id, provider_ref) DO UPDATE
                SET provider_customer_ref = EXCLUDED.provider_customer_ref,
                    status = EXCLUDED.status, amount_minor = EXCLUDED.amount_minor,
                    currency = EXCLUDED.currency, document = EXCLUDED.document,
                    provider_payload = EXCLUDED.provider_payload,
                    observed_at = EXCLUDED.observed_at, updated_at = now()
              WHERE t.observed_at <= EXCLUDED.observed_at
             RETURNING to_jsonb(t)",
                doc.kind.table()
            ),
            &[
                &Uuid::new_v4(),
                &c.id,
                &c.client_name,
                &c.provider.as_str(),
                &doc.provider_ref,
                &doc.customer_ref,
                &doc.status,
                &doc.amount_minor,
                &doc.currency,
                document,
                &doc.raw,
                &observed_at,
            ],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// A verified provider event, as recorded.
pub struct Handled<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    /// The event as received.
    pub payload: &'a Value,
    /// When the provider state it carries was observed.
    pub observed_at: chrono::DateTime<chrono::Utc>,
}

/// Records a handled event and upserts its document, in one transaction:
/// `(event log id, replayed, the document's row when it changed)`. A replay
/// (same connection and provider event id) changes nothing and answers the
/// first recording's id.
pub async fn record_event(
    tenant: &Tenant,
    c: &Connection,
    event: &Handled<'_>,
    doc: &Document,
    document: &Value,
) -> Result<(Uuid, bool, Option<Value>), DomainError> {
    let mut conn = tenant.pool.get().await?;
    let tx = conn.transaction().await?;
    let inserted = tx
        .query_opt(
            "INSERT INTO billing.billing_webhook_events
               (id, connection_id, client_name, provider, provider_event_id, event_type,
                resource_kind, provider_ref, document, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (connection_id, provider_event_id) DO NOTHING
             RETURNING id",
            &[
                &Uuid::new_v4(),
                &c.id,
                &c.client_name,
                &c.provider.as_str(),
                &event.event_id,
                &event.event_type,
                &doc.kind.as_str(),
                &doc.provider_ref,
                document,
                event.payload,
            ],
        )
        .await?;
    let Some(row) = inserted else {
        let existing: Uuid = tx
            .query_one(
                "SELECT id FROM billing.billing_webhook_events
                  WHERE connection_id = $1 AND provider_event_id = $2",
                &[&c.id, &event.event_id],
            )
            .await?
            .get(0);
        tx.rollback().await?;
        return Ok((existing, true, None));
    };
    let changed = upsert_document(&tx, c, doc, document, event.observed_at).await?;
    tx.commit().await?;
    Ok((row.get(0), false, changed))
}

/// `GET …/webhook-events`: `(events, total)`, newest first.
pub async fn list_events(
    tenant: &Tenant,
    client: &str,
    connection_id: Option<Uuid>,
    provider: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Value>, i64), DomainError> {
    let conn = tenant.pool.get().await?;
    let rows = conn
        .query(
            "SELECT id, connection_id, provider, provider_event_id, event_type, resource_kind,
                    provider_ref, document, payload, received_at, count(*) OVER () AS total
               FROM billing.billing_webhook_events
              WHERE client_name = $1
                AND ($2::uuid IS NULL OR connection_id = $2)
                AND ($3::text IS NULL OR provider = $3)
              ORDER BY received_at DESC, id
              LIMIT $4 OFFSET $5",
            &[&client, &connection_id, &provider, &limit, &offset],
        )
        .await?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>("total"));
    let events = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, Uuid>("id"),
                "connectionId": r.get::<_, Uuid>("connection_id"),
                "provider": r.get::<_, String>("provider"),
                "providerEventId": r.get::<_, String>("provider_event_id"),
                "eventType": r.get::<_, String>("event_type"),
                "resourceKind": r.get::<_, String>("resource_kind"),
                "providerRef": r.get::<_, String>("provider_ref"),
                "document": r.get::<_, Value>("document"),
                "payload": r.get::<_, Value>("payload"),
                "receivedAt": r.get::<_, chrono::DateTime<chrono::Utc>>("received_at"),
            })
        })
        .collect();
    Ok((events, total))
}
