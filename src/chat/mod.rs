//! Durable chat (issue 20): rooms, members, ordered messages, reactions,
//! read cursors and search, stored in the tenant's own Postgres (schema
//! `athena_chat`, `migrations/tenant/0010_chat.sql`).
//!
//! Invariants:
//! - Everything is scoped to the client (`X-Athena-Client`) and the end
//!   user's organization (`src/auth/end_user.rs`): a room of another
//!   organization or client is absent (404), a room the user is not a
//!   member of is refused (403). Membership is read on every request, so a
//!   removed member loses access on the next one.
//! - A message's `room_seq` is `rooms.last_message_seq + 1`, assigned in
//!   the transaction that inserts the message while it holds the room row
//!   lock (`SELECT … FOR UPDATE`): a room's sequence is gapless and unique
//!   however many senders race. Lock order: the room row, then messages.
//! - A `client_message_id` is unique per (room, sender); a retry with the
//!   same request answers the stored message, another body is a 409.
//! - Deletes are soft: bodies are cleared, `room_seq` is kept.
//! - Every change writes its event to `athena_chat.outbox` in the same
//!   transaction (the realtime gateway, a later issue, delivers them).

use crate::auth::end_user::EndUser;
use crate::db::tenants::{Tenant, Tenants};
use crate::domain::DomainError;
use crate::storage::service::Storage;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::GenericClient;
use uuid::Uuid;

mod messages;
mod rooms;

/// The largest `body_text`, or `body_json` as JSON text.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The largest reaction emoji.
pub const MAX_EMOJI_BYTES: usize = 32;

/// The chat store of every client.
pub struct Chat {
    pub tenants: Arc<Tenants>,
    /// Managed files: attachments must be files the sender may read.
    pub storage: Arc<Storage>,
}

/// The end user acting, with the organization that scopes everything.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub user: String,
    pub org: String,
}

impl Caller {
    pub fn of(user: &EndUser) -> Result<Caller, DomainError> {
        let id = user.user().ok_or_else(|| {
            DomainError::Unauthorized("chat needs an end user (a bearer JWT or a session)".into())
        })?;
        let org = user
            .organization_id
            .as_deref()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| {
                DomainError::Forbidden(
                    "chat is scoped to an organization: the end user has none (the token's org_id or X-Organization-Id)".into(),
                )
            })?;
        Ok(Caller {
            user: id.to_string(),
            org: org.to_string(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "member" => Role::Member,
            _ => return None,
        })
    }

    fn manages(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

const ROOM_COLUMNS: &str = "r.id, r.organization_id, r.kind, r.title, r.created_by, r.created_at,
    r.updated_at, r.archived_at, r.last_message_id, r.last_message_seq, r.last_message_at, r.version";

/// A row of `athena_chat.rooms`.
#[derive(Debug, Clone)]
pub(crate) struct RoomRow {
    pub id: Uuid,
    pub organization_id: String,
    pub kind: String,
    pub title: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub last_message_id: Option<Uuid>,
    pub last_message_seq: i64,
    pub last_message_at: Option<DateTime<Utc>>,
    pub version: i64,
}

impl RoomRow {
    fn from_row(r: &tokio_postgres::Row) -> RoomRow {
        RoomRow {
            id: r.get(0),
            organization_id: r.get(1),
            kind: r.get(2),
            title: r.get(3),
            created_by: r.get(4),
            created_at: r.get(5),
            updated_at: r.get(6),
            archived_at: r.get(7),
            last_message_id: r.get(8),
            last_message_seq: r.get(9),
            last_message_at: r.get(10),
            version: r.get(11),
        }
    }

    /// The contract's `ChatRoom`.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "organization_id": self.organization_id,
            "kind": self.kind,
            "title": self.title,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "archived_at": self.archived_at,
            "last_message_id": self.last_message_id,
            "last_message_seq": self.last_message_seq,
            "last_message_at": self.last_message_at,
            "version": self.version,
        })
    }
}

