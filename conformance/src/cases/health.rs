//! Health family: `/`, `/ping`, `/health`, `/metrics`.

use super::{Case, Ctx};
use serde_json::Value;

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    vec![
        Case::new(
            "get_root",
            "root lists routes",
            ctx.request("get", "/"),
            200,
        )
        .check_json(|b| {
            if !b.get("message").is_some_and(Value::is_string) {
                return Err("`message` is missing".into());
            }
            match b.get("routes").and_then(Value::as_array) {
                Some(r) if !r.is_empty() => Ok(()),
                _ => Err("`routes` is missing or empty".into()),
            }
        }),
        Case::new(
            "get_ping",
            "ping answers pong",
            ctx.request("get", "/ping"),
            200,
        )
        .check(|r| {
            super::expect_eq("body", r.text().trim(), "pong")?;
            match r.content_type() {
                Some(ct) if ct.starts_with("text/plain") => Ok(()),
                other => Err(format!("content-type {other:?}, want text/plain")),
            }
        }),
        Case::new(
            "get_health",
            "health has a status",
            ctx.request("get", "/health"),
            200,
        )
        .check_json(|b| match b.get("status").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => Ok(()),
            _ => Err("`status` is missing".into()),
        }),
        Case::new(
            "get_metrics",
            "metrics expose request durations",
            ctx.request("get", "/metrics"),
            200,
        )
        .check(|r| {
            let text = r.text();
            if !text.contains("athena_http_server_request_duration_seconds") {
                return Err("athena_http_server_request_duration_seconds is missing".into());
            }
            Ok(())
        })
        .late(),
    ]
}
