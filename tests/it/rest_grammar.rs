//! The PostgREST query grammar on `GET /rest/v1/{table}` (issue 14): select
//! aliases and casts (also inside embeds), embedded-resource parameters
//! (`rel.col=`, `rel.order=`, `rel.limit=`/`rel.offset=`, `rel.or=`),
//! many-to-many through a junction table, a key's constraint name or column
//! as the hint, one table embedded twice, `!inner` + `HEAD` + `count=exact`,
//! and logic trees (`not.or`, nested groups, whitespace, quoted values).
//! Fixture: a self-reference, a junction, a composite key, two keys to one
//! table and a view. Bad input is a 400 with the envelope, never a 500.

use crate::common;

use common::{Reply, TestServer, CLIENT};
use serde_json::{json, Value};

const H: [(&str, &str); 1] = [("x-athena-client", CLIENT)];

async fn fixture(s: &TestServer) {
    s.tenant()
        .await
        .batch_execute(
            "CREATE TABLE employees (id int PRIMARY KEY, name text NOT NULL,
                 manager_id int REFERENCES employees(id));
             INSERT INTO employees VALUES (1, 'Ada', NULL), (2, 'Bob', 1), (3, 'Cy', 1),
                 (4, 'Di', 2), (5, 'a,b', NULL);
             CREATE TABLE films (id int PRIMARY KEY, title text NOT NULL);
             CREATE TABLE actors (id int PRIMARY KEY, name text NOT NULL);
             CREATE TABLE film_actors (film_id int REFERENCES films(id),
                 actor_id int REFERENCES actors(id), role text,
                 PRIMARY KEY (film_id, actor_id));
             INSERT INTO films VALUES (1, 'Alien'), (2, 'Brazil'), (3, 'Casablanca');
             INSERT INTO actors VALUES (1, 'Sigourney'), (2, 'Jonathan'), (3, 'Ingrid');
             INSERT INTO film_actors VALUES (1, 1, 'Ripley'), (1, 2, 'Dallas'),
                 (2, 2, 'Sam'), (3, 3, 'Ilsa');
             -- Keys to both, outside its primary key: not a junction (no ambiguity).
             CREATE TABLE reviews (id serial PRIMARY KEY, film_id int REFERENCES films(id),
                 actor_id int REFERENCES actors(id));
             CREATE TABLE regions (country text, code text, name text NOT NULL,
                 PRIMARY KEY (country, code));
             CREATE TABLE stores (id int PRIMARY KEY, country text, region_code text,
                 FOREIGN KEY (country, region_code) REFERENCES regions (country, code));
             INSERT INTO regions VALUES ('fr', 'idf', 'Ile-de-France'), ('us', 'idf', 'Idaho Falls');
             INSERT INTO stores VALUES (1, 'fr', 'idf'), (2, 'us', 'idf');
             CREATE TABLE addresses (id int PRIMARY KEY, city text NOT NULL);
             CREATE TABLE orders (id int PRIMARY KEY,
                 billing_address_id int REFERENCES addresses(id),
                 shipping_address_id int REFERENCES addresses(id));
             INSERT INTO addresses VALUES (1, 'Paris'), (2, 'Lyon');
             INSERT INTO orders VALUES (1, 1, 2), (2, 2, 2);
             CREATE VIEW film_titles AS SELECT id, title FROM films;
             CREATE TABLE clients (id int PRIMARY KEY, name text NOT NULL);
             CREATE TABLE projects (id int PRIMARY KEY, name text NOT NULL,
                 client_id int REFERENCES clients(id));
             CREATE TABLE tasks (id int PRIMARY KEY, name text NOT NULL,
                 project_id int REFERENCES projects(id));
             INSERT INTO clients VALUES (1, 'Acme'), (2, 'Globex');
             INSERT INTO projects VALUES (1, 'p1', 1), (2, 'p2', 1), (3, 'p3', 2);
             INSERT INTO tasks VALUES (1, 'x', 1), (2, 'y', 1), (3, 'y', 2), (4, 'x', 3), (5, 'z', 3);",
        )
        .await
        .unwrap();
}