const MESSAGE_COLUMNS: &str = "m.id, m.room_id, m.room_seq, m.sender_id, m.client_message_id,
    m.body_text, m.body_json, m.reply_to_message_id, m.created_at, m.edited_at, m.deleted_at,
    m.metadata_json, m.request_fingerprint";

/// A row of `athena_chat.messages`.
#[derive(Debug, Clone)]
pub(crate) struct MessageRow {
    pub id: Uuid,
    pub room_id: Uuid,
    pub room_seq: i64,
    pub sender_id: String,
    pub client_message_id: Option<String>,
    pub body_text: Option<String>,
    pub body_json: Option<Value>,
    pub reply_to_message_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub metadata_json: Option<Value>,
    pub request_fingerprint: Option<String>,
}

impl MessageRow {
    fn from_row(r: &tokio_postgres::Row) -> MessageRow {
        MessageRow::from_row_at(r, 0)
    }

    /// The `MESSAGE_COLUMNS` of `r` starting at column `at`.
    fn from_row_at(r: &tokio_postgres::Row, at: usize) -> MessageRow {
        MessageRow {
            id: r.get(at),
            room_id: r.get(at + 1),
            room_seq: r.get(at + 2),
            sender_id: r.get(at + 3),
            client_message_id: r.get(at + 4),
            body_text: r.get(at + 5),
            body_json: r.get(at + 6),
            reply_to_message_id: r.get(at + 7),
            created_at: r.get(at + 8),
            edited_at: r.get(at + 9),
            deleted_at: r.get(at + 10),
            metadata_json: r.get(at + 11),
            request_fingerprint: r.get(at + 12),
        }
    }
}

/// Who reads messages: the end user (the file access rule needs them
/// whole), their id and the client.
pub(crate) struct Viewer<'a> {
    pub client: &'a str,
    pub user: &'a EndUser,
    pub id: &'a str,
}

/// One attachment of a message, with its file's details when the file
/// still exists (`athena.files`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Attached {
    pub message: Uuid,
    pub ordinal: i32,
    pub file: Uuid,
    pub name: Option<String>,
    pub original_name: Option<String>,
    pub mime_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub status: Option<String>,
    pub visibility: Option<String>,
}

impl Attached {
    /// The attachments of `message` from the page statement's `jsonb_agg`
    /// (`ATTACHMENTS_JSON`); null is none.
    pub fn from_json(message: Uuid, value: Option<Value>) -> Vec<Attached> {
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        match value {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| {
                    Some(Attached {
                        message,
                        ordinal: i32::try_from(v.get("ordinal")?.as_i64()?).ok()?,
                        file: Uuid::parse_str(v.get("file_id")?.as_str()?).ok()?,
                        name: text(v, "name"),
                        original_name: text(v, "original_name"),
                        mime_type: text(v, "mime_type"),
                        size_bytes: v.get("size_bytes").and_then(Value::as_i64),
                        status: text(v, "status"),
                        visibility: text(v, "visibility"),
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A message's reactions as one JSON array in the `ChatReactionCount`
/// shape (`reacted` for the user `$3`), for a statement that names the
/// message `p.id`: first reacted first.
pub(crate) const REACTIONS_JSON: &str = "(SELECT coalesce(jsonb_agg(jsonb_build_object(
        'emoji', x.emoji, 'count', x.n, 'reacted', x.mine) ORDER BY x.first, x.emoji), '[]'::jsonb)
       FROM (SELECT emoji, count(*) AS n, bool_or(user_id = $3::text) AS mine, min(created_at) AS first
               FROM athena_chat.reactions WHERE message_id = p.id GROUP BY emoji) x)";

/// A message's attachments with their files' details as one JSON array
/// (null without any), read by `Attached::from_json`.
pub(crate) const ATTACHMENTS_JSON: &str = "(SELECT jsonb_agg(jsonb_build_object(
        'ordinal', a.ordinal, 'file_id', a.file_id, 'name', f.name, 'original_name', f.original_name,
        'mime_type', f.mime_type, 'size_bytes', f.size_bytes, 'status', f.status,
        'visibility', f.visibility) ORDER BY a.ordinal)
       FROM athena_chat.attachments a LEFT JOIN athena.files f ON f.id = a.file_id
      WHERE a.message_id = p.id)";

