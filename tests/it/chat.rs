//! Durable chat (issue 20): the "Done when" flows against a running server,
//! each effect read back through the API and the tenant database. End users
//! are bearer JWTs (no API key: keys are not enforced here, and the chat
//! rule never reads the bearer as one).

use crate::common::files::{jwt, Files};
use crate::common::{allow, Reply, TestServer, CLIENT};
use futures_util::future::join_all;
use serde_json::{json, Value};

/// A chat end user: `user` of `org`.
struct User<'a> {
    s: &'a TestServer,
    auth: String,
}

impl<'a> User<'a> {
    fn new(s: &'a TestServer, user: &str, org: &str) -> User<'a> {
        User {
            s,
            auth: format!("Bearer {}", jwt(user, org)),
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let headers = [
            ("x-athena-client", CLIENT),
            ("authorization", self.auth.as_str()),
        ];
        self.s.send(method, path, &headers, body).await
    }

    /// `method path` must answer `status`; its JSON.
    async fn expect(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let r = self.send(method, path, body).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        if status >= 400 {
            return r.envelope();
        }
        r.json()
    }

    /// A group room with `members`; its id.
    async fn group(&self, members: &[&str]) -> String {
        let r = self
            .expect(
                "POST",
                "/chat/rooms",
                Some(json!({"kind": "group", "title": "team", "member_user_ids": members})),
                201,
            )
            .await;
        assert_eq!(r["status"], "success", "{r}");
        r["data"]["id"].as_str().unwrap().to_string()
    }

    async fn say(&self, room: &str, text: &str) -> Value {
        self.expect(
            "POST",
            &format!("/chat/rooms/{room}/messages"),
            Some(json!({"body_text": text})),
            201,
        )
        .await["data"]
            .clone()
    }
}

#[tokio::test]
async fn two_users_of_one_organization_chat_and_others_see_nothing() {
    let s = TestServer::start().await;
    let alice = User::new(&s, "alice", "acme");
    let bob = User::new(&s, "bob", "acme");
    let carol = User::new(&s, "carol", "acme");
    let mallory = User::new(&s, "mallory", "globex");

    let room = alice.group(&["bob"]).await;
    let msgs = format!("/chat/rooms/{room}/messages");

    // One client_message_id sent twice: one message.
    let send = json!({"client_message_id": "c-1", "body_text": "ripe banana smoothie"});
    let first = alice.expect("POST", &msgs, Some(send.clone()), 201).await;
    let again = alice.expect("POST", &msgs, Some(send), 201).await;
    assert_eq!(first["data"]["id"], again["data"]["id"]);
    assert_eq!(first["data"]["room_seq"], 1);
    let other = json!({"client_message_id": "c-1", "body_text": "something else"});
    alice.expect("POST", &msgs, Some(other), 409).await;
    let id = first["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.messages").await,
        1
    );
    let two = bob.say(&room, "second").await;
    let three = alice.say(&room, "third").await;
    assert_eq!(
        (two["room_seq"].as_i64(), three["room_seq"].as_i64()),
        (Some(2), Some(3))
    );
    let r = alice
        .expect("GET", &format!("/chat/rooms/{room}"), None, 200)
        .await;
    assert_eq!(
        (r["last_message_seq"].as_i64(), r["last_message_id"].clone()),
        (Some(3), three["id"].clone())
    );

    // Reactions: one per (message, user, emoji), `reacted` for the actor.
    let react = format!("/chat/messages/{id}/reactions");
    for _ in 0..2 {
        let r = bob
            .expect("POST", &react, Some(json!({"emoji": "👍"})), 200)
            .await;
        assert_eq!(
            r["reactions"],
            json!([{"emoji": "👍", "count": 1, "reacted": true}]),
            "{r}"
        );
    }
    let page = alice.expect("GET", &msgs, None, 200).await;
    assert_eq!(
        page["items"][0]["reactions"],
        json!([{"emoji": "👍", "count": 1, "reacted": false}])
    );
    bob.expect("POST", &react, Some(json!({"emoji": "x".repeat(33)})), 400)
        .await;

    // The read cursor only moves forward.
    let cursor = format!("/chat/rooms/{room}/read-cursor");
    let r = bob
        .expect(
            "POST",
            &cursor,
            Some(json!({"message_id": three["id"]})),
            200,
        )
        .await;
    assert_eq!(
        (r["last_read_seq"].as_i64(), r["user_id"].as_str()),
        (Some(3), Some("bob"))
    );
    let r = bob
        .expect("POST", &cursor, Some(json!({"seq": 1})), 200)
        .await;
    assert_eq!(r["last_read_seq"], 3);
    bob.expect("POST", &cursor, Some(json!({"seq": 99})), 400)
        .await;
    let members = alice
        .expect("GET", &format!("/chat/rooms/{room}/members"), None, 200)
        .await;
    let bob_row = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(
        (bob_row["last_read_seq"].as_i64(), bob_row["role"].as_str()),
        (Some(3), Some("member"))
    );

    // Search finds the message, in the actor's rooms only.
    let found = bob
        .expect(
            "POST",
            "/chat/messages/search",
            Some(json!({"query": "banana"})),
            200,
        )
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["items"][0]["message"]["id"], json!(id));
    assert_eq!(found["items"][0]["room_id"], json!(room));
    let none = carol
        .expect(
            "POST",
            "/chat/messages/search",
            Some(json!({"query": "banana"})),
            200,
        )
        .await;
    assert_eq!(none["items"], json!([]));

