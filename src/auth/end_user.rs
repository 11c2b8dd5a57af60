//! The end user a request acts for (managed files, chat): who owns a
//! file or sends a message, which organization they act in. One resolver, in this order:
//!
//! 1. `X-User-Id` / `X-Organization-Id`, trusted only from the admin key or
//!    an API key holding `storage.service` (a server acting for its users);
//!    from anyone else they are ignored.
//! 2. A bearer JWT (`Authorization: Bearer`, or the SDK's mirror
//!    `X-Athena-Auth-Bearer-Token`), verified with `jsonwebtoken` against
//!    the configured key (`ATHENA_AUTH_JWT_SECRET` for HS256, or
//!    `ATHENA_AUTH_JWT_PUBLIC_KEY` PEM for RS256/ES256), issuer and audience
//!    when configured, expiry always: `sub` is the user, the organization is
//!    the first of `org_id`, `organization_id`, `activeOrganizationId`.
//! 3. A session token (`X-Athena-Auth-Session-Token`, or a session cookie
//!    of `session::COOKIES`): resolved at `ATHENA_AUTH_URL`
//!    (`src/auth/session.rs`); without it configured, refused.
//!
//! Nothing found, or a token that does not verify: 401. `EndUsers` is the
//! resolver the handlers hold (storage files, chat).

use super::rights::Right;
use super::session::{SessionToken, Sessions, COOKIES};
use super::Actor;
use crate::domain::DomainError;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// How the end user was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    TrustedHeaders,
    Jwt,
    Session,
    /// A trusted service on the SDK's service routes (`EndUser::service`).
    Service,
}

impl Source {
    /// The name recorded in audit rows.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::TrustedHeaders => "trusted_headers",
            Source::Jwt => "jwt",
            Source::Session => "session",
            Source::Service => "service",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUser {
    pub user_id: String,
    pub organization_id: Option<String>,
    pub source: Source,
}

impl EndUser {
    /// A trusted service acting within `organization` (any of the client's
    /// when `None`), for `user` when it names one: only for the service
    /// routes, whose access already required the admin key or
    /// `storage.service`. `user_id` is empty without a user (nothing is
    /// recorded as theirs).
    pub fn service(
        actor: &Actor,
        user: Option<&str>,
        organization: Option<&str>,
    ) -> Result<EndUser, DomainError> {
        if !trusted(actor) {
            return Err(DomainError::Forbidden(
                "the service routes need the admin key or a storage.service key".into(),
            ));
        }
        Ok(EndUser {
            user_id: user
                .map(|u| identifier("X-User-Id", u))
                .transpose()?
                .unwrap_or_default(),
            organization_id: organization
                .map(|o| identifier("organizationId", o))
                .transpose()?,
            source: Source::Service,
        })
    }

    /// The user the request is for, if any (a service may act for none).
    pub fn user(&self) -> Option<&str> {
        (!self.user_id.is_empty()).then_some(self.user_id.as_str())
    }
}

/// The JWT verification settings (`ATHENA_AUTH_JWT_*`).
#[derive(Clone)]
pub struct JwtSettings {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSettings")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl JwtSettings {
    /// From a shared secret (HS256) or a PEM public key (RS256 or ES256 by
    /// the key's type), with an optional issuer and audience.
    pub fn new(
        secret: Option<&str>,
        public_key_pem: Option<&str>,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Option<JwtSettings>, String> {
        let (key, algorithms) = match (secret, public_key_pem) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(
                    "set ATHENA_AUTH_JWT_SECRET or ATHENA_AUTH_JWT_PUBLIC_KEY, not both".into(),
                )
            }
            (Some(secret), None) => {
                if secret.len() < 32 {
                    return Err("ATHENA_AUTH_JWT_SECRET must be at least 32 bytes".into());
                }
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    vec![Algorithm::HS256],
                )
            }
            (None, Some(pem)) => match DecodingKey::from_rsa_pem(pem.as_bytes()) {
                Ok(key) => (key, vec![Algorithm::RS256]),
                Err(_) => (
                    DecodingKey::from_ec_pem(pem.as_bytes()).map_err(|_| {
                        "ATHENA_AUTH_JWT_PUBLIC_KEY is not an RSA or EC public key (PEM)"
                            .to_string()
                    })?,
                    vec![Algorithm::ES256],
                ),
            },
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.leeway = 30;
        validation.validate_nbf = true;
        // A configured issuer or audience must be present, not merely
        // match when present (a token for another service carries none).
        let mut required = vec!["exp", "sub"];
        if issuer.is_some() {
            required.push("iss");
        }
        if audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        match issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Some(JwtSettings { key, validation }))
    }

    fn verify(&self, token: &str) -> Result<EndUser, DomainError> {
        #[derive(Deserialize)]
        struct Claims {
            sub: String,
            org_id: Option<String>,
            organization_id: Option<String>,
            #[serde(rename = "activeOrganizationId")]
            active_organization_id: Option<String>,
        }
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| {
                DomainError::Unauthorized(format!("the bearer token was refused: {}", reason(&e)))
            })?;
        let c = data.claims;
        let refused =
            |_| DomainError::Unauthorized("the bearer token's claims are malformed".into());
        if c.sub.is_empty() {
            return Err(DomainError::Unauthorized(
                "the bearer token names no user".into(),
            ));
        }
        let organization_id = [c.org_id, c.organization_id, c.active_organization_id]
            .into_iter()
            .flatten()
            .find(|o| !o.is_empty())
            .map(|o| identifier("org_id", &o).map_err(refused))
            .transpose()?;
        Ok(EndUser {
            user_id: identifier("sub", &c.sub).map_err(refused)?,
            organization_id,
            source: Source::Jwt,
        })
    }
}

