//! PostgREST's bare shape (issue 14): one layer over the answers of
//! `/rest/v1/{table}` and `/public/{route_key}/{op}`, for PostgREST clients
//! (postgrest-js, supabase-js's `from()`) that expect bare arrays/objects,
//! PostgREST's statuses and its error JSON (`{code, message, details, hint}`).
//!
//! Opt-in, never the default:
//! - per request, `X-Athena-Rest-Shape: postgrest` (any case; any other
//!   value is a 400 in the contract's envelope);
//! - per public route, `rest_shape = 'postgrest'` (`/admin/public-routes`):
//!   its `/public/{route_key}/{op}` answers, and `/rest/v1` served through
//!   its tenant host (`src/gateway/host_routing.rs` sets the header then).
//!
//! The handlers answer as always (the contract's `{data: …}` envelope); this
//! layer rewrites the finished answer (`src/http/server.rs`), so every
//! error on the way (keys, rights, admission, parsing) is rewritten too. The
//! default path pays one header lookup on these operations, none elsewhere.
//! The rows are passed on as the handlers wrote them (a byte slice of the
//! envelope, never re-serialized).

use super::{ApiError, HttpResponse};
use crate::api::operations::Operation;
use crate::handlers::Handlers;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::ops::Range;

/// The request header that asks for the bare shape.
pub const HEADER: &str = "x-athena-rest-shape";
/// Its one accepted value (any case).
pub const POSTGREST: &str = "postgrest";

const JSON: &str = "application/json; charset=utf-8";
const OBJECT: &str = "application/vnd.pgrst.object+json; charset=utf-8";

/// The operation being shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Insert,
    Update,
    Delete,
    /// `/public/{route_key}/{op}`: a POST answered 200 with the bare
    /// result, like PostgREST's `/rpc/{fn}`.
    Public,
}

/// The request's `Prefer` as PostgREST reads it (the first value of each
/// kind wins), for the statuses and `Preference-Applied`.
#[derive(Debug, Default, Clone, PartialEq)]
struct Prefer {
    resolution: Option<&'static str>,
    missing: Option<&'static str>,
    ret: Option<&'static str>,
    count: Option<&'static str>,
}

impl Prefer {
    fn parse(headers: &HeaderMap) -> Prefer {
        let mut p = Prefer::default();
        let tokens = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            // As the handler reads it (`handlers/rest.rs` `Prefer`): any
            // case, `,` or `;` between preferences.
            .flat_map(|v| v.split([',', ';']))
            .map(|t| t.trim().to_ascii_lowercase());
        for t in tokens {
            let slot = |s: &mut Option<&'static str>, v: &'static str| {
                s.get_or_insert(v);
            };
            match t.as_str() {
                "resolution=merge-duplicates" => {
                    slot(&mut p.resolution, "resolution=merge-duplicates")
                }
                "resolution=ignore-duplicates" => {
                    slot(&mut p.resolution, "resolution=ignore-duplicates")
                }
                "missing=default" => slot(&mut p.missing, "missing=default"),
                "missing=null" => slot(&mut p.missing, "missing=null"),
                "return=representation" => slot(&mut p.ret, "return=representation"),
                "return=minimal" => slot(&mut p.ret, "return=minimal"),
                "return=headers-only" => slot(&mut p.ret, "return=headers-only"),
                "count=exact" => slot(&mut p.count, "count=exact"),
                "count=planned" => slot(&mut p.count, "count=planned"),
                "count=estimated" => slot(&mut p.count, "count=estimated"),
                _ => {}
            }
        }
        p
    }

    /// `Preference-Applied`: a read echoes its count; a write every
    /// preference it honoured, in PostgREST's order.
    fn applied(&self, kind: Kind) -> Option<String> {
        let all = match kind {
            Kind::Read | Kind::Public => vec![self.count],
            _ => vec![self.resolution, self.missing, self.ret, self.count],
        };
        let v: Vec<&str> = all.into_iter().flatten().collect();
        (!v.is_empty()).then(|| v.join(", "))
    }

    fn representation(&self) -> bool {
        self.ret == Some("return=representation")
    }
}