/// Percent-encodes what a request target cannot carry as is (and `+`,
/// which a query decodes as a space).
fn enc(q: &str) -> String {
    let mut out = String::new();
    for b in q.bytes() {
        match b {
            b' ' => out.push_str("%20"),
            b'"' => out.push_str("%22"),
            b'+' => out.push_str("%2B"),
            b'#' => out.push_str("%23"),
            b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'\\' | b'^' => {
                out.push_str(&format!("%{b:02X}"))
            }
            _ => out.push(b as char),
        }
    }
    out
}

async fn get(s: &TestServer, path: &str, extra: &[(&str, &str)]) -> Reply {
    let mut h = H.to_vec();
    h.extend_from_slice(extra);
    s.send("GET", &format!("/rest/v1/{}", enc(path)), &h, None)
        .await
}

async fn rows(s: &TestServer, path: &str) -> Value {
    let r = get(s, path, &[]).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()["data"].clone()
}

async fn refused(s: &TestServer, path: &str) -> String {
    let r = get(s, path, &[]).await;
    assert_eq!(r.status, 400, "{path}: {}", r.text());
    r.envelope()["message"].as_str().unwrap().to_string()
        + " "
        + r.envelope()["error"].as_str().unwrap()
}

#[tokio::test]
async fn aliases_and_casts_name_the_keys_as_postgrest_does() {
    let s = TestServer::start().await;
    fixture(&s).await;
    assert_eq!(
        rows(
            &s,
            "employees?select=empId:id,name,id::text,label:name::varchar(2)&id=eq.2"
        )
        .await,
        json!([{"empId": 2, "name": "Bob", "id": "2", "label": "Bo"}])
    );
    // Inside an embed, and an alias on the embed itself.
    assert_eq!(
        rows(
            &s,
            "projects?select=id,client:clients(clientId:id,name)&id=eq.3"
        )
        .await,
        json!([{"id": 3, "client": {"clientId": 2, "name": "Globex"}}])
    );
    // A view, with a cast from the closed type grammar.
    assert_eq!(
        rows(
            &s,
            "film_titles?select=filmId:id::text,title&order=id&limit=1"
        )
        .await,
        json!([{"filmId": "1", "title": "Alien"}])
    );
    // `/gateway/fetch` select strings take the same grammar.
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &H,
            Some(json!({"table_name": "employees", "select": "who:name,boss:employees!manager_id(n:name)",
                        "conditions": [{"eq_column": "id", "eq_value": 4}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"who": "Di", "boss": {"n": "Bob"}}])
    );
    // And the canonical object: strings rename or cast a column, relation
    // objects take `where`/`order`/`limit`/`offset`.
    let r = s
        .send(
            "POST",
            "/gateway/fetch",
            &H,
            Some(json!({"table_name": "projects", "select": {
                "pid": "id", "label": "name::varchar(1)",
                "todo": {"table": "tasks", "select": {"tid": "id"},
                         "where": {"name": {"neq": "y"}}, "order": "id.desc", "limit": 1}},
                "conditions": [{"eq_column": "client_id", "eq_value": 2}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"],
        json!([{"pid": 3, "label": "p", "todo": [{"tid": 5}]}])
    );
}

#[tokio::test]
async fn embedded_parameters_narrow_the_embedded_rows() {
    let s = TestServer::start().await;
    fixture(&s).await;
    // Without !inner: every project, only its `x` tasks.
    assert_eq!(
        rows(
            &s,
            "projects?select=id,tasks(name)&tasks.name=eq.x&order=id"
        )
        .await,
        json!([{"id": 1, "tasks": [{"name": "x"}]}, {"id": 2, "tasks": []},
               {"id": 3, "tasks": [{"name": "x"}]}])
    );
    // With !inner: the filter narrows the parents too.
    assert_eq!(
        rows(
            &s,
            "projects?select=id,tasks!inner(name)&tasks.name=eq.y&order=id"
        )
        .await,
        json!([{"id": 1, "tasks": [{"name": "y"}]}, {"id": 2, "tasks": [{"name": "y"}]}])
    );
    // A nested path through two !inner levels.
    assert_eq!(
        rows(
            &s,
            "clients?select=name,projects!inner(name,tasks!inner(id))&projects.tasks.name=eq.z"
        )
        .await,
        json!([{"name": "Globex", "projects": [{"name": "p3", "tasks": [{"id": 5}]}]}])
    );
    // rel.or, rel.order, rel.limit, rel.offset — by the embed's alias.
    assert_eq!(
        rows(
            &s,
            "projects?select=id,todo:tasks(id)&todo.or=(name.eq.x,name.eq.z)&todo.order=id.desc&todo.limit=1&todo.offset=1&id=eq.3"
        )
        .await,
        json!([{"id": 3, "todo": [{"id": 4}]}])
    );
    // The self-reference both ways: the column picks the manager, the
    // constraint name the reports.
    assert_eq!(
        rows(
            &s,
            "employees?select=name,manager:employees!manager_id(name),reports:employees!employees_manager_id_fkey(name)&reports.order=name.desc&id=eq.1"
        )
        .await,
        json!([{"name": "Ada", "manager": null, "reports": [{"name": "Cy"}, {"name": "Bob"}]}])
    );
}

#[tokio::test]
async fn junctions_composite_keys_and_one_table_twice() {
    let s = TestServer::start().await;
    fixture(&s).await;
    assert_eq!(
        rows(
            &s,
            "films?select=title,actors(name)&actors.order=name&order=id"
        )
        .await,
        json!([{"title": "Alien", "actors": [{"name": "Jonathan"}, {"name": "Sigourney"}]},
               {"title": "Brazil", "actors": [{"name": "Jonathan"}]},
               {"title": "Casablanca", "actors": [{"name": "Ingrid"}]}])
    );
    // And from the other side, filtered through !inner.
    assert_eq!(
        rows(
            &s,
            "actors?select=name,films!inner(title)&films.title=eq.Brazil"
        )
        .await,
        json!([{"name": "Jonathan", "films": [{"title": "Brazil"}]}])
    );
    // A composite key pairs its columns.
    assert_eq!(
        rows(&s, "stores?select=id,regions(name)&order=id").await,
        json!([{"id": 1, "regions": {"name": "Ile-de-France"}},
               {"id": 2, "regions": {"name": "Idaho Falls"}}])
    );
    // Two keys to one table: by column and by constraint name.
    assert_eq!(
        rows(
            &s,
            "orders?select=id,billing:addresses!billing_address_id(city),shipping:addresses!orders_shipping_address_id_fkey(city)&order=id"
        )
        .await,
        json!([{"id": 1, "billing": {"city": "Paris"}, "shipping": {"city": "Lyon"}},
               {"id": 2, "billing": {"city": "Lyon"}, "shipping": {"city": "Lyon"}}])
    );
}

#[tokio::test]
async fn head_counts_respect_inner_embeds_and_their_filters() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let path = "films?select=title,actors!inner(name)&actors.name=eq.Jonathan&limit=1&order=id";
    let exact = [("prefer", "count=exact")];
    let r = get(&s, path, &exact).await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.headers["content-range"], "0-0/2");
    assert_eq!(
        r.json()["data"],
        json!([{"title": "Alien", "actors": [{"name": "Jonathan"}]}])
    );
    let mut h = H.to_vec();
    h.extend_from_slice(&exact);
    let r = s
        .send("HEAD", &format!("/rest/v1/{}", enc(path)), &h, None)
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.headers["content-range"], "0-0/2");
    assert!(r.body.is_empty(), "{}", r.text());
}

#[tokio::test]
async fn logic_trees_parse_as_postgrest_does() {
    let s = TestServer::start().await;
    fixture(&s).await;
    let ids = |v: Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        ids(rows(&s, "employees?select=id&not.or=(id.eq.1,id.eq.2)&order=id").await),
        vec![3, 4, 5]
    );
    assert_eq!(
        ids(rows(&s, "employees?select=id&not.and=(id.gt.1,id.lt.5)&order=id").await),
        vec![1, 5]
    );
    assert_eq!(
        ids(rows(
            &s,
            "employees?select=id&and=( and( id.in.( 1,2 ), name.eq.Ada ) )&order=id"
        )
        .await),
        vec![1]
    );
    assert_eq!(
        ids(rows(
            &s,
            "employees?select=id&or=(name.eq.\"a,b\",and(id.gt.3,not.and(id.eq.4,name.eq.x)))&order=id"
        )
        .await),
        vec![4, 5]
    );
    assert_eq!(
        ids(rows(&s, "employees?select=id&name=in.(\"a,b\",Cy)&order=id").await),
        vec![3, 5]
    );
}