/// The `ChatMessage` views of `rows` for `viewer` (their reactions, with
/// `reacted`, and their attachments), in the order given: two queries,
/// and the file access rule when there are attachments.
pub(crate) async fn message_views<C: GenericClient>(
    c: &C,
    viewer: &Viewer<'_>,
    rows: &[MessageRow],
) -> Result<Vec<Value>, DomainError> {
    let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
    let mut reactions: HashMap<Uuid, Vec<Value>> = HashMap::new();
    for r in c
        .query(
            "SELECT message_id, emoji, count(*), bool_or(user_id = $2)
               FROM athena_chat.reactions WHERE message_id = ANY($1)
              GROUP BY message_id, emoji ORDER BY message_id, min(created_at), emoji",
            &[&ids, &viewer.id],
        )
        .await
        .map_err(pg)?
    {
        let count: i64 = r.get(2);
        reactions.entry(r.get(0)).or_default().push(json!({
            "emoji": r.get::<_, String>(1), "count": count, "reacted": r.get::<_, bool>(3),
        }));
    }
    let attached: Vec<Attached> = c
        .query(
            "SELECT a.message_id, a.ordinal, a.file_id, f.name, f.original_name, f.mime_type,
                    f.size_bytes, f.status, f.visibility
               FROM athena_chat.attachments a LEFT JOIN athena.files f ON f.id = a.file_id
              WHERE a.message_id = ANY($1) ORDER BY a.message_id, a.ordinal",
            &[&ids],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| Attached {
            message: r.get(0),
            ordinal: r.get(1),
            file: r.get(2),
            name: r.get(3),
            original_name: r.get(4),
            mime_type: r.get(5),
            size_bytes: r.get(6),
            status: r.get(7),
            visibility: r.get(8),
        })
        .collect();
    let attachments = attachment_views(c, viewer, attached).await?;
    Ok(views(rows, reactions, attachments))
}

/// The `ChatMessage` views of `rows` from their reactions and attachment
/// views, in the order given.
pub(crate) fn views(
    rows: &[MessageRow],
    mut reactions: HashMap<Uuid, Vec<Value>>,
    mut attachments: HashMap<Uuid, Vec<Value>>,
) -> Vec<Value> {
    rows.iter()
        .map(|m| {
            json!({
                "id": m.id,
                "room_id": m.room_id,
                "room_seq": m.room_seq,
                "sender_id": m.sender_id,
                "client_message_id": m.client_message_id,
                "body_text": m.body_text,
                "body_json": m.body_json,
                "reply_to_message_id": m.reply_to_message_id,
                "created_at": m.created_at,
                "edited_at": m.edited_at,
                "deleted_at": m.deleted_at,
                "metadata_json": m.metadata_json,
                "attachments": attachments.remove(&m.id).unwrap_or_default(),
                "reactions": reactions.remove(&m.id).unwrap_or_default(),
            })
        })
        .collect()
}