    // Edit: the sender only.
    let edit = format!("{msgs}/{id}");
    bob.expect("PATCH", &edit, Some(json!({"body_text": "mine now"})), 403)
        .await;
    let edited = alice
        .expect(
            "PATCH",
            &edit,
            Some(json!({"body_text": "ripe banana shake"})),
            200,
        )
        .await;
    assert!(edited["edited_at"].is_string(), "{edited}");
    assert_eq!(edited["room_seq"], 1);

    // Delete keeps the order of the rest (and the deleted one's seq).
    let r = alice
        .expect(
            "DELETE",
            &format!("{msgs}/{}", two["id"].as_str().unwrap()),
            None,
            200,
        )
        .await;
    assert_eq!(r, json!({"ok": true, "message_id": two["id"]}));
    let page = bob.expect("GET", &msgs, None, 200).await;
    let seqs: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["room_seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(page["items"][1]["deleted_at"].is_string());
    assert!(page["items"][1].get("body_text").is_none_or(Value::is_null));
    assert_eq!(page["items"][2]["body_text"], "third");
    let older = bob
        .expect("GET", &format!("{msgs}?limit=2"), None, 200)
        .await;
    assert_eq!(older["next_before_seq"], 2);
    let before = bob
        .expect("GET", &format!("{msgs}?before_seq=2"), None, 200)
        .await;
    assert_eq!(before["items"].as_array().unwrap().len(), 1);

    // The emoji in the path is percent-decoded; removing twice: 404.
    let unreact = format!("{react}/%F0%9F%91%8D");
    let r = bob.expect("DELETE", &unreact, None, 200).await;
    assert_eq!(r["reactions"], json!([]));
    bob.expect("DELETE", &unreact, None, 404).await;

    // Another organization sees nothing; a non-member is refused.
    mallory
        .expect("GET", &format!("/chat/rooms/{room}"), None, 404)
        .await;
    mallory.expect("GET", &msgs, None, 404).await;
    mallory
        .expect("POST", &react, Some(json!({"emoji": "👀"})), 404)
        .await;
    let list = mallory.expect("GET", "/chat/rooms", None, 200).await;
    assert_eq!(list["items"], json!([]));
    let found = mallory
        .expect(
            "POST",
            "/chat/messages/search",
            Some(json!({"query": "banana"})),
            200,
        )
        .await;
    assert_eq!(found["items"], json!([]));
    carol
        .expect("GET", &format!("/chat/rooms/{room}"), None, 403)
        .await;
    carol
        .expect("POST", &msgs, Some(json!({"body_text": "hi"})), 403)
        .await;
    let list = bob.expect("GET", "/chat/rooms", None, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // Members: owner/admin adds (idempotent); a removed member loses access
    // on the next request.
    let add = format!("/chat/rooms/{room}/members");
    bob.expect("POST", &add, Some(json!({"user_ids": ["carol"]})), 403)
        .await;
    for _ in 0..2 {
        let r = alice
            .expect("POST", &add, Some(json!({"user_ids": ["carol"]})), 200)
            .await;
        assert_eq!(r.as_array().unwrap().len(), 1, "{r}");
    }
    carol
        .expect("GET", &format!("/chat/rooms/{room}"), None, 200)
        .await;
    let r = alice
        .expect("DELETE", &format!("{add}/bob"), None, 200)
        .await;
    assert_eq!(r, json!({"ok": true, "user_id": "bob"}));
    bob.expect("GET", &msgs, None, 403).await;
    alice
        .expect("DELETE", &format!("{add}/bob"), None, 404)
        .await;

    // Rooms: PATCH and archive bump the version; owner/admin only.
    carol
        .expect(
            "PATCH",
            &format!("/chat/rooms/{room}"),
            Some(json!({"title": "x"})),
            403,
        )
        .await;
    let r = alice
        .expect(
            "PATCH",
            &format!("/chat/rooms/{room}"),
            Some(json!({"title": "renamed"})),
            200,
        )
        .await;
    assert_eq!(
        (r["title"].as_str(), r["version"].as_i64()),
        (Some("renamed"), Some(2))
    );
    let r = alice
        .expect("POST", &format!("/chat/rooms/{room}/archive"), None, 200)
        .await;
    assert!(r["archived_at"].is_string());
    assert_eq!(r["version"], 3);
    let list = alice.expect("GET", "/chat/rooms", None, 200).await;
    assert_eq!(list["items"], json!([]));
    let list = alice
        .expect("GET", "/chat/rooms?include_archived=true", None, 200)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    alice
        .expect("POST", &msgs, Some(json!({"body_text": "late"})), 409)
        .await;
    // A retry of an earlier send still answers its message (its seq kept).
    let retry = json!({"client_message_id": "c-1", "body_text": "ripe banana smoothie"});
    let r = alice.expect("POST", &msgs, Some(retry), 201).await;
    assert_eq!(
        (r["data"]["id"].as_str(), r["data"]["room_seq"].as_i64()),
        (Some(id.as_str()), Some(1))
    );

    // Every change left its event in the outbox.
    assert!(
        s.scalar("SELECT count(*) FROM athena_chat.outbox WHERE kind = 'message.created'")
            .await
            >= 3
    );

    // Bad input.
    alice
        .expect("GET", "/chat/rooms/not-a-uuid", None, 400)
        .await;
    alice
        .expect(
            "POST",
            "/chat/messages/not-a-uuid/reactions",
            Some(json!({"emoji": "a"})),
            400,
        )
        .await;
    let room2 = alice.group(&[]).await;
    // Over 64 KiB: the request body limit answers first (413).
    let big = "x".repeat(64 * 1024 + 1);
    alice
        .expect(
            "POST",
            &format!("/chat/rooms/{room2}/messages"),
            Some(json!({"body_text": big})),
            413,
        )
        .await;
    alice
        .expect(
            "POST",
            &format!("/chat/rooms/{room2}/messages"),
            Some(json!({})),
            400,
        )
        .await;
    let r = s
        .send("GET", "/chat/rooms", &[("x-athena-client", CLIENT)], None)
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn a_dm_resolved_twice_concurrently_is_one_room() {
    let s = TestServer::start().await;
    let alice = User::new(&s, "alice", "acme");
    let bob = User::new(&s, "bob", "acme");
    let body = json!({"participant_user_ids": ["alice", "bob"]});
    let replies = join_all((0..8).map(|i| {
        let who = if i % 2 == 0 { &alice } else { &bob };
        who.send("POST", "/chat/rooms/direct/resolve", Some(body.clone()))
    }))
    .await;
    let ids: std::collections::BTreeSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.json()["kind"], "dm");
            r.json()["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(s.scalar("SELECT count(*) FROM athena_chat.rooms").await, 1);
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.members").await,
        2
    );
    // The same pair through POST /chat/rooms: a conflict.
    bob.expect(
        "POST",
        "/chat/rooms",
        Some(json!({"kind": "dm", "member_user_ids": ["alice"]})),
        409,
    )
    .await;
    // A dm's membership is fixed; the caller must be a participant.
    let id = ids.into_iter().next().unwrap();
    alice
        .expect(
            "POST",
            &format!("/chat/rooms/{id}/members"),
            Some(json!({"user_ids": ["carol"]})),
            400,
        )
        .await;
    alice
        .expect(
            "POST",
            "/chat/rooms/direct/resolve",
            Some(json!({"participant_user_ids": ["bob", "carol"]})),
            400,
        )
        .await;
    // Another organization's pair is another room.
    let eve = User::new(&s, "alice", "globex");
    let r = eve
        .expect("POST", "/chat/rooms/direct/resolve", Some(body), 200)
        .await;
    assert_ne!(r["id"].as_str(), Some(id.as_str()));
    s.stop().await;
}

#[tokio::test]
async fn sixty_four_concurrent_senders_keep_room_seq_gapless_and_unique() {
    let s = TestServer::start().await;
    let owner = User::new(&s, "owner", "acme");
    let names: Vec<String> = (0..64).map(|i| format!("sender-{i}")).collect();
    let room = owner
        .group(&names.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let senders: Vec<User> = names.iter().map(|n| User::new(&s, n, "acme")).collect();
    let path = format!("/chat/rooms/{room}/messages");
    let replies = join_all(senders.iter().enumerate().map(|(i, u)| {
        u.send(
            "POST",
            &path,
            Some(json!({"body_text": format!("hello {i}"), "client_message_id": format!("m-{i}")})),
        )
    }))
    .await;
    let mut seqs: Vec<i64> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.text());
            r.json()["data"]["room_seq"].as_i64().unwrap()
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=64).collect::<Vec<i64>>());
    assert_eq!(
        s.scalar("SELECT count(DISTINCT room_seq) FROM athena_chat.messages")
            .await,
        64
    );
    assert_eq!(
        s.scalar("SELECT last_message_seq FROM athena_chat.rooms")
            .await,
        64
    );
    s.stop().await;
}

