//! Rooms, direct-message resolution, members and read cursors.

use super::{event, pg, room_for, short_text, user_id, Caller, Chat, RoomRow, ROOM_COLUMNS};
use crate::api::models;
use crate::auth::end_user::EndUser;
use crate::domain::DomainError;
use serde_json::{json, Value};
use tokio_postgres::GenericClient;
use uuid::Uuid;

/// The most members a request may add at once.
const MAX_MEMBERS_PER_REQUEST: usize = 500;
const MAX_TITLE_CHARS: usize = 200;

const MEMBER_COLUMNS: &str = "room_id, user_id, role, joined_at, last_read_seq,
    last_read_message_id, muted, notification_mode, hidden_at";

fn member_view(r: &tokio_postgres::Row) -> Value {
    json!({
        "room_id": r.get::<_, Uuid>(0),
        "user_id": r.get::<_, String>(1),
        "role": r.get::<_, String>(2),
        "joined_at": r.get::<_, chrono::DateTime<chrono::Utc>>(3),
        "last_read_seq": r.get::<_, i64>(4),
        "last_read_message_id": r.get::<_, Option<Uuid>>(5),
        "muted": r.get::<_, bool>(6),
        "notification_mode": r.get::<_, Option<String>>(7),
        "hidden_at": r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(8),
    })
}

