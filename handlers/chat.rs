//! `chat`: durable chat (`/chat/*`, issue 20, `src/chat/`) for the end user
//! of the request (`src/auth/end_user.rs`), and `wss`: `/wss/info`. Shapes
//! follow the contract per operation: `{items}` for list rooms, the
//! envelope for create room and send message, bare objects elsewhere.

use crate::api::{models, params, responses as r, traits::ChatApi, traits::WssApi};
use crate::auth::end_user::EndUser;
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A service answer as the operation's declared model.
fn model<T: DeserializeOwned>(value: Value) -> Result<Json<T>, DomainError> {
    serde_json::from_value(value)
        .map(Json::new)
        .map_err(|e| DomainError::Internal(format!("chat answer shape: {e}")))
}

/// The standard success envelope around `data`.
fn envelope<T: DeserializeOwned>(message: &str, data: Value) -> Result<Json<T>, DomainError> {
    let mut out = crate::domain::success(message);
    out.insert("data".into(), data);
    model(Value::Object(out))
}

impl Handlers {
    /// The end user of a chat request (`src/auth/end_user.rs`): 401 without one.
    async fn chat_user(&self, cx: &RequestCx) -> Result<EndUser, DomainError> {
        self.end_users.resolve(cx.headers(), cx.actor()).await
    }
}

impl ChatApi for Handlers {
    async fn get_chat_rooms(
        &self,
        cx: RequestCx,
        params: params::GetChatRooms,
    ) -> ApiResult<r::GetChatRooms> {
        let user = self.chat_user(&cx).await?;
        let page = (self.chat)
            .rooms(
                &params.x_athena_client,
                &user,
                params.limit,
                params.offset,
                params.include_archived.unwrap_or(false),
            )
            .await?;
        Ok(r::GetChatRooms::Ok(model(page)?))
    }

    async fn post_chat_rooms(
        &self,
        cx: RequestCx,
        params: params::PostChatRooms,
        body: models::ChatCreateRoomRequest,
    ) -> ApiResult<r::PostChatRooms> {
        let user = self.chat_user(&cx).await?;
        let room = (self.chat)
            .create_room(&params.x_athena_client, &user, &body)
            .await?;
        Ok(r::PostChatRooms::Created(envelope(
            "Chat room created",
            room,
        )?))
    }

    async fn post_chat_rooms_direct_resolve(
        &self,
        cx: RequestCx,
        params: params::PostChatRoomsDirectResolve,
        body: models::ChatResolveDirectRoomRequest,
    ) -> ApiResult<r::PostChatRoomsDirectResolve> {
        let user = self.chat_user(&cx).await?;
        let room = (self.chat)
            .resolve_direct(&params.x_athena_client, &user, &body.participant_user_ids)
            .await?;
        Ok(r::PostChatRoomsDirectResolve::Ok(model(room)?))
    }

    async fn get_chat_rooms_by_room_id(
        &self,
        cx: RequestCx,
        params: params::GetChatRoomsByRoomId,
    ) -> ApiResult<r::GetChatRoomsByRoomId> {
        let user = self.chat_user(&cx).await?;
        let room = (self.chat)
            .room(&params.x_athena_client, &user, params.room_id)
            .await?;
        Ok(r::GetChatRoomsByRoomId::Ok(model(room)?))
    }

    async fn patch_chat_rooms_by_room_id(
        &self,
        cx: RequestCx,
        params: params::PatchChatRoomsByRoomId,
        body: models::ChatUpdateRoomRequest,
    ) -> ApiResult<r::PatchChatRoomsByRoomId> {
        let user = self.chat_user(&cx).await?;
        let room = (self.chat)
            .update_room(
                &params.x_athena_client,
                &user,
                params.room_id,
                cx.body_has_field("title"),
                body.title.as_deref(),
            )
            .await?;
        Ok(r::PatchChatRoomsByRoomId::Ok(model(room)?))
    }

