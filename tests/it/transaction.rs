//! `POST /gateway/transaction` (the SDK's `athena.db.transaction`): ordered
//! operations on one connection that commit together or not at all, with
//! the SDK's positional `results`, per-kind rights, options and
//! idempotency keys.

use crate::common;

use common::{TestServer, ADMIN_KEY, CLIENT};
use serde_json::{json, Value};
use std::sync::Arc;

const H: [(&str, &str); 1] = [("x-athena-client", CLIENT)];

async fn fixture(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE accounts (id serial PRIMARY KEY, owner text UNIQUE NOT NULL, balance numeric NOT NULL DEFAULT 0);
             INSERT INTO accounts (owner, balance) VALUES ('ada', 100), ('bob', 50);",
        )
        .await
        .unwrap();
}

fn op(id: &str, kind: &str, payload: Value) -> Value {
    json!({"id": id, "kind": kind, "payload": payload})
}

fn eq(column: &str, value: Value) -> Value {
    json!({"operator": "eq", "column": column, "eq_column": column, "value": value, "eq_value": value})
}

async fn balances(s: &TestServer) -> Vec<(String, String)> {
    s.tenant()
        .await
        .query(
            "SELECT owner, balance::text FROM accounts ORDER BY owner",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The SDK's request shape (`src/gateway/transaction.ts`).
fn sdk_body(operations: Vec<Value>, key: Option<&str>) -> Value {
    json!({"idempotency_key": key, "operations": operations,
           "options": {"deferrable": false, "isolation_level": null, "read_only": false}})
}

#[tokio::test]
async fn operations_commit_together_and_read_their_own_writes() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let body = sdk_body(
        vec![
            op(
                "t1",
                "update",
                json!({"table_name": "accounts", "conditions": [eq("owner", json!("ada"))],
                                      "update_body": {"balance": 70}, "columns": "owner,balance"}),
            ),
            op(
                "t2",
                "update",
                json!({"table_name": "accounts", "conditions": [eq("owner", json!("bob"))],
                                      "update_body": {"balance": 80}}),
            ),
            op(
                "t3",
                "insert",
                json!({"table_name": "accounts", "insert_body": {"owner": "cy", "balance": 1},
                                      "columns": "owner"}),
            ),
            op(
                "t4",
                "fetch",
                json!({"table_name": "accounts", "columns": "owner,balance",
                                     "sort_by": {"field": "owner", "direction": "ascending"}, "count": "exact"}),
            ),
            op(
                "t5",
                "delete",
                json!({"table_name": "accounts", "conditions": [eq("owner", json!("cy"))]}),
            ),
        ],
        None,
    );
    let r = s.send("POST", "/gateway/transaction", &H, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["committed"], true);
    let results = v["results"].as_array().unwrap();
    assert_eq!(v["data"]["results"], v["results"]);
    assert_eq!(results.len(), 5);
    for (i, res) in results.iter().enumerate() {
        assert_eq!(res["ok"], true, "{res}");
        assert_eq!(res["status"], 200);
        assert_eq!(res["id"], json!(format!("t{}", i + 1)));
    }
    assert_eq!(results[0]["data"], json!([{"owner": "ada", "balance": 70}]));
    assert_eq!(results[0]["count"], 1);
    // An object insert answers the row object, as `PUT /gateway/insert` does.
    assert_eq!(results[2]["data"], json!({"owner": "cy"}));
    // The fetch sees the transaction's own writes.
    assert_eq!(
        results[3]["data"],
        json!([{"owner": "ada", "balance": 70}, {"owner": "bob", "balance": 80}, {"owner": "cy", "balance": 1}])
    );
    assert_eq!(results[3]["count"], 3);
    assert_eq!(results[4]["count"], 1);
    assert_eq!(
        balances(&s).await,
        vec![("ada".into(), "70".into()), ("bob".into(), "80".into())]
    );

    // The SDK's unified-URL prefix reaches the same route.
    let r = s
        .send(
            "POST",
            "/db/gateway/transaction",
            &H,
            Some(sdk_body(
                vec![op("a", "fetch", json!({"table_name": "accounts"}))],
                None,
            )),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_failing_operation_rolls_everything_back() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let before = balances(&s).await;
    let body = sdk_body(
        vec![
            op(
                "debit",
                "update",
                json!({"table_name": "accounts", "conditions": [eq("owner", json!("ada"))],
                                         "update_body": {"balance": 0}}),
            ),
            op(
                "dup",
                "insert",
                json!({"table_name": "accounts", "insert_body": {"owner": "bob"}}),
            ),
            op(
                "never",
                "delete",
                json!({"table_name": "accounts", "conditions": [eq("owner", json!("ada"))]}),
            ),
        ],
        None,
    );
    let r = s.send("POST", "/gateway/transaction", &H, Some(body)).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "error");
    assert_eq!(v["code"], "conflict");
    assert_eq!(v["data"]["committed"], false);
    assert_eq!(v["data"]["failed_operation"], 1);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["ok"], false);
    assert_eq!(results[1]["status"], 409);
    assert_eq!(results[1]["id"], "dup");
    assert_eq!(results[2]["status"], 424);
    assert_eq!(balances(&s).await, before, "nothing was kept");

    // Planning errors name the operation and nothing runs.
    let r = s
        .send(
            "POST",
            "/gateway/transaction",
            &H,
            Some(sdk_body(
                vec![
                    op("ok", "update", json!({"table_name": "accounts", "conditions": [eq("owner", json!("ada"))],
                                              "update_body": {"balance": 1}})),
                    op("bad", "insert", json!({"table_name": "accounts", "insert_body": {"nope\"; DROP TABLE accounts; --": 1}})),
                ],
                None,
            )),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.envelope()["error"]
        .as_str()
        .unwrap()
        .starts_with("operations[1]"));
    assert_eq!(balances(&s).await, before);

    // Malformed requests.
    for bad in [
        json!({"operations": []}),
        json!({"operations": "x"}),
        json!({"operations": [op("x", "truncate", json!({"table_name": "accounts"}))]}),
        json!({"operations": [{"kind": "fetch"}]}),
        json!({"operations": [op("x", "fetch", json!({"table_name": "accounts"}))], "options": {"isolation_level": "chaos"}}),
        json!({"operations": [op("x", "fetch", json!({"table_name": "accounts"}))], "idempotency_key": 7}),
        json!({"operations": [op("x", "delete", json!({"table_name": "accounts"}))]}),
        json!([1, 2]),
    ] {
        let r = s
            .send("POST", "/gateway/transaction", &H, Some(bad.clone()))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.envelope()["status"], "error");
    }
    // No client at all.
    let r = s
        .send(
            "POST",
            "/gateway/transaction",
            &[],
            Some(sdk_body(
                vec![op("x", "fetch", json!({"table_name": "accounts"}))],
                None,
            )),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(balances(&s).await, before);
}

