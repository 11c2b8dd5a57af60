//! End users by session token (`src/auth/session.rs`): a fake auth service
//! on 127.0.0.1 (`ATHENA_AUTH_URL`, allow-listed for the outbound policy)
//! answers better-auth's `get-session` for the cookie it is sent. Proves
//! the header and the cookie forms, refusals (unknown, expired, malformed,
//! unconfigured), the 503 of an auth service that fails, and the short
//! cache of answers.

use crate::common::files::Files;
use crate::common::{allow, TestServer, CLIENT};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The fake auth service: `good` is sam of acme, `elsewhere` is kim of
/// globex, `expired` ended an hour ago, `broken` makes it answer 500;
/// anything else is `null`. Counts the requests it gets.
#[derive(Clone, Default)]
struct FakeAuth {
    asked: Arc<AtomicUsize>,
    cookies: Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeAuth {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let me = me.clone();
                        async move {
                            let _: &hyper::body::Incoming = req.body();
                            me.asked.fetch_add(1, Ordering::SeqCst);
                            let cookie = req
                                .headers()
                                .get("cookie")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string();
                            me.cookies.lock().unwrap().push(cookie.clone());
                            let token = cookie.split_once('=').map(|(_, v)| v).unwrap_or("");
                            let session =
                                |user: &str, org: &str, expires: chrono::DateTime<chrono::Utc>| {
                                    json!({
                                        "session": { "id": "s1", "userId": user, "activeOrganizationId": org, "expiresAt": expires },
                                        "user": { "id": user, "email": "sam@example.com" },
                                    })
                                };
                            let later = chrono::Utc::now() + chrono::Duration::hours(1);
                            let (status, answer) = match (req.uri().path(), token) {
                                ("/api/auth/get-session", "good") => {
                                    (200, session("sam", "acme", later))
                                }
                                ("/api/auth/get-session", "elsewhere") => {
                                    (200, session("kim", "globex", later))
                                }
                                ("/api/auth/get-session", "expired") => (
                                    200,
                                    session(
                                        "sam",
                                        "acme",
                                        chrono::Utc::now() - chrono::Duration::hours(1),
                                    ),
                                ),
                                ("/api/auth/get-session", "broken") => {
                                    (500, json!({"error": "boom"}))
                                }
                                ("/api/auth/get-session", _) => (200, Value::Null),
                                _ => (404, json!({})),
                            };
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(answer.to_string())))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        format!("http://{addr}/api/auth")
    }
}

fn with_session(f: &Files<'_>, how: &str, token: &str) -> Vec<(String, String)> {
    let mut h = vec![
        ("x-athena-key".to_string(), f.key.clone()),
        ("x-athena-client".to_string(), CLIENT.to_string()),
    ];
    match how {
        "header" => h.push(("x-athena-auth-session-token".into(), token.into())),
        cookie => h.push(("cookie".into(), format!("theme=dark; {cookie}={token}"))),
    }
    h
}

#[tokio::test]
async fn session_tokens_resolve_at_the_auth_service() {
    let fake = FakeAuth::default();
    let url = fake.start().await;
    let s = TestServer::start_with(|c| {
        allow(c, "127.0.0.1");
        c.auth_url = Some(url);
    })
    .await;
    let f = Files::new(&s).await;

    // The header form and the SDK's cookie names: sam of acme uploads, and
    // is the same user whichever way the token comes.
    let id = f
        .upload(
            &with_session(&f, "header", "good"),
            "sess/a.txt",
            b"session bytes",
        )
        .await;
    for how in ["athena-auth.session-token", "better-auth.session_token"] {
        let r = f
            .send(
                "GET",
                &format!("/storage/files/{id}"),
                &with_session(&f, how, "good"),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{how}: {}", r.text());
        assert_eq!(r.json()["data"]["file"]["uploaded_by_user_id"], "sam");
        assert_eq!(r.json()["data"]["file"]["organization_id"], "acme");
    }
    // The cookie sent on is the session cookie alone, under its own name.
    assert!(fake
        .cookies
        .lock()
        .unwrap()
        .iter()
        .all(|c| !c.contains("theme")));

    // Answers are kept briefly: repeating a resolved token does not ask again.
    let before = fake.asked.load(Ordering::SeqCst);
    for _ in 0..5 {
        let r = f
            .send(
                "GET",
                &format!("/storage/files/{id}"),
                &with_session(&f, "header", "good"),
                None,
            )
            .await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(fake.asked.load(Ordering::SeqCst), before);

    // Another organization's session sees nothing (404, no existence leak).
    let r = f
        .send(
            "GET",
            &format!("/storage/files/{id}"),
            &with_session(&f, "header", "elsewhere"),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // Unknown, expired and malformed tokens: 401; a failing service: 503.
    for (token, status) in [
        ("nobody", 401),
        ("expired", 401),
        ("a;b", 401),
        ("broken", 503),
    ] {
        let r = f
            .send(
                "GET",
                &format!("/storage/files/{id}"),
                &with_session(&f, "header", token),
                None,
            )
            .await;
        assert_eq!(r.status, status, "{token}: {}", r.text());
        assert_eq!(r.json()["status"], "error", "{token}: the envelope");
    }
}

#[tokio::test]
async fn session_tokens_need_a_configured_and_allowed_auth_service() {
    // Not configured: 401 saying so.
    let s = TestServer::start_with(|c| allow(c, "127.0.0.1")).await;
    let f = Files::new(&s).await;
    let r = f
        .send(
            "POST",
            "/storage/files/list",
            &with_session(&f, "header", "good"),
            Some(json!({ "s3_id": f.s3_id, "prefix": "" })),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("ATHENA_AUTH_URL"), "{}", r.text());
    drop(f);
    drop(s);

    // Configured, but the outbound policy does not allow its address: the
    // auth service is never reached, and the answer is a 503.
    let fake = FakeAuth::default();
    let url = fake.start().await;
    let s = TestServer::start_with(|c| c.auth_url = Some(url)).await;
    let r = s
        .send(
            "POST",
            "/storage/files/list",
            &[
                ("x-athena-key", crate::common::ADMIN_KEY),
                ("x-athena-client", CLIENT),
                ("x-athena-auth-session-token", "good"),
            ],
            Some(json!({ "s3_id": uuid::Uuid::new_v4(), "prefix": "" })),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(fake.asked.load(Ordering::SeqCst), 0);
}