/// Retries of one `client_message_id` racing each other (the send is one
/// statement: a retry whose snapshot predates the first commit hits the
/// unique index and is run again): one message, every retry answers it; a
/// different body under the same id is a 409.
#[tokio::test]
async fn concurrent_retries_of_one_client_message_id_are_one_message() {
    let s = TestServer::start().await;
    let alice = User::new(&s, "alice", "acme");
    let room = alice.group(&["bob"]).await;
    let path = format!("/chat/rooms/{room}/messages");
    let body = json!({"body_text": "once", "client_message_id": "retry-1"});
    let replies = join_all((0..16).map(|_| alice.send("POST", &path, Some(body.clone())))).await;
    let ids: std::collections::HashSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.text());
            let m = &r.json()["data"];
            assert_eq!(m["room_seq"], 1, "{m}");
            m["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.messages").await,
        1
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.outbox WHERE kind = 'message.created'")
            .await,
        1
    );
    let other = json!({"body_text": "another", "client_message_id": "retry-1"});
    let r = alice.send("POST", &path, Some(other)).await;
    assert_eq!(r.status, 409, "{}", r.text());
    // The sequence goes on from the one message.
    let next = alice.say(&room, "next").await;
    assert_eq!(next["room_seq"], 2, "{next}");
    assert_eq!(
        s.scalar("SELECT last_message_seq FROM athena_chat.rooms")
            .await,
        2
    );
    s.stop().await;
}