    async fn post_chat_rooms_by_room_id_archive(
        &self,
        cx: RequestCx,
        params: params::PostChatRoomsByRoomIdArchive,
    ) -> ApiResult<r::PostChatRoomsByRoomIdArchive> {
        let user = self.chat_user(&cx).await?;
        let room = (self.chat)
            .archive_room(&params.x_athena_client, &user, params.room_id)
            .await?;
        Ok(r::PostChatRoomsByRoomIdArchive::Ok(model(room)?))
    }

    async fn get_chat_rooms_by_room_id_messages(
        &self,
        cx: RequestCx,
        params: params::GetChatRoomsByRoomIdMessages,
    ) -> ApiResult<r::GetChatRoomsByRoomIdMessages> {
        let user = self.chat_user(&cx).await?;
        let page = (self.chat)
            .messages(
                &params.x_athena_client,
                &user,
                params.room_id,
                params.limit,
                params.before_seq,
                params.after_seq,
            )
            .await?;
        Ok(r::GetChatRoomsByRoomIdMessages::Ok(model(page)?))
    }

    async fn post_chat_rooms_by_room_id_messages(
        &self,
        cx: RequestCx,
        params: params::PostChatRoomsByRoomIdMessages,
        body: models::ChatSendMessageRequest,
    ) -> ApiResult<r::PostChatRoomsByRoomIdMessages> {
        let user = self.chat_user(&cx).await?;
        let (message, created) = (self.chat)
            .send(&params.x_athena_client, &user, params.room_id, &body)
            .await?;
        let text = match created {
            true => "Chat message created",
            false => "Chat message already created (same client_message_id)",
        };
        Ok(r::PostChatRoomsByRoomIdMessages::Created(envelope(
            text, message,
        )?))
    }

    async fn delete_chat_rooms_by_room_id_messages_by_message_id(
        &self,
        cx: RequestCx,
        params: params::DeleteChatRoomsByRoomIdMessagesByMessageId,
    ) -> ApiResult<r::DeleteChatRoomsByRoomIdMessagesByMessageId> {
        let user = self.chat_user(&cx).await?;
        let done = (self.chat)
            .delete(
                &params.x_athena_client,
                &user,
                params.room_id,
                params.message_id,
            )
            .await?;
        Ok(r::DeleteChatRoomsByRoomIdMessagesByMessageId::Ok(model(
            done,
        )?))
    }

    async fn patch_chat_rooms_by_room_id_messages_by_message_id(
        &self,
        cx: RequestCx,
        params: params::PatchChatRoomsByRoomIdMessagesByMessageId,
        body: models::ChatEditMessageRequest,
    ) -> ApiResult<r::PatchChatRoomsByRoomIdMessagesByMessageId> {
        let user = self.chat_user(&cx).await?;
        let message = (self.chat)
            .edit(
                &params.x_athena_client,
                &user,
                params.room_id,
                params.message_id,
                &body,
            )
            .await?;
        Ok(r::PatchChatRoomsByRoomIdMessagesByMessageId::Ok(model(
            message,
        )?))
    }

    async fn post_chat_rooms_by_room_id_read_cursor(
        &self,
        cx: RequestCx,
        params: params::PostChatRoomsByRoomIdReadCursor,
        body: models::ChatMarkReadUpToRequest,
    ) -> ApiResult<r::PostChatRoomsByRoomIdReadCursor> {
        let user = self.chat_user(&cx).await?;
        let cursor = (self.chat)
            .read_cursor(&params.x_athena_client, &user, params.room_id, &body)
            .await?;
        Ok(r::PostChatRoomsByRoomIdReadCursor::Ok(model(cursor)?))
    }

    async fn get_chat_rooms_by_room_id_members(
        &self,
        cx: RequestCx,
        params: params::GetChatRoomsByRoomIdMembers,
    ) -> ApiResult<r::GetChatRoomsByRoomIdMembers> {
        let user = self.chat_user(&cx).await?;
        let members = (self.chat)
            .members(&params.x_athena_client, &user, params.room_id)
            .await?;
        Ok(r::GetChatRoomsByRoomIdMembers::Ok(model(members)?))
    }

