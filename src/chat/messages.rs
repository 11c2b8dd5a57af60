//! Messages: send (ordered, idempotent), list, edit, soft delete,
//! reactions and search.

use super::{
    event, message_views, pg, room_for, Caller, Chat, MessageRow, Viewer, ATTACHMENTS_JSON,
    MAX_BODY_BYTES, MAX_EMOJI_BYTES, MESSAGE_COLUMNS, REACTIONS_JSON,
};
use crate::api::models;
use crate::auth::end_user::EndUser;
use crate::domain::DomainError;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use tokio_postgres::GenericClient;
use uuid::Uuid;

const MAX_CLIENT_MESSAGE_ID_CHARS: usize = 128;
const MAX_METADATA_BYTES: usize = 16 * 1024;
const MAX_ATTACHMENTS: usize = 20;
const MAX_QUERY_CHARS: usize = 512;
/// The most distinct emoji one user may put on one message.
const MAX_EMOJI_PER_USER: i64 = 20;
/// The most distinct emoji (reaction groups) one message may carry.
const MAX_REACTION_GROUPS: i64 = 50;

/// A JSON object body: at most `max` bytes as JSON text, no NUL (which
/// `jsonb` cannot hold).
fn json_body(
    field: &str,
    value: &Option<Map<String, Value>>,
    max: usize,
) -> Result<Option<Value>, DomainError> {
    let Some(map) = value else { return Ok(None) };
    let text = serde_json::to_string(map)
        .map_err(|e| DomainError::Internal(format!("re-reading {field}: {e}")))?;
    if text.len() > max {
        return Err(DomainError::invalid_field(
            field,
            format!("at most {max} bytes as JSON"),
        ));
    }
    if text.contains("\\u0000") {
        return Err(DomainError::invalid_field(field, "no NUL characters"));
    }
    Ok(Some(Value::Object(map.clone())))
}

fn body_text(value: &Option<String>) -> Result<(), DomainError> {
    match value {
        Some(t) if t.len() > MAX_BODY_BYTES => Err(DomainError::invalid_field(
            "body_text",
            format!("at most {MAX_BODY_BYTES} bytes"),
        )),
        Some(t) if t.contains('\0') => {
            Err(DomainError::invalid_field("body_text", "no NUL characters"))
        }
        _ => Ok(()),
    }
}

/// A send request, checked.
struct Send {
    client_message_id: Option<String>,
    body_text: Option<String>,
    body_json: Option<Value>,
    metadata_json: Option<Value>,
    reply_to: Option<Uuid>,
    /// (ordinal, file id text) in ordinal order.
    attachments: Vec<(i32, String)>,
    /// The request's fingerprint: a retry must repeat it.
    fingerprint: String,
}

fn check_send(body: &models::ChatSendMessageRequest) -> Result<Send, DomainError> {
    body_text(&body.body_text)?;
    let body_json = json_body("body_json", &body.body_json, MAX_BODY_BYTES)?;
    let metadata_json = json_body("metadata_json", &body.metadata_json, MAX_METADATA_BYTES)?;
    let client_message_id = body
        .client_message_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            super::short_text("client_message_id", Some(c), MAX_CLIENT_MESSAGE_ID_CHARS)
                .map(|_| c.to_string())
        })
        .transpose()?;
    if body.attachments.len() > MAX_ATTACHMENTS {
        return Err(DomainError::invalid_field(
            "attachments",
            format!("at most {MAX_ATTACHMENTS}"),
        ));
    }
    let mut attachments: Vec<(i32, String)> = body
        .attachments
        .iter()
        .map(|a| (a.ordinal, a.file_id.trim().to_string()))
        .collect();
    attachments.sort();
    if attachments.iter().any(|(o, _)| *o < 0) || attachments.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(DomainError::invalid_field(
            "attachments",
            "ordinals are distinct and not negative",
        ));
    }
    let mut file_ids: Vec<String> = attachments
        .iter()
        .map(|(_, f)| f.to_ascii_lowercase())
        .collect();
    file_ids.sort();
    if file_ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(DomainError::invalid_field(
            "attachments",
            "each file is attached once",
        ));
    }
    let empty_text = body
        .body_text
        .as_deref()
        .is_none_or(|t| t.trim().is_empty());
    if empty_text && body_json.is_none() && attachments.is_empty() {
        return Err(DomainError::Invalid(
            "a message needs `body_text`, `body_json` or attachments".into(),
        ));
    }
    let canonical = json!({
        "body_text": body.body_text, "body_json": body_json, "metadata_json": metadata_json,
        "reply_to_message_id": body.reply_to_message_id, "attachments": attachments,
    });
    let fingerprint = hex::encode(Sha256::digest(canonical.to_string().as_bytes()));
    Ok(Send {
        client_message_id,
        body_text: body.body_text.clone(),
        body_json,
        metadata_json,
        reply_to: body.reply_to_message_id,
        attachments,
        fingerprint,
    })
}