/// The attachment views of messages, by message. An attachment shows its
/// file's name, type, size, status and visibility only when the viewer may
/// read the file (`Storage::readable_files`, the rule of
/// `GET /storage/files/{id}`); otherwise only its id, ordinal and URL paths
/// (which apply the rule themselves). The bucket and storage key are never
/// shown. No query without attachments.
pub(crate) async fn attachment_views<C: GenericClient>(
    c: &C,
    viewer: &Viewer<'_>,
    attached: Vec<Attached>,
) -> Result<HashMap<Uuid, Vec<Value>>, DomainError> {
    let mut out: HashMap<Uuid, Vec<Value>> = HashMap::new();
    if attached.is_empty() {
        return Ok(out);
    }
    let files: Vec<Uuid> = attached.iter().map(|a| a.file).collect();
    let readable = Storage::readable_files(c, viewer.client, viewer.user, &files).await?;
    for a in attached {
        let file = a.file;
        let mut view = json!({
            "file_id": file.to_string(),
            "ordinal": a.ordinal,
            "file_name": Value::Null,
            "original_name": Value::Null,
            "content_type": Value::Null,
            "mime_type": Value::Null,
            "extension": Value::Null,
            "size_bytes": Value::Null,
            "status": Value::Null,
            "visibility": Value::Null,
            "file_url": Value::Null,
            "bucket": Value::Null,
            "storage_key": Value::Null,
            "authorized_url_path": format!("/storage/files/{file}/url"),
            "proxy_url_path": format!("/storage/files/{file}/proxy"),
            "public_url_path": format!("/storage/files/{file}/public-url"),
        });
        if readable.contains(&file) {
            let extension = a
                .name
                .as_deref()
                .and_then(|n| n.rsplit_once('.'))
                .map(|(_, e)| e.to_ascii_lowercase())
                .filter(|e| !e.is_empty() && e.len() <= 16);
            let details = json!({
                "file_name": a.name,
                "original_name": a.original_name,
                "content_type": a.mime_type,
                "mime_type": a.mime_type,
                "extension": extension,
                "size_bytes": a.size_bytes,
                "status": a.status,
                "visibility": a.visibility,
            });
            if let (Some(view), Value::Object(details)) = (view.as_object_mut(), details) {
                view.extend(details);
            }
        }
        out.entry(a.message).or_default().push(view);
    }
    Ok(out)
}

/// The room `id` of `client` as `caller` sees it, with their role: absent,
/// another client's or another organization's → 404; not a member → 403.
/// With `lock`, the room row is locked until the transaction ends, and the
/// membership is read AFTER the lock is held, in a second statement: under
/// READ COMMITTED that statement takes a fresh snapshot, so a removal
/// committed while this request waited for the lock (removals lock the
/// room too) is seen. One statement would read the membership from the
/// snapshot taken before the wait.
pub(crate) async fn room_for<C: GenericClient>(
    c: &C,
    client: &str,
    caller: &Caller,
    id: Uuid,
    lock: bool,
) -> Result<(RoomRow, Role), DomainError> {
    let (room, role) = if lock {
        let row = c
            .query_opt(
                &format!(
                    "SELECT {ROOM_COLUMNS} FROM athena_chat.rooms r
                      WHERE r.id = $1 AND r.client_name = $2 FOR UPDATE OF r"
                ),
                &[&id, &client],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| DomainError::not_found("room", id.to_string()))?;
        let room = RoomRow::from_row(&row);
        let role: Option<String> = if room.organization_id == caller.org {
            c.query_opt(
                "SELECT role FROM athena_chat.members WHERE room_id = $1 AND user_id = $2",
                &[&id, &caller.user],
            )
            .await
            .map_err(pg)?
            .map(|r| r.get(0))
        } else {
            None
        };
        (room, role)
    } else {
        let row = c
            .query_opt(
                &format!(
                    "SELECT {ROOM_COLUMNS}, mb.role FROM athena_chat.rooms r
                       LEFT JOIN athena_chat.members mb ON mb.room_id = r.id AND mb.user_id = $3
                      WHERE r.id = $1 AND r.client_name = $2"
                ),
                &[&id, &client, &caller.user],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| DomainError::not_found("room", id.to_string()))?;
        (RoomRow::from_row(&row), row.get::<_, Option<String>>(12))
    };
    if room.organization_id != caller.org {
        return Err(DomainError::not_found("room", id.to_string()));
    }
    let role = role.as_deref().and_then(Role::parse).ok_or_else(|| {
        DomainError::Forbidden("the end user is not a member of this room".into())
    })?;
    Ok((room, role))
}

