//! Durable chat (`/chat/*`, issue 20) and `/wss/info`. The end users are
//! named by the trusted headers the admin key may send (`as_user`): `A`
//! creates each case's own room with `B` in it (setup step 0, `{{0.data.id}}`),
//! optionally sends one message (step 1, `{{1.data.id}}`); `X` belongs to
//! another organization. Every case reads its effect back through the API
//! as another user (or proves the refusal).

use super::{expect_eq, Case, Ctx};
use crate::http::Request;
use serde_json::{json, Value};

const ORG: &str = "conf-chat-org";
const A: &str = "conf-chat-a";
const B: &str = "conf-chat-b";
const C: &str = "conf-chat-c";

/// A word no other run or case sends (the search matches it alone).
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// `request` as `user` of the chat organization.
fn as_user(r: Request, user: &str) -> Request {
    r.header("X-User-Id", user).header("X-Organization-Id", ORG)
}

/// `request` as a user of another organization.
fn as_outsider(r: Request) -> Request {
    r.header("X-User-Id", "conf-chat-x")
        .header("X-Organization-Id", "conf-chat-elsewhere")
}

fn req(ctx: &Ctx, user: &str, method: &str, path: &str) -> Request {
    as_user(ctx.request(method, path), user)
}

/// Setup step: `A` creates a group room titled `title` with `B`.
fn room(ctx: &Ctx, title: &str) -> Request {
    req(ctx, A, "post", "/chat/rooms")
        .json(json!({"kind": "group", "title": title, "member_user_ids": [B]}))
}

/// Setup step: `A` says `text` in the room of step 0.
fn say(ctx: &Ctx, text: &str) -> Request {
    req(ctx, A, "post", "/chat/rooms/{{0.data.id}}/messages").json(json!({"body_text": text}))
}

const ROOM: &str = "/chat/rooms/{{0.data.id}}";
const MESSAGES: &str = "/chat/rooms/{{0.data.id}}/messages";
const MEMBERS: &str = "/chat/rooms/{{0.data.id}}/members";

fn items(v: &Value) -> Result<&Vec<Value>, String> {
    v["items"]
        .as_array()
        .ok_or_else(|| format!("no items: {v}"))
}