/// What the layer does with one request, read before it runs.
pub struct Layer {
    kind: Kind,
    prefer: Prefer,
    singular: bool,
    /// Asked for by the header; else a public route decides by its setting.
    forced: bool,
    route_key: Option<String>,
}

/// The layer a request asks for: `None` for operations it never shapes
/// (no header lookup) and for a `/rest/v1` request without the header;
/// `Some(Err)` for a header naming another shape (400).
pub fn wanted(
    operation: Operation,
    headers: &HeaderMap,
    path_params: &[(String, String)],
) -> Option<Result<Layer, ApiError>> {
    let kind = match operation {
        Operation::GetRestV1ByTable => Kind::Read,
        Operation::PostRestV1ByTable => Kind::Insert,
        Operation::PatchRestV1ByTable => Kind::Update,
        Operation::DeleteRestV1ByTable => Kind::Delete,
        Operation::PostPublicByRouteKeyByOp => Kind::Public,
        _ => return None,
    };
    let forced = match headers.get(HEADER) {
        None if kind != Kind::Public => return None,
        None => false,
        Some(v) => match v.to_str().map(str::trim) {
            Ok(v) if v.eq_ignore_ascii_case(POSTGREST) => true,
            _ => {
                return Some(Err(ApiError::invalid_parameter(
                    "X-Athena-Rest-Shape",
                    "must be `postgrest` (omit the header for the contract's envelope)",
                )))
            }
        },
    };
    let route_key = match kind {
        Kind::Public => path_params
            .iter()
            .find(|(k, _)| k == "route_key")
            .map(|(_, v)| v.clone()),
        _ => None,
    };
    Some(Ok(Layer {
        kind,
        prefer: Prefer::parse(headers),
        singular: wants_object(headers),
        forced,
        route_key,
    }))
}

impl Layer {
    /// The answer in PostgREST's shape (or as it was, for a public route
    /// answering in the contract's envelope).
    pub async fn answer(self, handlers: &Handlers, response: HttpResponse) -> HttpResponse {
        if !self.forced && !self.route_wants_it(handlers).await {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        let bytes = match body.collect().await {
            Ok(c) => c.to_bytes(),
            Err(never) => match never {},
        };
        let status = parts.status;
        // A deferral (202, the admission limiter) keeps Athena's body: it is
        // a job, not rows.
        let body = if status == StatusCode::ACCEPTED {
            bytes
        } else if status.is_success() {
            self.success(&mut parts, bytes)
        } else {
            error(&mut parts, bytes)
        };
        http::Response::from_parts(parts, Full::new(body))
    }

    /// The public route's setting (cached: the handler has just looked it up).
    async fn route_wants_it(&self, handlers: &Handlers) -> bool {
        let Some(key) = &self.route_key else {
            return false;
        };
        match handlers
            .public_routes
            .get(handlers.tenants.catalog(), key)
            .await
        {
            Ok(Some(route)) => route.postgrest_shape(),
            _ => false,
        }
    }

    fn success(&self, parts: &mut http::response::Parts, bytes: Bytes) -> Bytes {
        let data = field(&bytes, "data").map(|r| bytes.slice(r));
        let h = &mut parts.headers;
        h.remove("x-athena-rest-shape");
        if let Some(v) = self
            .prefer
            .applied(self.kind)
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            h.insert("preference-applied", v);
        }
        let (status, body) = match self.kind {
            Kind::Read => (parts.status, data.unwrap_or_else(|| bytes.clone())),
            Kind::Public => (StatusCode::OK, data.unwrap_or_else(|| bytes.clone())),
            // PostgREST: 201; the rows only with `return=representation`.
            Kind::Insert if self.prefer.representation() => {
                let rows = data.unwrap_or_else(|| Bytes::from_static(b"[]"));
                match self.singular {
                    // The handler already answered the one object (it
                    // rolled back and answered 406 otherwise).
                    true if rows.first() == Some(&b'{') => (StatusCode::CREATED, rows),
                    true => match single(&rows) {
                        Some(one) => (StatusCode::CREATED, one),
                        None => {
                            let n = items(&rows).map_or(0, |v| v.len());
                            return singular_error(parts, n);
                        }
                    },
                    false => (StatusCode::CREATED, rows),
                }
            }
            Kind::Insert => (StatusCode::CREATED, Bytes::new()),
            // PATCH/DELETE: 200 with the rows, else 204.
            Kind::Update | Kind::Delete if self.prefer.representation() => (
                StatusCode::OK,
                data.unwrap_or_else(|| Bytes::from_static(b"[]")),
            ),
            Kind::Update | Kind::Delete => (StatusCode::NO_CONTENT, Bytes::new()),
        };
        parts.status = status;
        if body.is_empty() {
            h.remove(header::CONTENT_TYPE);
        } else {
            let ct = if self.singular && body.first() == Some(&b'{') {
                OBJECT
            } else {
                JSON
            };
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        h.remove(header::CONTENT_LENGTH);
        body
    }
}

/// `Accept: application/vnd.pgrst.object+json` (or without `+json`): the
/// singular answer, for the handler (`handlers/rest.rs`) and this layer.
pub fn wants_object(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            let m = m.split(';').next().unwrap_or_default().trim();
            m.eq_ignore_ascii_case("application/vnd.pgrst.object")
                || m.eq_ignore_ascii_case("application/vnd.pgrst.object+json")
        })
}

