//! Session tokens of end users, resolved at the auth service
//! (`ATHENA_AUTH_URL`, the athena-auth / better-auth API base, e.g.
//! `https://auth.example.com/api/auth`): `GET {base}/get-session` with the
//! session cookie, answered `{session, user}` or `null`.
//!
//! - The connection goes through the outbound policy (security.md §11) like
//!   every other; the answer is capped (64 KiB) and the exchange bounded
//!   (3 s). An unreachable or failing auth service is a 503, never a
//!   guess.
//! - Answers are kept 10 s (never past the session's `expiresAt`), keyed by
//!   the SHA-256 of the cookie (the token itself is not kept): a session
//!   signed out at the auth service stops working within 10 s. Definite
//!   refusals (`null`, 401, 403, 404) are kept too, so a flood of one bad
//!   token does not reach the auth service; failures are not.

use super::end_user::{identifier, EndUser, Source};
use crate::domain::DomainError;
use crate::outbound::{Connector, OutboundPolicy};
use crate::ttl::TtlCache;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// How long an answer of the auth service is used.
const KEEP: Duration = Duration::from_secs(10);
/// The whole exchange with the auth service.
const EXCHANGE: Duration = Duration::from_secs(3);
const CONNECT: Duration = Duration::from_secs(2);
/// The largest answer read.
const MAX_ANSWER: usize = 64 * 1024;
/// The cookie names a session token is read from (the SDK's names).
pub const COOKIES: [&str; 6] = [
    "athena-auth.session-token",
    "athena-auth.session_token",
    "athena-auth-session_token",
    "better-auth.session_token",
    "better-auth-session_token",
    "session_token",
];

/// A session token as it will be sent to the auth service: one cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionToken {
    cookie: String,
}

impl SessionToken {
    /// `name=value`, for a cookie name of `COOKIES` and a value of cookie
    /// characters only (no `;`, `,`, space, quote or backslash: nothing
    /// can be smuggled into the header sent on), at most 4096 bytes.
    pub fn new(name: &str, value: &str) -> Result<SessionToken, DomainError> {
        let ok = !value.is_empty()
            && value.len() <= 4096
            && value
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\'));
        if !ok {
            return Err(DomainError::Unauthorized(
                "the session token is malformed".into(),
            ));
        }
        Ok(SessionToken {
            cookie: format!("{name}={value}"),
        })
    }

    /// The cookie sent to the auth service.
    pub fn cookie(&self) -> &str {
        &self.cookie
    }
}

type Https = hyper_rustls::HttpsConnector<Connector>;

/// The resolver of session tokens (`ATHENA_AUTH_URL` configured).
pub struct Sessions {
    url: http::Uri,
    client: Client<Https, Empty<Bytes>>,
    cache: TtlCache<[u8; 32], Option<(EndUser, std::time::Instant)>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("url", &self.url).finish()
    }
}

/// The auth service's `get-session` answer (better-auth's shape).
#[derive(Deserialize)]
struct Answer {
    session: SessionPart,
    user: UserPart,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionPart {
    user_id: Option<String>,
    active_organization_id: Option<String>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize)]
struct UserPart {
    id: String,
}

impl Sessions {
    /// For the auth API base `base` (`http(s)://…`, no query).
    pub fn new(base: &str, policy: &Arc<OutboundPolicy>) -> Result<Sessions, String> {
        let base = base.trim().trim_end_matches('/');
        let url: http::Uri = format!("{base}/get-session")
            .parse()
            .map_err(|_| "ATHENA_AUTH_URL is not a URL".to_string())?;
        if !matches!(url.scheme_str(), Some("http" | "https"))
            || url.host().is_none()
            || url.query().is_some()
        {
            return Err("ATHENA_AUTH_URL must be an absolute http(s) URL without a query".into());
        }
        let https = policy.https_connector(CONNECT);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(Sessions {
            url,
            client,
            cache: TtlCache::new(KEEP, 100_000),
        })
    }

    /// The end user of a session token: 401 when the auth service does
    /// not know it (or it expired), 503 when the service cannot answer.
    pub async fn resolve(&self, token: &SessionToken) -> Result<EndUser, DomainError> {
        let key: [u8; 32] = Sha256::digest(token.cookie.as_bytes()).into();
        if let Some(known) = self.cache.get(&key) {
            return match known {
                Some((user, until)) if until > std::time::Instant::now() => Ok(user),
                _ => Err(unknown()),
            };
        }
        let generation = self.cache.generation();
        let found = tokio::time::timeout(EXCHANGE, self.ask(token))
            .await
            .unwrap_or_else(|_| Err(unavailable("did not answer in time")))?;
        self.cache.insert_if_current(generation, key, found.clone());
        match found {
            Some((user, _)) => Ok(user),
            None => Err(unknown()),
        }
    }

    /// One exchange: `Some` user (valid until), `None` for a definite no.
    async fn ask(
        &self,
        token: &SessionToken,
    ) -> Result<Option<(EndUser, std::time::Instant)>, DomainError> {
        let request = http::Request::get(self.url.clone())
            .header(http::header::COOKIE, &token.cookie)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|_| unknown())?;
        let response = self.client.request(request).await.map_err(|e| {
            tracing::warn!(error = %e, "auth service unreachable");
            unavailable("is unreachable")
        })?;
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403 | 404) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(unavailable(&format!("answered {}", status.as_u16())));
        }
        let body = crate::outbound::read_capped(response.into_body(), MAX_ANSWER)
            .await
            .map_err(|_| unavailable("sent an unreadable answer"))?;
        let answer: Option<Answer> = serde_json::from_slice(&body)
            .map_err(|_| unavailable("sent an answer that is not a session"))?;
        let Some(answer) = answer else {
            return Ok(None);
        };
        let now = chrono::Utc::now();
        let left = match answer.session.expires_at {
            Some(at) if at <= now => return Ok(None),
            Some(at) => (at - now).to_std().unwrap_or_default().min(KEEP),
            None => KEEP,
        };
        if answer
            .session
            .user_id
            .as_deref()
            .is_some_and(|u| u != answer.user.id)
        {
            return Err(unavailable("sent a session of another user"));
        }
        let malformed = |_| unavailable("sent a malformed user or organization id");
        let user = EndUser {
            user_id: identifier("user.id", &answer.user.id).map_err(malformed)?,
            organization_id: answer
                .session
                .active_organization_id
                .filter(|o| !o.is_empty())
                .map(|o| identifier("activeOrganizationId", &o))
                .transpose()
                .map_err(malformed)?,
            source: Source::Session,
        };
        Ok(Some((user, std::time::Instant::now() + left)))
    }
}

fn unknown() -> DomainError {
    DomainError::Unauthorized("the session token is not a live session".into())
}

fn unavailable(what: &str) -> DomainError {
    DomainError::ServiceUnavailable(format!(
        "the auth service (ATHENA_AUTH_URL) {what}; session tokens cannot be checked"
    ))
}