/// A short, safe reason for a refused JWT (never the token).
fn reason(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "expired",
        K::InvalidIssuer => "wrong issuer",
        K::InvalidAudience => "wrong audience",
        K::InvalidSignature => "bad signature",
        K::InvalidAlgorithm => "unexpected algorithm",
        K::ImmatureSignature => "not valid yet",
        K::MissingRequiredClaim(_) => "a required claim is missing",
        _ => "malformed",
    }
}

/// A header's value, trimmed, when present and not empty.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// An identifier from a header: 1–256 printable characters.
pub(super) fn identifier(field: &str, value: &str) -> Result<String, DomainError> {
    if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
        return Err(DomainError::invalid_field(
            field,
            "1-256 printable characters",
        ));
    }
    Ok(value.to_string())
}

/// The bearer token, if any: `Authorization: Bearer` or the SDK's mirror
/// (both present and different: refused, as two different API keys are).
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, DomainError> {
    let mirror = header(headers, "x-athena-auth-bearer-token");
    let authorization = header(headers, "authorization").and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    match (mirror, authorization) {
        (Some(a), Some(b)) if a != b => Err(DomainError::Unauthorized(
            "Authorization and X-Athena-Auth-Bearer-Token carry different tokens".into(),
        )),
        (a, b) => Ok(a.or(b)),
    }
}

/// The session token of the request, if any: the header, else the first
/// session cookie (`session::COOKIES`).
fn session_token(headers: &HeaderMap) -> Option<Result<SessionToken, DomainError>> {
    if let Some(v) = header(headers, "x-athena-auth-session-token") {
        return Some(SessionToken::new(COOKIES[0], v));
    }
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.split_once('='))
        .find(|(name, _)| COOKIES.contains(&name.trim()))
        .map(|(name, value)| SessionToken::new(name.trim(), value.trim()))
}

/// Whether `actor` may assert an end user through the trusted headers.
fn trusted(actor: &Actor) -> bool {
    match actor {
        Actor::Admin => true,
        // Granted by name: acting for other users is never implied by a
        // wildcard (`storage.*`, `*`) handed to a front end.
        Actor::Key(key) => key
            .rights
            .iter()
            .any(|r| r == Right::StorageService.as_str()),
        Actor::Open => false,
    }
}

/// What the request says about its end user, before any remote check.
enum Found {
    User(EndUser),
    Session(SessionToken),
}