// --- Errors ---

/// A PostgREST error: status, code, message, details, hint.
#[derive(Debug, PartialEq)]
struct Pgrst {
    status: u16,
    code: String,
    message: String,
    details: Option<String>,
    hint: Option<String>,
}

/// Our error (code, public detail, status) → PostgREST's, in one table.
/// Postgres' data errors reach us as `bad_request`/`conflict`/`forbidden`
/// carrying Postgres' own message, which names the SQLSTATE's class.
fn pgrst(code: &str, detail: &str, status: u16) -> Pgrst {
    let e = |status: u16, code: &str, message: &str| Pgrst {
        status,
        code: code.to_string(),
        message: message.to_string(),
        details: None,
        hint: None,
    };
    let has = |s: &str| detail.contains(s);
    match code {
        "not_acceptable" => {
            let n = last_number(detail).unwrap_or(0);
            Pgrst {
                details: Some(format!("The result contains {n} rows")),
                ..e(
                    406,
                    "PGRST116",
                    "Cannot coerce the result to a single JSON object",
                )
            }
        }
        "range_not_satisfiable" => Pgrst {
            details: Some(detail.to_string()),
            ..e(416, "PGRST103", "Requested range not satisfiable")
        },
        "table_not_found" => {
            let name = between(detail, '`', '`').unwrap_or(detail);
            e(
                404,
                "PGRST205",
                &format!("Could not find the table '{name}' in the schema cache"),
            )
        }
        "bad_request" if has("relation \"") && has("does not exist") => e(404, "42P01", detail),
        "column_not_found" => e(400, "42703", detail),
        "bad_request" if has("column ") && has("does not exist") => e(400, "42703", detail),
        "bad_request" if has("violates foreign key constraint") => e(409, "23503", detail),
        "bad_request" if has("violates not-null constraint") => e(400, "23502", detail),
        "bad_request" if has("violates check constraint") => e(400, "23514", detail),
        "bad_request" if has("invalid input syntax") => e(400, "22P02", detail),
        "bad_request" if has("more than one relationship") => e(300, "PGRST201", detail),
        "bad_request" if has("no relationship") => e(400, "PGRST200", detail),
        "conflict" if has("exclusion constraint") => e(409, "23P01", detail),
        "conflict" => e(409, "23505", detail),
        "forbidden" => e(403, "42501", detail),
        "unauthorized" => e(401, "PGRST301", detail),
        "invalid_json" => e(400, "PGRST102", detail),
        "bad_request" | "invalid_parameter" | "missing_parameter" => e(400, "PGRST100", detail),
        "method_not_allowed" => e(405, "PGRST117", detail),
        "route_not_found" | "not_found" => e(404, "PGRST125", detail),
        "database_unavailable" => e(503, "PGRST000", detail),
        // Athena's own (client state, limits, timeouts …): its status, its code.
        _ => e(status, code, detail),
    }
}

