//! PostgREST counts, ranges and singular responses on `/rest/v1/{table}`
//! (issue 14): `Prefer: count=exact|planned|estimated` → `Content-Range`,
//! `Range`/`Range-Unit`, 206/416, `Accept: application/vnd.pgrst.object+json`
//! (406 when not exactly one row; singular writes touch nothing then).

use crate::common;

use common::{Reply, TestServer, CLIENT};
use serde_json::json;

const H: [(&str, &str); 1] = [("x-athena-client", CLIENT)];
const OBJECT: (&str, &str) = ("accept", "application/vnd.pgrst.object+json");

/// `nums`: ids 1..=100, `n` = id, `even` = id % 2 = 0.
async fn fixture(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE nums (id int PRIMARY KEY, n int NOT NULL, even bool NOT NULL, note text);
             INSERT INTO nums SELECT i, i, i % 2 = 0, NULL FROM generate_series(1, 100) i;
             ANALYZE nums;",
        )
        .await
        .unwrap();
}

fn range(r: &Reply) -> &str {
    r.headers
        .get("content-range")
        .unwrap_or_else(|| panic!("no Content-Range: {} {}", r.status, r.text()))
        .to_str()
        .unwrap()
}

fn ids(r: &Reply) -> Vec<i64> {
    r.json()["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is not an array: {}", r.text()))
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect()
}

async fn get(s: &TestServer, path: &str, extra: &[(&str, &str)]) -> Reply {
    let mut h = H.to_vec();
    h.extend_from_slice(extra);
    s.send("GET", path, &h, None).await
}

