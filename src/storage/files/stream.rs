//! Streams of managed files: `PUT …/upload` (the request body to S3 in
//! `PART_SIZE` parts, never the whole body in memory), `proxy` (the
//! object's bytes from S3 to the caller as they arrive, with `Range`) and
//! `proxy-url` (an expiring Athena URL of the proxy, HMAC-signed).

use super::*;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use std::pin::Pin;

/// The part size of a streamed upload (and the size under which a body is
/// one PutObject): what the SDK uses for its multipart uploads.
pub const PART_SIZE: usize = 8 << 20;

/// Longest life of a proxy URL.
pub const MAX_PROXY_URL_TTL: u32 = 24 * 3600;

/// A request body as it arrives (`src/http/server/streams.rs` makes it).
pub type ByteStream = Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, DomainError>> + Send>>;

/// What `proxy` answers: the object's bytes (status 200 or 206, headers
/// to pass on, the S3 body unread), or a range past its end (416).
pub enum Proxied {
    Bytes {
        status: u16,
        headers: HeaderMap,
        body: hyper::body::Incoming,
    },
    Unsatisfiable {
        size: Option<i64>,
    },
}

/// A verified proxy-url token: which client's file, for what, and the end
/// user it was issued to (checked again against the live grants whenever
/// the URL is used: a revoke or a visibility change ends it at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyGrant {
    pub client: String,
    pub file_id: Uuid,
    pub purpose: String,
    pub expires: i64,
    pub user: EndUser,
}

/// The parts of a body, `PART_SIZE` bytes each (the last shorter).
struct Parts {
    body: ByteStream,
    carry: Bytes,
    done: bool,
}

impl Parts {
    /// The next part; empty at the end.
    async fn next(&mut self) -> Result<Bytes, DomainError> {
        let mut part = BytesMut::new();
        while part.len() < PART_SIZE {
            if self.carry.is_empty() {
                if self.done {
                    break;
                }
                match self.body.next().await {
                    Some(chunk) => self.carry = chunk?,
                    None => {
                        self.done = true;
                        break;
                    }
                }
                continue;
            }
            // The buffer grows with the bytes that came (nothing is
            // reserved for bytes a client only promises).
            let take = (PART_SIZE - part.len()).min(self.carry.len());
            part.extend_from_slice(&self.carry.split_to(take));
        }
        Ok(part.freeze())
    }
}

/// A single `bytes=` range, as S3 takes it; anything else (several
/// ranges, another unit, garbage) is ignored and the whole object sent, as
/// RFC 9110 §14.2 allows. `Err` for a range that cannot be satisfied.
fn range(header: Option<&str>, size: Option<i64>) -> Result<Option<String>, ()> {
    let Some(spec) = header.map(str::trim).and_then(|h| h.strip_prefix("bytes=")) else {
        return Ok(None);
    };
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let number = |s: &str| -> Option<Option<u64>> {
        let s = s.trim();
        if s.is_empty() {
            Some(None)
        } else if s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok().map(Some)
        } else {
            None
        }
    };
    let (Some(first), Some(last)) = (number(first), number(last)) else {
        return Ok(None);
    };
    let size = size.and_then(|n| u64::try_from(n).ok());
    match (first, last) {
        (None, None) => Ok(None),
        (Some(a), Some(b)) if a > b => Ok(None),
        (None, Some(0)) => Err(()),
        (Some(a), _) if size.is_some_and(|n| a >= n) => Err(()),
        (a, b) => Ok(Some(format!(
            "bytes={}-{}",
            a.map(|n| n.to_string()).unwrap_or_default(),
            b.map(|n| n.to_string()).unwrap_or_default()
        ))),
    }
}

/// Content types a browser renders inline without running anything:
/// images (not SVG), audio, video, PDF and plain text. Anything else (HTML,
/// SVG, XML, JavaScript, unknown) is served as an attachment: the proxy
/// answers on the gateway's own origin, where a page could act with the
/// reader's session cookie.
fn inline_safe(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (kind, sub) = essence.split_once('/').unwrap_or((&essence, ""));
    match kind {
        "image" => !sub.contains("svg"),
        "audio" | "video" => true,
        "text" => sub == "plain",
        "application" => sub == "pdf",
        _ => false,
    }
}