/// `pgrst`, with a hint when the client header is what is missing.
fn pgrst_hinted(code: &str, detail: &str, status: u16) -> Pgrst {
    let mut p = pgrst(code, detail, status);
    if code == "missing_client_header" || detail.contains("X-Athena-Client") {
        p.hint = Some(CLIENT_HINT.into());
    }
    p
}

const CLIENT_HINT: &str = "pass X-Athena-Client on every request (postgrest-js: new PostgrestClient(url, { headers: { 'X-Athena-Client': '<client>' } }))";

/// The envelope of an error answer rewritten as PostgREST's error JSON.
fn error(parts: &mut http::response::Parts, bytes: Bytes) -> Bytes {
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return bytes;
    };
    let Some(code) = v.get("code").and_then(Value::as_str) else {
        return bytes;
    };
    let detail = v
        .get("error")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| v.get("message").and_then(Value::as_str))
        .unwrap_or_default();
    let p = pgrst_hinted(code, detail, parts.status.as_u16());
    write_error(parts, p)
}

fn singular_error(parts: &mut http::response::Parts, n: usize) -> Bytes {
    let detail = format!("the request matched {n}");
    write_error(parts, pgrst("not_acceptable", &detail, 406))
}

fn write_error(parts: &mut http::response::Parts, p: Pgrst) -> Bytes {
    parts.status = StatusCode::from_u16(p.status).unwrap_or(parts.status);
    let h = &mut parts.headers;
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    h.remove(header::CONTENT_LENGTH);
    if let Ok(v) = HeaderValue::from_str(&format!("PostgREST; error={}", p.code)) {
        h.insert("proxy-status", v);
    }
    let body = json!({
        "code": p.code,
        "details": p.details,
        "hint": p.hint,
        "message": p.message,
    });
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// The last run of digits in `s` (`… matched 3` → 3).
fn last_number(s: &str) -> Option<usize> {
    let end = s.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = s[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    s[start..end].parse().ok()
}

/// The text between the first `open` and the next `close`.
fn between(s: &str, open: char, close: char) -> Option<&str> {
    let (_, rest) = s.split_once(open)?;
    rest.split_once(close).map(|(inner, _)| inner)
}

// --- Slicing JSON without re-serializing it ---

/// The byte range of the value of the top-level field `name` of a JSON
/// object (`None` when absent or not an object).
fn field(b: &[u8], name: &str) -> Option<Range<usize>> {
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = ws(b, i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(b, i)?;
        let key = &b[i + 1..key_end - 1];
        i = ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = ws(b, i + 1);
        let end = skip_value(b, start)?;
        if key == name.as_bytes() {
            return Some(start..end);
        }
        i = ws(b, end);
        match b.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

/// The byte ranges of the items of a JSON array.
fn items(b: &[u8]) -> Option<Vec<Range<usize>>> {
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut out = Vec::new();
    i = ws(b, i + 1);
    if b.get(i) == Some(&b']') {
        return Some(out);
    }
    loop {
        let start = ws(b, i);
        let end = skip_value(b, start)?;
        out.push(start..end);
        i = ws(b, end);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b']') => return Some(out),
            _ => return None,
        }
    }
}

/// The only item of a one-item array.
fn single(rows: &Bytes) -> Option<Bytes> {
    match items(rows)?.as_slice() {
        [one] => Some(rows.slice(one.clone())),
        _ => None,
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The end (exclusive) of the string starting at `i` (a `"`).
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The end (exclusive) of the value starting at `i`.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !b[j].is_ascii_whitespace()
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_sliced_as_written() {
        let b = br#"{"rows_affected":2, "data" : [{"b":1,"a":"x,]}\"y"},{"c":[1,{"d":null}]}],"z":true}"#;
        let r = field(b, "data").unwrap();
        assert_eq!(
            &b[r.clone()],
            br#"[{"b":1,"a":"x,]}\"y"},{"c":[1,{"d":null}]}]"#
        );
        let rows = Bytes::copy_from_slice(&b[r]);
        assert_eq!(items(&rows).unwrap().len(), 2);
        assert_eq!(single(&rows), None);
        assert_eq!(field(b, "z").map(|r| &b[r]), Some(&b"true"[..]));
        assert_eq!(field(b, "nope"), None);
        assert_eq!(field(b"[1]", "data"), None);
        let one = Bytes::from_static(br#"[ {"id":1} ]"#);
        assert_eq!(single(&one).unwrap(), Bytes::from_static(br#"{"id":1}"#));
        assert_eq!(items(b"[]").unwrap().len(), 0);
    }

    #[test]
    fn preferences_first_wins() {
        let mut h = HeaderMap::new();
        h.append(
            "prefer",
            "count=exact, return=representation".parse().unwrap(),
        );
        h.append("prefer", "return=minimal,missing=default".parse().unwrap());
        let p = Prefer::parse(&h);
        assert!(p.representation());
        assert_eq!(
            p.applied(Kind::Insert).unwrap(),
            "missing=default, return=representation, count=exact"
        );
        assert_eq!(p.applied(Kind::Read).unwrap(), "count=exact");
        assert_eq!(Prefer::default().applied(Kind::Delete), None);
    }

    #[test]
    fn the_header_is_checked() {
        let mut h = HeaderMap::new();
        assert!(wanted(Operation::GetRestV1ByTable, &h, &[]).is_none());
        assert!(wanted(Operation::PostGatewayFetch, &h, &[]).is_none());
        // Public routes decide by their setting when the header is absent.
        let l = wanted(
            Operation::PostPublicByRouteKeyByOp,
            &h,
            &[("route_key".into(), "r".into())],
        );
        assert!(matches!(l, Some(Ok(Layer { forced: false, .. }))));
        h.insert(HEADER, "PostgREST".parse().unwrap());
        assert!(matches!(
            wanted(Operation::DeleteRestV1ByTable, &h, &[]),
            Some(Ok(Layer {
                forced: true,
                kind: Kind::Delete,
                ..
            }))
        ));
        h.insert(HEADER, "contract".parse().unwrap());
        let e = wanted(Operation::GetRestV1ByTable, &h, &[])
            .unwrap()
            .err()
            .unwrap();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn errors_map_to_postgrest() {
        let p = pgrst("not_acceptable", "… the request matched 3", 406);
        assert_eq!((p.status, p.code.as_str()), (406, "PGRST116"));
        assert_eq!(p.details.as_deref(), Some("The result contains 3 rows"));
        let p = pgrst("table_not_found", "table `public.nope` does not exist", 404);
        assert_eq!(p.code, "PGRST205");
        assert!(p.message.contains("'public.nope'"), "{}", p.message);
        for (code, detail, status, pg) in [
            (
                "conflict",
                "duplicate key value violates unique constraint \"t_pkey\"",
                409,
                "23505",
            ),
            (
                "bad_request",
                "insert or update on table \"t\" violates foreign key constraint \"f\"",
                409,
                "23503",
            ),
            (
                "bad_request",
                "null value in column \"n\" of relation \"t\" violates not-null constraint",
                400,
                "23502",
            ),
            (
                "bad_request",
                "relation \"public.x\" does not exist",
                404,
                "42P01",
            ),
            ("bad_request", "column \"x\" does not exist", 400, "42703"),
            (
                "bad_request",
                "select: no relationship between `public.a` and `b` was found",
                400,
                "PGRST200",
            ),
            ("bad_request", "limit must not be negative", 400, "PGRST100"),
            (
                "range_not_satisfiable",
                "the range starts at row 150",
                416,
                "PGRST103",
            ),
            ("forbidden", "permission denied for table t", 403, "42501"),
            ("unauthorized", "missing API key", 401, "PGRST301"),
            ("rate_limited", "slow down", 429, "rate_limited"),
        ] {
            let p = pgrst(code, detail, status);
            assert_eq!((p.status, p.code.as_str()), (status, pg), "{code} {detail}");
        }
        assert!(pgrst_hinted("missing_client_header", "x", 400)
            .hint
            .is_some());
        assert!(pgrst_hinted(
            "missing_parameter",
            "header `X-Athena-Client` is required",
            400
        )
        .hint
        .is_some());
        assert_eq!(last_number("no digits"), None);
    }
}
