//! Local fakes of the services the integrations of issue 21 call, on one
//! port, by path prefix: `/neon` (Neon REST v2), `/railway/graphql`
//! (Railway GraphQL), `/render` (Render REST v1), `/ts` (Typesense),
//! `/supabase` (Supabase Management API) and `/mirror` (a cluster mirror).
//! Shared by `tests/it/integrations.rs` (included with `#[path]`) and the
//! conformance cases (`cases/integrations.rs`); dependencies: hyper,
//! hyper-util, http-body-util, bytes, serde_json, tokio.
//!
//! Credentials it accepts: `NEON_KEY`, `RAILWAY_TOKEN`, `RENDER_KEY`,
//! `TS_KEY`, `SUPABASE_TOKEN`; anything else is a 401 with a message. The
//! providers hand out `uri` (a working PostgreSQL URI the test sets). A
//! Typesense collection whose name starts with `slow` takes 400 ms per
//! import (for 409 / cancel / kill). Supabase project `broken` answers 500.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub const NEON_KEY: &str = "neon-fake-key";
pub const RAILWAY_TOKEN: &str = "railway-fake-token";
pub const RENDER_KEY: &str = "render-fake-key";
pub const TS_KEY: &str = "ts-fake-key";
pub const SUPABASE_TOKEN: &str = "supabase-fake-token";

#[derive(Default)]
pub struct State {
    /// The URI every provider hands out.
    pub uri: String,
    /// Typesense: collection → id → document.
    pub collections: BTreeMap<String, BTreeMap<String, Value>>,
    /// Supabase: project ref → SSL enforced.
    pub ssl: HashMap<String, bool>,
    /// Every request seen: `METHOD path`.
    pub seen: Vec<String>,
    /// Neon hands out `sslmode=require&channel_binding=require` (real Neon)
    /// when set, else `sslmode=prefer`.
    pub require_tls: bool,
    /// Projects created (Neon and Railway): `(id, name)`; listed by name.
    pub projects: Vec<(String, String)>,
    /// Render databases created, by name (found again by `GET /postgres?name=`).
    pub render_created: Vec<String>,
    /// Render databases stay `creating` while set.
    pub render_hold: bool,
}

#[derive(Clone)]
pub struct Fake {
    pub port: u16,
    pub state: Arc<Mutex<State>>,
}

impl Fake {
    /// Serves on `listener` until the runtime ends.
    pub fn serve(listener: tokio::net::TcpListener, uri: String) -> Fake {
        let port = listener.local_addr().expect("bound").port();
        let state = Arc::new(Mutex::new(State {
            uri,
            ..State::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Fake { port, state }
    }

    /// Binds 127.0.0.1:0 and serves.
    pub async fn start(uri: String) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake");
        Fake::serve(listener, uri)
    }

    pub fn base(&self, prefix: &str) -> String {
        format!("http://127.0.0.1:{}{prefix}", self.port)
    }

    pub fn set_uri(&self, uri: &str) {
        self.state.lock().unwrap().uri = uri.to_string();
    }

    pub fn documents(&self, collection: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .collections
            .get(collection)
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn ssl(&self, project: &str) -> Option<bool> {
        self.state.lock().unwrap().ssl.get(project).copied()
    }
}

fn reply(status: u16, body: Value) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

fn text(status: u16, body: String) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body)))
        .expect("response")
}