fn check_emoji(emoji: &str) -> Result<(), DomainError> {
    if emoji.trim().is_empty()
        || emoji.len() > MAX_EMOJI_BYTES
        || emoji.chars().any(char::is_control)
    {
        return Err(DomainError::invalid_field(
            "emoji",
            format!("1-{MAX_EMOJI_BYTES} bytes, no control characters"),
        ));
    }
    Ok(())
}

/// The message `id` of room `room`, locked with `lock`.
async fn message_in<C: GenericClient>(
    c: &C,
    room: Uuid,
    id: Uuid,
    lock: bool,
) -> Result<MessageRow, DomainError> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM athena_chat.messages m WHERE m.id = $1 AND m.room_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    c.query_opt(&sql, &[&id, &room])
        .await
        .map_err(pg)?
        .map(|r| MessageRow::from_row(&r))
        .ok_or_else(|| DomainError::not_found("message", id.to_string()))
}

/// The room of message `id` (404 when there is none).
async fn room_of<C: GenericClient>(c: &C, id: Uuid) -> Result<Uuid, DomainError> {
    c.query_opt(
        "SELECT room_id FROM athena_chat.messages WHERE id = $1",
        &[&id],
    )
    .await
    .map_err(pg)?
    .map(|r| r.get(0))
    .ok_or_else(|| DomainError::not_found("message", id.to_string()))
}

/// `ChatReactionSummary` of message `id` for `user`.
async fn reaction_summary<C: GenericClient>(
    c: &C,
    id: Uuid,
    user: &str,
) -> Result<Value, DomainError> {
    let rows = c
        .query(
            "SELECT emoji, count(*), bool_or(user_id = $2) FROM athena_chat.reactions
              WHERE message_id = $1 GROUP BY emoji ORDER BY min(created_at), emoji",
            &[&id, &user],
        )
        .await
        .map_err(pg)?;
    let reactions: Vec<Value> = rows
        .iter()
        .map(|r| json!({"emoji": r.get::<_, String>(0), "count": r.get::<_, i64>(1), "reacted": r.get::<_, bool>(2)}))
        .collect();
    Ok(json!({ "message_id": id, "reactions": reactions }))
}