#[tokio::test]
async fn attachments_are_managed_files_the_sender_may_read() {
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let files = Files::new(&s).await;
    let file = files
        .upload(&files.user("alice", "acme"), "chat/a.txt", b"attached")
        .await;
    let alice = User::new(&s, "alice", "acme");
    let bob = User::new(&s, "bob", "acme");
    let room = alice.group(&["bob"]).await;
    let path = format!("/chat/rooms/{room}/messages");
    let m = alice
        .expect(
            "POST",
            &path,
            Some(
                json!({"body_text": "see file", "attachments": [{"file_id": file, "ordinal": 0}]}),
            ),
            201,
        )
        .await;
    let a = &m["data"]["attachments"][0];
    assert_eq!(a["file_id"], json!(file));
    assert_eq!(
        a["authorized_url_path"],
        json!(format!("/storage/files/{file}/url"))
    );
    assert_eq!(a["file_name"], "a.txt");
    // Bob may not read alice's private file: 404, nothing written.
    bob.expect(
        "POST",
        &path,
        Some(json!({"body_text": "mine", "attachments": [{"file_id": file, "ordinal": 0}]})),
        404,
    )
    .await;
    bob.expect(
        "POST",
        &path,
        Some(json!({"body_text": "x", "attachments": [{"file_id": "nope", "ordinal": 0}]})),
        404,
    )
    .await;
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.messages").await,
        1
    );
    assert!(a["bucket"].is_null() && a["storage_key"].is_null(), "{a}");
    assert_eq!(a["size_bytes"], 8, "{a}");
    // Bob may not read the file: its id and URL paths only, no details.
    let page = bob.expect("GET", &path, None, 200).await;
    let b = &page["items"][0]["attachments"][0];
    assert_eq!(b["file_id"], json!(file));
    assert_eq!(
        b["authorized_url_path"],
        json!(format!("/storage/files/{file}/url"))
    );
    for hidden in [
        "file_name",
        "original_name",
        "size_bytes",
        "mime_type",
        "bucket",
        "storage_key",
    ] {
        assert!(b[hidden].is_null(), "{hidden}: {b}");
    }
    // Alice still sees them when listing.
    let page = alice.expect("GET", &path, None, 200).await;
    let a = &page["items"][0]["attachments"][0];
    assert_eq!(
        (a["file_name"].as_str(), a["size_bytes"].as_i64()),
        (Some("a.txt"), Some(8))
    );
    assert!(a["bucket"].is_null() && a["storage_key"].is_null(), "{a}");
    // One file attached twice to one message: 400.
    alice
        .expect(
            "POST",
            &path,
            Some(json!({"body_text": "twice", "attachments": [
                {"file_id": file, "ordinal": 0}, {"file_id": file, "ordinal": 1}]})),
            400,
        )
        .await;
    s.stop().await;
}

