//! The S3 wire: requests signed with rust-s3's SigV4 functions
//! (`s3::signing`) and sent over the outbound-policy connector
//! (`src/outbound.rs`), so a store's host name is resolved once, checked,
//! and connected to at exactly the checked address (no DNS rebinding, no
//! redirects followed). `https://` stores are encrypted with rustls
//! (webpki roots). Answers are read with a cap; S3 error documents become
//! domain errors naming only the S3 error code (upstream messages are never
//! echoed).
//!
//! rust-s3's own `Bucket` resolves and connects by itself, so it is used
//! here for what needs no connection: signing, its XML types.

use super::endpoint::Endpoint;
use crate::domain::DomainError;
use crate::outbound::{Connector, OutboundError, OutboundPolicy};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, HOST};
use http::{HeaderMap, Method};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use s3::region::Region;
use s3::signing;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use url::Url;

/// Largest S3 answer read (listings of 1,000 keys are a few hundred KiB).
const ANSWER_LIMIT: usize = 16 << 20;
/// Longest wait for one S3 exchange.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// SHA-256 of the empty payload.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// One S3 store as a request reaches it: where, and as whom.
#[derive(Clone)]
pub struct Store {
    pub endpoint: Endpoint,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("endpoint", &self.endpoint.url())
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

impl Store {
    fn region(&self) -> Region {
        Region::Custom {
            region: self.region.clone(),
            endpoint: self.endpoint.url(),
        }
    }

    /// The path-style URL of a bucket or an object, with `query` (names
    /// and values encoded the way SigV4 canonicalizes them).
    pub fn url(
        &self,
        bucket: Option<&str>,
        key: Option<&str>,
        query: &[(&str, String)],
    ) -> Result<Url, DomainError> {
        let mut text = self.endpoint.url();
        text.push('/');
        if let Some(bucket) = bucket {
            text.push_str(bucket);
            if let Some(key) = key {
                text.push('/');
                text.push_str(&signing::uri_encode(key, false));
            }
        }
        for (i, (name, value)) in query.iter().enumerate() {
            text.push(if i == 0 { '?' } else { '&' });
            text.push_str(&signing::uri_encode(name, true));
            if !value.is_empty() {
                text.push('=');
                text.push_str(&signing::uri_encode(value, true));
            }
        }
        Url::parse(&text).map_err(|e| DomainError::Internal(format!("S3 URL {text}: {e}")))
    }

