//! Messages: send (ordered, idempotent), list, edit, soft delete,
//! reactions and search.

use super::{
    event, message_views, pg, room_for, Caller, Chat, MessageRow, Viewer, MAX_BODY_BYTES,
    MAX_EMOJI_BYTES, MESSAGE_COLUMNS,
};
use crate::api::models;
use crate::auth::end_user::EndUser;
use crate::domain::DomainError;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
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

impl Chat {
    /// `POST /chat/rooms/{room_id}/messages`. Attachments are checked
    /// first (each a managed file the sender may read, else 404, through
    /// `Storage::file_get`); then one transaction locks the room row,
    /// answers a retry of a known `client_message_id`, and inserts the
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
        let tx = conn.transaction().await.map_err(pg)?;
        let (room, _) = room_for(&tx, &tenant.name, &caller, room_id, true).await?;
        if let Some(cid) = &send.client_message_id {
            let known = tx
                .query_opt(
                    &format!(
                        "SELECT {MESSAGE_COLUMNS} FROM athena_chat.messages m
                          WHERE m.room_id = $1 AND m.sender_id = $2 AND m.client_message_id = $3"
                    ),
                    &[&room_id, &caller.user, cid],
                )
                .await
                .map_err(pg)?;
            if let Some(row) = known {
                let known = MessageRow::from_row(&row);
                if known.request_fingerprint.as_deref() != Some(send.fingerprint.as_str()) {
                    return Err(DomainError::Conflict(
                        "client_message_id was already used for another message".into(),
                    ));
                }
                let view = message_views(
                    &tx,
                    &Viewer {
                        client: &tenant.name,
                        user,
                        id: &caller.user,
                    },
                    &[known],
                )
                .await?;
                return Ok((view.into_iter().next().unwrap_or_default(), false));
            }
        }
        // A retry answers the stored message even once the room is archived.
        if room.archived_at.is_some() {
            return Err(DomainError::Conflict("the room is archived".into()));
        }
        if let Some(reply) = send.reply_to {
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM athena_chat.messages WHERE id = $1 AND room_id = $2",
                    &[&reply, &room_id],
                )
                .await
                .map_err(pg)?;
            if exists.is_none() {
                return Err(DomainError::invalid_field(
                    "reply_to_message_id",
                    "not a message of this room",
                ));
            }
        }
        let seq = room.last_message_seq + 1;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO athena_chat.messages AS m
                       (id, room_id, room_seq, sender_id, client_message_id, request_fingerprint,
                        body_text, body_json, reply_to_message_id, metadata_json)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     RETURNING {MESSAGE_COLUMNS}"
                ),
                &[
                    &Uuid::new_v4(),
                    &room_id,
                    &seq,
                    &caller.user,
                    &send.client_message_id,
                    &send.fingerprint,
                    &send.body_text,
                    &send.body_json,
                    &send.reply_to,
                    &send.metadata_json,
                ],
            )
            .await
            .map_err(pg)?;
        let message = MessageRow::from_row(&row);
        if !files.is_empty() {
            tx.execute(
                "INSERT INTO athena_chat.attachments (message_id, ordinal, file_id)
                 SELECT $1, o, f FROM unnest($2::int[], $3::uuid[]) AS a(o, f)",
                &[&message.id, &ordinals, &files],
            )
            .await
            .map_err(pg)?;
        }
        tx.execute(
            "UPDATE athena_chat.rooms
                SET last_message_id = $2, last_message_seq = $3, last_message_at = $4, updated_at = $4
              WHERE id = $1",
            &[&room_id, &message.id, &seq, &message.created_at],
        )
        .await
        .map_err(pg)?;
        event(
            &tx,
            room_id,
            "message.created",
            json!({"room_id": room_id, "message_id": message.id, "room_seq": seq, "sender_id": caller.user}),
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
        Ok((view.into_iter().next().unwrap_or_default(), true))
    }

    /// `GET /chat/rooms/{room_id}/messages`: by `room_seq`, ascending; the
    /// newest page (or the one before `before_seq`), or the page after
    /// `after_seq`. `next_before_seq` when older messages remain.
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
        let limit = super::page_size(limit, 50, 200);
        let conn = tenant.pool.get().await?;
        room_for(&**conn, &tenant.name, &caller, room_id, false).await?;
        let mut rows: Vec<MessageRow> = match after_seq {
            Some(after) => conn
                .query(
                    &format!(
                        "SELECT {MESSAGE_COLUMNS} FROM athena_chat.messages m
                          WHERE m.room_id = $1 AND m.room_seq > $2
                            AND ($3::int8 IS NULL OR m.room_seq < $3)
                          ORDER BY m.room_seq LIMIT $4"
                    ),
                    &[&room_id, &after, &before_seq, &limit],
                )
                .await
                .map_err(pg)?,
            None => conn
                .query(
                    &format!(
                        "SELECT {MESSAGE_COLUMNS} FROM athena_chat.messages m
                          WHERE m.room_id = $1 AND ($2::int8 IS NULL OR m.room_seq < $2)
                          ORDER BY m.room_seq DESC LIMIT $3"
                    ),
                    &[&room_id, &before_seq, &limit],
                )
                .await
                .map_err(pg)?,
        }
        .iter()
        .map(MessageRow::from_row)
        .collect();
        rows.sort_by_key(|m| m.room_seq);
        let next_before_seq = match rows.first() {
            Some(first)
                if first.room_seq > 1 && (after_seq.is_some() || rows.len() as i64 == limit) =>
            {
                Some(first.room_seq)
            }
            _ => None,
        };
        let items = message_views(
            &**conn,
            &Viewer {
                client: &tenant.name,
                user,
                id: &caller.user,
            },
            &rows,
        )
        .await?;
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
