//! Raw objects on a tenant's S3 store (`POST /storage/objects…`): list,
//! head/exists/validate, metadata update, presigned URLs, POST policies,
//! copy, folders and versions. Requests name their store by catalog
//! (`s3_id`/`s3Id`) or inline credentials (`Connection`); every answer is
//! the `data` of the standard success envelope.

use super::s3::{Call, Reply, Store};
use super::service::{Connection, Storage};
use super::xml;
use crate::domain::DomainError;
use http::header::HeaderName;
use http::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Presigned URLs: 15 minutes unless asked, 7 days at most (SigV4's limit).
pub const DEFAULT_URL_TTL: u32 = 900;
pub const MAX_URL_TTL: u32 = 604_800;
/// POST policies: an hour at most.
pub const MAX_POLICY_TTL: u32 = 3_600;
/// Keys per listing page and per DeleteObjects batch.
const PAGE: usize = 1_000;
/// Most pages one folder delete or rename works through (10 million keys;
/// the request deadline usually ends it first). Re-running continues.
const MAX_PAGES: usize = 10_000;

/// Whether a fresh first page starts with a key the previous batch
/// deleted: the store did not delete it, and listing again would loop.
fn no_progress(last: &[String], keys: &[String]) -> bool {
    keys.first().is_some_and(|k| last.contains(k))
}

/// An object request (`StorageObjectRequest`).
#[derive(Debug, Deserialize)]
pub struct ObjectRequest {
    #[serde(flatten)]
    pub connection: Connection,
    pub bucket: Option<String>,
    pub key: String,
    /// `url`: seconds the presigned URL lives.
    pub expires_in: Option<u32>,
    /// `upload-url`, `post-policy`: the content type the upload must carry.
    pub content_type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListRequest {
    #[serde(flatten)]
    pub connection: Connection,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub delimiter: Option<String>,
    pub continuation_token: Option<String>,
    pub max_keys: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct ValidateRequest {
    #[serde(flatten)]
    pub object: ObjectRequest,
    pub etag: Option<String>,
    pub checksum_sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UpdateRequest {
    #[serde(flatten)]
    pub object: ObjectRequest,
    pub acl: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
pub struct CopyRequest {
    #[serde(flatten)]
    pub connection: Connection,
    pub bucket: Option<String>,
    pub source_key: String,
    pub destination_key: String,
    pub destination_bucket: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PublicUrlRequest {
    #[serde(flatten)]
    pub object: ObjectRequest,
    pub public_base_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct FolderRequest {
    #[serde(flatten)]
    pub connection: Connection,
    pub bucket: Option<String>,
    pub prefix: String,
}

#[derive(Debug, Deserialize)]
pub struct RenameRequest {
    #[serde(flatten)]
    pub connection: Connection,
    pub bucket: Option<String>,
    pub from_prefix: String,
    pub to_prefix: String,
}

#[derive(Debug, Deserialize)]
pub struct VersionsRequest {
    #[serde(flatten)]
    pub connection: Connection,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub max_keys: Option<i64>,
    pub key_marker: Option<String>,
    pub version_id_marker: Option<String>,
    pub delimiter: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct VersionRequest {
    #[serde(flatten)]
    pub object: ObjectRequest,
    pub version_id: String,
}

#[derive(Debug, Deserialize)]
pub struct PostPolicyRequest {
    #[serde(flatten)]
    pub object: ObjectRequest,
    pub min_size: Option<i64>,
    pub max_size: Option<i64>,
    pub success_action_status: Option<String>,
}

/// The source of a server-side copy.
pub(crate) struct Source<'a> {
    pub(crate) bucket: &'a str,
    pub(crate) key: &'a str,
    pub(crate) version: Option<&'a str>,
}

impl<'a> Source<'a> {
    pub(crate) fn latest(bucket: &'a str, key: &'a str) -> Source<'a> {
        Source {
            bucket,
            key,
            version: None,
        }
    }
}

/// The canned ACLs that expose nothing beyond the bucket owner; any other
/// (`public-read`, `public-read-write`, `authenticated-read` — every AWS
/// account —, `aws-exec-read`) needs `storage.admin`.
pub const PRIVATE_ACLS: [&str; 3] = ["private", "bucket-owner-read", "bucket-owner-full-control"];
const ACLS: [&str; 7] = [
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

/// An object key: 1–1,024 bytes, no leading `/`, no `\`, no control
/// characters (NUL included), no `.` or `..` segment.
pub fn check_object_key(field: &str, key: &str) -> Result<(), DomainError> {
    let bad = |why: &str| Err(DomainError::invalid_field(field, why));
    if key.is_empty() || key.len() > 1024 {
        return bad("object keys are 1-1024 bytes");
    }
    if key.starts_with('/') {
        return bad("object keys do not start with `/`");
    }
    if key.contains('\\') || key.chars().any(char::is_control) {
        return bad("object keys contain no `\\` and no control characters");
    }
    if key.split('/').any(|s| s == ".." || s == ".") {
        return bad("object keys contain no `.` or `..` segments");
    }
    Ok(())
}

/// A folder prefix: a valid key, not empty and not `/`, ending in `/`.
pub(crate) fn folder_prefix(field: &str, prefix: &str) -> Result<String, DomainError> {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(DomainError::invalid_field(
            field,
            "a folder prefix is required (not empty, not `/`)",
        ));
    }
    let prefix = format!("{trimmed}/");
    check_object_key(field, &prefix)?;
    Ok(prefix)
}

fn ttl(asked: Option<u32>, default: u32, max: u32) -> Result<u32, DomainError> {
    match asked.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n),
        _ => Err(DomainError::invalid_field(
            "expires_in",
            format!("1-{max} seconds"),
        )),
    }
}

fn max_keys(asked: Option<i64>, default: i64) -> Result<i64, DomainError> {
    match asked.unwrap_or(default) {
        n if (1..=PAGE as i64).contains(&n) => Ok(n),
        _ => Err(DomainError::invalid_field("max_keys", "1-1000")),
    }
}

pub(crate) fn content_type(ct: &Option<String>) -> Result<Option<&str>, DomainError> {
    match ct.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(ct)
            if ct.len() <= 255
                && ct.contains('/')
                && ct.chars().all(|c| c.is_ascii_graphic() || c == ' ') =>
        {
            Ok(Some(ct))
        }
        Some(_) => Err(DomainError::invalid_field(
            "content_type",
            "a MIME type such as `image/png`",
        )),
    }
}

fn expires_at(seconds: u32) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(i64::from(seconds)))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `"etag"` → `etag`.
fn etag(reply: &Reply) -> Option<String> {
    reply
        .header("etag")
        .map(|e| e.trim_matches('"').to_string())
}

/// An object's metadata from a HEAD answer.
fn head_view(bucket: &str, key: &str, reply: &Reply) -> Value {
    let mut metadata = Map::new();
    for (name, value) in &reply.headers {
        if let Some(m) = name.as_str().strip_prefix("x-amz-meta-") {
            if let Ok(v) = value.to_str() {
                metadata.insert(m.to_string(), v.into());
            }
        }
    }
    let h = |n: &str| reply.header(n).map(str::to_string);
    json!({
        "bucket": bucket,
        "key": key,
        "size": h("content-length").and_then(|s| s.parse::<i64>().ok()),
        "content_type": h("content-type"),
        "etag": etag(reply),
        "last_modified": h("last-modified"),
        "cache_control": h("cache-control"),
        "content_disposition": h("content-disposition"),
        "content_encoding": h("content-encoding"),
        "content_language": h("content-language"),
        "version_id": h("x-amz-version-id"),
        "checksum_sha256": h("x-amz-checksum-sha256"),
        "metadata": metadata,
    })
}

impl Storage {
    /// HEAD of an object (with its SHA-256 checksum when the store keeps
    /// one); `None` when there is none.
    pub(crate) async fn object_head(
        &self,
        store: &Store,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Reply>, DomainError> {
        let call = Call::new(Method::HEAD, Some(bucket), Some(key))
            .header("x-amz-checksum-mode", "ENABLED")?;
        let reply = self.s3.exchange(store, call).await?;
        match reply.status {
            200..=299 => Ok(Some(reply)),
            404 => Ok(None),
            _ => Err(super::s3::s3_error(&reply, &format!("{bucket}/{key}"))),
        }
    }

    async fn head_reply(
        &self,
        store: &Store,
        bucket: &str,
        key: &str,
    ) -> Result<Reply, DomainError> {
        self.object_head(store, bucket, key)
            .await?
            .ok_or_else(|| DomainError::not_found("object", format!("{bucket}/{key}")))
    }

    pub async fn list_objects(
        &self,
        client: Option<&str>,
        r: ListRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self
            .locate(client, &r.connection, r.bucket.as_deref())
            .await?;
        let max = max_keys(r.max_keys, 200)?;
        if let Some(p) = r.prefix.as_deref().filter(|p| !p.is_empty()) {
            check_object_key("prefix", p)?;
        }
        let page = self
            .list_page(
                &store,
                &bucket,
                r.prefix.as_deref().unwrap_or(""),
                r.delimiter.as_deref(),
                r.continuation_token.as_deref(),
                max,
            )
            .await?;
        Ok(json!({
            "bucket": bucket,
            "prefix": r.prefix.unwrap_or_default(),
            "delimiter": r.delimiter,
            "objects": page.contents.iter().map(|o| json!({
                "key": o.key,
                "size": o.size,
                "etag": o.e_tag.as_deref().map(|e| e.trim_matches('"')),
                "last_modified": o.last_modified,
                "storage_class": o.storage_class,
            })).collect::<Vec<_>>(),
            "common_prefixes": page.common_prefixes.iter().map(|p| p.prefix.clone()).collect::<Vec<_>>(),
            "key_count": page.contents.len(),
            "is_truncated": page.is_truncated,
            "next_continuation_token": page.next_continuation_token,
        }))
    }

    /// One ListObjectsV2 page.
    pub(crate) async fn list_page(
        &self,
        store: &Store,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<&str>,
        max: i64,
    ) -> Result<xml::ListPage, DomainError> {
        let mut call = Call::new(Method::GET, Some(bucket), None)
            .query("list-type", "2")
            .query("max-keys", max.to_string());
        if !prefix.is_empty() {
            call = call.query("prefix", prefix);
        }
        if let Some(d) = delimiter.filter(|d| !d.is_empty()) {
            call = call.query("delimiter", d);
        }
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            call = call.query("continuation-token", t);
        }
        self.s3.send(store, call, bucket).await?.xml()
    }

    pub async fn head_object(
        &self,
        client: Option<&str>,
        r: ObjectRequest,
    ) -> Result<Value, DomainError> {
        check_object_key("key", &r.key)?;
        let (store, bucket) = self
            .locate(client, &r.connection, r.bucket.as_deref())
            .await?;
        let reply = self.head_reply(&store, &bucket, &r.key).await?;
        Ok(head_view(&bucket, &r.key, &reply))
    }

    pub async fn object_exists(
        &self,
        client: Option<&str>,
        r: ObjectRequest,
    ) -> Result<Value, DomainError> {
        check_object_key("key", &r.key)?;
        let (store, bucket) = self
            .locate(client, &r.connection, r.bucket.as_deref())
            .await?;
        let exists = match self.head_reply(&store, &bucket, &r.key).await {
            Ok(_) => true,
            Err(DomainError::NotFound { kind: "object", .. }) => false,
            Err(e) => return Err(e),
        };
        Ok(json!({ "bucket": bucket, "key": r.key, "exists": exists }))
    }

    pub async fn validate_object(
        &self,
        client: Option<&str>,
        r: ValidateRequest,
    ) -> Result<Value, DomainError> {
        let o = r.object;
        check_object_key("key", &o.key)?;
        if r.etag.is_none() && r.checksum_sha256.is_none() {
            return Err(DomainError::Invalid(
                "give `etag` and/or `checksum_sha256` to validate against".into(),
            ));
        }
        let (store, bucket) = self
            .locate(client, &o.connection, o.bucket.as_deref())
            .await?;
        let reply = self.head_reply(&store, &bucket, &o.key).await?;
        let actual_etag = etag(&reply);
        let actual_sum = reply.header("x-amz-checksum-sha256").map(str::to_string);
        let etag_match = r
            .etag
            .as_deref()
            .map(|e| Some(e.trim_matches('"')) == actual_etag.as_deref());
        let checksum_match = r
            .checksum_sha256
            .as_deref()
            .map(|c| Some(c) == actual_sum.as_deref());
        let valid = etag_match.unwrap_or(true) && checksum_match.unwrap_or(true);
        Ok(json!({
            "bucket": bucket,
            "key": o.key,
            "valid": valid,
            "etag_match": etag_match,
            "checksum_match": checksum_match,
            "etag": actual_etag,
            "checksum_sha256": actual_sum,
            "size": reply.header("content-length").and_then(|s| s.parse::<i64>().ok()),
        }))
    }

    /// Replaces an object's metadata (and ACL) by copying it onto itself.
    pub async fn update_object(
        &self,
        client: Option<&str>,
        r: UpdateRequest,
    ) -> Result<Value, DomainError> {
        let o = &r.object;
        check_object_key("key", &o.key)?;
        let ct = content_type(&o.content_type)?;
        // Header values go to S3 as signed text: checked before any call.
        let texts = [
            ("cache_control", r.cache_control.as_deref()),
            ("content_disposition", r.content_disposition.as_deref()),
            ("content_encoding", r.content_encoding.as_deref()),
            ("content_language", r.content_language.as_deref()),
        ];
        let metadata_texts = r.metadata.iter().flatten().filter_map(|(_, v)| v.as_str());
        for (field, text) in texts
            .into_iter()
            .filter_map(|(f, t)| t.map(|t| (f, t)))
            .chain(metadata_texts.map(|t| ("metadata", t)))
        {
            if text.len() > 2048 || !text.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
                return Err(DomainError::invalid_field(
                    field,
                    "printable ASCII, at most 2048 bytes (S3 signs header values as text)",
                ));
            }
        }
        if let Some(acl) = r.acl.as_deref() {
            if !ACLS.contains(&acl) {
                return Err(DomainError::invalid_field(
                    "acl",
                    format!("one of {}", ACLS.join(", ")),
                ));
            }
        }
        let (store, bucket) = self
            .locate(client, &o.connection, o.bucket.as_deref())
            .await?;
        // The current headers are kept unless replaced.
        let current = self.head_reply(&store, &bucket, &o.key).await?;
        let source = format!("/{bucket}/{}", s3::signing::uri_encode(&o.key, false));
        let mut call = Call::new(Method::PUT, Some(&bucket), Some(&o.key))
            .header("x-amz-copy-source", &source)?
            .header("x-amz-metadata-directive", "REPLACE")?;
        let keep = |name: &str, new: Option<&str>| -> Result<Option<String>, DomainError> {
            match new {
                Some(v) => Ok(Some(v.to_string())),
                None => Ok(current.restated(name)?.map(str::to_string)),
            }
        };
        for (header, name, new) in [
            ("content-type", "content-type", ct),
            ("cache-control", "cache-control", r.cache_control.as_deref()),
            (
                "content-disposition",
                "content-disposition",
                r.content_disposition.as_deref(),
            ),
            (
                "content-encoding",
                "content-encoding",
                r.content_encoding.as_deref(),
            ),
            (
                "content-language",
                "content-language",
                r.content_language.as_deref(),
            ),
        ] {
            if let Some(v) = keep(name, new)? {
                call = call.header(header, &v)?;
            }
        }
        if let Some(acl) = r.acl.as_deref() {
            call = call.header("x-amz-acl", acl)?;
        }
        match &r.metadata {
            Some(metadata) => {
                if metadata.len() > 64 {
                    return Err(DomainError::invalid_field("metadata", "at most 64 entries"));
                }
                for (k, v) in metadata {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => continue,
                        other => other.to_string(),
                    };
                    let name = k.to_ascii_lowercase();
                    if name.is_empty()
                        || name.len() > 128
                        || !name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    {
                        return Err(DomainError::invalid_field(
                            "metadata",
                            "names are 1-128 letters, digits, `-` and `_`",
                        ));
                    }
                    call = call.header_named(&format!("x-amz-meta-{name}"), &v)?;
                }
            }
            None => {
                for name in current.headers.keys() {
                    if name.as_str().starts_with("x-amz-meta-") {
                        if let Some(v) = current.restated(name.as_str())? {
                            call = call.header_named(name.as_str(), v)?;
                        }
                    }
                }
            }
        }
        let what = format!("{bucket}/{}", o.key);
        self.s3.send(&store, call, &what).await?;
        let reply = self.head_reply(&store, &bucket, &o.key).await?;
        let mut view = head_view(&bucket, &o.key, &reply);
        view["acl"] = json!(r.acl);
        Ok(view)
    }

    pub async fn object_url(
        &self,
        client: Option<&str>,
        r: ObjectRequest,
    ) -> Result<Value, DomainError> {
        check_object_key("key", &r.key)?;
        let ttl = ttl(r.expires_in, DEFAULT_URL_TTL, MAX_URL_TTL)?;
        let (store, bucket) = self
            .locate(client, &r.connection, r.bucket.as_deref())
            .await?;
        let url = store.presign(&Method::GET, &bucket, &r.key, ttl, &[])?;
        Ok(json!({
            "bucket": bucket, "key": r.key, "url": url, "method": "GET",
            "expires_in": ttl, "expires_at": expires_at(ttl),
        }))
    }

    pub async fn upload_url(
        &self,
        client: Option<&str>,
        r: ObjectRequest,
    ) -> Result<Value, DomainError> {
        check_object_key("key", &r.key)?;
        let ttl = ttl(r.expires_in, DEFAULT_URL_TTL, MAX_URL_TTL)?;
        let ct = content_type(&r.content_type)?;
        let (store, bucket) = self
            .locate(client, &r.connection, r.bucket.as_deref())
            .await?;
        let signed: Vec<(HeaderName, String)> = ct
            .map(|ct| (http::header::CONTENT_TYPE, ct.to_string()))
            .into_iter()
            .collect();
        let url = store.presign(&Method::PUT, &bucket, &r.key, ttl, &signed)?;
        let headers: Map<String, Value> = ct
            .map(|ct| ("Content-Type".to_string(), Value::from(ct)))
            .into_iter()
            .collect();
        Ok(json!({
            "bucket": bucket, "key": r.key, "url": url, "method": "PUT", "headers": headers,
            "expires_in": ttl, "expires_at": expires_at(ttl),
        }))
    }

    pub async fn post_policy(
        &self,
        client: Option<&str>,
        r: PostPolicyRequest,
    ) -> Result<Value, DomainError> {
        let o = &r.object;
        check_object_key("key", &o.key)?;
        let ttl = ttl(o.expires_in, DEFAULT_URL_TTL, MAX_POLICY_TTL)?;
        let ct = content_type(&o.content_type)?;
        let min = r.min_size.unwrap_or(0);
        let max = r.max_size.unwrap_or(5 << 30);
        if min < 0 || max < 1 || min > max || max > 5 << 30 {
            return Err(DomainError::invalid_field(
                "max_size",
                "0 <= min_size <= max_size <= 5 GiB",
            ));
        }
        let (store, bucket) = self
            .locate(client, &o.connection, o.bucket.as_deref())
            .await?;
        let mut fields = Map::new();
        let mut conditions = vec![json!(["content-length-range", min, max])];
        if let Some(ct) = ct {
            conditions.push(json!({ "Content-Type": ct }));
            fields.insert("Content-Type".into(), ct.into());
        }
        if let Some(status) = r.success_action_status.as_deref() {
            if !["200", "201", "204"].contains(&status) {
                return Err(DomainError::invalid_field(
                    "success_action_status",
                    "200, 201 or 204",
                ));
            }
            conditions.push(json!({ "success_action_status": status }));
            fields.insert("success_action_status".into(), status.into());
        }
        let url = store.post_policy(&bucket, &o.key, ttl, conditions, &mut fields)?;
        Ok(json!({
            "bucket": bucket, "key": o.key, "url": url, "method": "POST", "fields": fields,
            "min_size": min, "max_size": max, "expires_in": ttl, "expires_at": expires_at(ttl),
        }))
    }

    pub async fn delete_object(
        &self,
        client: Option<&str>,
        r: ObjectRequest,
    ) -> Result<Value, DomainError> {
        check_object_key("key", &r.key)?;
        let (store, bucket) = self
            .locate(client, &r.connection, r.bucket.as_deref())
            .await?;
        let what = format!("{bucket}/{}", r.key);
        self.s3
            .send(
                &store,
                Call::new(Method::DELETE, Some(&bucket), Some(&r.key)),
                &what,
            )
            .await?;
        Ok(json!({ "bucket": bucket, "key": r.key, "deleted": true }))
    }

    pub async fn public_url(
        &self,
        client: Option<&str>,
        r: PublicUrlRequest,
    ) -> Result<Value, DomainError> {
        let o = &r.object;
        check_object_key("key", &o.key)?;
        let (store, bucket) = self
            .locate(client, &o.connection, o.bucket.as_deref())
            .await?;
        let encoded = s3::signing::uri_encode(&o.key, false);
        let url = match r
            .public_base_url
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
        {
            Some(base) => {
                let parsed = url::Url::parse(base).ok().filter(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.query().is_none()
                        && u.fragment().is_none()
                        && u.username().is_empty()
                        && u.password().is_none()
                });
                match parsed {
                    Some(u) if base.len() <= 512 && !base.chars().any(char::is_control) => {
                        format!("{}/{encoded}", u.as_str().trim_end_matches('/'))
                    }
                    _ => {
                        return Err(DomainError::invalid_field(
                            "public_base_url",
                            "an http(s) URL without query, fragment or user info",
                        ))
                    }
                }
            }
            None => store.url(Some(&bucket), Some(&o.key), &[])?.to_string(),
        };
        Ok(json!({ "bucket": bucket, "key": o.key, "url": url }))
    }

    /// A server-side copy (the bytes never pass through the gateway).
    pub(crate) async fn copy(
        &self,
        store: &Store,
        from: Source<'_>,
        to_bucket: &str,
        to_key: &str,
        replace_with: Option<&Reply>,
    ) -> Result<Reply, DomainError> {
        let Source {
            bucket: from_bucket,
            key: from_key,
            version,
        } = from;
        let mut source = format!(
            "/{from_bucket}/{}",
            s3::signing::uri_encode(from_key, false)
        );
        if let Some(v) = version {
            source.push_str("?versionId=");
            source.push_str(&s3::signing::uri_encode(v, true));
        }
        let mut call = Call::new(Method::PUT, Some(to_bucket), Some(to_key))
            .header("x-amz-copy-source", &source)?;
        // The source's own headers, stated again: a copy onto the same key
        // must change something for some stores (SeaweedFS, S3 without a
        // version id), and this changes nothing a reader sees.
        if let Some(head) = replace_with {
            call = call.header("x-amz-metadata-directive", "REPLACE")?;
            for name in head.headers.keys() {
                let n = name.as_str();
                let kept = n.starts_with("x-amz-meta-")
                    || matches!(
                        n,
                        "content-type"
                            | "cache-control"
                            | "content-disposition"
                            | "content-encoding"
                            | "content-language"
                    );
                if let (true, Some(v)) = (kept, head.restated(n)?) {
                    call = call.header_named(n, v)?;
                }
            }
        }
        let reply = self
            .s3
            .send(store, call, &format!("{from_bucket}/{from_key}"))
            .await?;
        // A copy can fail after a 200 (the error is in the body).
        if super::s3::error_code(&reply.body).is_some()
            && !reply.body.windows(16).any(|w| w == b"CopyObjectResult")
        {
            return Err(super::s3::s3_error(
                &Reply {
                    status: 500,
                    headers: reply.headers,
                    body: reply.body,
                },
                to_key,
            ));
        }
        Ok(reply)
    }

    pub async fn copy_object(
        &self,
        client: Option<&str>,
        r: CopyRequest,
    ) -> Result<Value, DomainError> {
        check_object_key("source_key", &r.source_key)?;
        check_object_key("destination_key", &r.destination_key)?;
        let (store, bucket) = self
            .locate(client, &r.connection, r.bucket.as_deref())
            .await?;
        let to_bucket = match r.destination_bucket.as_deref().filter(|b| !b.is_empty()) {
            Some(b) => {
                super::endpoint::check_bucket(b).map_err(|_| {
                    DomainError::invalid_field("destination_bucket", "not a valid S3 bucket name")
                })?;
                b.to_string()
            }
            None => bucket.clone(),
        };
        let reply = self
            .copy(
                &store,
                Source::latest(&bucket, &r.source_key),
                &to_bucket,
                &r.destination_key,
                None,
            )
            .await?;
        let copied: xml::CopyResult = reply.xml().unwrap_or_default();
        Ok(json!({
            "bucket": bucket, "source_key": r.source_key,
            "destination_bucket": to_bucket, "destination_key": r.destination_key,
            "etag": copied.etag.map(|e| e.trim_matches('"').to_string()),
            "version_id": reply.header("x-amz-version-id"),
        }))
    }

    pub async fn create_folder(
        &self,
        client: Option<&str>,
        r: FolderRequest,
    ) -> Result<Value, DomainError> {
        let prefix = folder_prefix("prefix", &r.prefix)?;
        let (store, bucket) = self
            .locate(client, &r.connection, r.bucket.as_deref())
            .await?;
        let call = Call::new(Method::PUT, Some(&bucket), Some(&prefix));
        self.s3.send(&store, call, &bucket).await?;
        Ok(json!({ "bucket": bucket, "prefix": prefix, "key": prefix, "created": true }))
    }

    /// Deletes every key under a prefix: pages of 1,000 listed, each
    /// deleted with one DeleteObjects call.
    pub async fn delete_folder(
        &self,
        client: Option<&str>,
        r: FolderRequest,
    ) -> Result<Value, DomainError> {
        let prefix = folder_prefix("prefix", &r.prefix)?;
        let (store, bucket) = self
            .locate(client, &r.connection, r.bucket.as_deref())
            .await?;
        let mut deleted = 0usize;
        let mut failed = Vec::new();
        let mut last: Vec<String> = Vec::new();
        for _ in 0..MAX_PAGES {
            // Always the first page: what was deleted is gone from it.
            let page = self
                .list_page(&store, &bucket, &prefix, None, None, PAGE as i64)
                .await?;
            let keys: Vec<String> = page.contents.into_iter().map(|o| o.key).collect();
            if keys.is_empty() {
                break;
            }
            if no_progress(&last, &keys) {
                // Listed again after a "successful" delete (a store that
                // does not delete it): report it instead of looping.
                failed.extend(
                    keys.iter()
                        .take(10)
                        .map(|k| json!({ "key": k, "code": "NotDeleted" })),
                );
                break;
            }
            let (ok, errors) = self.delete_batch(&store, &bucket, &keys).await?;
            last = keys;
            deleted += ok;
            if !errors.is_empty() {
                failed.extend(errors);
                break; // a key that cannot be deleted would be listed forever
            }
        }
        Ok(json!({ "bucket": bucket, "prefix": prefix, "deleted": deleted, "errors": failed }))
    }

    /// One DeleteObjects call (≤ 1,000 keys): how many went, and the keys
    /// that did not with their S3 code.
    async fn delete_batch(
        &self,
        store: &Store,
        bucket: &str,
        keys: &[String],
    ) -> Result<(usize, Vec<Value>), DomainError> {
        let body = xml::delete_objects(keys);
        let call = Call::new(Method::POST, Some(bucket), None)
            .query("delete", "")
            .document("application/xml", body)?;
        let reply = self.s3.send(store, call, bucket).await?;
        let result: xml::DeleteResult = reply.xml()?;
        let errors: Vec<Value> = result
            .errors
            .iter()
            .map(|e| json!({ "key": e.key, "code": e.code }))
            .collect();
        Ok((keys.len() - errors.len(), errors))
    }

    /// Moves every key under `from_prefix` to `to_prefix`: each page is
    /// copied, then its sources deleted. Re-running after a failure
    /// finishes the move (a copied source not yet deleted is copied again,
    /// to the same bytes).
    pub async fn rename_folder(
        &self,
        client: Option<&str>,
        r: RenameRequest,
    ) -> Result<Value, DomainError> {
        let from = folder_prefix("from_prefix", &r.from_prefix)?;
        let to = folder_prefix("to_prefix", &r.to_prefix)?;
        if to.starts_with(&from) || from.starts_with(&to) {
            return Err(DomainError::invalid_field(
                "to_prefix",
                "must not contain or lie inside from_prefix",
            ));
        }
        let (store, bucket) = self
            .locate(client, &r.connection, r.bucket.as_deref())
            .await?;
        let mut moved = 0usize;
        let mut last: Vec<String> = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self
                .list_page(&store, &bucket, &from, None, None, PAGE as i64)
                .await?;
            let keys: Vec<String> = page.contents.into_iter().map(|o| o.key).collect();
            if keys.is_empty() {
                break;
            }
            if no_progress(&last, &keys) {
                return Err(DomainError::ServiceUnavailable(
                    "the S3 store lists keys it reported deleted; the rename stopped (re-run to retry)".into(),
                ));
            }
            for key in &keys {
                let rest = key.strip_prefix(from.as_str()).ok_or_else(|| {
                    DomainError::ServiceUnavailable(
                        "the S3 store listed a key outside the prefix".into(),
                    )
                })?;
                let target = format!("{to}{rest}");
                check_object_key("to_prefix", &target)?;
                self.copy(&store, Source::latest(&bucket, key), &bucket, &target, None)
                    .await?;
            }
            let (ok, errors) = self.delete_batch(&store, &bucket, &keys).await?;
            last = keys;
            moved += ok;
            if !errors.is_empty() {
                return Err(DomainError::ServiceUnavailable(format!(
                    "{} source keys could not be deleted after copying; re-run the rename to finish",
                    errors.len()
                )));
            }
        }
        Ok(json!({ "bucket": bucket, "from_prefix": from, "to_prefix": to, "moved": moved }))
    }

    pub async fn list_versions(
        &self,
        client: Option<&str>,
        r: VersionsRequest,
    ) -> Result<Value, DomainError> {
        let (store, bucket) = self
            .locate(client, &r.connection, r.bucket.as_deref())
            .await?;
        let max = max_keys(r.max_keys, 1000)?;
        let mut call = Call::new(Method::GET, Some(&bucket), None)
            .query("versions", "")
            .query("max-keys", max.to_string());
        if let Some(k) = r.key.as_deref().filter(|k| !k.is_empty()) {
            check_object_key("key", k)?;
            call = call.query("prefix", k);
        }
        if let Some(m) = r.key_marker.as_deref().filter(|m| !m.is_empty()) {
            call = call.query("key-marker", m);
        }
        if let Some(m) = r.version_id_marker.as_deref().filter(|m| !m.is_empty()) {
            call = call.query("version-id-marker", m);
        }
        if let Some(d) = r.delimiter.as_deref().filter(|d| !d.is_empty()) {
            call = call.query("delimiter", d);
        }
        let page: xml::VersionsPage = self.s3.send(&store, call, &bucket).await?.xml()?;
        let wanted = |key: &str| r.key.as_deref().is_none_or(|k| k.is_empty() || key == k);
        let versions: Vec<Value> = page
            .entries
            .iter()
            .filter_map(|e| match e {
                xml::VersionEntry::Version(v) => Some((v, false)),
                xml::VersionEntry::DeleteMarker(v) => Some((v, true)),
                _ => None,
            })
            .filter(|(v, _)| wanted(&v.key))
            .map(|(v, marker)| {
                json!({
                    "key": v.key, "version_id": v.version_id, "is_latest": v.is_latest,
                    "size": v.size, "etag": v.etag.as_deref().map(|e| e.trim_matches('"')),
                    "last_modified": v.last_modified, "delete_marker": marker,
                })
            })
            .collect();
        Ok(json!({
            "bucket": bucket, "key": r.key, "versions": versions,
            "is_truncated": page.is_truncated(),
            "next_key_marker": page.next_key_marker(),
            "next_version_id_marker": page.next_version_id_marker(),
        }))
    }

    fn version_id(v: &str) -> Result<(), DomainError> {
        if v.is_empty() || v.len() > 1024 || v.chars().any(char::is_control) {
            return Err(DomainError::invalid_field(
                "version_id",
                "1-1024 characters",
            ));
        }
        Ok(())
    }

    /// Makes an old version current again (copies it over the key).
    pub async fn restore_version(
        &self,
        client: Option<&str>,
        r: VersionRequest,
    ) -> Result<Value, DomainError> {
        check_object_key("key", &r.object.key)?;
        Self::version_id(&r.version_id)?;
        let o = &r.object;
        let (store, bucket) = self
            .locate(client, &o.connection, o.bucket.as_deref())
            .await?;
        let what = format!("{bucket}/{}", o.key);
        let head = Call::new(Method::HEAD, Some(&bucket), Some(&o.key))
            .query("versionId", r.version_id.clone());
        let head = self.s3.exchange(&store, head).await?;
        if head.status == 404 {
            return Err(DomainError::not_found("object version", what));
        }
        if !(200..300).contains(&head.status) {
            return Err(super::s3::s3_error(&head, &what));
        }
        let reply = self
            .copy(
                &store,
                Source {
                    bucket: &bucket,
                    key: &o.key,
                    version: Some(&r.version_id),
                },
                &bucket,
                &o.key,
                Some(&head),
            )
            .await?;
        Ok(json!({
            "bucket": bucket, "key": o.key, "restored_version_id": r.version_id,
            "version_id": reply.header("x-amz-version-id"),
        }))
    }

    pub async fn delete_version(
        &self,
        client: Option<&str>,
        r: VersionRequest,
    ) -> Result<Value, DomainError> {
        check_object_key("key", &r.object.key)?;
        Self::version_id(&r.version_id)?;
        let o = &r.object;
        let (store, bucket) = self
            .locate(client, &o.connection, o.bucket.as_deref())
            .await?;
        let call = Call::new(Method::DELETE, Some(&bucket), Some(&o.key))
            .query("versionId", r.version_id.clone());
        self.s3
            .send(&store, call, &format!("{bucket}/{}", o.key))
            .await?;
        Ok(json!({ "bucket": bucket, "key": o.key, "version_id": r.version_id, "deleted": true }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys() {
        for ok in ["a", "a/b.txt", "dir/", "ü/x y", &"k".repeat(1024)] {
            assert!(check_object_key("key", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/../b",
            "..",
            "a/./b",
            "a\\b",
            "a\0b",
            "a\nb",
            &"k".repeat(1025),
        ] {
            assert!(check_object_key("key", bad).is_err(), "{bad:?}");
        }
        assert_eq!(folder_prefix("prefix", "a/b").unwrap(), "a/b/");
        assert!(folder_prefix("prefix", "").is_err());
        assert!(folder_prefix("prefix", "/").is_err());
        assert!(folder_prefix("prefix", "//").is_err());
    }
}