/// The gateway's own schemas (`athena_chat`, `billing`) are not app data:
/// the data plane answers them as unknown tables (404) and management DDL
/// refuses them (400); nothing is read or written.
#[tokio::test]
async fn chat_and_billing_tables_are_out_of_the_data_plane_and_management() {
    let s = TestServer::start().await;
    let alice = User::new(&s, "alice", "acme");
    let room = alice.group(&["bob"]).await;
    alice.say(&room, "org secret").await;
    let h = [("x-athena-client", CLIENT)];
    for table in [
        "athena_chat.messages",
        "athena_chat.members",
        "billing.billing_payments",
    ] {
        let r = s
            .send(
                "POST",
                "/gateway/fetch",
                &h,
                Some(json!({"table_name": table})),
            )
            .await;
        assert_eq!(r.status, 404, "fetch {table}: {}", r.text());
        r.envelope();
        let r = s.send("GET", &format!("/rest/v1/{table}"), &h, None).await;
        assert_eq!(r.status, 404, "rest {table}: {}", r.text());
        assert!(!r.text().contains("org secret"));
        for body in [
            json!({"driver": "postgresql", "db_name": CLIENT, "table_name": table}),
            json!({"driver": "postgresql", "db_name": CLIENT, "query": format!("SELECT COUNT(*) FROM {table}")}),
        ] {
            let r = s.send("POST", "/query/count", &h, Some(body.clone())).await;
            assert_eq!(r.status, 404, "count {body}: {}", r.text());
        }
    }
    let members = json!({"room_id": room, "user_id": "mallory", "role": "owner"});
    for (method, path, body) in [
        (
            "PUT",
            "/gateway/insert",
            json!({"table_name": "athena_chat.members", "insert_body": members}),
        ),
        (
            "POST",
            "/gateway/update",
            json!({"table_name": "athena_chat.members", "update_body": {"role": "owner"},
                   "conditions": [{"operator": "eq", "column": "user_id", "value": "bob"}]}),
        ),
        (
            "DELETE",
            "/gateway/delete",
            json!({"table_name": "athena_chat.messages", "resource_id": room}),
        ),
    ] {
        let r = s.send(method, path, &h, Some(body)).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
    }
    let r = s
        .send(
            "POST",
            "/rest/v1/athena_chat.members",
            &h,
            Some(json!({"room_id": room, "user_id": "mallory", "role": "owner"})),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.members WHERE role = 'owner'")
            .await,
        1
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.members").await,
        2
    );

    let key = s
        .api_key(
            &[
                "management.read",
                "management.tables.write",
                "management.tables.drop",
                "management.indexes.write",
                "management.views.write",
            ],
            Some(CLIENT),
        )
        .await;
    let mh = [("x-athena-client", CLIENT), ("apikey", key.as_str())];
    let column = json!([{"name": "id", "data_type": "integer"}]);
    for (method, path, body) in [
        (
            "POST",
            "/management/tables",
            json!({"schema_name": "athena_chat", "table_name": "x", "columns": column}),
        ),
        (
            "PATCH",
            "/management/tables/messages",
            json!({"schema_name": "athena_chat", "operations": [
                {"type": "add_column", "column": {"name": "x", "data_type": "integer"}}]}),
        ),
        (
            "DELETE",
            "/management/tables/messages",
            json!({"schema_name": "athena_chat"}),
        ),
        (
            "DELETE",
            "/management/tables/billing_payments",
            json!({"schema_name": "billing"}),
        ),
        (
            "POST",
            "/management/indexes",
            json!({"schema_name": "billing", "table_name": "billing_payments", "columns": ["id"]}),
        ),
        (
            "POST",
            "/management/views",
            json!({"schema_name": "athena_chat", "view_name": "leak", "query": "SELECT 1"}),
        ),
    ] {
        let r = s.send(method, path, &mh, Some(body)).await;
        assert_eq!(r.status, 400, "{method} {path}: {}", r.text());
        r.envelope();
    }
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.messages").await,
        1
    );
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM information_schema.columns
              WHERE table_schema = 'athena_chat' AND table_name = 'messages' AND column_name = 'x'"
        )
        .await,
        0
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM pg_class WHERE relname IN ('x', 'leak')")
            .await,
        0
    );
    assert_eq!(
        s.scalar("SELECT (to_regclass('billing.billing_payments') IS NOT NULL)::int::int8")
            .await,
        1
    );
    s.stop().await;
}