/// One event in the chat outbox, in the caller's transaction.
pub(crate) async fn event<C: GenericClient>(
    c: &C,
    room: Uuid,
    kind: &str,
    payload: Value,
) -> Result<(), DomainError> {
    c.execute(
        "INSERT INTO athena_chat.outbox (room_id, kind, payload) VALUES ($1, $2, $3)",
        &[&room, &kind, &payload],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// A database error; the chat tables missing (a schema dropped by hand)
/// is the store being unavailable (503).
pub(crate) fn pg(e: tokio_postgres::Error) -> DomainError {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(c) if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME => {
            tracing::warn!(error = %e, "chat tables missing");
            DomainError::ServiceUnavailable(
                "the chat store of this client is unavailable (its tables are missing)".into(),
            )
        }
        _ => e.into(),
    }
}

/// A user id from a request: 1–256 printable characters.
pub(crate) fn user_id(field: &str, value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
        return Err(DomainError::invalid_field(
            field,
            "1-256 printable characters",
        ));
    }
    Ok(value.to_string())
}

/// Optional short text: at most `max` characters, no control characters.
pub(crate) fn short_text(field: &str, value: Option<&str>, max: usize) -> Result<(), DomainError> {
    match value {
        Some(v) if v.chars().count() > max || v.chars().any(char::is_control) => {
            Err(DomainError::invalid_field(
                field,
                format!("at most {max} characters, no control characters"),
            ))
        }
        _ => Ok(()),
    }
}

/// A page size: `default` when absent, else clamped to `1..=max` (the
/// SDK's paging limits, `src/contracts/v1/pagination.ts`).
pub(crate) fn page_size(asked: Option<i64>, default: i64, max: i64) -> i64 {
    asked.unwrap_or(default).clamp(1, max)
}

impl Chat {
    /// The tenant of `client`, its chat tables migrated (else 503).
    pub(crate) async fn tenant(&self, client: &str) -> Result<Arc<Tenant>, DomainError> {
        let tenant = self.tenants.resolve(client.trim()).await?;
        crate::db::migrate::tenant(&tenant).await.map_err(|e| {
            tracing::warn!(client = %tenant.name, error = ?e, "tenant chat tables unavailable");
            DomainError::ServiceUnavailable(format!(
                "the chat store of client `{}` is unavailable (its database could not be prepared)",
                tenant.name
            ))
        })?;
        Ok(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::end_user::Source;

    #[test]
    fn a_caller_needs_a_user_and_an_organization() {
        let u = |id: &str, org: Option<&str>| EndUser {
            user_id: id.into(),
            organization_id: org.map(str::to_string),
            source: Source::Jwt,
        };
        assert!(Caller::of(&u("a", Some("o"))).is_ok());
        assert!(matches!(
            Caller::of(&u("a", None)),
            Err(DomainError::Forbidden(_))
        ));
        assert!(matches!(
            Caller::of(&u("a", Some(""))),
            Err(DomainError::Forbidden(_))
        ));
        assert!(matches!(
            Caller::of(&u("", Some("o"))),
            Err(DomainError::Unauthorized(_))
        ));
    }

    #[test]
    fn page_sizes_are_clamped() {
        assert_eq!(page_size(None, 50, 200), 50);
        assert_eq!(page_size(Some(0), 50, 200), 1);
        assert_eq!(page_size(Some(-5), 25, 100), 1);
        assert_eq!(page_size(Some(1000), 50, 200), 200);
    }

    #[test]
    fn user_ids_and_texts_are_checked() {
        assert!(user_id("u", " bob ").is_ok_and(|u| u == "bob"));
        for bad in ["", "a\u{0}b", &"x".repeat(257)] {
            assert!(user_id("u", bad).is_err(), "{bad:?}");
        }
        assert!(short_text("title", Some("ok"), 5).is_ok());
        assert!(short_text("title", Some("toolong"), 5).is_err());
        assert!(short_text("title", Some("a\nb"), 5).is_err());
        assert!(short_text("title", None, 5).is_ok());
    }
}