/// Distinct valid user ids, in the order given.
fn user_ids(field: &str, ids: &[String]) -> Result<Vec<String>, DomainError> {
    if ids.len() > MAX_MEMBERS_PER_REQUEST {
        return Err(DomainError::invalid_field(
            field,
            format!("at most {MAX_MEMBERS_PER_REQUEST} users"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        let id = user_id(field, id)?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Inserts `room` and its members (`owner` first, the rest `role`); for a
/// dm, `None` when the pair already has its room.
async fn insert_room<C: GenericClient>(
    c: &C,
    client: &str,
    caller: &Caller,
    kind: &str,
    title: Option<&str>,
    others: &[String],
) -> Result<Option<RoomRow>, DomainError> {
    let pair = match (kind, others) {
        ("dm", [other]) => {
            // Byte order (`str`'s `Ord`), as the columns' `COLLATE "C"`.
            let (low, high) = if caller.user < *other {
                (caller.user.as_str(), other.as_str())
            } else {
                (other.as_str(), caller.user.as_str())
            };
            Some((low, high))
        }
        _ => None,
    };
    let (low, high) = (pair.map(|p| p.0), pair.map(|p| p.1));
    // One room per ordered pair: the partial unique index decides; a racing
    // second insert waits for the first and then does nothing.
    let row = c
        .query_opt(
            &format!(
                "INSERT INTO athena_chat.rooms AS r
                   (id, client_name, organization_id, kind, title, created_by, dm_user_low, dm_user_high)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (client_name, organization_id, dm_user_low, dm_user_high) WHERE kind = 'dm'
                 DO NOTHING
                 RETURNING {ROOM_COLUMNS}"
            ),
            &[&Uuid::new_v4(), &client, &caller.org, &kind, &title, &caller.user, &low, &high],
        )
        .await
        .map_err(pg)?;
    let Some(row) = row else { return Ok(None) };
    let room = RoomRow::from_row(&row);
    c.execute(
        "INSERT INTO athena_chat.members (room_id, user_id, role) VALUES ($1, $2, 'owner')",
        &[&room.id, &caller.user],
    )
    .await
    .map_err(pg)?;
    c.execute(
        "INSERT INTO athena_chat.members (room_id, user_id, role)
         SELECT $1, u, 'member' FROM unnest($2::text[]) u ON CONFLICT DO NOTHING",
        &[&room.id, &others],
    )
    .await
    .map_err(pg)?;
    event(
        c,
        room.id,
        "room.created",
        json!({"room_id": room.id, "kind": kind, "created_by": caller.user}),
    )
    .await?;
    Ok(Some(room))
}

impl Chat {
    /// `GET /chat/rooms`: the caller's rooms in their organization, the
    /// most recently active first.
    pub async fn rooms(
        &self,
        client: &str,
        user: &EndUser,
        limit: Option<i64>,
        offset: Option<i64>,
        include_archived: bool,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        let tenant = self.tenant(client).await?;
        let limit = super::page_size(limit, 50, 200);
        let offset = offset.unwrap_or(0).max(0);
        let rows = tenant
            .pool
            .get()
            .await?
            .query(
                &format!(
                    "SELECT {ROOM_COLUMNS} FROM athena_chat.members mb
                       JOIN athena_chat.rooms r ON r.id = mb.room_id
                      WHERE mb.user_id = $1 AND r.client_name = $2 AND r.organization_id = $3
                        AND ($4 OR r.archived_at IS NULL)
                      ORDER BY coalesce(r.last_message_at, r.created_at) DESC, r.id
                      LIMIT $5 OFFSET $6"
                ),
                &[
                    &caller.user,
                    &tenant.name,
                    &caller.org,
                    &include_archived,
                    &limit,
                    &offset,
                ],
            )
            .await
            .map_err(pg)?;
        let items: Vec<Value> = rows.iter().map(|r| RoomRow::from_row(r).view()).collect();
        Ok(json!({ "items": items }))
    }

    /// `POST /chat/rooms`: the caller is the owner; a dm names exactly one
    /// other user and is refused (409) when the pair has its room.
    pub async fn create_room(
        &self,
        client: &str,
        user: &EndUser,
        body: &models::ChatCreateRoomRequest,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        let kind = body.kind.to_string();
        short_text("title", body.title.as_deref(), MAX_TITLE_CHARS)?;
        let mut others = user_ids("member_user_ids", &body.member_user_ids)?;
        others.retain(|u| *u != caller.user);
        if kind == "dm" && others.len() != 1 {
            return Err(DomainError::invalid_field(
                "member_user_ids",
                "a dm names exactly one other user",
            ));
        }
        let tenant = self.tenant(client).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let room = insert_room(&tx, &tenant.name, &caller, &kind, body.title.as_deref(), &others)
            .await?
            .ok_or_else(|| {
                DomainError::Conflict(
                    "a dm between these users already exists (POST /chat/rooms/direct/resolve returns it)"
                        .into(),
                )
            })?;
        tx.commit().await.map_err(pg)?;
        Ok(room.view())
    }

    /// `POST /chat/rooms/direct/resolve` (SDK): the dm of the two
    /// participants (the caller is one), created when absent. Race-safe:
    /// `INSERT … ON CONFLICT DO NOTHING`, then the row that won.
    pub async fn resolve_direct(
        &self,
        client: &str,
        user: &EndUser,
        participants: &[String],
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        let ids = user_ids("participant_user_ids", participants)?;
        if ids.len() != 2 || participants.len() != 2 {
            return Err(DomainError::invalid_field(
                "participant_user_ids",
                "two different users",
            ));
        }
        let Some(other) = ids.iter().find(|u| **u != caller.user).cloned() else {
            return Err(DomainError::invalid_field(
                "participant_user_ids",
                "two different users",
            ));
        };
        if !ids.contains(&caller.user) {
            return Err(DomainError::invalid_field(
                "participant_user_ids",
                "the end user must be one of the participants",
            ));
        }
        let tenant = self.tenant(client).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let created = insert_room(
            &tx,
            &tenant.name,
            &caller,
            "dm",
            None,
            std::slice::from_ref(&other),
        )
        .await?;
        let room = match created {
            Some(room) => room,
            None => {
                let (low, high) = if caller.user < other {
                    (&caller.user, &other)
                } else {
                    (&other, &caller.user)
                };
                let row = tx
                    .query_one(
                        &format!(
                            "SELECT {ROOM_COLUMNS} FROM athena_chat.rooms r
                              WHERE r.client_name = $1 AND r.organization_id = $2 AND r.kind = 'dm'
                                AND r.dm_user_low = $3 AND r.dm_user_high = $4"
                        ),
                        &[&tenant.name, &caller.org, low, high],
                    )
                    .await
                    .map_err(pg)?;
                RoomRow::from_row(&row)
            }
        };
        tx.commit().await.map_err(pg)?;
        Ok(room.view())
    }

    /// `GET /chat/rooms/{room_id}`.
    pub async fn room(&self, client: &str, user: &EndUser, id: Uuid) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        let tenant = self.tenant(client).await?;
        let conn = tenant.pool.get().await?;
        let (room, _) = room_for(&**conn, &tenant.name, &caller, id, false).await?;
        Ok(room.view())
    }

    /// `PATCH /chat/rooms/{room_id}` (owner/admin): the title when `set`
    /// (`null` clears it); a change bumps `version`.
    pub async fn update_room(
        &self,
        client: &str,
        user: &EndUser,
        id: Uuid,
        set: bool,
        title: Option<&str>,
    ) -> Result<Value, DomainError> {
        short_text("title", title, MAX_TITLE_CHARS)?;
        let update =
            "UPDATE athena_chat.rooms SET title = $2, version = version + 1, updated_at = now()
              WHERE id = $1 AND title IS DISTINCT FROM $2";
        self.change_room(
            client,
            user,
            id,
            "room.updated",
            set.then_some(update),
            title,
        )
        .await
    }

    /// `POST /chat/rooms/{room_id}/archive` (owner/admin); archiving an
    /// archived room changes nothing.
    pub async fn archive_room(
        &self,
        client: &str,
        user: &EndUser,
        id: Uuid,
    ) -> Result<Value, DomainError> {
        self.change_room(
            client,
            user,
            id,
            "room.archived",
            Some(
                "UPDATE athena_chat.rooms SET archived_at = now(), version = version + 1, updated_at = now()
                  WHERE id = $1 AND archived_at IS NULL AND $2::text IS NULL",
            ),
            None,
        )
        .await
    }

    /// One room change by an owner or admin, under the room lock, with its
    /// event when something changed.
    async fn change_room(
        &self,
        client: &str,
        user: &EndUser,
        id: Uuid,
        kind: &str,
        update: Option<&str>,
        value: Option<&str>,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        let tenant = self.tenant(client).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let (_, role) = room_for(&tx, &tenant.name, &caller, id, true).await?;
        if !role.manages() {
            return Err(DomainError::Forbidden(
                "only the room's owner or an admin may change it".into(),
            ));
        }
        let changed = match update {
            Some(update) => tx.execute(update, &[&id, &value]).await.map_err(pg)?,
            None => 0,
        };
        if changed > 0 {
            event(&tx, id, kind, json!({"room_id": id, "by": caller.user})).await?;
        }
        let (room, _) = room_for(&tx, &tenant.name, &caller, id, false).await?;
        tx.commit().await.map_err(pg)?;
        Ok(room.view())
    }

    /// `GET /chat/rooms/{room_id}/members`.
    pub async fn members(
        &self,
        client: &str,
        user: &EndUser,
        id: Uuid,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        let tenant = self.tenant(client).await?;
        let conn = tenant.pool.get().await?;
        room_for(&**conn, &tenant.name, &caller, id, false).await?;
        let rows = conn
            .query(
                &format!(
                    "SELECT {MEMBER_COLUMNS} FROM athena_chat.members WHERE room_id = $1
                      ORDER BY joined_at, user_id"
                ),
                &[&id],
            )
            .await
            .map_err(pg)?;
        Ok(Value::Array(rows.iter().map(member_view).collect()))
    }

    /// `POST /chat/rooms/{room_id}/members` (owner/admin): idempotent (an
    /// existing member keeps their role); answers the named members.
    pub async fn add_members(
        &self,
        client: &str,
        user: &EndUser,
        id: Uuid,
        body: &models::ChatAddMembersRequest,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        let ids = user_ids("user_ids", &body.user_ids)?;
        if ids.is_empty() {
            return Err(DomainError::invalid_field("user_ids", "at least one user"));
        }
        let role = match body.role.as_deref().map(str::trim) {
            None | Some("") | Some("member") => "member",
            Some("admin") => "admin",
            Some(_) => {
                return Err(DomainError::invalid_field(
                    "role",
                    "member or admin (a room has one owner, its creator)",
                ))
            }
        };
        let tenant = self.tenant(client).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let (room, actor_role) = room_for(&tx, &tenant.name, &caller, id, true).await?;
        if room.kind == "dm" {
            return Err(DomainError::Invalid(
                "a dm's membership is fixed: its two participants".into(),
            ));
        }
        if !actor_role.manages() {
            return Err(DomainError::Forbidden(
                "only the room's owner or an admin may add members".into(),
            ));
        }
        let added = tx
            .execute(
                "INSERT INTO athena_chat.members (room_id, user_id, role)
                 SELECT $1, u, $3 FROM unnest($2::text[]) u ON CONFLICT DO NOTHING",
                &[&id, &ids, &role],
            )
            .await
            .map_err(pg)?;
        if added > 0 {
            event(
                &tx,
                id,
                "members.updated",
                json!({"room_id": id, "added": ids, "by": caller.user}),
            )
            .await?;
        }
        let rows = tx
            .query(
                &format!(
                    "SELECT {MEMBER_COLUMNS} FROM athena_chat.members
                      WHERE room_id = $1 AND user_id = ANY($2) ORDER BY joined_at, user_id"
                ),
                &[&id, &ids],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(Value::Array(rows.iter().map(member_view).collect()))
    }

    /// `DELETE /chat/rooms/{room_id}/members/{user_id}`: a member may leave;
    /// the owner removes anyone, an admin removes members.
    pub async fn remove_member(
        &self,
        client: &str,
        user: &EndUser,
        id: Uuid,
        target: &str,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        let target = user_id("user_id", target)?;
        let tenant = self.tenant(client).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let (room, actor_role) = room_for(&tx, &tenant.name, &caller, id, true).await?;
        if room.kind == "dm" {
            return Err(DomainError::Invalid(
                "a dm's membership is fixed: its two participants".into(),
            ));
        }
        let target_role = tx
            .query_opt(
                "SELECT role FROM athena_chat.members WHERE room_id = $1 AND user_id = $2",
                &[&id, &target],
            )
            .await
            .map_err(pg)?
            .and_then(|r| super::Role::parse(r.get::<_, &str>(0)))
            .ok_or_else(|| DomainError::not_found("room member", target.clone()))?;
        if target == caller.user && target_role == super::Role::Owner {
            return Err(DomainError::Invalid(
                "the owner cannot leave their room; archive it instead".into(),
            ));
        }
        let allowed = target == caller.user
            || actor_role == super::Role::Owner
            || (actor_role == super::Role::Admin && target_role == super::Role::Member);
        if !allowed {
            return Err(DomainError::Forbidden(
                "only the owner, or an admin for members, may remove someone else".into(),
            ));
        }
        tx.execute(
            "DELETE FROM athena_chat.members WHERE room_id = $1 AND user_id = $2",
            &[&id, &target],
        )
        .await
        .map_err(pg)?;
        event(
            &tx,
            id,
            "members.updated",
            json!({"room_id": id, "removed": [target], "by": caller.user}),
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        Ok(json!({ "ok": true, "user_id": target }))
    }

    /// `POST /chat/rooms/{room_id}/read-cursor`: to a message of the room
    /// (`message_id`) or a sequence number (`seq`, at most the room's last);
    /// the cursor only moves forward.
    pub async fn read_cursor(
        &self,
        client: &str,
        user: &EndUser,
        id: Uuid,
        body: &models::ChatMarkReadUpToRequest,
    ) -> Result<Value, DomainError> {
        let caller = Caller::of(user)?;
        if body.message_id.is_none() && body.seq.is_none() {
            return Err(DomainError::Invalid("send `message_id` or `seq`".into()));
        }
        if body.seq.is_some_and(|s| s < 0) {
            return Err(DomainError::invalid_field("seq", "zero or more"));
        }
        let tenant = self.tenant(client).await?;
        let conn = tenant.pool.get().await?;
        let (room, _) = room_for(&**conn, &tenant.name, &caller, id, false).await?;
        let (seq, message) = match body.message_id {
            Some(m) => {
                let seq: i64 = conn
                    .query_opt(
                        "SELECT room_seq FROM athena_chat.messages WHERE id = $1 AND room_id = $2",
                        &[&m, &id],
                    )
                    .await
                    .map_err(pg)?
                    .map(|r| r.get(0))
                    .ok_or_else(|| DomainError::not_found("message", m.to_string()))?;
                if body.seq.is_some_and(|s| s != seq) {
                    return Err(DomainError::invalid_field(
                        "seq",
                        "disagrees with `message_id`",
                    ));
                }
                (seq, Some(m))
            }
            None => {
                let seq = body.seq.unwrap_or(0);
                if seq > room.last_message_seq {
                    return Err(DomainError::invalid_field(
                        "seq",
                        format!("beyond the room's last message ({})", room.last_message_seq),
                    ));
                }
                let m: Option<Uuid> = conn
                    .query_opt(
                        "SELECT id FROM athena_chat.messages WHERE room_id = $1 AND room_seq = $2",
                        &[&id, &seq],
                    )
                    .await
                    .map_err(pg)?
                    .map(|r| r.get(0));
                (seq, m)
            }
        };
        // Forward only: a stale or reordered cursor update changes nothing.
        let row = conn
            .query_opt(
                "UPDATE athena_chat.members
                    SET last_read_seq = CASE WHEN last_read_seq < $3 THEN $3 ELSE last_read_seq END,
                        last_read_message_id = CASE WHEN last_read_seq < $3 THEN $4 ELSE last_read_message_id END
                  WHERE room_id = $1 AND user_id = $2
                  RETURNING last_read_seq, last_read_message_id",
                &[&id, &caller.user, &seq, &message],
            )
            .await
            .map_err(pg)?
            .ok_or_else(|| DomainError::Forbidden("the end user is not a member of this room".into()))?;
        Ok(json!({
            "room_id": id,
            "user_id": caller.user,
            "last_read_seq": row.get::<_, i64>(0),
            "last_read_message_id": row.get::<_, Option<Uuid>>(1),
        }))
    }
}