/// The dm pair is ordered by bytes in Rust and in the database alike
/// (`COLLATE "C"`): "Bob" and "alice" (which en_US orders the other way)
/// make one room.
#[tokio::test]
async fn a_dm_between_mixed_case_ids_is_one_room() {
    let s = TestServer::start().await;
    let bob = User::new(&s, "Bob", "acme");
    let alice = User::new(&s, "alice", "acme");
    let body = json!({"participant_user_ids": ["Bob", "alice"]});
    let one = bob
        .expect(
            "POST",
            "/chat/rooms/direct/resolve",
            Some(body.clone()),
            200,
        )
        .await;
    let two = alice
        .expect("POST", "/chat/rooms/direct/resolve", Some(body), 200)
        .await;
    assert_eq!(one["id"], two["id"]);
    alice
        .expect(
            "POST",
            "/chat/rooms",
            Some(json!({"kind": "dm", "member_user_ids": ["Bob"]})),
            409,
        )
        .await;
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.rooms WHERE dm_user_low = 'Bob' AND dm_user_high = 'alice'")
            .await,
        1
    );
    // Whatever the database's collation: the pair columns compare bytes.
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM information_schema.columns
              WHERE table_schema = 'athena_chat' AND table_name = 'rooms'
                AND column_name IN ('dm_user_low', 'dm_user_high') AND collation_name = 'C'"
        )
        .await,
        2
    );
    s.stop().await;
}

/// A send waiting for the room lock while the member is removed reads the
/// membership after the lock: 403, nothing written.
#[tokio::test]
async fn a_member_removed_while_a_send_waits_cannot_send() {
    let s = TestServer::start().await;
    let alice = User::new(&s, "alice", "acme");
    let bob = User::new(&s, "bob", "acme");
    let room = alice.group(&["bob"]).await;
    bob.say(&room, "before").await;
    let mut t = s.tenant().await;
    let tx = t.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM athena_chat.rooms WHERE id = $1::text::uuid FOR UPDATE",
        &[&room],
    )
    .await
    .unwrap();
    tx.execute(
        "DELETE FROM athena_chat.members WHERE room_id = $1::text::uuid AND user_id = 'bob'",
        &[&room],
    )
    .await
    .unwrap();
    let path = format!("/chat/rooms/{room}/messages");
    let (reply, _) = tokio::join!(
        bob.send("POST", &path, Some(json!({"body_text": "after"}))),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            tx.commit().await.unwrap();
        }
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.messages").await,
        1
    );
    s.stop().await;
}

/// `who` reacts `e{i}` to the message of `path`; the answer must be `status`.
async fn react(who: &User<'_>, path: &str, i: usize, status: u16) -> Value {
    let body = json!({"emoji": format!("e{i}")});
    who.expect("POST", path, Some(body), status).await
}