    async fn post_chat_rooms_by_room_id_members(
        &self,
        cx: RequestCx,
        params: params::PostChatRoomsByRoomIdMembers,
        body: models::ChatAddMembersRequest,
    ) -> ApiResult<r::PostChatRoomsByRoomIdMembers> {
        let user = self.chat_user(&cx).await?;
        let members = (self.chat)
            .add_members(&params.x_athena_client, &user, params.room_id, &body)
            .await?;
        Ok(r::PostChatRoomsByRoomIdMembers::Ok(model(members)?))
    }

    async fn delete_chat_rooms_by_room_id_members_by_user_id(
        &self,
        cx: RequestCx,
        params: params::DeleteChatRoomsByRoomIdMembersByUserId,
    ) -> ApiResult<r::DeleteChatRoomsByRoomIdMembersByUserId> {
        let user = self.chat_user(&cx).await?;
        let done = (self.chat)
            .remove_member(
                &params.x_athena_client,
                &user,
                params.room_id,
                &params.user_id,
            )
            .await?;
        Ok(r::DeleteChatRoomsByRoomIdMembersByUserId::Ok(model(done)?))
    }

    async fn post_chat_messages_by_message_id_reactions(
        &self,
        cx: RequestCx,
        params: params::PostChatMessagesByMessageIdReactions,
        body: models::ChatAddReactionRequest,
    ) -> ApiResult<r::PostChatMessagesByMessageIdReactions> {
        let user = self.chat_user(&cx).await?;
        let summary = (self.chat)
            .react(
                &params.x_athena_client,
                &user,
                params.message_id,
                &body.emoji,
            )
            .await?;
        Ok(r::PostChatMessagesByMessageIdReactions::Ok(model(summary)?))
    }

    async fn delete_chat_messages_by_message_id_reactions_by_emoji(
        &self,
        cx: RequestCx,
        params: params::DeleteChatMessagesByMessageIdReactionsByEmoji,
    ) -> ApiResult<r::DeleteChatMessagesByMessageIdReactionsByEmoji> {
        let user = self.chat_user(&cx).await?;
        let summary = (self.chat)
            .unreact(
                &params.x_athena_client,
                &user,
                params.message_id,
                &params.emoji,
            )
            .await?;
        Ok(r::DeleteChatMessagesByMessageIdReactionsByEmoji::Ok(model(
            summary,
        )?))
    }

    async fn post_chat_messages_search(
        &self,
        cx: RequestCx,
        params: params::PostChatMessagesSearch,
        body: models::ChatSearchMessagesRequest,
    ) -> ApiResult<r::PostChatMessagesSearch> {
        let user = self.chat_user(&cx).await?;
        let page = (self.chat)
            .search(&params.x_athena_client, &user, &body)
            .await?;
        Ok(r::PostChatMessagesSearch::Ok(model(page)?))
    }
}

impl WssApi for Handlers {
    async fn get_wss_info(&self, _cx: RequestCx) -> ApiResult<r::GetWssInfo> {
        Ok(r::GetWssInfo::Ok(Json::new(models::GetWssInfoResponse200 {
            status: Some("success".into()),
            message: Some("Athena WebSocket gateway: not enabled yet".into()),
            data: Some(models::GetWssInfoResponse200Data {
                transport: Some("wss".into()),
                path: Some("/wss/gateway".into()),
                state: Some("disabled".into()),
                notes: vec![
                    "The WebSocket gateway is not served yet: /wss/gateway answers no upgrade.".into(),
                    "Chat is durable over HTTP: /chat/rooms/{room_id}/messages lists by room_seq (after_seq to catch up).".into(),
                    "Chat events are recorded in order (athena_chat.outbox) for the gateway to deliver once enabled.".into(),
                ],
                actions: Vec::new(),
            }),
        })))
    }
}