/// `POST /chat/rooms/{room_id}/messages` in ONE statement (its own
/// transaction, one round trip, prepared once per connection):
/// - `room` locks the room row (`FOR UPDATE`); under READ COMMITTED a sender
///   that waited for the lock reads the row as the previous sender left it,
///   so `last_message_seq + 1` is gapless and unique;
/// - `mb` reads the caller's membership only once the room lock is held
///   (its gate is the room) and locks it `FOR KEY SHARE`: a membership
///   removed (removals lock the room too) while this statement waited is
///   skipped by the lock, not read from the statement's older snapshot;
/// - `known` answers a retry of a `client_message_id`; `ins` inserts the
///   message at `last_message_seq + 1` (not when known, archived, or the
///   reply is not in the room), `att` its attachments, `upd` the room's
///   `last_message_*`, `ev` the outbox event.
///
/// The answer: same organization, role, archived, then `new`/`known` and
/// the message's `MESSAGE_COLUMNS` (none when nothing was inserted or known).
/// Two retries of one `client_message_id` racing: the later statement's
/// snapshot may predate the first one's commit, so its insert hits the
/// unique index `chat_messages_client_id`; it is run again (`send`).
fn send_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH room AS (
                SELECT r.id, r.organization_id, r.archived_at, r.last_message_seq
                  FROM athena_chat.rooms r
                 WHERE r.id = $1::uuid AND r.client_name = $2::text
                   FOR UPDATE OF r
             ), mb AS (
                SELECT m.role FROM athena_chat.members m
                 WHERE m.room_id = $1::uuid AND m.user_id = $3::text
                   AND EXISTS (SELECT 1 FROM room WHERE room.organization_id = $4::text)
                   FOR KEY SHARE OF m
             ), known AS (
                SELECT {MESSAGE_COLUMNS} FROM athena_chat.messages m
                 WHERE m.room_id = $1::uuid AND m.sender_id = $3::text
                   AND m.client_message_id = $5::text AND EXISTS (SELECT 1 FROM mb)
             ), ins AS (
                INSERT INTO athena_chat.messages AS m
                       (id, room_id, room_seq, sender_id, client_message_id, request_fingerprint,
                        body_text, body_json, reply_to_message_id, metadata_json)
                SELECT $6::uuid, room.id, room.last_message_seq + 1, $3::text, $5::text, $7::text,
                       $8::text, $9::jsonb, $10::uuid, $11::jsonb
                  FROM room
                 WHERE room.archived_at IS NULL
                   AND EXISTS (SELECT 1 FROM mb) AND NOT EXISTS (SELECT 1 FROM known)
                   AND ($10::uuid IS NULL OR EXISTS (
                        SELECT 1 FROM athena_chat.messages x WHERE x.id = $10::uuid AND x.room_id = $1::uuid))
                RETURNING {MESSAGE_COLUMNS}
             ), att AS (
                INSERT INTO athena_chat.attachments (message_id, ordinal, file_id)
                SELECT ins.id, a.o, a.f FROM ins, unnest($12::int4[], $13::uuid[]) AS a(o, f)
             ), upd AS (
                UPDATE athena_chat.rooms r
                   SET last_message_id = ins.id, last_message_seq = ins.room_seq,
                       last_message_at = ins.created_at, updated_at = ins.created_at
                  FROM ins WHERE r.id = ins.room_id
             ), ev AS (
                INSERT INTO athena_chat.outbox (room_id, kind, payload)
                SELECT ins.room_id, 'message.created', jsonb_build_object('room_id', ins.room_id,
                       'message_id', ins.id, 'room_seq', ins.room_seq, 'sender_id', ins.sender_id)
                  FROM ins
             )
             SELECT (SELECT room.organization_id = $4::text FROM room), (SELECT mb.role FROM mb),
                    (SELECT room.archived_at IS NOT NULL FROM room), s.*
               FROM (SELECT 1) AS one
               LEFT JOIN (SELECT 'new'::text AS source, ins.* FROM ins
                          UNION ALL SELECT 'known'::text, known.* FROM known) s ON true"
        )
    })
}

/// The largest page of `GET /chat/rooms/{room_id}/messages`.
const MAX_PAGE: i64 = 200;