fn local(
    headers: &HeaderMap,
    actor: &Actor,
    jwt: Option<&JwtSettings>,
) -> Result<Found, DomainError> {
    if trusted(actor) {
        if let Some(user) = header(headers, "x-user-id") {
            return Ok(Found::User(EndUser {
                user_id: identifier("X-User-Id", user)?,
                organization_id: header(headers, "x-organization-id")
                    .map(|o| identifier("X-Organization-Id", o))
                    .transpose()?,
                source: Source::TrustedHeaders,
            }));
        }
    }
    if let Some(token) = bearer(headers)? {
        return match jwt {
            Some(settings) => settings.verify(token).map(Found::User),
            None => Err(DomainError::Unauthorized(
                "bearer tokens are verified with ATHENA_AUTH_JWT_SECRET or ATHENA_AUTH_JWT_PUBLIC_KEY, which is not set".into(),
            )),
        };
    }
    if let Some(token) = session_token(headers) {
        return token.map(Found::Session);
    }
    Err(DomainError::Unauthorized(
        "managed files and chat need an end user: a bearer JWT, a session token, or X-User-Id with the admin key or a storage.service key".into(),
    ))
}

/// The end user of a request without a session resolver (session tokens
/// are refused): the local part of `EndUsers::resolve`.
pub fn resolve(
    headers: &HeaderMap,
    actor: &Actor,
    jwt: Option<&JwtSettings>,
) -> Result<EndUser, DomainError> {
    match local(headers, actor, jwt)? {
        Found::User(user) => Ok(user),
        Found::Session(_) => Err(no_sessions()),
    }
}

fn no_sessions() -> DomainError {
    DomainError::Unauthorized(
        "session tokens are resolved at ATHENA_AUTH_URL, which is not set; send a bearer JWT"
            .into(),
    )
}

/// The end-user resolver of the server: JWT settings and the session
/// resolver, as configured.
#[derive(Debug, Default)]
pub struct EndUsers {
    pub jwt: Option<JwtSettings>,
    pub sessions: Option<Sessions>,
}