    /// `host[:port]` as the request's `Host` header carries it.
    fn host(url: &Url) -> String {
        let host = url.host_str().unwrap_or_default();
        match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    fn signature(&self, now: &OffsetDateTime, string_to_sign: &str) -> Result<String, DomainError> {
        let key = signing::signing_key(now, &self.secret_key, &self.region(), "s3").map_err(sig)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|e| DomainError::Internal(format!("signing key: {e}")))?;
        mac.update(string_to_sign.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// Signs a request in place (`Authorization`, `x-amz-date`,
    /// `x-amz-content-sha256`, `Host`, the session token): every header
    /// present is signed.
    fn sign(
        &self,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        payload_sha256: &str,
    ) -> Result<(), DomainError> {
        let (now, long) = now();
        headers.insert(HOST, value(&Self::host(url))?);
        headers.insert(HeaderName::from_static("x-amz-date"), value(&long)?);
        headers.insert(
            HeaderName::from_static("x-amz-content-sha256"),
            value(payload_sha256)?,
        );
        if let Some(token) = &self.session_token {
            headers.insert(
                HeaderName::from_static("x-amz-security-token"),
                value(token)?,
            );
        }
        let region = self.region();
        let canonical = signing::canonical_request(method.as_str(), url, headers, payload_sha256)
            .map_err(sig)?;
        let to_sign = signing::string_to_sign(&now, &region, &canonical).map_err(sig)?;
        let signature = self.signature(&now, &to_sign)?;
        let authorization = signing::authorization_header(
            &self.access_key,
            &now,
            &region,
            &signing::signed_header_string(headers),
            &signature,
        )
        .map_err(sig)?;
        headers.insert(AUTHORIZATION, value(&authorization)?);
        Ok(())
    }

    /// A presigned URL (query authentication, `UNSIGNED-PAYLOAD`): the
    /// holder may send `method` to the object for `expires_in` seconds,
    /// with exactly the `signed` headers (e.g. `content-type`).
    pub fn presign(
        &self,
        method: &Method,
        bucket: &str,
        key: &str,
        expires_in: u32,
        signed: &[(HeaderName, String)],
    ) -> Result<String, DomainError> {
        self.presign_query(method, bucket, key, &[], expires_in, signed)
    }

    /// `presign` of an object sub-resource (`partNumber` and `uploadId`
    /// of a multipart upload's part): `query` is signed into the URL.
    pub fn presign_query(
        &self,
        method: &Method,
        bucket: &str,
        key: &str,
        query: &[(&str, String)],
        expires_in: u32,
        signed: &[(HeaderName, String)],
    ) -> Result<String, DomainError> {
        let (now, _) = now();
        let base = self.url(Some(bucket), Some(key), query)?;
        let mut custom = HeaderMap::new();
        for (name, v) in signed {
            custom.insert(name.clone(), value(v)?);
        }
        let region = self.region();
        let query = signing::authorization_query_params_no_sig(
            &self.access_key,
            &now,
            &region,
            expires_in,
            Some(&custom),
            self.session_token.as_ref(),
        )
        .map_err(sig)?;
        // The signing parameters join the sub-resource's query, if any.
        let query = match base.query() {
            Some(_) => query.replacen('?', "&", 1),
            None => query,
        };
        let url = Url::parse(&format!("{base}{query}"))
            .map_err(|e| DomainError::Internal(format!("presigned URL: {e}")))?;
        let mut headers = custom;
        headers.insert(HOST, value(&Self::host(&url))?);
        let canonical =
            signing::canonical_request(method.as_str(), &url, &headers, "UNSIGNED-PAYLOAD")
                .map_err(sig)?;
        let to_sign = signing::string_to_sign(&now, &region, &canonical).map_err(sig)?;
        let signature = self.signature(&now, &to_sign)?;
        Ok(format!("{url}&X-Amz-Signature={signature}"))
    }

    /// A browser POST policy (`POST /storage/objects/post-policy`): the
    /// form fields to send with the file to the bucket URL.
    pub fn post_policy(
        &self,
        bucket: &str,
        key: &str,
        expires_in: u32,
        conditions: Vec<serde_json::Value>,
        fields: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, DomainError> {
        use base64::Engine;
        use serde_json::{json, Value};
        let (now, long) = now();
        let credential = format!(
            "{}/{}",
            self.access_key,
            signing::scope_string(&now, &self.region()).map_err(sig)?
        );
        let expiration = chrono::Utc::now() + chrono::Duration::seconds(i64::from(expires_in));
        let mut all = vec![
            json!({ "bucket": bucket }),
            json!(["eq", "$key", key]),
            json!({ "x-amz-algorithm": "AWS4-HMAC-SHA256" }),
            json!({ "x-amz-credential": credential }),
            json!({ "x-amz-date": long }),
        ];
        if let Some(token) = &self.session_token {
            all.push(json!({ "x-amz-security-token": token }));
            fields.insert("x-amz-security-token".into(), Value::from(token.clone()));
        }
        all.extend(conditions);
        let policy = json!({
            "expiration": expiration.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "conditions": all,
        });
        let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
        let signature = self.signature(&now, &policy)?;
        fields.insert("key".into(), Value::from(key));
        fields.insert("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into());
        fields.insert("x-amz-credential".into(), credential.into());
        fields.insert("x-amz-date".into(), long.into());
        fields.insert("policy".into(), policy.into());
        fields.insert("x-amz-signature".into(), signature.into());
        Ok(self.url(Some(bucket), None, &[])?.to_string())
    }
}

/// Now, as SigV4 wants it, and as `x-amz-date` (`YYYYMMDDTHHMMSSZ`).
fn now() -> (OffsetDateTime, String) {
    let now = chrono::Utc::now();
    let t =
        OffsetDateTime::from_unix_timestamp(now.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    (t, now.format("%Y%m%dT%H%M%SZ").to_string())
}

fn sig(e: s3::error::S3Error) -> DomainError {
    DomainError::Internal(format!("SigV4: {e}"))
}

/// A header value: visible ASCII and spaces only (SigV4 signs the value as
/// text; anything else is a 400), trimmed and with runs of spaces collapsed
/// as SigV4 canonicalises them, so the value sent is the value signed.
fn value(text: &str) -> Result<HeaderValue, DomainError> {
    if !text
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
    {
        return Err(DomainError::Invalid(
            "S3 header values (metadata, content type, cache and disposition headers) must be printable ASCII".into(),
        ));
    }
    let collapsed = text.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
    HeaderValue::from_str(&collapsed)
        .map_err(|_| DomainError::Invalid("a value does not fit in an S3 request header".into()))
}

/// One S3 request.
pub struct Call<'a> {
    method: Method,
    bucket: Option<&'a str>,
    key: Option<&'a str>,
    query: Vec<(&'a str, String)>,
    headers: HeaderMap,
    body: Bytes,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, bucket: Option<&'a str>, key: Option<&'a str>) -> Call<'a> {
        Call {
            method,
            bucket,
            key,
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    pub fn query(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, v: &str) -> Result<Self, DomainError> {
        self.headers
            .insert(HeaderName::from_static(name), value(v)?);
        Ok(self)
    }

    /// A named header the caller chose (`x-amz-meta-*`), checked.
    pub fn header_named(mut self, name: &str, v: &str) -> Result<Self, DomainError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| DomainError::invalid_field("metadata", "names must be header tokens"))?;
        self.headers.insert(name, value(v)?);
        Ok(self)
    }

    /// Raw bytes as the body (an object or a multipart part): signed by
    /// their SHA-256 like any body.
    pub fn bytes(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }

    /// An XML or JSON document body, with its `Content-MD5` (S3 requires
    /// it for CORS, lifecycle, DeleteObjects …).
    pub fn document(
        mut self,
        content_type: &'static str,
        body: String,
    ) -> Result<Self, DomainError> {
        use base64::Engine;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::compute(body.as_bytes()).0);
        self.headers
            .insert(HeaderName::from_static("content-md5"), value(&md5)?);
        self.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        self.body = Bytes::from(body);
        Ok(self)
    }
}

/// An S3 answer (the body read, capped; empty for HEAD).
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A header to restate on a copy: absent, or its text — a value that
    /// is not ASCII cannot be restated without changing it (400).
    pub fn restated(&self, name: &str) -> Result<Option<&str>, DomainError> {
        match self.headers.get(name) {
            None => Ok(None),
            Some(v) => v.to_str().map(Some).map_err(|_| {
                DomainError::Invalid(format!(
                    "the object's `{name}` is not ASCII and cannot be kept by this copy; send a new value"
                ))
            }),
        }
    }

    /// The body as an S3 XML document of type `T`.
    pub fn xml<T: serde::de::DeserializeOwned>(&self) -> Result<T, DomainError> {
        let text = std::str::from_utf8(&self.body).map_err(|_| {
            DomainError::ServiceUnavailable("the S3 store answered non-UTF-8 XML".into())
        })?;
        quick_xml::de::from_str(text).map_err(|e| {
            tracing::warn!(error = %e, "unparsable S3 answer");
            DomainError::ServiceUnavailable("the S3 store answered an unexpected document".into())
        })
    }
}

type HttpsConnector = hyper_rustls::HttpsConnector<Connector>;

/// The S3 client: one connection pool for every store, every connection
/// through the outbound policy.
pub struct S3 {
    client: Client<HttpsConnector, Full<Bytes>>,
}

impl S3 {
    pub fn new(policy: &Arc<OutboundPolicy>) -> S3 {
        let https = policy.https_connector(CONNECT_TIMEOUT);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .build(https);
        S3 { client }
    }