/// The page statement of `GET /chat/rooms/{room_id}/messages`, ONE
/// statement (prepared once per connection): the caller's standing in the
/// room (same organization, role) and, only for a member, the messages with
/// `$5 < room_seq < $6` — the newest `$7` (`DESC`) or the oldest (`ASC`) —
/// each with its reactions and attachments as JSON. The range is an index
/// condition on the unique `(room_id, room_seq)` index: a page costs the
/// same in a room of any size. Rows come back ascending; without messages
/// one row of NULL message columns carries the standing.
///
/// The scan is capped by the literal `MAX_PAGE` and `$7` trims outside it:
/// with `LIMIT $7` on the scan itself Postgres costs the generic plan at 10%
/// of the estimated range (500 rows of subplans in a 1,000,000-message room)
/// and so re-plans every execution (0.35 ms each) once the room is big,
/// while a small room keeps the generic plan — the page was 25–32% slower
/// in a 1,000,000-message room for that alone. Capped, the generic plan is
/// costed at 20 rows and kept in a room of any size.
fn page_sql(descending: bool) -> &'static str {
    static DESC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static ASC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let (cell, order) = if descending {
        (&DESC, "DESC")
    } else {
        (&ASC, "ASC")
    };
    cell.get_or_init(|| {
        format!(
            "WITH room AS (
                SELECT r.organization_id = $4::text AS same_org, mb.role
                  FROM athena_chat.rooms r
                  LEFT JOIN athena_chat.members mb ON mb.room_id = r.id AND mb.user_id = $3::text
                 WHERE r.id = $1::uuid AND r.client_name = $2::text
             ), page AS (
                SELECT {MESSAGE_COLUMNS} FROM athena_chat.messages m
                 WHERE m.room_id = $1::uuid AND m.room_seq > $5::int8 AND m.room_seq < $6::int8
                   AND EXISTS (SELECT 1 FROM room WHERE room.same_org AND room.role IS NOT NULL)
                 ORDER BY m.room_seq {order} LIMIT {MAX_PAGE}
             )
             SELECT room.same_org, room.role, p.*, {REACTIONS_JSON}, {ATTACHMENTS_JSON}
               FROM (SELECT 1) AS one
               LEFT JOIN room ON true
               LEFT JOIN (SELECT * FROM page ORDER BY page.room_seq {order} LIMIT $7::int8) p ON true
              ORDER BY p.room_seq"
        )
    })
}

/// The caller's standing in a room as the hot statements read it: no room
/// (or another client's) or another organization's → 404; no role → 403.
fn standing(room_id: Uuid, same_org: Option<bool>, role: Option<&str>) -> Result<(), DomainError> {
    if same_org != Some(true) {
        return Err(DomainError::not_found("room", room_id.to_string()));
    }
    if role.and_then(super::Role::parse).is_none() {
        return Err(DomainError::Forbidden(
            "the end user is not a member of this room".into(),
        ));
    }
    Ok(())
}

/// A send that lost the race of two retries of one `client_message_id`.
fn client_id_race(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        *d.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            && d.constraint() == Some("chat_messages_client_id")
    })
}