#[tokio::test]
async fn options_are_applied() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let write = op(
        "w",
        "insert",
        json!({"table_name": "accounts", "insert_body": {"owner": "zed"}}),
    );
    let r = s
        .send(
            "POST",
            "/gateway/transaction",
            &H,
            Some(json!({"operations": [write.clone()], "options": {"read_only": true}})),
        )
        .await;
    assert_eq!(
        r.status,
        403,
        "a read-only transaction refuses writes: {}",
        r.text()
    );
    assert_eq!(r.json()["data"]["committed"], false);
    let r = s
        .send(
            "POST",
            "/gateway/transaction",
            &H,
            Some(json!({"operations": [write], "options": {"isolation_level": "serializable", "deferrable": true}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn an_idempotency_key_commits_once() {
    let s = Arc::new(TestServer::start().await);
    fixture(&s).await;
    let body = sdk_body(
        vec![op(
            "i",
            "insert",
            json!({"table_name": "accounts", "insert_body": {"owner": "once", "balance": 5}}),
        )],
        Some("order-42"),
    );
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let (s, body) = (s.clone(), body.clone());
        set.spawn(async move {
            let r = s.send("POST", "/gateway/transaction", &H, Some(body)).await;
            (r.status, r.json())
        });
    }
    let mut replays = 0;
    while let Some(done) = set.join_next().await {
        let (status, v) = done.unwrap();
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["results"][0]["data"]["owner"], "once", "{v}");
        if v["data"]["replayed"] == true {
            replays += 1;
        }
    }
    assert_eq!(replays, 2);
    let n = s
        .scalar("SELECT count(*) FROM accounts WHERE owner = 'once'")
        .await;
    assert_eq!(n, 1);
}

#[tokio::test]
async fn each_operation_needs_its_own_right() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let admin = [("x-athena-key", ADMIN_KEY)];
    let r = s
        .send(
            "PUT",
            "/admin/api-key-config",
            &admin,
            Some(json!({"enforce_api_keys": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/admin/api-keys",
            &admin,
            Some(json!({"name": "reader", "rights": ["gateway.fetch.execute"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let key = r.json()["api_key"].as_str().unwrap().to_string();
    let headers = [("x-athena-client", CLIENT), ("x-athena-key", key.as_str())];
    let read = op("r", "fetch", json!({"table_name": "accounts"}));
    let write = op(
        "w",
        "insert",
        json!({"table_name": "accounts", "insert_body": {"owner": "eve"}}),
    );
    let r = s
        .send(
            "POST",
            "/gateway/transaction",
            &headers,
            Some(sdk_body(vec![read.clone()], None)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/gateway/transaction",
            &headers,
            Some(sdk_body(vec![read.clone(), write], None)),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = s
        .send(
            "POST",
            "/gateway/transaction",
            &H,
            Some(sdk_body(vec![read], None)),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(balances(&s).await.len(), 2);
}