/// Reactions are bounded: 20 distinct emoji per user and 50 per message
/// (409 above); repeating one that exists is still fine.
#[tokio::test]
async fn reactions_are_capped_per_user_and_per_message() {
    let s = TestServer::start().await;
    let alice = User::new(&s, "alice", "acme");
    let bob = User::new(&s, "bob", "acme");
    let carol = User::new(&s, "carol", "acme");
    let room = alice.group(&["bob", "carol"]).await;
    let id = alice.say(&room, "react to me").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/chat/messages/{id}/reactions");
    for i in 0..20 {
        react(&alice, &path, i, 200).await;
    }
    react(&alice, &path, 20, 409).await;
    react(&alice, &path, 0, 200).await;
    for i in 20..40 {
        react(&bob, &path, i, 200).await;
    }
    for i in 40..50 {
        react(&carol, &path, i, 200).await;
    }
    let r = react(&carol, &path, 50, 409).await;
    assert!(r["message"].as_str().is_some(), "{r}");
    // An existing group can still be joined.
    let r = react(&carol, &path, 0, 200).await;
    assert_eq!(r["reactions"].as_array().map(Vec::len), Some(50), "{r}");
    assert_eq!(
        s.scalar("SELECT count(DISTINCT emoji) FROM athena_chat.reactions")
            .await,
        50
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.reactions").await,
        51
    );
    s.stop().await;
}

/// Nits: the owner cannot remove themselves, an edit cannot empty a
/// message.
#[tokio::test]
async fn the_owner_stays_and_edits_keep_a_body() {
    let s = TestServer::start().await;
    let alice = User::new(&s, "alice", "acme");
    let room = alice.group(&["bob"]).await;
    alice
        .expect(
            "DELETE",
            &format!("/chat/rooms/{room}/members/alice"),
            None,
            400,
        )
        .await;
    assert_eq!(
        s.scalar(
            "SELECT count(*) FROM athena_chat.members WHERE user_id = 'alice' AND role = 'owner'"
        )
        .await,
        1
    );
    let m = alice.say(&room, "keep me").await;
    let path = format!("/chat/rooms/{room}/messages/{}", m["id"].as_str().unwrap());
    alice
        .expect("PATCH", &path, Some(json!({"body_text": "  "})), 400)
        .await;
    assert_eq!(
        s.scalar("SELECT count(*) FROM athena_chat.messages WHERE body_text = 'keep me' AND edited_at IS NULL")
            .await,
        1
    );
    let r = alice
        .expect("PATCH", &path, Some(json!({"body_text": "kept"})), 200)
        .await;
    assert_eq!(r["body_text"], "kept");
    s.stop().await;
}

/// A schema `athena_chat` prepared by another role is refused like
/// `athena`: the chat store is unavailable (503), nothing is created in it.
#[tokio::test]
async fn a_chat_schema_owned_by_another_role_is_refused() {
    let s = TestServer::start().await;
    s.tenant()
        .await
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE athena_chat_other NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
             CREATE SCHEMA athena_chat AUTHORIZATION athena_chat_other;",
        )
        .await
        .unwrap();
    let alice = User::new(&s, "alice", "acme");
    alice
        .expect(
            "POST",
            "/chat/rooms",
            Some(json!({"kind": "group", "title": "t", "member_user_ids": []})),
            503,
        )
        .await;
    assert_eq!(
        s.scalar("SELECT (to_regclass('athena_chat.rooms') IS NULL)::int::int8")
            .await,
        1
    );
    s.stop().await;
}

/// Under key enforcement chat needs a key with `chat.use` besides the end
/// user: bearer only → 401, a key without the right → 403, with it → 200.
#[tokio::test]
async fn chat_under_key_enforcement_needs_chat_use() {
    let s = TestServer::start().await;
    s.enforce_keys(true).await;
    let auth = format!("Bearer {}", jwt("alice", "acme"));
    let rooms = |key: Option<String>| {
        let auth = auth.clone();
        let s = &s;
        async move {
            let mut h = vec![
                ("x-athena-client", CLIENT),
                ("authorization", auth.as_str()),
            ];
            if let Some(k) = key.as_deref() {
                h.push(("apikey", k));
            }
            s.send("GET", "/chat/rooms", &h, None).await
        }
    };
    let r = rooms(None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let without = s.api_key(&["gateway.fetch.execute"], Some(CLIENT)).await;
    let r = rooms(Some(without)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let with = s.api_key(&["chat.use"], Some(CLIENT)).await;
    let r = rooms(Some(with)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["items"], json!([]));
    s.stop().await;
}