impl Chat {
    /// `POST /chat/rooms/{room_id}/messages`. Attachments are checked
    /// first (each a managed file the sender may read, else 404, through
    /// `Storage::file_get`); then ONE statement (`send_sql`) locks the room
    /// row, answers a retry of a known `client_message_id`, and inserts the
    /// message at `last_message_seq + 1` with its attachments, the room's
    /// `last_message_*` and the outbox event. `true` with a new message.
    pub async fn send(
        &self,
        client: &str,
        user: &EndUser,
        room_id: Uuid,
        body: &models::ChatSendMessageRequest,
    ) -> Result<(Value, bool), DomainError> {
        let caller = Caller::of(user)?;
        let send = check_send(body)?;
        let tenant = self.tenant(client).await?;
        let mut files = Vec::with_capacity(send.attachments.len());
        if !send.attachments.is_empty() {
            // The room first: a non-member learns nothing about files.
            let conn = tenant.pool.get().await?;
            room_for(&**conn, &tenant.name, &caller, room_id, false).await?;
            drop(conn);
            for (_, file) in &send.attachments {
                files.push(self.storage.file_get(&tenant.name, user, file).await?.id);
            }
        }
        let ordinals: Vec<i32> = send.attachments.iter().map(|a| a.0).collect();
        let mut conn = tenant.pool.get().await?;
        let statement = conn.prepare_cached(send_sql(), &[]).await.map_err(pg)?;
        let id = Uuid::new_v4();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 13] = [
            &room_id,
            &tenant.name,
            &caller.user,
            &caller.org,
            &send.client_message_id,
            &id,
            &send.fingerprint,
            &send.body_text,
            &send.body_json,
            &send.reply_to,
            &send.metadata_json,
            &ordinals,
            &files,
        ];
        let row = match conn.query_one(&statement, &params).await {
            // The other retry committed: run again, it is `known` now.
            Err(e) if client_id_race(&e) => conn.query_one(&statement, &params).await,
            other => other,
        }
        .map_err(pg)?;
        standing(room_id, row.get(0), row.get(1))?;
        let archived: Option<bool> = row.get(2);
        let source: Option<String> = row.get(3);
        let message = match source.as_deref() {
            Some(_) => MessageRow::from_row_at(&row, 4),
            None if archived == Some(true) => {
                return Err(DomainError::Conflict("the room is archived".into()))
            }
            None => {
                return Err(DomainError::invalid_field(
                    "reply_to_message_id",
                    "not a message of this room",
                ))
            }
        };
        let created = source.as_deref() == Some("new");
        if !created && message.request_fingerprint.as_deref() != Some(send.fingerprint.as_str()) {
            return Err(DomainError::Conflict(
                "client_message_id was already used for another message".into(),
            ));
        }
        let viewer = Viewer {
            client: &tenant.name,
            user,
            id: &caller.user,
        };
        // A new message has no reactions; attachments and a known message
        // (reacted to since) are read back.
        let view = if created && files.is_empty() {
            super::views(&[message], Default::default(), Default::default())
        } else {
            message_views(&**conn, &viewer, &[message]).await?
        };
        Ok((view.into_iter().next().unwrap_or_default(), created))
    }

    /// `GET /chat/rooms/{room_id}/messages`: by `room_seq`, ascending; the
    /// newest page (or the one before `before_seq`), or the page after
    /// `after_seq`. `next_before_seq` when older messages remain. One
    /// statement (`page_sql`); the file access rule only for attachments.
    pub async fn messages(
        &self,
        client: &str,
        user: &EndUser,
        room_id: Uuid,
        limit: Option<i64>,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        let tenant = self.tenant(client).await?;
        let limit = super::page_size(limit, 50, MAX_PAGE);
        let mut conn = tenant.pool.get().await?;
        let statement = conn
            .prepare_cached(page_sql(after_seq.is_none()), &[])
            .await
            .map_err(pg)?;
        let (above, below) = (
            after_seq.unwrap_or(i64::MIN),
            before_seq.unwrap_or(i64::MAX),
        );
        let found = conn
            .query(
                &statement,
                &[
                    &room_id,
                    &tenant.name,
                    &caller.user,
                    &caller.org,
                    &above,
                    &below,
                    &limit,
                ],
            )
            .await
            .map_err(pg)?;
        let first = found.first();
        standing(
            room_id,
            first.and_then(|r| r.get(0)),
            first.and_then(|r| r.get::<_, Option<&str>>(1)),
        )?;
        let mut rows = Vec::with_capacity(found.len());
        let mut reactions = HashMap::new();
        let mut attached = Vec::new();
        for r in found
            .iter()
            .filter(|r| r.get::<_, Option<Uuid>>(2).is_some())
        {
            let m = MessageRow::from_row_at(r, 2);
            if let Some(Value::Array(list)) = r.get::<_, Option<Value>>(15) {
                reactions.insert(m.id, list);
            }
            attached.extend(super::Attached::from_json(m.id, r.get(16)));
            rows.push(m);
        }
        let next_before_seq = match rows.first() {
            Some(first)
                if first.room_seq > 1 && (after_seq.is_some() || rows.len() as i64 == limit) =>
            {
                Some(first.room_seq)
            }
            _ => None,
        };
        let viewer = Viewer {
            client: &tenant.name,
            user,
            id: &caller.user,
        };
        let attachments = super::attachment_views(&**conn, &viewer, attached).await?;
        let items = super::views(&rows, reactions, attachments);
        Ok(json!({ "items": items, "next_before_seq": next_before_seq }))
    }

    /// `PATCH /chat/rooms/{room_id}/messages/{message_id}`: the sender's
    /// live message; the fields sent replace the stored ones.
    pub async fn edit(
        &self,
        client: &str,
        user: &EndUser,
        room_id: Uuid,
        id: Uuid,
        body: &models::ChatEditMessageRequest,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        body_text(&body.body_text)?;
        let body_json = json_body("body_json", &body.body_json, MAX_BODY_BYTES)?;
        let metadata_json = json_body("metadata_json", &body.metadata_json, MAX_METADATA_BYTES)?;
        if body.body_text.is_none() && body_json.is_none() && metadata_json.is_none() {
            return Err(DomainError::Invalid(
                "send `body_text`, `body_json` or `metadata_json`".into(),
            ));
        }
        let tenant = self.tenant(client).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        room_for(&tx, &tenant.name, &caller, room_id, false).await?;
        let message = message_in(&tx, room_id, id, true).await?;
        if message.sender_id != caller.user {
            return Err(DomainError::Forbidden(
                "only the sender may edit a message".into(),
            ));
        }
        if message.deleted_at.is_some() {
            return Err(DomainError::Conflict("the message is deleted".into()));
        }
        let row = tx
            .query_one(
                &format!(
                    "UPDATE athena_chat.messages m
                        SET body_text = CASE WHEN $2 THEN $3 ELSE m.body_text END,
                            body_json = CASE WHEN $4 THEN $5 ELSE m.body_json END,
                            metadata_json = CASE WHEN $6 THEN $7 ELSE m.metadata_json END,
                            edited_at = now()
                      WHERE m.id = $1
                      RETURNING {MESSAGE_COLUMNS}"
                ),
                &[
                    &id,
                    &body.body_text.is_some(),
                    &body.body_text,
                    &body_json.is_some(),
                    &body_json,
                    &metadata_json.is_some(),
                    &metadata_json,
                ],
            )
            .await
            .map_err(pg)?;
        let message = MessageRow::from_row(&row);
        let has_text = message
            .body_text
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty());
        if !has_text && message.body_json.is_none() {
            let attached = tx
                .query_opt(
                    "SELECT 1 FROM athena_chat.attachments WHERE message_id = $1 LIMIT 1",
                    &[&id],
                )
                .await
                .map_err(pg)?;
            if attached.is_none() {
                // Dropping the transaction rolls the update back.
                return Err(DomainError::Invalid(
                    "an edit cannot leave a message without `body_text`, `body_json` or attachments"
                        .into(),
                ));
            }
        }
        event(
            &tx,
            room_id,
            "message.updated",
            json!({"room_id": room_id, "message_id": id, "room_seq": message.room_seq}),
        )
        .await?;
        let view = message_views(
            &tx,
            &Viewer {
                client: &tenant.name,
                user,
                id: &caller.user,
            },
            &[message],
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        Ok(view.into_iter().next().unwrap_or_default())
    }

    /// `DELETE /chat/rooms/{room_id}/messages/{message_id}` (the sender, or
    /// the room's owner or an admin): bodies, attachments and reactions
    /// cleared, `deleted_at` set, `room_seq` kept. Deleting again is a no-op.
    pub async fn delete(
        &self,
        client: &str,
        user: &EndUser,
        room_id: Uuid,
        id: Uuid,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        let tenant = self.tenant(client).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let (_, role) = room_for(&tx, &tenant.name, &caller, room_id, false).await?;
        let message = message_in(&tx, room_id, id, true).await?;
        if message.sender_id != caller.user && !role.manages() {
            return Err(DomainError::Forbidden(
                "only the sender, the room's owner or an admin may delete a message".into(),
            ));
        }
        if message.deleted_at.is_none() {
            tx.execute(
                "UPDATE athena_chat.messages
                    SET body_text = NULL, body_json = NULL, metadata_json = NULL, deleted_at = now()
                  WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(pg)?;
            tx.execute(
                "DELETE FROM athena_chat.attachments WHERE message_id = $1",
                &[&id],
            )
            .await
            .map_err(pg)?;
            tx.execute(
                "DELETE FROM athena_chat.reactions WHERE message_id = $1",
                &[&id],
            )
            .await
            .map_err(pg)?;
            event(
                &tx,
                room_id,
                "message.deleted",
                json!({"room_id": room_id, "message_id": id, "room_seq": message.room_seq}),
            )
            .await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(json!({ "ok": true, "message_id": id }))
    }

    /// `POST /chat/messages/{message_id}/reactions`: one per (message,
    /// user, emoji); adding it again changes nothing.
    pub async fn react(
        &self,
        client: &str,
        user: &EndUser,
        id: Uuid,
        emoji: &str,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        check_emoji(emoji)?;
        let tenant = self.tenant(client).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let room_id = room_of(&tx, id).await?;
        room_for(&tx, &tenant.name, &caller, room_id, false)
            .await
            .map_err(|e| as_message(e, id))?;
        // The message row lock serializes the reactions of one message, so
        // the caps below hold under concurrent reactions.
        let message = message_in(&tx, room_id, id, true).await?;
        if message.deleted_at.is_some() {
            return Err(DomainError::not_found("message", id.to_string()));
        }
        let counts = tx
            .query_one(
                "SELECT count(*) FILTER (WHERE user_id = $2), count(DISTINCT emoji),
                        coalesce(bool_or(emoji = $3), false),
                        coalesce(bool_or(user_id = $2 AND emoji = $3), false)
                   FROM athena_chat.reactions WHERE message_id = $1",
                &[&id, &caller.user, &emoji],
            )
            .await
            .map_err(pg)?;
        let (mine, groups): (i64, i64) = (counts.get(0), counts.get(1));
        let (group_exists, already): (bool, bool) = (counts.get(2), counts.get(3));
        if !already && mine >= MAX_EMOJI_PER_USER {
            return Err(DomainError::Conflict(format!(
                "at most {MAX_EMOJI_PER_USER} distinct reactions per user on a message"
            )));
        }
        if !group_exists && groups >= MAX_REACTION_GROUPS {
            return Err(DomainError::Conflict(format!(
                "at most {MAX_REACTION_GROUPS} distinct reactions on a message"
            )));
        }
        let added = tx
            .execute(
                "INSERT INTO athena_chat.reactions (message_id, user_id, emoji) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&id, &caller.user, &emoji],
            )
            .await
            .map_err(pg)?;
        if added > 0 {
            event(
                &tx,
                room_id,
                "reaction.added",
                json!({"room_id": room_id, "message_id": id, "user_id": caller.user, "emoji": emoji}),
            )
            .await?;
        }
        let summary = reaction_summary(&tx, id, &caller.user).await?;
        tx.commit().await.map_err(pg)?;
        Ok(summary)
    }

    /// `DELETE /chat/messages/{message_id}/reactions/{emoji}`: the
    /// caller's reaction (404 when they have none).
    pub async fn unreact(
        &self,
        client: &str,
        user: &EndUser,
        id: Uuid,
        emoji: &str,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        check_emoji(emoji)?;
        let tenant = self.tenant(client).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let room_id = room_of(&tx, id).await?;
        room_for(&tx, &tenant.name, &caller, room_id, false)
            .await
            .map_err(|e| as_message(e, id))?;
        let removed = tx
            .execute(
                "DELETE FROM athena_chat.reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
                &[&id, &caller.user, &emoji],
            )
            .await
            .map_err(pg)?;
        if removed == 0 {
            return Err(DomainError::not_found("reaction", emoji));
        }
        event(
            &tx,
            room_id,
            "reaction.removed",
            json!({"room_id": room_id, "message_id": id, "user_id": caller.user, "emoji": emoji}),
        )
        .await?;
        let summary = reaction_summary(&tx, id, &caller.user).await?;
        tx.commit().await.map_err(pg)?;
        Ok(summary)
    }

    /// `POST /chat/messages/search`: Postgres full-text search
    /// (`websearch_to_tsquery('simple', …)` on the GIN-indexed `body_text`
    /// vector) over the live messages of the caller's rooms in their
    /// organization, or of one of them; best match first.
    pub async fn search(
        &self,
        client: &str,
        user: &EndUser,
        body: &models::ChatSearchMessagesRequest,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        let query = body.query.trim();
        if query.is_empty() || query.chars().count() > MAX_QUERY_CHARS || query.contains('\0') {
            return Err(DomainError::invalid_field(
                "query",
                format!("1-{MAX_QUERY_CHARS} characters"),
            ));
        }
        let limit = super::page_size(body.limit, 25, 100);
        let tenant = self.tenant(client).await?;
        let conn = tenant.pool.get().await?;
        if let Some(room) = body.room_id {
            room_for(&**conn, &tenant.name, &caller, room, false).await?;
        }
        let rows = conn
            .query(
                &format!(
                    "SELECT {MESSAGE_COLUMNS}
                       FROM athena_chat.messages m
                       JOIN athena_chat.members mb ON mb.room_id = m.room_id AND mb.user_id = $1
                       JOIN athena_chat.rooms r ON r.id = m.room_id,
                            websearch_to_tsquery('simple', $5) q
                      WHERE r.client_name = $2 AND r.organization_id = $3
                        AND ($4::uuid IS NULL OR m.room_id = $4)
                        AND m.deleted_at IS NULL AND m.search @@ q
                      ORDER BY ts_rank(m.search, q) DESC, m.created_at DESC, m.id
                      LIMIT $6"
                ),
                &[
                    &caller.user,
                    &tenant.name,
                    &caller.org,
                    &body.room_id,
                    &query,
                    &limit,
                ],
            )
            .await
            .map_err(pg)?;
        let rows: Vec<MessageRow> = rows.iter().map(MessageRow::from_row).collect();
        let views = message_views(
            &**conn,
            &Viewer {
                client: &tenant.name,
                user,
                id: &caller.user,
            },
            &rows,
        )
        .await?;
        let items: Vec<Value> = rows
            .iter()
            .zip(views)
            .map(|(m, v)| json!({"room_id": m.room_id, "message": v}))
            .collect();
        Ok(json!({ "items": items }))
    }
}

/// A message's room the caller cannot see is the message being absent
/// (404 names the message); a room they are not a member of stays a 403.
fn as_message(e: DomainError, id: Uuid) -> DomainError {
    match e {
        DomainError::NotFound { .. } => DomainError::not_found("message", id.to_string()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(text: Option<&str>, cid: Option<&str>) -> models::ChatSendMessageRequest {
        serde_json::from_value(json!({"body_text": text, "client_message_id": cid})).unwrap()
    }

    #[test]
    fn sends_are_checked_and_fingerprinted() {
        let a = check_send(&send(Some("hi"), Some("c1"))).unwrap();
        let b = check_send(&send(Some("hi"), Some("c1"))).unwrap();
        let c = check_send(&send(Some("hello"), Some("c1"))).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert!(check_send(&send(None, None)).is_err());
        assert!(check_send(&send(Some("  "), None)).is_err());
        assert!(check_send(&send(Some("a\u{0}b"), None)).is_err());
        let big = "x".repeat(MAX_BODY_BYTES + 1);
        assert!(check_send(&send(Some(&big), None)).is_err());
        assert!(check_send(&send(Some(&"x".repeat(MAX_BODY_BYTES)), None)).is_ok());
        let twice: models::ChatSendMessageRequest = serde_json::from_value(json!({
            "body_text": "x", "attachments": [{"file_id": "a", "ordinal": 1}, {"file_id": "b", "ordinal": 1}]
        }))
        .unwrap();
        assert!(check_send(&twice).is_err());
        let same_file: models::ChatSendMessageRequest = serde_json::from_value(json!({
            "body_text": "x", "attachments": [{"file_id": "a", "ordinal": 1}, {"file_id": "A", "ordinal": 2}]
        }))
        .unwrap();
        assert!(check_send(&same_file).is_err());
        let nul: models::ChatSendMessageRequest =
            serde_json::from_value(json!({"body_json": {"a": "\u{0}"}})).unwrap();
        assert!(check_send(&nul).is_err());
    }

    #[test]
    fn emoji_are_short() {
        assert!(check_emoji("👍").is_ok());
        assert!(check_emoji(":thumbsup:").is_ok());
        assert!(check_emoji("").is_err());
        assert!(check_emoji(&"👍".repeat(9)).is_err());
        assert!(check_emoji("a\nb").is_err());
    }
}