/// `Content-Disposition` for `purpose` and the object's type: `download`,
/// or a type that is not `inline_safe`, an attachment named after the
/// file; else inline.
fn disposition(purpose: &str, content_type: Option<&str>, name: &str) -> String {
    let kind = if purpose == "download" || !inline_safe(content_type) {
        "attachment"
    } else {
        "inline"
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn check_purpose(purpose: Option<&str>) -> Result<&str, DomainError> {
    let purpose = purpose.unwrap_or("read");
    if matches!(purpose, "read" | "download" | "stream") {
        Ok(purpose)
    } else {
        Err(DomainError::invalid_field(
            "purpose",
            "read, download or stream",
        ))
    }
}

/// The signed text of a proxy token: the file, what for, until when, and
/// for whom (user, organization, how the user was established).
fn token_message(
    client: &str,
    file_id: Uuid,
    purpose: &str,
    expires: i64,
    user: &EndUser,
) -> String {
    format!(
        "athena-proxy-url/v2\n{client}\n{file_id}\n{purpose}\n{expires}\n{}\n{}\n{}",
        user.user_id,
        user.organization_id.as_deref().unwrap_or(""),
        user.source.as_str()
    )
}

/// The `Source` named in a token.
fn source_named(text: &str) -> Option<Source> {
    [
        Source::TrustedHeaders,
        Source::Jwt,
        Source::Session,
        Source::Service,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

impl Storage {
    /// The `proxy-url` signing key: derived from `ATHENA_SECRET_KEY`.
    fn proxy_key(&self) -> Result<[u8; 32], DomainError> {
        let secrets = self.secrets.as_ref().ok_or_else(|| {
            DomainError::ServiceUnavailable("proxy URLs need ATHENA_SECRET_KEY".into())
        })?;
        Ok(secrets.derive("proxy-url"))
    }

    fn token_mac(&self, message: &str) -> Result<Hmac<sha2::Sha256>, DomainError> {
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.proxy_key()?)
            .map_err(|e| DomainError::Internal(format!("proxy key: {e}")))?;
        mac.update(message.as_bytes());
        Ok(mac)
    }

    /// Checks a proxy URL's `token` for `file_id`: signed by this server
    /// over (client, file, purpose, expiry) and not expired; anything else
    /// is a 403 naming no detail of the right signature.
    pub fn verify_proxy_token(
        &self,
        file_id: &str,
        query: &[(String, String)],
    ) -> Result<ProxyGrant, DomainError> {
        let get = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let refused = || DomainError::Forbidden("the proxy URL is not valid".into());
        let (Some(client), Some(expires), Some(token), Some(as_user), Some(source)) = (
            get("client"),
            get("expires"),
            get("token"),
            get("user"),
            get("as").and_then(source_named),
        ) else {
            return Err(refused());
        };
        let user = EndUser {
            user_id: as_user.to_string(),
            organization_id: get("org").filter(|o| !o.is_empty()).map(str::to_string),
            source,
        };
        let purpose = check_purpose(get("purpose"))?.to_string();
        let file_id = Uuid::parse_str(file_id.trim()).map_err(|_| refused())?;
        let expires: i64 = expires.parse().map_err(|_| refused())?;
        let signature = hex::decode(token).map_err(|_| refused())?;
        self.token_mac(&token_message(client, file_id, &purpose, expires, &user))?
            .verify_slice(&signature)
            .map_err(|_| refused())?;
        if expires <= Utc::now().timestamp() {
            return Err(DomainError::Forbidden("the proxy URL has expired".into()));
        }
        Ok(ProxyGrant {
            client: client.to_string(),
            file_id,
            purpose,
            expires,
            user,
        })
    }

    /// `GET …/proxy-url`: an Athena URL of the proxy that works without an
    /// actor or a key until it expires (the read check happens now).
    pub async fn file_proxy_url(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        purpose: Option<&str>,
        expires_in: Option<i64>,
        base: Option<&str>,
    ) -> Result<Value, DomainError> {
        let purpose = check_purpose(purpose)?;
        let ttl = match expires_in {
            None => DEFAULT_URL_TTL,
            Some(n) => u32::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_PROXY_URL_TTL).contains(n))
                .ok_or_else(|| DomainError::invalid_field("expires_in", "1 to 86400 seconds"))?,
        };
        let tenant = self.files_tenant(client).await?;
        let file = self.file_for(&tenant, id, user, Permission::Read).await?;
        let file = self.bytes_ready(&tenant, client, user, file).await?;
        let expires = Utc::now().timestamp() + i64::from(ttl);
        let signature = hex::encode(
            self.token_mac(&token_message(client, file.id, purpose, expires, user))?
                .finalize()
                .into_bytes(),
        );
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("client", client)
            .append_pair("purpose", purpose)
            .append_pair("expires", &expires.to_string())
            .append_pair("user", &user.user_id)
            .append_pair("org", user.organization_id.as_deref().unwrap_or(""))
            .append_pair("as", user.source.as_str())
            .append_pair("token", &signature)
            .finish();
        let path = format!("/storage/files/{}/proxy?{query}", file.id);
        let url = base.map(|b| format!("{}{path}", b.trim_end_matches('/')));
        Self::audit(&tenant, "proxy_url", "ok", user, Some(&file), None).await;
        let at = DateTime::<Utc>::from_timestamp(expires, 0).unwrap_or_else(Utc::now);
        Ok(json!({
            "url": url.unwrap_or_else(|| path.clone()),
            "path": path,
            "file_id": file.id.to_string(),
            "purpose": purpose,
            "expires_in": ttl,
            "expires_at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "expires_at_epoch_seconds": expires,
        }))
    }

    /// `GET …/proxy` for an end user who may read the file.
    pub async fn file_proxy(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        purpose: Option<&str>,
        range_header: Option<&str>,
    ) -> Result<Proxied, DomainError> {
        let purpose = check_purpose(purpose)?;
        let tenant = self.files_tenant(client).await?;
        let file = self.file_for(&tenant, id, user, Permission::Read).await?;
        let file = self.bytes_ready(&tenant, client, user, file).await?;
        let proxied = self.proxy_bytes(client, &file, purpose, range_header).await;
        let status = if proxied.is_ok() { "ok" } else { "failed" };
        Self::audit(&tenant, "proxy", status, user, Some(&file), None).await;
        proxied
    }

    /// `GET …/proxy` with a verified proxy-url grant (no actor): the file
    /// of the grant, live in the grant's client.
    pub async fn file_proxy_granted(
        &self,
        grant: &ProxyGrant,
        range_header: Option<&str>,
    ) -> Result<Proxied, DomainError> {
        let tenant = self.files_tenant(&grant.client).await?;
        // The user the URL was issued to must still be able to read it.
        let file = self
            .file_for(
                &tenant,
                &grant.file_id.to_string(),
                &grant.user,
                Permission::Read,
            )
            .await?;
        let file = self
            .bytes_ready(&tenant, &grant.client, &grant.user, file)
            .await?;
        let proxied = self
            .proxy_bytes(&grant.client, &file, &grant.purpose, range_header)
            .await;
        let status = if proxied.is_ok() { "ok" } else { "failed" };
        Self::audit(
            &tenant,
            "proxy",
            status,
            &grant.user,
            Some(&file),
            Some("proxy URL"),
        )
        .await;
        proxied
    }

    async fn proxy_bytes(
        &self,
        client: &str,
        file: &FileRow,
        purpose: &str,
        range_header: Option<&str>,
    ) -> Result<Proxied, DomainError> {
        if file.status != "available" {
            return Err(DomainError::Invalid(format!(
                "the file is {}, not available",
                file.status
            )));
        }
        let Ok(range) = range(range_header, file.size_bytes) else {
            return Ok(Proxied::Unsatisfiable {
                size: file.size_bytes,
            });
        };
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let mut call = Call::new(Method::GET, Some(&file.bucket), Some(&file.storage_key));
        if let Some(r) = &range {
            call = call.header("range", r)?;
        }
        let answer = self.s3.open(&store, call).await?;
        let status = answer.status().as_u16();
        if status == 416 {
            return Ok(Proxied::Unsatisfiable {
                size: file.size_bytes,
            });
        }
        if !(200..300).contains(&status) {
            return Err(crate::storage::s3::S3::open_error(answer, &file.storage_key).await);
        }
        let (parts, body) = answer.into_parts();
        let mut headers = HeaderMap::new();
        for name in [
            "content-type",
            "content-length",
            "content-range",
            "etag",
            "last-modified",
        ] {
            if let Some(v) = parts.headers.get(name) {
                headers.insert(HeaderName::from_static(name), v.clone());
            }
        }
        headers.insert(
            HeaderName::from_static("accept-ranges"),
            HeaderValue::from_static("bytes"),
        );
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        if let Ok(v) = HeaderValue::from_str(&disposition(purpose, content_type, &file.name)) {
            headers.insert(HeaderName::from_static("content-disposition"), v);
        }
        // Never sniffed into something runnable, never a document with
        // powers on this origin.
        headers.insert(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static("default-src 'none'; sandbox"),
        );
        Ok(Proxied::Bytes {
            status: if status == 206 { 206 } else { 200 },
            headers,
            body,
        })
    }

    /// `PUT …/upload`: the body to the file's key (one PutObject under
    /// `PART_SIZE`, else a multipart upload of `PART_SIZE` parts, one part
    /// in memory at a time), then the file available with its size.
    pub async fn file_put_stream(
        &self,
        client: &str,
        user: &EndUser,
        id: &str,
        content_type: Option<&str>,
        body: ByteStream,
    ) -> Result<Value, DomainError> {
        let asked = crate::storage::objects::content_type(&content_type.map(str::to_string))?
            .map(str::to_string);
        let tenant = self.files_tenant(client).await?;
        let file = self.file_for(&tenant, id, user, Permission::Write).await?;
        let content_type = asked.or(file.mime_type.clone());
        let (store, _) = self.catalog_store(client, file.s3_id).await?;
        let sent = self
            .put_parts(&store, &file, content_type.as_deref(), body)
            .await;
        let size = match sent {
            Ok(size) => size,
            Err(e) => {
                Self::audit(
                    &tenant,
                    "upload",
                    "failed",
                    user,
                    Some(&file),
                    Some("the bytes were not stored"),
                )
                .await;
                return Err(e);
            }
        };
        let file = self
            .mark_available(&tenant, &store, &file, Some(size))
            .await?;
        self.forget_urls(client, file.id).await;
        Self::audit(&tenant, "upload", "ok", user, Some(&file), None).await;
        Ok(json!({ "file": file.view() }))
    }

    /// Sends the parts of `body`; the byte count.
    async fn put_parts(
        &self,
        store: &crate::storage::s3::Store,
        file: &FileRow,
        content_type: Option<&str>,
        body: ByteStream,
    ) -> Result<i64, DomainError> {
        let (bucket, key) = (&file.bucket, &file.storage_key);
        let mut parts = Parts {
            body,
            carry: Bytes::new(),
            done: false,
        };
        let first = parts.next().await?;
        if parts.done {
            let size = first.len() as i64;
            let mut call = Call::new(Method::PUT, Some(bucket), Some(key)).bytes(first);
            if let Some(ct) = content_type {
                call = call.header("content-type", ct)?;
            }
            self.s3.send(store, call, key).await?;
            return Ok(size);
        }
        let upload_id = self
            .s3_multipart_create(store, bucket, key, content_type)
            .await?;
        let mut sent = Vec::new();
        let mut size = 0i64;
        let mut part = first;
        let outcome: Result<(), DomainError> = async {
            loop {
                let number = sent.len() as u32 + 1;
                if number > super::multipart::MAX_PARTS {
                    return Err(DomainError::Invalid(
                        "the body needs more than 10000 parts".into(),
                    ));
                }
                size += part.len() as i64;
                let etag = self
                    .s3_multipart_part(store, bucket, key, &upload_id, number, part)
                    .await?;
                sent.push((number, etag));
                part = parts.next().await?;
                if part.is_empty() {
                    break;
                }
            }
            self.s3_multipart_complete(store, bucket, key, &upload_id, &sent)
                .await
                .map(|_| ())
        }
        .await;
        if let Err(e) = outcome {
            // The parts are freed; the file keeps what it had.
            if let Err(abort) = self
                .s3_multipart_abort(store, bucket, key, &upload_id)
                .await
            {
                tracing::warn!(error = %abort, "a failed upload's multipart upload was not aborted");
            }
            return Err(e);
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_single_bytes_only() {
        assert_eq!(range(None, Some(10)), Ok(None));
        assert_eq!(
            range(Some("bytes=0-4"), Some(10)),
            Ok(Some("bytes=0-4".into()))
        );
        assert_eq!(
            range(Some("bytes=5-"), Some(10)),
            Ok(Some("bytes=5-".into()))
        );
        assert_eq!(
            range(Some("bytes=-3"), Some(10)),
            Ok(Some("bytes=-3".into()))
        );
        assert_eq!(range(Some("bytes=10-"), Some(10)), Err(()));
        assert_eq!(range(Some("bytes=-0"), Some(10)), Err(()));
        assert_eq!(range(Some("bytes=0-1,3-4"), Some(10)), Ok(None));
        assert_eq!(range(Some("items=0-1"), Some(10)), Ok(None));
        assert_eq!(range(Some("bytes=4-2"), Some(10)), Ok(None));
        assert_eq!(range(Some("bytes=x-2"), Some(10)), Ok(None));
    }

    #[test]
    fn dispositions_quote_safely() {
        assert_eq!(
            disposition("download", Some("text/plain"), "a\"b.txt"),
            "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%22b%2Etxt"
        );
        assert!(disposition("read", Some("text/plain"), "é.txt")
            .starts_with("inline; filename=\"_.txt\""));
    }

    #[test]
    fn only_harmless_types_are_inline() {
        for ct in [
            "image/png",
            "text/plain; charset=utf-8",
            "application/pdf",
            "video/mp4",
        ] {
            assert!(
                disposition("read", Some(ct), "f").starts_with("inline"),
                "{ct}"
            );
        }
        for ct in [
            None,
            Some("text/html"),
            Some("image/svg+xml"),
            Some("application/xhtml+xml"),
            Some("text/javascript"),
            Some("application/octet-stream"),
        ] {
            assert!(
                disposition("read", ct, "f").starts_with("attachment"),
                "{ct:?}"
            );
        }
    }
}
