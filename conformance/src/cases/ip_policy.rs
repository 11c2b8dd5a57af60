//! Family `admin_ip_lists`: per-key IP lists, virgin lock-in and the
//! global lists (issue 13). Every write is read back through the API
//! (`ip-policy`, `ip-seen`, the global list). The addresses are from the
//! documentation ranges (203.0.113.0/24, 198.51.100.0/24), never the
//! suite's own loopback address, so no rule here refuses another case;
//! each global case has an address of its own (cases run concurrently) and
//! removes what it added. Virgin keys learn the suite's address from one
//! fetch with the key (the policy applies to every request presenting a
//! key, enforced or not).

use super::{envelope, expect_eq, Case, Ctx, TABLE};
use crate::http::{Request, Response};
use crate::rights;
use serde_json::{json, Value};

fn unique(prefix: &str) -> String {
    format!("conf.ip.{prefix}.{}", uuid::Uuid::new_v4().simple())
}

/// Setup step 0: a fetch key with these IP settings.
fn new_key(ctx: &Ctx, name: &str, extra: Value) -> Request {
    let mut body = json!({"name": unique(name), "rights": [rights::FETCH]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    ctx.request("post", "/admin/api-keys").json(body)
}

/// Setup step 1 of virgin cases: one fetch with key 0 (learns the suite's
/// address).
fn fetch_with_key(ctx: &Ctx) -> Request {
    ctx.request("post", "/gateway/fetch")
        .header("X-Athena-Key", "{{0.api_key}}")
        .json(json!({"table_name": TABLE, "columns": ["id"], "limit": 1}))
}

/// A data-plane refusal by the IP policy.
fn refused(r: &Response) -> Result<(), String> {
    envelope(r)?;
    expect_eq("code", &r.json()?["code"], &json!("ip_not_allowed"))
}

fn policy(ctx: &Ctx) -> Request {
    ctx.request("get", "/admin/api-keys/{{0.record.id}}/ip-policy")
}

fn addrs(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|r| r["addr"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn has_list(
    field: &'static str,
    want: &'static [&'static str],
) -> impl Fn(&Value) -> Result<(), String> + Send + Sync {
    move |b| {
        expect_eq(
            field,
            addrs(&b["data"][field]),
            want.iter().map(|s| s.to_string()).collect(),
        )
    }
}

fn global_has(addr: String, present: bool) -> impl Fn(&Value) -> Result<(), String> + Send + Sync {
    move |b| {
        let records = b["data"]["records"].as_array().ok_or("no data.records")?;
        let found = records.iter().any(|r| r["addr"] == addr.as_str());
        expect_eq(&format!("{addr} listed"), found, present)
    }
}

pub fn cases(ctx: &Ctx) -> Vec<Case> {
    let mut cases = key_cases(ctx);
    for (list, base) in [("whitelist", "203.0.113"), ("blacklist", "198.51.100")] {
        cases.extend(global_cases(ctx, list, base));
    }
    cases
}

fn key_cases(ctx: &Ctx) -> Vec<Case> {
    vec![
        Case::new(
            "get_admin_api_keys_by_id_ip_policy",
            "a key's lists and virgin state",
            policy(ctx),
            200,
        )
        .after(new_key(
            ctx,
            "policy",
            json!({"ip_whitelist": ["203.0.113.7"], "ip_blacklist": ["198.51.100.0/24"], "max_whitelist_ips": 3}),
        ))
        .check_json(|b| {
            let p = &b["data"];
            expect_eq("whitelist", addrs(&p["whitelist"]), vec!["203.0.113.7/32".to_string()])?;
            expect_eq("blacklist", addrs(&p["blacklist"]), vec!["198.51.100.0/24".to_string()])?;
            expect_eq("cap", &p["policy"]["max_whitelist_ips"], &json!(3))?;
            expect_eq("virgin_mode", &p["policy"]["virgin_mode"], &json!(false))
        }),
        Case::new(
            "get_admin_api_keys_by_id_ip_policy",
            "a non-UUID id is 400",
            ctx.request("get", "/admin/api-keys/not-a-uuid/ip-policy"),
            400,
        )
        .check(envelope),
        Case::new(
            "get_admin_api_keys_by_id_ip_policy",
            "an unknown key is 404",
            ctx.request(
                "get",
                "/admin/api-keys/00000000-0000-0000-0000-000000000000/ip-policy",
            ),
            404,
        )
        .check(envelope),
        // The data plane: a key created with a blacklist holding the
        // suite's own (loopback) address is refused there.
        Case::new(
            "post_gateway_fetch",
            "a key refused for the caller's address (IP policy)",
            fetch_with_key(ctx),
            403,
        )
        .after(new_key(ctx, "refused", json!({"ip_blacklist": ["127.0.0.0/8", "::1"]})))
        .check(refused)
        .then_json(policy(ctx), 200, has_list("blacklist", &["127.0.0.0/8", "::1/128"])),
        Case::new(
            "post_admin_api_keys_by_id_ip_whitelist",
            "add whitelist entries",
            ctx.request("post", "/admin/api-keys/{{0.record.id}}/ip-whitelist")
                .json(json!({"addrs": ["203.0.113.8", "203.0.113.64/26"], "label": "office"})),
            200,
        )
        .after(new_key(ctx, "wl.add", json!({})))
        .then_json(
            policy(ctx),
            200,
            has_list("whitelist", &["203.0.113.64/26", "203.0.113.8/32"]),
        )
        // The suite's own address is not on it.
        .then(fetch_with_key(ctx), 403, refused),
        Case::new(
            "post_admin_api_keys_by_id_ip_whitelist",
            "a bad entry stores nothing",
            ctx.request("post", "/admin/api-keys/{{0.record.id}}/ip-whitelist")
                .json(json!({"addrs": ["203.0.113.8", "203.0.113.300"]})),
            400,
        )
        .after(new_key(ctx, "wl.bad", json!({})))
        .check(envelope)
        .then_json(policy(ctx), 200, has_list("whitelist", &[])),
        Case::new(
            "delete_admin_api_keys_by_id_ip_whitelist",
            "remove whitelist entries",
            ctx.request("delete", "/admin/api-keys/{{0.record.id}}/ip-whitelist")
                .json(json!({"addrs": ["203.0.113.9"]})),
            200,
        )
        .after(new_key(ctx, "wl.del", json!({"ip_whitelist": ["203.0.113.9", "203.0.113.10"]})))
        .then_json(policy(ctx), 200, has_list("whitelist", &["203.0.113.10/32"])),
        Case::new(
            "post_admin_api_keys_by_id_ip_blacklist",
            "add blacklist entries",
            ctx.request("post", "/admin/api-keys/{{0.record.id}}/ip-blacklist")
                .json(json!({"addrs": ["198.51.100.7", "2001:db8::/32", "127.0.0.0/8", "::1"]})),
            200,
        )
        .after(new_key(ctx, "bl.add", json!({})))
        .then_json(
            policy(ctx),
            200,
            has_list(
                "blacklist",
                &["127.0.0.0/8", "198.51.100.7/32", "2001:db8::/32", "::1/128"],
            ),
        )
        // The suite's own (loopback) address is now refused for this key.
        .then(fetch_with_key(ctx), 403, refused),
        Case::new(
            "delete_admin_api_keys_by_id_ip_blacklist",
            "remove blacklist entries",
            ctx.request("delete", "/admin/api-keys/{{0.record.id}}/ip-blacklist")
                .json(json!({"addrs": ["198.51.100.8", "198.51.100.99"]})),
            200,
        )
        .after(new_key(ctx, "bl.del", json!({"ip_blacklist": ["198.51.100.8"]})))
        .then_json(policy(ctx), 200, has_list("blacklist", &[])),
        Case::new(
            "get_admin_api_keys_by_id_ip_seen",
            "a virgin key's seen addresses",
            ctx.request("get", "/admin/api-keys/{{0.record.id}}/ip-seen")
                .query("limit", "10"),
            200,
        )
        .after(new_key(ctx, "seen", json!({"virgin_mode": true, "max_whitelist_ips": 5})))
        .after(fetch_with_key(ctx))
        .check_json(|b| {
            let records = b["data"]["records"].as_array().ok_or("no data.records")?;
            expect_eq("one address seen", records.len(), 1)?;
            expect_eq("hit_count", &records[0]["hit_count"], &json!(1))?;
            expect_eq("not locked in", &records[0]["locked_in"], &json!(false))
        }),
        Case::new(
            "post_admin_api_keys_by_id_virgin_promote",
            "lock a virgin key in now",
            ctx.request("post", "/admin/api-keys/{{0.record.id}}/virgin/promote"),
            200,
        )
        .after(new_key(ctx, "promote", json!({"virgin_mode": true, "max_whitelist_ips": 5})))
        .after(fetch_with_key(ctx))
        .then_json(policy(ctx), 200, |b| {
            let p = &b["data"];
            expect_eq("resolved", &p["policy"]["virgin_resolved"], &json!(true))?;
            expect_eq("one address whitelisted", addrs(&p["whitelist"]).len(), 1)
        })
        .then_json(
            ctx.request("get", "/admin/api-keys/{{0.record.id}}/ip-seen"),
            200,
            |b| expect_eq("locked_in", &b["data"]["records"][0]["locked_in"], &json!(true)),
        )
        // The learned address stays admitted.
        .then_status(fetch_with_key(ctx), 200),
        Case::new(
            "post_admin_api_keys_by_id_virgin_reset",
            "reset a virgin key and clear what it saw",
            ctx.request("post", "/admin/api-keys/{{0.record.id}}/virgin/reset")
                .json(json!({"clear_seen": true})),
            200,
        )
        .after(new_key(ctx, "reset", json!({"virgin_mode": true, "virgin_until_n_requests": 1})))
        .after(fetch_with_key(ctx))
        .then_json(
            ctx.request("get", "/admin/api-keys/{{0.record.id}}/ip-seen"),
            200,
            |b| expect_eq("seen cleared", &b["data"]["records"], &json!([])),
        )
        .then_json(policy(ctx), 200, |b| {
            let p = &b["data"];
            expect_eq("unresolved", &p["policy"]["virgin_resolved"], &json!(false))?;
            expect_eq("count zeroed", &p["policy"]["virgin_request_count"], &json!(0))?;
            expect_eq("learned entries gone", addrs(&p["whitelist"]).len(), 0)
        }),
    ]
}

/// The three cases of one global list, each on its own address of `base`.
fn global_cases(ctx: &Ctx, list: &'static str, base: &'static str) -> Vec<Case> {
    let path: &'static str = match list {
        "whitelist" => "/admin/ip-global-whitelist",
        _ => "/admin/ip-global-blacklist",
    };
    let addr = |n: u8| format!("{base}.{n}/32");
    let (listed, posted, deleted) = (addr(21), addr(22), addr(23));
    let post = |a: &str| {
        ctx.request("post", path)
            .json(json!({"addr": a, "label": "conformance"}))
    };
    let delete = |a: &str| ctx.request("delete", path).query("addr", a);
    let op = |method: &str| format!("{method}_admin_ip_global_{list}");
    vec![
        Case::new(
            &op("get"),
            "lists the global rules",
            ctx.request("get", path),
            200,
        )
        .after(post(&listed))
        .check_json(global_has(listed.clone(), true))
        .then_status(delete(&listed), 200),
        Case::new(&op("post"), "upserts a global rule", post(&posted), 200)
            .check_json({
                let posted = posted.clone();
                move |b| expect_eq("addr", &b["data"]["addr"], &json!(posted))
            })
            .then_json(
                ctx.request("get", path),
                200,
                global_has(posted.clone(), true),
            )
            .then_status(delete(&posted), 200)
            .then_json(ctx.request("get", path), 200, global_has(posted, false)),
        Case::new(
            &op("post"),
            "a bad address is 400",
            ctx.request("post", path)
                .json(json!({"addr": "203.0.113.1/8"})),
            400,
        )
        .check(envelope),
        Case::new(
            &op("delete"),
            "deletes a global rule",
            delete(&deleted),
            200,
        )
        .after(post(&deleted))
        .check_json(|b| expect_eq("deleted", &b["data"]["deleted"], &json!(1)))
        .then_json(ctx.request("get", path), 200, global_has(deleted, false)),
    ]
}