#[tokio::test]
async fn bad_grammar_is_a_400_with_the_envelope() {
    let s = TestServer::start().await;
    fixture(&s).await;
    for (path, want) in [
        ("projects?select=id&tasks.name=eq.x", "tasks"),
        (
            "clients?select=id,projects(id)&projects.tasks.name=eq.x",
            "projects.tasks",
        ),
        ("employees?select=id::int;drop", "type name"),
        ("employees?select=id::pg_sleep(1)", "type"),
        ("employees?select=id::no_such_type", "no_such_type"),
        ("employees?select=nope", "nope"),
        (
            "orders?select=id,addresses(city)",
            "orders_billing_address_id_fkey",
        ),
        (
            "employees?select=id,employees(name)",
            "employees!manager_id",
        ),
        ("employees?or=(id.eq.1", "unbalanced"),
        ("employees?and=(id.eq.1,or(id.eq.2)", "unbalanced"),
        ("projects?select=tasks(id)&tasks.limit=-1", "negative"),
        ("films?select=title,nope(id)", "nope"),
        // The OID alias types read the catalog through a cast (review).
        ("employees?select=id::regproc", "reg*"),
        ("employees?select=name::pg_catalog.regclass", "reg*"),
        ("employees?id=eq.1&select=id::RegRole", "reg*"),
        // Four to-many arrays nested in each other: the answer multiplies
        // at each level (review: 33 MB from 12-row tables); three pass.
        (
            "films?select=id,actors(id,films(id,actors(id,films(id))))",
            "at most 3",
        ),
    ] {
        let msg = refused(&s, path).await;
        assert!(msg.contains(want), "{path}: {msg}");
    }
    // Writes refuse embedded parameters instead of ignoring a filter.
    let r = s
        .send(
            "DELETE",
            &format!("/rest/v1/{}", enc("projects?tasks.name=eq.x")),
            &H,
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    r.envelope();
    assert_eq!(s.scalar("SELECT count(*) FROM projects").await, 3);
    // `limit`/`offset`/`order` on a write would be ignored: refused, and
    // nothing changed (review: `?id=gt.0&limit=1` rewrote every row).
    for q in ["limit=1", "offset=1", "order=id"] {
        let path = format!("/rest/v1/{}", enc(&format!("tasks?id=gt.0&{q}")));
        for m in ["PATCH", "DELETE"] {
            let body = (m == "PATCH").then(|| serde_json::json!({"name": "lim"}));
            let r = s.send(m, &path, &H, body).await;
            assert_eq!(r.status, 400, "{m} {q}: {}", r.text());
            let e = r.envelope();
            assert!(
                e["error"].as_str().unwrap().contains("not supported"),
                "{e}"
            );
        }
    }
    assert_eq!(
        s.scalar("SELECT count(*) FROM tasks WHERE name <> 'lim'")
            .await,
        5
    );
    // Three nested to-many arrays still answer.
    let three = rows(
        &s,
        "films?select=id,actors(id,films(id,actors(id)))&id=eq.1",
    )
    .await;
    assert_eq!(three[0]["actors"].as_array().unwrap().len(), 2);
}