/// `a=b&c=d` (percent- and `+`-decoded).
pub fn query_pairs(query: &str) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match std::str::from_utf8(&bytes[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = query_pairs(req.uri().query().unwrap_or(""));
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (bearer, ts_key) = (header("authorization"), header("x-typesense-api-key"));
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    state.lock().unwrap().seen.push(format!("{method} {path}"));
    let uri = state.lock().unwrap().uri.clone();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let json_body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match segments.first().copied() {
        Some("neon") => {
            if bearer != format!("Bearer {NEON_KEY}") {
                return reply(401, json!({"message": "invalid API key"}));
            }
            match (method.as_str(), &segments[1..]) {
                ("POST", ["projects"]) => {
                    let name = json_body
                        .pointer("/project/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    state
                        .lock()
                        .unwrap()
                        .projects
                        .push(("proj-created".into(), name.clone()));
                    reply(
                        201,
                        json!({"project": {"id": "proj-created", "name": name}}),
                    )
                }
                ("GET", ["projects"]) => {
                    let list: Vec<Value> = state
                        .lock()
                        .unwrap()
                        .projects
                        .iter()
                        .filter(|(id, _)| id.starts_with("proj-"))
                        .map(|(id, name)| json!({"id": id, "name": name}))
                        .collect();
                    reply(200, json!({"projects": list}))
                }
                ("GET", ["projects", "missing"]) => {
                    reply(404, json!({"message": "project not found"}))
                }
                ("GET", ["projects", "down"]) => reply(503, json!({"message": "maintenance"})),
                ("GET", ["projects", p]) => reply(200, json!({"project": {"id": p}})),
                ("GET", ["projects", _, "branches"]) => reply(
                    200,
                    json!({"branches": [{"id": "br-dev", "default": false},
                                        {"id": "br-main", "default": true}]}),
                ),
                ("GET", ["projects", _, "branches", _, "endpoints"]) => reply(
                    200,
                    json!({"endpoints": [{"id": "ep-ro", "type": "read_only"},
                                         {"id": "ep-rw", "type": "read_write"}]}),
                ),
                ("GET", ["projects", _, "branches", _, "roles"]) => reply(
                    200,
                    json!({"roles": [{"name": "web_access", "protected": true},
                                     {"name": "app_owner", "protected": false}]}),
                ),
                ("GET", ["projects", _, "branches", _, "databases"]) => {
                    reply(200, json!({"databases": [{"name": "neondb"}]}))
                }
                ("POST", ["projects", _, "branches", _, "databases"]) => {
                    reply(201, json!({"database": json_body.get("database")}))
                }
                ("GET", ["projects", _, "connection_uri"]) => {
                    let complete = ["branch_id", "endpoint_id", "database_name", "role_name"]
                        .iter()
                        .all(|k| query.contains_key(*k));
                    if !complete {
                        return reply(400, json!({"message": "missing parameters"}));
                    }
                    let tls = if state.lock().unwrap().require_tls {
                        "sslmode=require&channel_binding=require"
                    } else {
                        "sslmode=prefer"
                    };
                    reply(200, json!({"uri": format!("{uri}?{tls}")}))
                }
                _ => reply(404, json!({"message": "not found"})),
            }
        }
        Some("railway") => {
            if bearer != format!("Bearer {RAILWAY_TOKEN}") {
                return reply(200, json!({"errors": [{"message": "Not Authorized"}]}));
            }
            let q = json_body["query"].as_str().unwrap_or("");
            let vars = &json_body["variables"];
            if q.contains("projectCreate") {
                let name = vars
                    .pointer("/input/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                state
                    .lock()
                    .unwrap()
                    .projects
                    .push(("rp-created".into(), name));
                reply(
                    200,
                    json!({"data": {"projectCreate": {"id": "rp-created"}}}),
                )
            } else if q.contains("serviceCreate") {
                reply(
                    200,
                    json!({"data": {"serviceCreate": {"id": "svc-created"}}}),
                )
            } else if q.contains("pluginCreate") {
                reply(
                    200,
                    json!({"data": {"pluginCreate": {"id": "plg-created"}}}),
                )
            } else if q.contains("projects {") {
                let edges: Vec<Value> = state
                    .lock()
                    .unwrap()
                    .projects
                    .iter()
                    .filter(|(id, _)| id.starts_with("rp-"))
                    .map(|(id, name)| json!({"node": {"id": id, "name": name}}))
                    .collect();
                reply(200, json!({"data": {"projects": {"edges": edges}}}))
            } else if q.contains("project(id") {
                if vars["id"] == "missing" {
                    return reply(200, json!({"data": {"project": null}}));
                }
                reply(
                    200,
                    json!({"data": {"project": {"id": vars["id"], "name": "p",
                        "environments": {"edges": [{"node": {"id": "env-prod", "name": "production"}}]},
                        "services": {"edges": [{"node": {"id": "svc-pg", "name": "Postgres"}}]},
                        "plugins": {"edges": []}}}}),
                )
            } else if q.contains("variables(") {
                reply(
                    200,
                    json!({"data": {"variables": {"DATABASE_PUBLIC_URL": uri, "PGHOST": "x"}}}),
                )
            } else {
                reply(200, json!({"errors": [{"message": "unknown operation"}]}))
            }
        }
        Some("render") => {
            if bearer != format!("Bearer {RENDER_KEY}") {
                return reply(401, json!({"message": "Unauthorized"}));
            }
            match (method.as_str(), &segments[1..]) {
                ("GET", ["postgres"]) => {
                    let created = query
                        .get("name")
                        .is_some_and(|n| state.lock().unwrap().render_created.contains(n));
                    if created {
                        reply(
                            200,
                            json!([{"postgres": {"id": "dpg-created"}, "cursor": "c"}]),
                        )
                    } else if query.get("name").map(String::as_str) == Some("existing-db") {
                        reply(
                            200,
                            json!([{"postgres": {"id": "dpg-existing"}, "cursor": "c"}]),
                        )
                    } else {
                        reply(200, json!([]))
                    }
                }
                ("POST", ["postgres"]) => {
                    if json_body.get("ownerId").is_none() {
                        return reply(400, json!({"message": "ownerId is required"}));
                    }
                    if let Some(name) = json_body.get("name").and_then(Value::as_str) {
                        state.lock().unwrap().render_created.push(name.to_string());
                    }
                    reply(201, json!({"id": "dpg-created", "status": "creating"}))
                }
                ("GET", ["postgres", id]) => {
                    let status = if state.lock().unwrap().render_hold {
                        "creating"
                    } else {
                        "available"
                    };
                    reply(200, json!({"id": id, "status": status}))
                }
                ("GET", ["postgres", _, "connection-info"]) => reply(
                    200,
                    json!({"password": "x", "externalConnectionString": uri,
                           "internalConnectionString": "postgres://internal"}),
                ),
                _ => reply(404, json!({"message": "not found"})),
            }
        }
        Some("ts") => {
            if ts_key != TS_KEY {
                return reply(
                    401,
                    json!({"message": "Forbidden - a valid `x-typesense-api-key` header must be sent."}),
                );
            }
            match (method.as_str(), &segments[1..]) {
                ("GET", ["health"]) => reply(200, json!({"ok": true})),
                ("GET", ["collections"]) => {
                    let s = state.lock().unwrap();
                    let list: Vec<Value> = s
                        .collections
                        .iter()
                        .map(|(name, docs)| json!({"name": name, "num_documents": docs.len(), "fields": []}))
                        .collect();
                    reply(200, Value::Array(list))
                }
                ("POST", ["collections"]) => {
                    let name = json_body["name"].as_str().unwrap_or("").to_string();
                    let mut s = state.lock().unwrap();
                    if s.collections.contains_key(&name) {
                        return reply(409, json!({"message": "already exists"}));
                    }
                    s.collections.insert(name.clone(), BTreeMap::new());
                    reply(201, json!({"name": name}))
                }
                ("GET", ["collections", c]) => {
                    let s = state.lock().unwrap();
                    match s.collections.get(*c) {
                        Some(docs) => reply(200, json!({"name": c, "num_documents": docs.len()})),
                        None => reply(404, json!({"message": "Not Found"})),
                    }
                }
                ("POST", ["collections", c, "documents", "import"]) => {
                    if c.starts_with("slow") {
                        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
                    }
                    let mut lines = Vec::new();
                    let mut s = state.lock().unwrap();
                    let Some(docs) = s.collections.get_mut(*c) else {
                        return reply(404, json!({"message": "Not Found"}));
                    };
                    for line in String::from_utf8_lossy(&body).lines() {
                        match serde_json::from_str::<Value>(line) {
                            // Like Typesense, a failed line echoes the document.
                            Ok(doc) if doc["reject"] == json!(true) => lines.push(
                                json!({"success": false, "code": 400,
                                       "error": "Field `reject` is not allowed", "document": line})
                                .to_string(),
                            ),
                            Ok(doc) if doc["id"].is_string() => {
                                docs.insert(doc["id"].as_str().unwrap().to_string(), doc);
                                lines.push(json!({"success": true}).to_string());
                            }
                            _ => lines.push(
                                json!({"success": false, "error": "Document is missing `id`"})
                                    .to_string(),
                            ),
                        }
                    }
                    text(200, lines.join("\n"))
                }
                ("GET", ["collections", c, "documents", "search"]) => {
                    let s = state.lock().unwrap();
                    let Some(docs) = s.collections.get(*c) else {
                        return reply(404, json!({"message": "Not Found"}));
                    };
                    let q = query.get("q").cloned().unwrap_or_default().to_lowercase();
                    let Some(fields) = query.get("query_by") else {
                        return reply(400, json!({"message": "Parameter `query_by` is required."}));
                    };
                    let hits: Vec<Value> = docs
                        .values()
                        .filter(|d| {
                            q == "*"
                                || fields.split(',').any(|f| {
                                    d[f].as_str().is_some_and(|v| v.to_lowercase().contains(&q))
                                })
                        })
                        .map(|d| json!({"document": d}))
                        .collect();
                    reply(
                        200,
                        json!({"found": hits.len(), "hits": hits,
                               "page": query.get("page").and_then(|p| p.parse::<i64>().ok()).unwrap_or(1)}),
                    )
                }
                _ => reply(404, json!({"message": "Not Found"})),
            }
        }
        Some("supabase") => {
            if bearer != format!("Bearer {SUPABASE_TOKEN}") {
                return reply(401, json!({"message": "Unauthorized"}));
            }
            match (method.as_str(), &segments[1..]) {
                ("PUT", ["v1", "projects", "broken", "ssl-enforcement"]) => {
                    reply(500, json!({"message": "internal error"}))
                }
                ("PUT", ["v1", "projects", r, "ssl-enforcement"]) => {
                    let Some(enabled) = json_body
                        .pointer("/requestedConfig/database")
                        .and_then(Value::as_bool)
                    else {
                        return reply(
                            400,
                            json!({"message": "requestedConfig.database is required"}),
                        );
                    };
                    state.lock().unwrap().ssl.insert(r.to_string(), enabled);
                    reply(
                        200,
                        json!({"currentConfig": {"database": enabled}, "appliedSuccessfully": true}),
                    )
                }
                _ => reply(404, json!({"message": "not found"})),
            }
        }
        Some("mirror-big") => text(200, "x".repeat(100 * 1024)),
        Some("mirror") => reply(
            200,
            json!({"message": "athena mirror", "cargo_toml_version": "9.9.9", "padding": "x".repeat(2048)}),
        ),
        _ => reply(404, json!({"message": "not found"})),
    }
}