    /// Sends `call`; a non-2xx answer is an error (`s3_error`) about `what`
    /// (the bucket or object, for a 404).
    pub async fn send(
        &self,
        store: &Store,
        call: Call<'_>,
        what: &str,
    ) -> Result<Reply, DomainError> {
        let reply = self.exchange(store, call).await?;
        if (200..300).contains(&reply.status) {
            Ok(reply)
        } else {
            Err(s3_error(&reply, what))
        }
    }

    /// `call` as a signed HTTP request.
    fn signed(store: &Store, call: Call<'_>) -> Result<http::Request<Full<Bytes>>, DomainError> {
        let url = store.url(call.bucket, call.key, &call.query)?;
        let mut headers = call.headers;
        let sha = if call.body.is_empty() {
            EMPTY_SHA256.to_string()
        } else {
            hex::encode(Sha256::digest(&call.body))
        };
        store.sign(&call.method, &url, &mut headers, &sha)?;
        let mut request = http::Request::builder()
            .method(call.method)
            .uri(url.as_str())
            .body(Full::new(call.body))
            .map_err(|e| DomainError::Internal(format!("S3 request: {e}")))?;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// Sends `call` and returns the answer as soon as its head arrives,
    /// the body unread (an object streamed to a caller as it arrives).
    pub async fn open(
        &self,
        store: &Store,
        call: Call<'_>,
    ) -> Result<http::Response<hyper::body::Incoming>, DomainError> {
        let request = Self::signed(store, call)?;
        tokio::time::timeout(EXCHANGE_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| {
                DomainError::ServiceUnavailable("the S3 store did not answer in time".into())
            })?
            .map_err(transport)
    }

    /// The error an opened answer carries (its body read, capped).
    pub async fn open_error(
        answer: http::Response<hyper::body::Incoming>,
        what: &str,
    ) -> DomainError {
        let (parts, body) = answer.into_parts();
        let body = tokio::time::timeout(
            EXCHANGE_TIMEOUT,
            crate::outbound::read_capped(body, 64 << 10),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
        s3_error(
            &Reply {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            },
            what,
        )
    }

    /// Sends `call` and returns whatever the store answered.
    pub async fn exchange(&self, store: &Store, call: Call<'_>) -> Result<Reply, DomainError> {
        let head = call.method == Method::HEAD;
        let request = Self::signed(store, call)?;
        let answer = tokio::time::timeout(EXCHANGE_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| {
                DomainError::ServiceUnavailable("the S3 store did not answer in time".into())
            })?
            .map_err(transport)?;
        let (parts, body) = answer.into_parts();
        let body = if head {
            Bytes::new()
        } else {
            tokio::time::timeout(
                EXCHANGE_TIMEOUT,
                crate::outbound::read_capped(body, ANSWER_LIMIT),
            )
            .await
            .map_err(|_| {
                DomainError::ServiceUnavailable("the S3 store did not answer in time".into())
            })?
            .map_err(|e| DomainError::ServiceUnavailable(format!("the S3 store's answer: {e}")))?
        };
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

/// A failed exchange: refused by the outbound policy → 403, anything else
/// (unreachable, TLS) → 503 without upstream detail.
fn transport(e: hyper_util::client::legacy::Error) -> DomainError {
    if let Some(refused) = OutboundError::find(&e) {
        return refused.clone().into_domain("endpoint");
    }
    tracing::warn!(error = ?e, "S3 store unreachable");
    DomainError::ServiceUnavailable("the S3 store could not be reached".into())
}

/// The `<Code>` of an S3 error document, if it is a plain token.
pub fn error_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    let code = &text[start..end];
    (!code.is_empty()
        && code.len() <= 64
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
    .then(|| code.to_string())
}

/// An S3 error answer as a domain error: the S3 code names the reason,
/// the store's message is not repeated.
pub fn s3_error(reply: &Reply, what: &str) -> DomainError {
    let code = error_code(&reply.body);
    let status = reply.status;
    let shown = code.clone().unwrap_or_else(|| format!("HTTP {status}"));
    match code.as_deref() {
        Some("NoSuchKey") => DomainError::not_found("object", what),
        Some("NoSuchBucket") => DomainError::not_found("bucket", what),
        Some("NoSuchVersion") => DomainError::not_found("object version", what),
        Some("NoSuchUpload") => DomainError::not_found("upload", what),
        Some("BucketNotEmpty") => DomainError::Invalid(format!("bucket `{what}` is not empty")),
        Some("BucketAlreadyExists" | "BucketAlreadyOwnedByYou") => {
            DomainError::invalid_field("bucket", format!("bucket `{what}` already exists"))
        }
        Some("NotImplemented" | "XNotImplemented") => DomainError::Unsupported(format!(
            "the S3 store does not implement this operation ({shown})"
        )),
        Some("AccessDenied" | "AllAccessDisabled") => {
            DomainError::Forbidden(format!("the S3 store denied access ({shown})"))
        }
        Some(
            "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken"
            | "AuthorizationHeaderMalformed" | "InvalidSecurity" | "TokenRefreshRequired",
        ) => DomainError::Invalid(format!(
            "the S3 store refused the credentials ({shown}); check the access key, secret and region"
        )),
        _ if status == 501 => DomainError::Unsupported(format!(
            "the S3 store does not implement this operation ({shown})"
        )),
        _ if status == 404 => DomainError::not_found("S3 resource", what),
        // A HEAD answer has no body to name the reason.
        None if status == 401 || status == 403 => DomainError::Invalid(format!(
            "the S3 store refused the request ({shown}); check the credentials, the region and the bucket's permissions"
        )),
        _ if status >= 500 || code.as_deref() == Some("SlowDown") => {
            DomainError::ServiceUnavailable(format!("the S3 store failed ({shown}); retry"))
        }
        _ if (300..400).contains(&status) => DomainError::Invalid(format!(
            "the S3 store redirected the request ({shown}); check the endpoint and region"
        )),
        _ => DomainError::Invalid(format!("the S3 store refused the request ({shown})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store {
            endpoint: Endpoint {
                https: false,
                host: "127.0.0.1".into(),
                port: 8333,
            },
            region: "us-east-1".into(),
            access_key: "AKID".into(),
            secret_key: "secret".into(),
            session_token: None,
        }
    }

    #[test]
    fn urls_encode_keys_and_queries_as_sigv4_does() {
        let s = store();
        let u = s
            .url(
                Some("b"),
                Some("a dir/ü+x.txt"),
                &[("versionId", "v 1".into()), ("versions", String::new())],
            )
            .unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:8333/b/a%20dir/%C3%BC%2Bx.txt?versionId=v%201&versions"
        );
        assert_eq!(Store::host(&u), "127.0.0.1:8333");
    }

    #[test]
    fn presigned_urls_carry_the_query_signature() {
        let url = store()
            .presign(&Method::GET, "b", "k.txt", 900, &[])
            .unwrap();
        assert!(url.starts_with("http://127.0.0.1:8333/b/k.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"));
        assert!(url.contains("X-Amz-Expires=900"));
        assert!(url.contains("X-Amz-SignedHeaders=host&"));
        let sig = url.rsplit("X-Amz-Signature=").next().unwrap();
        assert_eq!(sig.len(), 64);
    }

    #[test]
    fn error_documents_map_by_code_without_the_message() {
        let reply = |status, body: &str| Reply {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        };
        let doc = |code: &str| {
            format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>secret detail</Message></Error>")
        };
        assert!(matches!(
            s3_error(&reply(404, &doc("NoSuchKey")), "k"),
            DomainError::NotFound { kind: "object", .. }
        ));
        assert!(matches!(
            s3_error(&reply(409, &doc("BucketNotEmpty")), "b"),
            DomainError::Invalid(_)
        ));
        assert!(matches!(
            s3_error(&reply(501, &doc("NotImplemented")), "b"),
            DomainError::Unsupported(_)
        ));
        assert!(matches!(
            s3_error(&reply(501, "garbage"), "b"),
            DomainError::Unsupported(_)
        ));
        assert!(matches!(
            s3_error(&reply(500, "<html>"), "b"),
            DomainError::ServiceUnavailable(_)
        ));
        let e = s3_error(&reply(403, &doc("SignatureDoesNotMatch")), "b");
        assert!(
            matches!(&e, DomainError::Invalid(m) if !m.contains("secret detail")),
            "{e:?}"
        );
        assert_eq!(error_code(doc("A<b>").as_bytes()), None);
    }
}