/// The member `user` in a members array.
fn member<'a>(v: &'a Value, user: &str) -> Result<&'a Value, String> {
    v.as_array()
        .ok_or("not an array")?
        .iter()
        .find(|m| m["user_id"] == user)
        .ok_or_else(|| format!("{user} is not listed: {v}"))
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let mut out = Vec::new();

    let title = unique("conf room ");
    out.push(
        Case::new(
            "get_chat_rooms",
            "the end user's rooms, the new one listed",
            req(ctx, B, "get", "/chat/rooms").query("limit", "200"),
            200,
        )
        .after(room(ctx, &title))
        .check_json({
            let title = title.clone();
            move |v| {
                expect_eq(
                    "listed",
                    items(v)?.iter().any(|r| r["title"] == title.as_str()),
                    true,
                )
            }
        })
        .then_json(
            as_outsider(ctx.request("get", "/chat/rooms")).query("limit", "200"),
            200,
            move |v| {
                expect_eq(
                    "another organization sees it",
                    items(v)?.iter().any(|r| r["title"] == title.as_str()),
                    false,
                )
            },
        ),
    );

    let title = unique("conf created ");
    out.push(
        Case::new(
            "post_chat_rooms",
            "a group room, the creator its owner",
            req(ctx, A, "post", "/chat/rooms")
                .json(json!({"kind": "group", "title": title, "member_user_ids": [B]})),
            201,
        )
        .check_json(|v| {
            expect_eq("kind", &v["data"]["kind"], &json!("group"))?;
            expect_eq("version", &v["data"]["version"], &json!(1))
        })
        .then_json(req(ctx, B, "get", "/chat/rooms/{{r.data.id}}"), 200, {
            let title = title.clone();
            move |v| expect_eq("title", &v["title"], &json!(title))
        })
        .then_json(
            req(ctx, B, "get", "/chat/rooms/{{r.data.id}}/members"),
            200,
            |v| {
                expect_eq("owner", &member(v, A)?["role"], &json!("owner"))?;
                expect_eq("member", &member(v, B)?["role"], &json!("member"))
            },
        ),
    );

    out.push(
        Case::new(
            "get_chat_rooms_by_room_id",
            "a room of the end user",
            req(ctx, B, "get", ROOM),
            200,
        )
        .after(room(ctx, "conf get"))
        .check_json(|v| expect_eq("title", &v["title"], &json!("conf get")))
        .then_status(as_outsider(ctx.request("get", ROOM)), 404)
        .then_status(req(ctx, C, "get", ROOM), 403),
    );

    out.push(
        Case::new(
            "patch_chat_rooms_by_room_id",
            "the owner renames the room, the version moves",
            req(ctx, A, "patch", ROOM).json(json!({"title": "conf renamed"})),
            200,
        )
        .after(room(ctx, "conf patch"))
        .check_json(|v| expect_eq("version", &v["version"], &json!(2)))
        .then_json(req(ctx, B, "get", ROOM), 200, |v| {
            expect_eq("title", &v["title"], &json!("conf renamed"))
        })
        .then_status(
            req(ctx, B, "patch", ROOM).json(json!({"title": "mine"})),
            403,
        ),
    );

    out.push(
        Case::new(
            "post_chat_rooms_by_room_id_archive",
            "the owner archives the room",
            req(ctx, A, "post", &format!("{ROOM}/archive")),
            200,
        )
        .after(room(ctx, "conf archive"))
        .check_json(|v| expect_eq("archived", v["archived_at"].is_string(), true))
        .then_json(req(ctx, B, "get", ROOM), 200, |v| {
            expect_eq("archived", v["archived_at"].is_string(), true)
        }),
    );

    out.push(
        Case::new(
            "get_chat_rooms_by_room_id_messages",
            "the room's messages by room_seq",
            req(ctx, B, "get", MESSAGES),
            200,
        )
        .after(room(ctx, "conf list"))
        .after(say(ctx, "first"))
        .after(say(ctx, "second"))
        .check_json(|v| {
            let seqs: Vec<&Value> = items(v)?.iter().map(|m| &m["room_seq"]).collect();
            expect_eq("seqs", seqs, vec![&json!(1), &json!(2)])?;
            expect_eq("body", &items(v)?[1]["body_text"], &json!("second"))
        })
        .then_status(as_outsider(ctx.request("get", MESSAGES)), 404),
    );

    let send = json!({"body_text": "conf hello", "client_message_id": "conf-c1"});
    out.push(
        Case::new(
            "post_chat_rooms_by_room_id_messages",
            "a message at room_seq 1; a retry of its client_message_id is the same message",
            req(ctx, A, "post", MESSAGES).json(send.clone()),
            201,
        )
        .after(room(ctx, "conf send"))
        .check_json(|v| {
            expect_eq("seq", &v["data"]["room_seq"], &json!(1))?;
            expect_eq("sender", &v["data"]["sender_id"], &json!(A))
        })
        .then_json(req(ctx, A, "post", MESSAGES).json(send), 201, |v| {
            expect_eq("retry seq", &v["data"]["room_seq"], &json!(1))
        })
        .then_status(
            req(ctx, A, "post", MESSAGES)
                .json(json!({"body_text": "other", "client_message_id": "conf-c1"})),
            409,
        )
        .then_json(req(ctx, B, "get", ROOM), 200, |v| {
            expect_eq("last_message_seq", &v["last_message_seq"], &json!(1))
        })
        .then_json(req(ctx, B, "get", MESSAGES), 200, |v| {
            expect_eq("one message", items(v)?.len(), 1)?;
            expect_eq("body", &items(v)?[0]["body_text"], &json!("conf hello"))
        }),
    );

    out.push(
        Case::new(
            "delete_chat_rooms_by_room_id_messages_by_message_id",
            "a soft delete keeps the message's room_seq",
            req(ctx, A, "delete", &format!("{MESSAGES}/{{{{1.data.id}}}}")),
            200,
        )
        .after(room(ctx, "conf delete"))
        .after(say(ctx, "to delete"))
        .check_json(|v| expect_eq("ok", &v["ok"], &json!(true)))
        .then_json(req(ctx, B, "get", MESSAGES), 200, |v| {
            let m = &items(v)?[0];
            expect_eq("seq kept", &m["room_seq"], &json!(1))?;
            expect_eq("deleted", m["deleted_at"].is_string(), true)?;
            expect_eq("body cleared", m["body_text"].is_null(), true)
        }),
    );

    out.push(
        Case::new(
            "patch_chat_rooms_by_room_id_messages_by_message_id",
            "the sender edits the message",
            req(ctx, A, "patch", &format!("{MESSAGES}/{{{{1.data.id}}}}"))
                .json(json!({"body_text": "conf edited"})),
            200,
        )
        .after(room(ctx, "conf edit"))
        .after(say(ctx, "to edit"))
        .check_json(|v| expect_eq("edited", v["edited_at"].is_string(), true))
        .then_json(req(ctx, B, "get", MESSAGES), 200, |v| {
            expect_eq("body", &items(v)?[0]["body_text"], &json!("conf edited"))
        })
        .then_status(
            req(ctx, B, "patch", &format!("{MESSAGES}/{{{{1.data.id}}}}"))
                .json(json!({"body_text": "not mine"})),
            403,
        ),
    );

    out.push(
        Case::new(
            "post_chat_rooms_by_room_id_read_cursor",
            "the read cursor moves to the message",
            req(ctx, B, "post", &format!("{ROOM}/read-cursor"))
                .json(json!({"message_id": "{{1.data.id}}"})),
            200,
        )
        .after(room(ctx, "conf cursor"))
        .after(say(ctx, "read me"))
        .check_json(|v| expect_eq("seq", &v["last_read_seq"], &json!(1)))
        .then_json(
            req(ctx, B, "post", &format!("{ROOM}/read-cursor")).json(json!({"seq": 0})),
            200,
            |v| expect_eq("never backwards", &v["last_read_seq"], &json!(1)),
        )
        .then_json(req(ctx, A, "get", MEMBERS), 200, |v| {
            expect_eq("stored", &member(v, B)?["last_read_seq"], &json!(1))
        }),
    );

    out.push(
        Case::new(
            "get_chat_rooms_by_room_id_members",
            "the room's members and roles",
            req(ctx, B, "get", MEMBERS),
            200,
        )
        .after(room(ctx, "conf members"))
        .check_json(|v| {
            expect_eq("count", v.as_array().map(Vec::len), Some(2))?;
            expect_eq("owner", &member(v, A)?["role"], &json!("owner"))
        })
        .then_status(as_outsider(ctx.request("get", MEMBERS)), 404),
    );

    out.push(
        Case::new(
            "post_chat_rooms_by_room_id_members",
            "the owner adds an admin",
            req(ctx, A, "post", MEMBERS).json(json!({"user_ids": [C], "role": "admin"})),
            200,
        )
        .after(room(ctx, "conf add"))
        .check_json(|v| expect_eq("role", &member(v, C)?["role"], &json!("admin")))
        .then_json(req(ctx, C, "get", MEMBERS), 200, |v| {
            expect_eq("count", v.as_array().map(Vec::len), Some(3))
        }),
    );

    out.push(
        Case::new(
            "delete_chat_rooms_by_room_id_members_by_user_id",
            "a removed member loses access at once",
            req(ctx, A, "delete", &format!("{MEMBERS}/{B}")),
            200,
        )
        .after(room(ctx, "conf remove"))
        .check_json(|v| expect_eq("user", &v["user_id"], &json!(B)))
        .then_status(req(ctx, B, "get", ROOM), 403)
        .then_status(req(ctx, A, "delete", &format!("{MEMBERS}/{B}")), 404),
    );

    out.push(
        Case::new(
            "post_chat_messages_by_message_id_reactions",
            "a reaction, counted once per user",
            req(ctx, B, "post", "/chat/messages/{{1.data.id}}/reactions")
                .json(json!({"emoji": "🎉"})),
            200,
        )
        .after(room(ctx, "conf react"))
        .after(say(ctx, "react to me"))
        .check_json(|v| {
            expect_eq(
                "summary",
                &v["reactions"],
                &json!([{"emoji": "🎉", "count": 1, "reacted": true}]),
            )
        })
        .then_json(req(ctx, A, "get", MESSAGES), 200, |v| {
            expect_eq(
                "seen by the sender",
                &items(v)?[0]["reactions"],
                &json!([{"emoji": "🎉", "count": 1, "reacted": false}]),
            )
        }),
    );

    out.push(
        Case::new(
            "delete_chat_messages_by_message_id_reactions_by_emoji",
            "the end user's reaction is removed",
            req(
                ctx,
                B,
                "delete",
                "/chat/messages/{{1.data.id}}/reactions/%F0%9F%8E%89",
            ),
            200,
        )
        .after(room(ctx, "conf unreact"))
        .after(say(ctx, "unreact"))
        .after(
            req(ctx, B, "post", "/chat/messages/{{1.data.id}}/reactions")
                .json(json!({"emoji": "🎉"})),
        )
        .check_json(|v| expect_eq("summary", &v["reactions"], &json!([])))
        .then_json(req(ctx, A, "get", MESSAGES), 200, |v| {
            expect_eq("gone", &items(v)?[0]["reactions"], &json!([]))
        })
        .then_status(
            req(
                ctx,
                B,
                "delete",
                "/chat/messages/{{1.data.id}}/reactions/%F0%9F%8E%89",
            ),
            404,
        ),
    );

    let word = unique("zqsearch");
    out.push(
        Case::new(
            "post_chat_messages_search",
            "full-text search within the end user's rooms",
            req(ctx, B, "post", "/chat/messages/search").json(json!({"query": word})),
            200,
        )
        .after(room(ctx, "conf search"))
        .after(say(ctx, &format!("the {word} is here")))
        .check_json(|v| {
            expect_eq("hits", items(v)?.len(), 1)?;
            expect_eq("room", items(v)?[0]["room_id"].is_string(), true)
        })
        .then_json(
            as_outsider(ctx.request("post", "/chat/messages/search")).json(json!({"query": word})),
            200,
            |v| expect_eq("another organization finds nothing", items(v)?.len(), 0),
        )
        .then_json(
            req(ctx, C, "post", "/chat/messages/search").json(json!({"query": word})),
            200,
            |v| expect_eq("a non-member finds nothing", items(v)?.len(), 0),
        ),
    );

    out.push(
        Case::new(
            "get_wss_info",
            "the WebSocket gateway is announced as disabled",
            ctx.request("get", "/wss/info"),
            200,
        )
        .check_json(|v| {
            expect_eq("transport", &v["data"]["transport"], &json!("wss"))?;
            expect_eq("path", &v["data"]["path"], &json!("/wss/gateway"))?;
            expect_eq("state", &v["data"]["state"], &json!("disabled"))
        }),
    );
    out
}

/// The SDK-only operation: `POST /chat/rooms/direct/resolve`.
pub fn sdk_only_cases(ctx: &Ctx) -> Vec<Case> {
    let peer = unique("conf-chat-peer-");
    vec![Case::new(
        "post_chat_rooms_direct_resolve",
        "the dm of two users, created once",
        req(ctx, A, "post", "/chat/rooms/direct/resolve")
            .json(json!({"participant_user_ids": [A, peer]})),
        200,
    )
    .check_json(|v| expect_eq("kind", &v["kind"], &json!("dm")))
    .then_json(
        req(ctx, &peer, "get", "/chat/rooms/{{r.id}}/members"),
        200,
        |v| expect_eq("two members", v.as_array().map(Vec::len), Some(2)),
    )
    .then_status(
        req(ctx, &peer, "post", "/chat/rooms").json(json!({"kind": "dm", "member_user_ids": [A]})),
        409,
    )]
}