impl EndUsers {
    /// The end user of a request (see the module documentation).
    pub async fn resolve(
        &self,
        headers: &HeaderMap,
        actor: &Actor,
    ) -> Result<EndUser, DomainError> {
        match local(headers, actor, self.jwt.as_ref())? {
            Found::User(user) => Ok(user),
            Found::Session(token) => match &self.sessions {
                Some(sessions) => sessions.resolve(&token).await,
                None => Err(no_sessions()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::api_keys::ApiKey;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use std::sync::Arc;

    const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn token(claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn key_with(rights: &[&str]) -> Actor {
        let now = chrono::Utc::now();
        Actor::Key(Arc::new(ApiKey {
            id: uuid::Uuid::nil(),
            public_id: "p".into(),
            secret_hash: Vec::new(),
            name: "n".into(),
            description: None,
            client_name: None,
            expires_at: None,
            is_active: true,
            last_used_at: None,
            created_at: now,
            updated_at: now,
            rights: rights.iter().map(|r| r.to_string()).collect(),
        }))
    }

    #[test]
    fn trusted_headers_only_from_the_admin_or_a_service_key() {
        let h = headers(&[("x-user-id", "u1"), ("x-organization-id", "o1")]);
        let u = resolve(&h, &Actor::Admin, None).unwrap();
        assert_eq!(
            (u.user_id.as_str(), u.organization_id.as_deref()),
            ("u1", Some("o1"))
        );
        assert!(resolve(&h, &key_with(&["storage.service"]), None).is_ok());
        for actor in [Actor::Open, key_with(&["gateway.storage_proxy"])] {
            assert!(matches!(
                resolve(&h, &actor, None),
                Err(DomainError::Unauthorized(_))
            ));
        }
    }

    #[test]
    fn jwts_are_verified() {
        let jwt = JwtSettings::new(Some(SECRET), None, Some("athena-auth"), Some("storage"))
            .unwrap()
            .unwrap();
        let exp = chrono::Utc::now().timestamp() + 600;
        let good = serde_json::json!({"sub": "u9", "org_id": "o9", "exp": exp, "iss": "athena-auth", "aud": "storage"});
        let h = |t: String| headers(&[("authorization", &format!("Bearer {t}"))]);
        let u = resolve(&h(token(good.clone(), SECRET)), &Actor::Open, Some(&jwt)).unwrap();
        assert_eq!(
            (u.user_id.as_str(), u.organization_id.as_deref(), u.source),
            ("u9", Some("o9"), Source::Jwt)
        );
        // The SDK's mirror header; both headers must then agree.
        let t = token(good.clone(), SECRET);
        let m = headers(&[("x-athena-auth-bearer-token", &t)]);
        assert!(resolve(&m, &Actor::Open, Some(&jwt)).is_ok());
        let bearer_t = format!("Bearer {t}");
        let both = headers(&[
            ("x-athena-auth-bearer-token", &t),
            ("authorization", &bearer_t),
        ]);
        assert!(resolve(&both, &Actor::Open, Some(&jwt)).is_ok());
        let other = token(
            serde_json::json!({"sub": "mallory", "exp": exp, "iss": "athena-auth", "aud": "storage"}),
            SECRET,
        );
        let bearer_o = format!("Bearer {other}");
        let differ = headers(&[
            ("x-athena-auth-bearer-token", &t),
            ("authorization", &bearer_o),
        ]);
        assert!(resolve(&differ, &Actor::Open, Some(&jwt)).is_err());
        let mut bad = Vec::new();
        bad.push(token(good.clone(), "another-secret-of-at-least-32-bytes!"));
        let mut expired = good.clone();
        expired["exp"] = serde_json::json!(exp - 7200);
        bad.push(token(expired, SECRET));
        let mut wrong_aud = good.clone();
        wrong_aud["aud"] = serde_json::json!("chat");
        bad.push(token(wrong_aud, SECRET));
        let mut wrong_iss = good.clone();
        wrong_iss["iss"] = serde_json::json!("evil");
        bad.push(token(wrong_iss, SECRET));
        let mut no_aud = good.clone();
        no_aud.as_object_mut().unwrap().remove("aud");
        bad.push(token(no_aud, SECRET));
        let mut no_iss = good.clone();
        no_iss.as_object_mut().unwrap().remove("iss");
        bad.push(token(no_iss, SECRET));
        let mut later = good.clone();
        later["nbf"] = serde_json::json!(exp + 86_400);
        bad.push(token(later, SECRET));
        let mut nul = good.clone();
        nul["sub"] = serde_json::json!("a\u{0}b");
        bad.push(token(nul, SECRET));
        let mut no_sub = good.clone();
        no_sub.as_object_mut().unwrap().remove("sub");
        bad.push(token(no_sub, SECRET));
        bad.push("not.a.jwt".into());
        // `alg: none` is never accepted.
        bad.push(format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(good.to_string())
        }));
        for t in bad {
            let e = resolve(&h(t.clone()), &Actor::Open, Some(&jwt)).unwrap_err();
            assert!(
                matches!(&e, DomainError::Unauthorized(m) if !m.contains(&t)),
                "{t}: {e:?}"
            );
        }
    }

    #[test]
    fn nothing_or_an_unconfigured_kind_is_401() {
        for h in [
            headers(&[]),
            headers(&[("x-athena-auth-session-token", "s")]),
            headers(&[("cookie", "a=b; athena-auth.session-token=s")]),
            headers(&[("authorization", "Bearer x.y.z")]),
        ] {
            assert!(matches!(
                resolve(&h, &Actor::Open, None),
                Err(DomainError::Unauthorized(_))
            ));
        }
        assert!(JwtSettings::new(Some("short"), None, None, None).is_err());
        assert!(JwtSettings::new(None, Some("not a pem"), None, None).is_err());
        assert!(JwtSettings::new(None, None, None, None).unwrap().is_none());
    }

    #[test]
    fn session_tokens_are_read_from_the_header_or_a_session_cookie() {
        let token =
            |h: HeaderMap| session_token(&h).map(|t| t.map(|t| t.cookie().to_string()).ok());
        assert_eq!(
            token(headers(&[("x-athena-auth-session-token", "abc.def")])),
            Some(Some("athena-auth.session-token=abc.def".into()))
        );
        assert_eq!(
            token(headers(&[(
                "cookie",
                "theme=dark; better-auth.session_token=t%2Bk.sig"
            )])),
            Some(Some("better-auth.session_token=t%2Bk.sig".into()))
        );
        assert_eq!(token(headers(&[("cookie", "theme=dark; other=1")])), None);
        // Nothing can be smuggled into the cookie sent on.
        for bad in ["a b", "a,b", "a\\b", "a\"b"] {
            assert_eq!(
                token(headers(&[("x-athena-auth-session-token", bad)])),
                Some(None),
                "{bad}"
            );
        }
    }
}