#[tokio::test]
async fn counts_put_the_total_in_content_range() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let exact = [("prefer", "count=exact")];

    // A page of a counted result: 206, `0-4/100`.
    let r = get(&s, "/rest/v1/nums?order=id&limit=5", &exact).await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(range(&r), "0-4/100");
    assert_eq!(ids(&r), vec![1, 2, 3, 4, 5]);

    // The count respects the filters; the whole result is a 200.
    let r = get(&s, "/rest/v1/nums?n=lte.3&order=id", &exact).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(range(&r), "0-2/3");
    assert_eq!(ids(&r), vec![1, 2, 3]);
    let r = get(
        &s,
        "/rest/v1/nums?even=eq.true&order=id&limit=2&offset=10",
        &exact,
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(range(&r), "10-11/50");
    assert_eq!(ids(&r), vec![22, 24]);

    // Nothing matches: `*/0`, a 200 with an empty array.
    let r = get(&s, "/rest/v1/nums?n=gt.1000", &exact).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(range(&r), "*/0");
    assert_eq!(r.json()["data"], json!([]));

    // Without a count: `a-b/*`, always 200.
    let r = get(&s, "/rest/v1/nums?order=id&limit=5", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(range(&r), "0-4/*");
    assert_eq!(ids(&r).len(), 5);

    // An offset past the end (with a count): 416, `*/N`, the standard envelope.
    let r = get(&s, "/rest/v1/nums?order=id&offset=150", &exact).await;
    assert_eq!(r.status, 416, "{}", r.text());
    assert_eq!(range(&r), "*/100");
    assert_eq!(r.envelope()["code"], "range_not_satisfiable");
    // At the end exactly (PostgREST's rule: only past it is a 416): 206, `*/100`.
    let r = get(&s, "/rest/v1/nums?order=id&offset=100", &exact).await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(range(&r), "*/100");
    assert_eq!(r.json()["data"], json!([]));
    // Without a count nothing can tell it is past the end: 200, `*/*`.
    let r = get(&s, "/rest/v1/nums?order=id&offset=150", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(range(&r), "*/*");

    // A negative offset or limit: 400 with the envelope.
    for path in ["/rest/v1/nums?offset=-1", "/rest/v1/nums?limit=-1"] {
        let r = get(&s, path, &exact).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        r.envelope();
    }
}

#[tokio::test]
async fn planned_and_estimated_counts_come_from_the_planner() {
    let s = TestServer::start_with(|c| c.max_rows = 10).await;
    fixture(&s).await;
    // Planned: EXPLAIN's estimate (ANALYZEd, so exact on this table).
    let r = get(
        &s,
        "/rest/v1/nums?order=id&limit=5",
        &[("prefer", "count=planned")],
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(range(&r), "0-4/100");
    assert_eq!(ids(&r), vec![1, 2, 3, 4, 5]);
    // Estimated, below max_rows (10): the exact count.
    let r = get(
        &s,
        "/rest/v1/nums?n=lte.3&order=id",
        &[("prefer", "count=estimated")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(range(&r), "0-2/3");
    // Estimated, above max_rows: the planner's estimate.
    let r = get(
        &s,
        "/rest/v1/nums?order=id&limit=5",
        &[("prefer", "count=estimated")],
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(range(&r), "0-4/100");
    // The filters reach the planner: a selective filter estimates fewer rows.
    let r = get(
        &s,
        "/rest/v1/nums?n=gt.90&order=id&limit=2",
        &[("prefer", "count=planned")],
    )
    .await;
    let total: i64 = range(&r).rsplit('/').next().unwrap().parse().unwrap();
    assert!((1..50).contains(&total), "{}", range(&r));
    assert_eq!(ids(&r), vec![91, 92]);
}

#[tokio::test]
async fn range_headers_page_like_limit_and_offset() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let r = get(
        &s,
        "/rest/v1/nums?order=id",
        &[
            ("range", "0-4"),
            ("range-unit", "items"),
            ("prefer", "count=exact"),
        ],
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(range(&r), "0-4/100");
    assert_eq!(ids(&r), vec![1, 2, 3, 4, 5]);
    // `items=` prefix, no count.
    let r = get(&s, "/rest/v1/nums?order=id", &[("range", "items=10-12")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(range(&r), "10-12/*");
    assert_eq!(ids(&r), vec![11, 12, 13]);
    // Open end: from row 95 to the last.
    let r = get(
        &s,
        "/rest/v1/nums?order=id",
        &[("range", "95-"), ("prefer", "count=exact")],
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(range(&r), "95-99/100");
    assert_eq!(ids(&r), vec![96, 97, 98, 99, 100]);
    // Intersected with limit/offset.
    let r = get(&s, "/rest/v1/nums?order=id&limit=3", &[("range", "1-10")]).await;
    assert_eq!(range(&r), "1-2/*");
    assert_eq!(ids(&r), vec![2, 3]);
    // Past the end with a count: 416.
    let r = get(
        &s,
        "/rest/v1/nums?order=id",
        &[("range", "200-210"), ("prefer", "count=exact")],
    )
    .await;
    assert_eq!(r.status, 416, "{}", r.text());
    assert_eq!(range(&r), "*/100");
    r.envelope();
    // Malformed ranges and other units: 400.
    for (name, value) in [
        ("range", "4-1"),
        ("range", "a-b"),
        ("range", "-5"),
        ("range-unit", "bytes"),
    ] {
        let mut h = vec![(name, value)];
        if name == "range-unit" {
            h.push(("range", "0-1"));
        }
        let r = get(&s, "/rest/v1/nums", &h).await;
        assert_eq!(r.status, 400, "{name}: {value}: {}", r.text());
        r.envelope();
    }
}

#[tokio::test]
async fn singular_reads_answer_one_object_or_406() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let r = get(&s, "/rest/v1/nums?id=eq.7&select=id,n", &[OBJECT]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!({"id": 7, "n": 7}));
    // Without `+json` as well.
    let r = get(
        &s,
        "/rest/v1/nums?id=eq.7&select=id",
        &[("accept", "application/vnd.pgrst.object")],
    )
    .await;
    assert_eq!(r.json()["data"], json!({"id": 7}));
    for path in ["/rest/v1/nums?id=gt.98", "/rest/v1/nums?id=eq.1000"] {
        let r = get(&s, path, &[OBJECT]).await;
        assert_eq!(r.status, 406, "{path}: {}", r.text());
        assert_eq!(r.envelope()["code"], "not_acceptable");
    }
    // A limit that leaves one row is one row.
    let r = get(&s, "/rest/v1/nums?order=id&limit=1&select=id", &[OBJECT]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"], json!({"id": 1}));
}

#[tokio::test]
async fn singular_writes_touch_one_row_or_none() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let h = [H[0], OBJECT];

    // PATCH matching two rows: 406, and neither row changed.
    let r = s
        .send(
            "PATCH",
            "/rest/v1/nums?id=in.(1,2)",
            &h,
            Some(json!({"note": "x"})),
        )
        .await;
    assert_eq!(r.status, 406, "{}", r.text());
    assert_eq!(r.envelope()["code"], "not_acceptable");
    assert_eq!(
        s.scalar("SELECT count(*) FROM nums WHERE note IS NOT NULL")
            .await,
        0
    );
    // PATCH matching none: 406.
    let r = s
        .send(
            "PATCH",
            "/rest/v1/nums?id=eq.1000",
            &h,
            Some(json!({"note": "x"})),
        )
        .await;
    assert_eq!(r.status, 406, "{}", r.text());
    // PATCH matching one: the object, exactly that row changed.
    let r = s
        .send(
            "PATCH",
            "/rest/v1/nums?id=eq.3",
            &h,
            Some(json!({"note": "one"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["id"], 3);
    assert_eq!(r.json()["data"]["note"], "one");
    assert_eq!(
        s.scalar("SELECT count(*) FROM nums WHERE note IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        s.scalar("SELECT count(*) FROM nums WHERE id = 3 AND note = 'one'")
            .await,
        1
    );

    // DELETE matching many: 406 and nothing deleted.
    let r = s
        .send("DELETE", "/rest/v1/nums?even=eq.true", &h, None)
        .await;
    assert_eq!(r.status, 406, "{}", r.text());
    r.envelope();
    assert_eq!(s.scalar("SELECT count(*) FROM nums").await, 100);
    // DELETE matching one: deleted, the object answered, `*/1` with a count.
    let h1 = [H[0], OBJECT, ("prefer", "count=exact")];
    let r = s.send("DELETE", "/rest/v1/nums?id=eq.5", &h1, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(range(&r), "*/1");
    assert_eq!(r.json()["data"]["id"], 5);
    assert_eq!(s.scalar("SELECT count(*) FROM nums").await, 99);
    assert_eq!(s.scalar("SELECT count(*) FROM nums WHERE id = 5").await, 0);
}

#[tokio::test]
async fn writes_report_content_range() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let counted = [H[0], ("prefer", "count=exact")];
    let r = s
        .send("DELETE", "/rest/v1/nums?id=eq.9", &counted, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(range(&r), "*/1");
    assert_eq!(s.scalar("SELECT count(*) FROM nums WHERE id = 9").await, 0);
    let r = s
        .send(
            "PATCH",
            "/rest/v1/nums?id=in.(10,11,12)",
            &counted,
            Some(json!({"note": "p"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(range(&r), "*/3");
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 3);
    assert_eq!(
        s.scalar("SELECT count(*) FROM nums WHERE note = 'p'").await,
        3
    );
    // `return=minimal` (204) carries it too.
    let minimal = [H[0], ("prefer", "count=exact, return=minimal")];
    let r = s
        .send("DELETE", "/rest/v1/nums?id=in.(14,15)", &minimal, None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(range(&r), "*/2");
    assert_eq!(
        s.scalar("SELECT count(*) FROM nums WHERE id IN (14, 15)")
            .await,
        0
    );
    // Without a count: `*/*`.
    let r = s.send("DELETE", "/rest/v1/nums?id=eq.13", &H, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(range(&r), "*/*");
    assert_eq!(s.scalar("SELECT count(*) FROM nums WHERE id = 13").await, 0);
    let r = s
        .send(
            "POST",
            "/rest/v1/nums",
            &H,
            Some(json!({"id": 500, "n": 500, "even": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(range(&r), "*/*");
    assert_eq!(
        s.scalar("SELECT count(*) FROM nums WHERE id = 500").await,
        1
    );
}
