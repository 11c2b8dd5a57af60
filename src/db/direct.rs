//! Direct PostgreSQL URIs (`x-pg-uri`, `x-athena-jdbc-url`, `x-jdbc-url`):
//! the gateway routes a request to the database the header names instead
//! of a registered client (`../shared/docs/security.md` §1).
//!
//! - A URI is parsed here, never by `tokio_postgres::Config::from_str` or
//!   libpq: the `Config` is built field by field, so nothing can come from
//!   the gateway's environment (`PGPASSWORD`, `~/.pgpass`, service files).
//! - It must carry a username and a non-empty password (else 401), one TCP
//!   host (unix sockets, `host=`/`hostaddr=` overrides, multi-host lists are
//!   refused) and only whitelisted query parameters (400 naming the
//!   parameter).
//! - Where it may connect is decided by the outbound policy
//!   (`src/outbound.rs`, security.md §11): the host is resolved once, a
//!   loopback/private/link-local/metadata address is refused (403, nothing
//!   opened) unless `ATHENA_OUTBOUND_ALLOW` lists it, and the pool is pinned
//!   to the checked address (`hostaddr`), so it never resolves the name again.
//! - Failed attempts are counted per caller (and, for refused credentials,
//!   per caller and target address) in process; past the limits the request
//!   is a 429 with `Retry-After` and nothing reaches the target.
//! - The first connection of a new pool is made here and watched: when the
//!   database answers `AuthenticationOk` without asking for the password
//!   (`trust`/`ident` in `pg_hba.conf`), the password was never checked, so
//!   the request is refused (401) unless `ATHENA_DIRECT_ALLOW_TRUST_AUTH` is
//!   set. Wrong credentials are a 401, an unreachable or overloaded database
//!   a 503 with `Retry-After`, all within the (capped) connect timeout.
//! - Pools are small (`POOL_MAX_SIZE`), keyed by a salted SHA-256 of the
//!   normalized URI (password included), at most `ATHENA_DIRECT_POOL_CAP` of
//!   them (least recently used evicted), and re-verified every `REVERIFY`
//!   so a changed password or `pg_hba.conf` takes effect.
//! - Nothing here logs or returns the password: the only printable form of a
//!   target is `redacted` (`postgres://user:***@host:port/db`).
//!
//! Direct-URI requests always run inline (the gateway has no deferred queue).

use super::tenants::Tenant;
use super::tls::SslMode;
use super::{Pool, PoolSettings};
use crate::domain::DomainError;
use crate::outbound::{OutboundError, OutboundPolicy};
use bb8_postgres::PostgresConnectionManager;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::ChannelBinding;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

/// The headers, in order of preference (`x-pg-uri` first). Which operations
/// route by them is the `direct_uri` flag of their row in
/// `crate::auth::access`.
pub const HEADERS: [&str; 3] = ["x-pg-uri", "x-athena-jdbc-url", "x-jdbc-url"];

/// Connections per direct pool (also bounded by `ATHENA_POOL_MAX_SIZE`).
pub const POOL_MAX_SIZE: u32 = 4;

/// A cached pool is re-verified (one watched connection) after this long.
pub const REVERIFY: Duration = Duration::from_secs(60);

const MAX_URI_LEN: usize = 4096;

/// The first non-empty direct-URI header, by preference: `(name, value)`.
pub fn pick(values: [Option<&str>; 3]) -> Option<(&'static str, &str)> {
    HEADERS.into_iter().zip(values).find_map(|(name, v)| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| (name, v))
    })
}

/// Whether a header value is a valid direct URI with a username and a
/// non-empty password: the condition of the API-key bypass.
pub fn carries_credentials(value: &str) -> bool {
    parse(value).is_ok()
}

/// Why a URI was refused. The text names the part or parameter, never a value.
#[derive(Debug, PartialEq, Eq)]
pub enum DirectError {
    /// Malformed, or a refused host or parameter (400).
    Refused(String),
    /// No username or no (non-empty) password in the URI (401).
    MissingCredentials,
}

impl DirectError {
    pub fn into_domain(self, header: &str) -> DomainError {
        match self {
            DirectError::Refused(why) => DomainError::invalid_field(header, why),
            DirectError::MissingCredentials => DomainError::Unauthorized(format!(
                "{header}: a direct PostgreSQL URI must carry a username and a password \
                 (postgres://user:password@host:port/db or jdbc:postgresql://host:port/db?user=…&password=…)"
            )),
        }
    }
}

fn refused(why: impl Into<String>) -> DirectError {
    DirectError::Refused(why.into())
}

/// A parsed, validated direct URI.
pub struct DirectTarget {
    /// Built field by field: host, port, user, password, dbname, TLS mode,
    /// channel binding, application name. Timeouts and startup options are
    /// added per pool.
    pub config: tokio_postgres::Config,
    /// libpq's `sslmode` (default `prefer`): the connector's verification
    /// (`src/db/tls.rs`).
    pub ssl: SslMode,
    /// Salted SHA-256 of the normalized URI (password included).
    pub cache_key: [u8; 32],
    /// `postgres://user:***@host:port/db`: the only printable form.
    pub redacted: String,
    host: String,
    port: u16,
    /// `connect_timeout` from the URI (seconds; 0 = none), capped later.
    connect_timeout: Option<Duration>,
}

impl std::fmt::Debug for DirectTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectTarget")
            .field("redacted", &self.redacted)
            .finish_non_exhaustive()
    }
}

/// Parameters that read local files, load code, change the session or
/// redirect the connection: named in the refusal.
const DANGEROUS: [&str; 36] = [
    "host",
    "hostaddr",
    "port",
    "dbname",
    "passfile",
    "options",
    "service",
    "servicefile",
    "sslrootcert",
    "sslkey",
    "sslcert",
    "sslcrl",
    "sslcrldir",
    "sslpassword",
    "sslkeylogfile",
    "requirepeer",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "targetsessionattrs",
    "loadbalancehosts",
    "socketfactory",
    "socketfactoryarg",
    "loggerfile",
    "loggerlevel",
    "sslfactory",
    "sslfactoryarg",
    "sslhostnameverifier",
    "sslpasswordcallback",
    "sslrootcertfile",
    "authenticationpluginclassname",
    "kerberosservername",
    "jaasapplicationname",
    "jaaslogin",
    "currentschema",
    "assumeminserverversion",
];

const ACCEPTED: &str = "user, password, sslmode, ssl, channel_binding, \
                        connect_timeout (connectTimeout), application_name (ApplicationName)";

/// Parses and validates one header value (`postgres://`, `postgresql://` or
/// `jdbc:postgresql://`).
pub fn parse(raw: &str) -> Result<DirectTarget, DirectError> {
    let raw = raw.trim();
    if raw.len() > MAX_URI_LEN {
        return Err(refused("the URI is too long"));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(refused(
            "the URI must not contain spaces or control characters",
        ));
    }
    let (jdbc, rest) = if let Some(r) = strip_prefix_ci(raw, "jdbc:postgresql:") {
        (true, r)
    } else if let Some(r) = strip_prefix_ci(raw, "postgresql:") {
        (false, r)
    } else if let Some(r) = strip_prefix_ci(raw, "postgres:") {
        (false, r)
    } else {
        return Err(refused(
            "expected a postgres://, postgresql:// or jdbc:postgresql:// URI",
        ));
    };
    let rest = rest.strip_prefix("//").ok_or_else(|| {
        refused("a host is required (scheme://host:port/database); unix sockets are not allowed")
    })?;
    if rest.contains('#') {
        return Err(refused(
            "fragments (`#`) are not allowed; percent-encode `#` in a password",
        ));
    }
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };

    let (mut user, mut password) = (None, None);
    if let Some(userinfo) = userinfo {
        let (u, p) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        user = Some(decode(u, false, "the username")?).filter(|u| !u.is_empty());
        password = p
            .map(|p| decode(p, false, "the password"))
            .transpose()?
            .filter(|p| !p.is_empty());
    }
    let (host, port) = host_port(hostport)?;
    let dbname = Some(decode(path, false, "the database name")?).filter(|d| !d.is_empty());

    let mut seen: Vec<String> = Vec::new();
    let mut application_name = None;
    let mut connect_timeout = None;
    let (mut sslmode, mut ssl_flag, mut channel_binding) = (None, None, ChannelBinding::Prefer);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        // pgjdbc decodes parameters like a form (`+` is a space); libpq does not.
        let key = decode(k, jdbc, "a parameter name")?;
        let canon: String = key
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        let shown = printable(&key);
        if seen.contains(&canon) {
            return Err(refused(format!("parameter `{shown}` is given twice")));
        }
        seen.push(canon.clone());
        if DANGEROUS.contains(&canon.as_str()) {
            return Err(refused(format!(
                "parameter `{shown}` is not allowed in a direct URI (it would read local files, \
                 load code, change the session or redirect the connection)"
            )));
        }
        let value = decode(v, jdbc, &format!("parameter `{shown}`"))?;
        match canon.as_str() {
            "user" => {
                if user.is_some() {
                    return Err(refused("the username is given twice"));
                }
                user = Some(value).filter(|u| !u.is_empty());
            }
            "password" => {
                if password.is_some() {
                    return Err(refused("the password is given twice"));
                }
                password = Some(value).filter(|p| !p.is_empty());
            }
            "sslmode" => {
                sslmode = Some(SslMode::parse(&value).ok_or_else(|| {
                    refused(format!(
                        "parameter `{shown}` must be disable, allow, prefer, require, verify-ca \
                         or verify-full"
                    ))
                })?)
            }
            // pgjdbc: `ssl=true` is `verify-full` unless `sslmode` says otherwise.
            "ssl" => {
                ssl_flag = Some(match value.to_ascii_lowercase().as_str() {
                    "true" => SslMode::VerifyFull,
                    "false" => SslMode::Disable,
                    _ => {
                        return Err(refused(format!(
                            "parameter `{shown}` must be true or false"
                        )))
                    }
                })
            }
            "channelbinding" => {
                channel_binding = match value.to_ascii_lowercase().as_str() {
                    "disable" => ChannelBinding::Disable,
                    "prefer" => ChannelBinding::Prefer,
                    "require" => ChannelBinding::Require,
                    _ => {
                        return Err(refused(format!(
                            "parameter `{shown}` must be disable, prefer or require"
                        )))
                    }
                }
            }
            "connecttimeout" => {
                let secs: u64 = value.parse().map_err(|_| {
                    refused(format!(
                        "parameter `{shown}` must be a whole number of seconds"
                    ))
                })?;
                connect_timeout = Some(Duration::from_secs(secs.min(3600)));
            }
            "applicationname" => {
                if value.len() > 63 || value.chars().any(char::is_control) {
                    return Err(refused(format!(
                        "parameter `{shown}` must be at most 63 printable characters"
                    )));
                }
                application_name = Some(value);
            }
            _ => {
                return Err(refused(format!(
                    "parameter `{shown}` is not accepted in a direct URI; accepted: {ACCEPTED}"
                )))
            }
        }
    }

    let (Some(user), Some(password)) = (user, password) else {
        return Err(DirectError::MissingCredentials);
    };
    let dbname = dbname.unwrap_or_else(|| user.clone());
    // libpq expands a database name holding `=` or starting with a URI
    // prefix as a whole connection string (its host, port, passfile would
    // override ours in tools that take `--dbname`).
    let lower = dbname.to_ascii_lowercase();
    if dbname.contains('=')
        || lower.starts_with("postgresql://")
        || lower.starts_with("postgres://")
    {
        return Err(refused(
            "the database name must not contain `=` or be a connection URI",
        ));
    }
    let application_name = application_name.unwrap_or_else(|| "athena".to_string());
    let ssl = sslmode.or(ssl_flag).unwrap_or(SslMode::Prefer);
    if channel_binding == ChannelBinding::Require && !ssl.demands_tls() {
        return Err(refused(
            "channel_binding=require needs TLS: add sslmode=require, verify-ca or verify-full",
        ));
    }

    let mut config = tokio_postgres::Config::new();
    config
        .host(&host)
        .port(port)
        .user(&user)
        .password(password.as_bytes())
        .dbname(&dbname)
        .application_name(&application_name)
        .ssl_mode(ssl.wire())
        .channel_binding(channel_binding);

    let mut hasher = Sha256::new();
    hasher.update(salt());
    for part in [
        host.as_str(),
        &port.to_string(),
        &user,
        &password,
        &dbname,
        &application_name,
        &connect_timeout.map_or(String::new(), |d| d.as_secs().to_string()),
        ssl.as_str(),
        &format!("{channel_binding:?}"),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let host_shown = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let redacted = format!(
        "postgres://{}:***@{host_shown}:{port}/{}",
        utf8_percent_encode(&user, NON_ALPHANUMERIC),
        utf8_percent_encode(&dbname, NON_ALPHANUMERIC)
    );
    Ok(DirectTarget {
        config,
        ssl,
        cache_key: hasher.finalize().into(),
        redacted,
        host,
        port,
        connect_timeout,
    })
}

/// A per-process random salt, so a cache key says nothing about a password.
fn salt() -> &'static [u8; 32] {
    static SALT: OnceLock<[u8; 32]> = OnceLock::new();
    SALT.get_or_init(|| {
        let mut s = [0u8; 32];
        // Without randomness the key is still a hash of the URI: acceptable.
        let _ = getrandom::fill(&mut s);
        s
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Percent-decodes strictly: valid UTF-8, no NUL.
fn decode(s: &str, plus_is_space: bool, what: &str) -> Result<String, DirectError> {
    let s = if plus_is_space {
        std::borrow::Cow::Owned(s.replace('+', " "))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    let bytes = s.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err(refused(format!(
                "{what} is not valid percent-encoded UTF-8"
            )));
        }
    }
    let out = percent_decode_str(&s)
        .decode_utf8()
        .map_err(|_| refused(format!("{what} is not valid percent-encoded UTF-8")))?;
    if out.contains('\0') {
        return Err(refused(format!("{what} contains a NUL character")));
    }
    Ok(out.into_owned())
}

/// A parameter name as it may appear in an error message.
fn printable(key: &str) -> String {
    if !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        key.to_string()
    } else {
        "(unprintable name)".to_string()
    }
}

/// One TCP host (name, IPv4, or bracketed IPv6) and an optional port.
fn host_port(s: &str) -> Result<(String, u16), DirectError> {
    const SOCKETS: &str = "unix-socket hosts are not allowed; give a TCP host name or address";
    if s.contains(',') {
        return Err(refused("only one host is allowed"));
    }
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let (addr, after) = inner
            .split_once(']')
            .ok_or_else(|| refused("the IPv6 address is missing its closing `]`"))?;
        let ip: Ipv6Addr = addr.parse().map_err(|_| {
            refused("the host is not a valid IPv6 address (zone ids are not allowed)")
        })?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| refused("unexpected text after the IPv6 address"))?,
            ),
        };
        (ip.to_string(), port)
    } else {
        let (h, p) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        let host = decode(h, false, "the host")?;
        if host.is_empty() {
            return Err(refused(
                "a host is required (scheme://host:port/database); unix sockets are not allowed",
            ));
        }
        if host.starts_with('/') || host.starts_with('@') || host.contains(['/', '\\']) {
            return Err(refused(SOCKETS));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        {
            return Err(refused("the host is not a valid host name or address"));
        }
        (host, p)
    };
    let port = match port {
        None => 5432,
        Some(p) => Some(p)
            .filter(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| refused("the port is not a valid port number"))?,
    };
    Ok((host, port))
}

/// What the server asked first, seen on the wire during the watched connect.
const SEEN_NOTHING: u8 = 0;
/// `AuthenticationCleartextPassword`, `AuthenticationMD5Password` or `AuthenticationSASL`.
const SEEN_CHALLENGE: u8 = 1;
/// `AuthenticationOk` (or anything else) first: the password was not checked.
const SEEN_NO_CHALLENGE: u8 = 2;

/// A stream that records the first backend message's authentication code.
struct AuthWatch<S> {
    inner: S,
    head: [u8; 9],
    filled: usize,
    /// The next byte read answers the SSLRequest (`S` or `N`): not a message.
    ssl_answer: bool,
    /// TLS was accepted: this (plain) stream carries ciphertext; the watch
    /// wrapped around the TLS stream records the verdict.
    off: bool,
    seen: Arc<AtomicU8>,
}

impl<S> AuthWatch<S> {
    fn new(inner: S, ssl_answer: bool, seen: Arc<AtomicU8>) -> Self {
        AuthWatch {
            inner,
            head: [0; 9],
            filled: 0,
            ssl_answer,
            off: false,
            seen,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthWatch<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && !this.off && this.filled < this.head.len() {
            let mut new = &buf.filled()[before..];
            if this.ssl_answer && !new.is_empty() {
                this.ssl_answer = false;
                this.off = new[0] == b'S';
                new = &new[1..];
            }
            if !this.off {
                let take = new.len().min(this.head.len() - this.filled);
                this.head[this.filled..this.filled + take].copy_from_slice(&new[..take]);
                this.filled += take;
                if this.filled == this.head.len() {
                    let h = this.head;
                    let code = i32::from_be_bytes([h[5], h[6], h[7], h[8]]);
                    let verdict = if h[0] == b'R' && matches!(code, 3 | 5 | 10) {
                        SEEN_CHALLENGE
                    } else {
                        SEEN_NO_CHALLENGE
                    };
                    this.seen.store(verdict, Ordering::SeqCst);
                }
            }
        }
        result
    }
}

impl<T: tokio_postgres::tls::TlsStream + Unpin> tokio_postgres::tls::TlsStream for AuthWatch<T> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        self.inner.channel_binding()
    }
}

/// The TLS connector of a watched connection: the TLS stream it makes is
/// watched too (the first message inside TLS is the authentication request).
struct WatchTls<T> {
    inner: T,
    seen: Arc<AtomicU8>,
}

type WatchedTlsFuture<T, E> =
    Pin<Box<dyn std::future::Future<Output = Result<AuthWatch<T>, E>> + Send>>;

impl<S, T> TlsConnect<S> for WatchTls<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Send + 'static,
    T::Error: 'static,
{
    type Stream = AuthWatch<T::Stream>;
    type Error = T::Error;
    type Future = WatchedTlsFuture<T::Stream, T::Error>;

    fn connect(self, stream: S) -> Self::Future {
        let seen = self.seen;
        let handshake = self.inner.connect(stream);
        Box::pin(async move { handshake.await.map(|tls| AuthWatch::new(tls, false, seen)) })
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthWatch<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

struct Entry {
    tenant: Arc<Tenant>,
    /// The checked address the pool connects to (never re-resolved).
    addr: SocketAddr,
    last_used: u64,
    verified_at: Instant,
}

#[derive(Default)]
struct Lru {
    map: HashMap<[u8; 32], Entry>,
    tick: u64,
}

/// How many failed attempts are tolerated, per `window`.
#[derive(Debug, Clone, Copy)]
pub struct FailureLimits {
    /// Failed authentications per caller and target address
    /// (`ATHENA_DIRECT_AUTH_FAILURES`; 0 = no limit).
    pub per_target: u32,
    /// Failed verifications of any kind per caller
    /// (`ATHENA_DIRECT_CONNECT_FAILURES`; 0 = no limit).
    pub per_caller: u32,
    /// `ATHENA_DIRECT_FAILURE_WINDOW_SECS`.
    pub window: Duration,
}

/// Everything a `DirectPools` needs besides the pool settings.
#[derive(Clone)]
pub struct DirectOptions {
    /// Most cached pools (`ATHENA_DIRECT_POOL_CAP`; 0 disables direct URIs).
    pub cap: usize,
    /// Accept databases that do not check the password
    /// (`ATHENA_DIRECT_ALLOW_TRUST_AUTH`).
    pub allow_trust: bool,
    /// Where the gateway may connect (`ATHENA_OUTBOUND_ALLOW`).
    pub outbound: Arc<OutboundPolicy>,
    pub limits: FailureLimits,
}

impl DirectOptions {
    pub fn from_config(config: &crate::config::Config, outbound: Arc<OutboundPolicy>) -> Self {
        DirectOptions {
            cap: config.direct_pool_cap,
            allow_trust: config.direct_allow_trust_auth,
            outbound,
            limits: FailureLimits {
                per_target: config.direct_auth_failures,
                per_caller: config.direct_connect_failures,
                window: config.direct_failure_window,
            },
        }
    }
}

/// Keys of the failure counters: IPv6 callers count per /64 (one host
/// usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FailureKey {
    Caller(IpAddr),
    Target(IpAddr, SocketAddr),
    /// Every caller together against one target address: callers spread
    /// over many addresses (an IPv6 /48 holds 65 536 /64s) cannot multiply
    /// the guesses a database takes.
    AnyCaller(SocketAddr),
}

/// The all-callers limit per target is this many times the per-caller one.
const ANY_CALLER_FACTOR: u32 = 10;

/// Most counters kept; past it, expired ones are dropped, then the stalest.
const MAX_FAILURE_KEYS: usize = 65_536;

fn caller_bucket(ip: IpAddr) -> IpAddr {
    match crate::outbound::canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// In-process sliding-window counters of failed direct-URI verifications
/// (per gateway process: replicas count separately). An attempt takes its
/// slots *before* connecting and gives them back on success, so concurrent
/// attempts cannot exceed a limit either.
struct Failures {
    limits: FailureLimits,
    map: Mutex<HashMap<FailureKey, VecDeque<Instant>>>,
}

/// The slots one verification holds until it is settled.
struct Reservation {
    caller: IpAddr,
    targets: Vec<SocketAddr>,
    at: Instant,
}

/// How a verification ended, for the counters.
enum Outcome {
    Success,
    /// The database refused the credentials at this address.
    AuthRefused(SocketAddr),
    /// Any other failure (unreachable, timed out, not PostgreSQL, …).
    Failed,
}

impl Failures {
    fn limit(&self, key: &FailureKey) -> u32 {
        match key {
            FailureKey::Caller(_) => self.limits.per_caller,
            FailureKey::Target(..) => self.limits.per_target,
            FailureKey::AnyCaller(_) => self.limits.per_target.saturating_mul(ANY_CALLER_FACTOR),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FailureKey, VecDeque<Instant>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one slot of the caller and of each target address, or answers
    /// 429 with `Retry-After` when one of them is used up.
    fn reserve(&self, caller: IpAddr, targets: &[SocketAddr]) -> Result<Reservation, DomainError> {
        let now = Instant::now();
        let window = self.limits.window;
        let caller = caller_bucket(caller);
        let keys: Vec<FailureKey> = std::iter::once(FailureKey::Caller(caller))
            .chain(targets.iter().map(|t| FailureKey::Target(caller, *t)))
            .chain(targets.iter().map(|t| FailureKey::AnyCaller(*t)))
            .filter(|k| self.limit(k) > 0)
            .collect();
        let mut map = self.lock();
        for key in &keys {
            let Some(times) = map.get_mut(key) else {
                continue;
            };
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= window)
            {
                times.pop_front();
            }
            if times.len() >= self.limit(key) as usize {
                let oldest = times.front().copied().unwrap_or(now);
                let wait = window.saturating_sub(now.duration_since(oldest));
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let detail = match key {
                    FailureKey::Caller(_) => format!(
                        "too many failed direct PostgreSQL URI connections from this caller; \
                         retry in {secs} s"
                    ),
                    FailureKey::Target(..) => format!(
                        "too many failed authentications from this caller to this database; \
                         retry in {secs} s"
                    ),
                    FailureKey::AnyCaller(_) => format!(
                        "too many failed authentications to this database; retry in {secs} s"
                    ),
                };
                tracing::warn!(%caller, "direct PostgreSQL URI throttled");
                return Err(DomainError::RateLimited {
                    detail,
                    retry_after: secs.clamp(1, u64::from(u32::MAX)) as u32,
                });
            }
        }
        if map.len() + keys.len() > MAX_FAILURE_KEYS {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
            while map.len() + keys.len() > MAX_FAILURE_KEYS {
                let Some(stalest) = map
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied())
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                map.remove(&stalest);
            }
        }
        for key in &keys {
            map.entry(*key).or_default().push_back(now);
        }
        Ok(Reservation {
            caller,
            targets: targets.to_vec(),
            at: now,
        })
    }

    /// Gives back the slots the outcome does not use up: all on success;
    /// the target slots but the refusing address's on an authentication
    /// failure; every target slot on any other failure.
    fn settle(&self, r: Reservation, outcome: Outcome) {
        let mut release: Vec<FailureKey> = Vec::new();
        match outcome {
            Outcome::Success => {
                release.push(FailureKey::Caller(r.caller));
                release.extend(r.targets.iter().map(|t| FailureKey::Target(r.caller, *t)));
                release.extend(r.targets.iter().map(|t| FailureKey::AnyCaller(*t)));
            }
            Outcome::AuthRefused(addr) => release.extend(
                r.targets
                    .iter()
                    .filter(|t| **t != addr)
                    .flat_map(|t| [FailureKey::Target(r.caller, *t), FailureKey::AnyCaller(*t)]),
            ),
            Outcome::Failed => release.extend(
                r.targets
                    .iter()
                    .flat_map(|t| [FailureKey::Target(r.caller, *t), FailureKey::AnyCaller(*t)]),
            ),
        }
        let mut map = self.lock();
        for key in release {
            if let Some(times) = map.get_mut(&key) {
                if let Some(i) = times.iter().rposition(|t| *t == r.at) {
                    times.remove(i);
                }
                if times.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }
}

/// The cache of direct-URI pools.
pub struct DirectPools {
    settings: PoolSettings,
    cap: usize,
    allow_trust: bool,
    outbound: Arc<OutboundPolicy>,
    failures: Failures,
    entries: Mutex<Lru>,
}

impl DirectPools {
    pub fn new(settings: PoolSettings, options: DirectOptions) -> Self {
        DirectPools {
            settings,
            cap: options.cap,
            allow_trust: options.allow_trust,
            outbound: options.outbound,
            failures: Failures {
                limits: options.limits,
                map: Mutex::default(),
            },
            entries: Mutex::new(Lru::default()),
        }
    }

    /// Number of cached pools.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a pool for this target is cached.
    pub fn contains(&self, target: &DirectTarget) -> bool {
        self.lock().map.contains_key(&target.cache_key)
    }

    /// The checked address the cached pool of this target connects to.
    pub fn pinned_address(&self, target: &DirectTarget) -> Option<SocketAddr> {
        self.lock().map.get(&target.cache_key).map(|e| e.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tenant for the direct-URI headers, or `None` when none is set.
    /// The caller (for the failure limits) is the peer of the request
    /// being served (`outbound::caller`).
    pub async fn route(
        &self,
        values: [Option<&str>; 3],
    ) -> Option<Result<Arc<Tenant>, DomainError>> {
        let (header, value) = pick(values)?;
        Some(match parse(value) {
            Ok(target) => self.resolve(&target, crate::outbound::caller()).await,
            Err(e) => Err(e.into_domain(header)),
        })
    }

    /// The connect timeout: the URI's `connect_timeout`, never above the
    /// gateway's `ATHENA_POOL_CONNECT_TIMEOUT_MS` (0 or absent = that cap).
    fn connect_timeout(&self, target: &DirectTarget) -> Duration {
        let cap = self.settings.connect_timeout;
        match target.connect_timeout {
            Some(d) if !d.is_zero() => d.min(cap),
            _ => cap,
        }
    }

    /// The pool's connection config: pinned to the checked address
    /// (`hostaddr`), so new pooled connections never resolve the host again.
    fn config(&self, target: &DirectTarget, addr: SocketAddr) -> tokio_postgres::Config {
        let mut config = target.config.clone();
        // The port is the URI's: the policy checked (host, port) as given.
        config.hostaddr(addr.ip());
        config.connect_timeout(self.connect_timeout(target));
        config.options(format!(
            "-c statement_timeout={}",
            self.settings.statement_timeout.as_millis()
        ));
        config
    }

    /// The pooled tenant for a target: cached, or checked, verified and
    /// created. `caller` is the requesting peer (failure limits).
    ///
    /// Order: cached pool → the outbound policy resolves and checks the
    /// host once (refused: 403, nothing opened) → the failure limits (429)
    /// → one watched connection to a checked address → a pool pinned to it.
    pub async fn resolve(
        &self,
        target: &DirectTarget,
        caller: Option<IpAddr>,
    ) -> Result<Arc<Tenant>, DomainError> {
        if self.cap == 0 {
            return Err(DomainError::Forbidden(
                "direct PostgreSQL URIs are disabled on this gateway (ATHENA_DIRECT_POOL_CAP=0)"
                    .into(),
            ));
        }
        {
            let mut lru = self.lock();
            lru.tick += 1;
            let tick = lru.tick;
            if let Some(e) = lru.map.get_mut(&target.cache_key) {
                if e.verified_at.elapsed() < REVERIFY {
                    e.last_used = tick;
                    return Ok(e.tenant.clone());
                }
            }
        }
        let timeout = self.connect_timeout(target);
        let addrs = match tokio::time::timeout(
            timeout,
            self.outbound.resolve(&target.host, target.port),
        )
        .await
        {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => {
                self.lock().map.remove(&target.cache_key);
                if matches!(e, OutboundError::Refused { .. }) {
                    tracing::info!(target_db = %target.redacted, "direct PostgreSQL URI refused by the outbound policy");
                }
                return Err(match e {
                    // Unresolved or unreachable: the detail goes to the log.
                    OutboundError::Refused { .. } | OutboundError::BadUrl(_) => {
                        e.into_domain("the host of the direct URI")
                    }
                    e => DomainError::Unavailable(format!("direct URI {}: {e}", target.redacted)),
                });
            }
            Err(_) => {
                return Err(DomainError::Unavailable(format!(
                    "direct URI {}: resolving the host timed out",
                    target.redacted
                )))
            }
        };
        let reservation = self
            .failures
            .reserve(caller.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), &addrs)?;
        let (client, addr) = match self.verify(target, &addrs).await {
            Ok(pair) => {
                self.failures.settle(reservation, Outcome::Success);
                pair
            }
            Err((e, outcome)) => {
                self.failures.settle(reservation, outcome);
                self.lock().map.remove(&target.cache_key);
                return Err(e);
            }
        };
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        if let Some(e) = lru.map.get_mut(&target.cache_key) {
            if e.addr == addr {
                e.verified_at = Instant::now();
                e.last_used = tick;
                let _ = e.tenant.pool.add(client.into());
                return Ok(e.tenant.clone());
            }
            // The name now resolves elsewhere: a new pool pinned there.
        }
        let pool = self.pool(self.config(target, addr), target.ssl);
        let _ = pool.add(client.into());
        let tenant = Arc::new(Tenant::detached(
            format!("direct:{}", target.redacted),
            target.redacted.clone(),
            pool,
        ));
        lru.map.insert(
            target.cache_key,
            Entry {
                tenant: tenant.clone(),
                addr,
                last_used: tick,
                verified_at: Instant::now(),
            },
        );
        while lru.map.len() > self.cap {
            let Some(oldest) = lru
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = lru.map.remove(&oldest) {
                tracing::debug!(target_db = %e.tenant.uri, "direct PostgreSQL pool evicted");
            }
        }
        tracing::info!(target_db = %target.redacted, "direct PostgreSQL pool created");
        Ok(tenant)
    }

    fn pool(&self, config: tokio_postgres::Config, ssl: SslMode) -> Pool {
        let manager = super::conn::Manager(PostgresConnectionManager::new(
            config,
            self.settings.tls.connector(ssl),
        ));
        bb8::Pool::builder()
            .max_size(POOL_MAX_SIZE.min(self.settings.max_size).max(1))
            .connection_timeout(self.settings.acquire_timeout)
            .idle_timeout(Some(Duration::from_secs(60)))
            .max_lifetime(Some(Duration::from_secs(30 * 60)))
            // A failing target is not retried in a loop (no password spraying).
            .retry_connection(false)
            .test_on_check_out(false)
            .build_unchecked(manager)
    }

    /// One watched connection to one of the checked `addrs`: reachable,
    /// credentials accepted, and the password actually checked by the
    /// database. Returns the address it connected to.
    async fn verify(
        &self,
        target: &DirectTarget,
        addrs: &[SocketAddr],
    ) -> Result<(tokio_postgres::Client, SocketAddr), (DomainError, Outcome)> {
        let timeout = self.connect_timeout(target);
        let seen = Arc::new(AtomicU8::new(SEEN_NOTHING));
        let watched = seen.clone();
        let connected: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let at = connected.clone();
        let attempt = async move {
            let (tcp, addr) = crate::outbound::connect_to(addrs, timeout)
                .await
                .map_err(|e| Failure::Io(io::Error::other(e)))?;
            *at.lock().unwrap_or_else(|e| e.into_inner()) = Some(addr);
            // Unless TLS is off, the first byte is the answer to the
            // SSLRequest; after an `S` the plain stream carries ciphertext
            // and the watch inside TLS judges.
            let stream = AuthWatch::new(tcp, target.ssl != SslMode::Disable, watched.clone());
            let mut make = self.settings.tls.connector(target.ssl);
            let tls = match MakeTlsConnect::<AuthWatch<tokio::net::TcpStream>>::make_tls_connect(
                &mut make,
                &target.host,
            ) {
                Ok(tls) => WatchTls {
                    inner: tls,
                    seen: watched,
                },
                Err(never) => match never {},
            };
            // Startup parameters only: the TCP stream is already connected.
            let config = self.config(target, addr);
            config
                .connect_raw(stream, tls)
                .await
                .map(|pair| (pair, addr))
                .map_err(Failure::Pg)
        };
        let unavailable = |why: &dyn std::fmt::Display| {
            tracing::warn!(target_db = %target.redacted, error = %why, "direct PostgreSQL URI unreachable");
            (
                DomainError::Unavailable(format!("direct URI {}: {why}", target.redacted)),
                Outcome::Failed,
            )
        };
        let ((client, connection), addr) = match tokio::time::timeout(timeout, attempt).await {
            Err(_) => {
                return Err(unavailable(&format!(
                    "no connection within {} ms",
                    timeout.as_millis()
                )))
            }
            Ok(Err(Failure::Io(e))) => return Err(unavailable(&e)),
            Ok(Err(Failure::Pg(e))) => {
                if let Some(why) = super::tls::tls_failure(&e, target.ssl) {
                    tracing::warn!(target_db = %target.redacted, error = %why, "direct PostgreSQL URI: TLS failed");
                    return Err((
                        DomainError::ServiceUnavailable(format!(
                            "direct URI {}: {why}",
                            target.redacted
                        )),
                        Outcome::Failed,
                    ));
                }
                let code = e.as_db_error().map(|d| d.code().code().to_string());
                let plain_refused = e
                    .as_db_error()
                    .is_some_and(|d| d.message().contains("no encryption"));
                return Err(match code.as_deref() {
                    // pg_hba.conf has `hostssl` lines only: not a credentials failure.
                    Some(c) if c.starts_with("28") && plain_refused => (
                        DomainError::invalid_field(
                            "direct URI",
                            "the database accepts TLS connections only: use sslmode=require, \
                             verify-ca or verify-full",
                        ),
                        Outcome::Failed,
                    ),
                    Some(c) if c.starts_with("28") => {
                        tracing::info!(target_db = %target.redacted, sqlstate = c, "direct PostgreSQL URI: credentials refused");
                        let addr = connected
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .unwrap_or(addrs[0]);
                        (
                            DomainError::Unauthorized(
                                "the database refused the credentials of the direct URI".into(),
                            ),
                            Outcome::AuthRefused(addr),
                        )
                    }
                    Some("3D000") => (
                        DomainError::invalid_field(
                            "direct URI",
                            "the database named by the direct URI does not exist",
                        ),
                        Outcome::Failed,
                    ),
                    _ => unavailable(&e),
                });
            }
            Ok(Ok(pair)) => pair,
        };
        tokio::spawn(async move {
            let _ = connection.await;
        });
        if seen.load(Ordering::SeqCst) != SEEN_CHALLENGE && !self.allow_trust {
            tracing::warn!(target_db = %target.redacted, "direct PostgreSQL URI refused: the database did not check the password");
            return Err((
                DomainError::Unauthorized(
                    "the database accepted the connection without checking the password (trust \
                     authentication); direct URIs need password authentication on the database"
                        .into(),
                ),
                Outcome::Failed,
            ));
        }
        Ok((client, addr))
    }
}

enum Failure {
    Io(io::Error),
    Pg(tokio_postgres::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(uri: &str) -> DirectTarget {
        parse(uri).unwrap_or_else(|e| panic!("{uri}: {e:?}"))
    }

    fn refusal(uri: &str) -> String {
        match parse(uri) {
            Err(DirectError::Refused(why)) => why,
            Err(e) => panic!("{uri}: expected a refusal, got {e:?}"),
            Ok(t) => panic!("{uri}: expected a refusal, got {t:?}"),
        }
    }

    #[test]
    fn tls_modes_are_libpqs() {
        for (uri, mode) in [
            ("postgres://u:p@h/d", SslMode::Prefer),
            ("postgres://u:p@h/d?sslmode=allow", SslMode::Prefer),
            ("postgres://u:p@h/d?sslmode=require", SslMode::Require),
            (
                "postgres://u:p@h/d?sslmode=verify-full",
                SslMode::VerifyFull,
            ),
            (
                "postgres://u:p@h/d?sslmode=verify-ca&channel_binding=require",
                SslMode::VerifyCa,
            ),
            (
                "jdbc:postgresql://h/d?user=u&password=p&ssl=true",
                SslMode::VerifyFull,
            ),
            (
                "jdbc:postgresql://h/d?user=u&password=p&ssl=true&sslmode=require",
                SslMode::Require,
            ),
        ] {
            let t = ok(uri);
            assert_eq!(t.ssl, mode, "{uri}");
            assert_eq!(t.config.get_ssl_mode(), mode.wire(), "{uri}");
        }
        assert_eq!(
            ok("postgres://u:p@h/d?sslmode=require&channel_binding=require")
                .config
                .get_channel_binding(),
            ChannelBinding::Require
        );
        // Another mode is another pool.
        assert_ne!(
            ok("postgres://u:p@h/d?sslmode=require").cache_key,
            ok("postgres://u:p@h/d?sslmode=verify-full").cache_key
        );
    }

    #[test]
    fn good_uris() {
        for (uri, host, port, user, db, pw) in [
            ("postgres://u:p@db.example.com:5433/shop", "db.example.com", 5433, "u", "shop", "p"),
            ("postgresql://u:p@10.0.0.1/shop", "10.0.0.1", 5432, "u", "shop", "p"),
            ("POSTGRES://u:p@h/d", "h", 5432, "u", "d", "p"),
            ("postgres://u:p@h", "h", 5432, "u", "u", "p"),
            ("postgres://u:p@h/", "h", 5432, "u", "u", "p"),
            ("postgres://u:p@[::1]:6543/d", "::1", 6543, "u", "d", "p"),
            ("postgres://u:p@[2001:db8::5]/d", "2001:db8::5", 5432, "u", "d", "p"),
            ("postgres://us%40er:p%40ss%2Fw%3Ard@h/my%20db", "h", 5432, "us@er", "my db", "p@ss/w:rd"),
            ("postgres://u:p@ss@h/d", "h", 5432, "u", "d", "p@ss"),
            ("postgres://u:a+b@h/d", "h", 5432, "u", "d", "a+b"),
            ("postgres://h/d?user=u&password=p", "h", 5432, "u", "d", "p"),
            ("postgres://u:p@h/d?sslmode=disable&connect_timeout=3&application_name=app", "h", 5432, "u", "d", "p"),
            ("postgres://u:p@my_db-1.internal/d?sslmode=prefer", "my_db-1.internal", 5432, "u", "d", "p"),
            ("jdbc:postgresql://h:5440/d?user=u&password=p", "h", 5440, "u", "d", "p"),
            ("jdbc:postgresql://h/d?user=u&password=a+b%2B&ApplicationName=x&connectTimeout=2&ssl=false", "h", 5432, "u", "d", "a b+"),
            ("JDBC:PostgreSQL://[::1]/d?user=u&password=p", "::1", 5432, "u", "d", "p"),
        ] {
            let t = ok(uri);
            assert_eq!(t.host, host, "{uri}");
            assert_eq!(t.port, port, "{uri}");
            assert_eq!(t.config.get_user(), Some(user), "{uri}");
            assert_eq!(t.config.get_dbname(), Some(db), "{uri}");
            assert_eq!(t.config.get_password(), Some(pw.as_bytes()), "{uri}");
            assert!(matches!(t.ssl, SslMode::Disable | SslMode::Prefer), "{uri}");
            assert!(!t.redacted.contains(pw) || pw.len() < 2, "{uri}: {}", t.redacted);
            assert!(t.redacted.contains(":***@"), "{}", t.redacted);
            assert!(!format!("{t:?}").contains("pass"), "{t:?}");
        }
        assert_eq!(
            ok("postgres://u:p@h/d?connect_timeout=3").connect_timeout,
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            ok("postgres://u:p@h/d?application_name=app")
                .config
                .get_application_name(),
            Some("app")
        );
        assert_eq!(
            ok("postgres://u:p@h/d").config.get_application_name(),
            Some("athena")
        );
        assert_eq!(
            ok("postgres://u:p@[::1]/d").redacted,
            "postgres://u:***@[::1]:5432/d"
        );
    }

    #[test]
    fn cache_key_covers_the_whole_uri() {
        let base = ok("postgres://u:p@h/d").cache_key;
        assert_eq!(base, ok("postgresql://u:p@h:5432/d").cache_key);
        assert_eq!(
            base,
            ok("jdbc:postgresql://h/d?user=u&password=p").cache_key
        );
        for other in [
            "postgres://u:q@h/d",
            "postgres://v:p@h/d",
            "postgres://u:p@h2/d",
            "postgres://u:p@h:5433/d",
            "postgres://u:p@h/e",
            "postgres://u:p@h/d?application_name=x",
            "postgres://u:p@h/d?connect_timeout=2",
        ] {
            assert_ne!(base, ok(other).cache_key, "{other}");
        }
    }

    #[test]
    fn missing_credentials() {
        for uri in [
            "postgres://h/d",
            "postgres://u@h/d",
            "postgres://u:@h/d",
            "postgres://:p@h/d",
            "postgres://h/d?user=u",
            "postgres://h/d?password=p",
            "postgres://u@h/d?password=",
            "jdbc:postgresql://h/d?user=u",
            "jdbc:postgresql://h/d?password=p",
            "jdbc:postgresql://h/d",
        ] {
            assert_eq!(
                parse(uri).err(),
                Some(DirectError::MissingCredentials),
                "{uri}"
            );
            assert!(!carries_credentials(uri), "{uri}");
        }
        assert!(carries_credentials("postgres://u:p@h/d"));
    }

    #[test]
    fn refused_parameters_are_named() {
        for (param, uri) in [
            ("host", "postgres://u:p@h/d?host=/tmp"),
            ("hostaddr", "postgres://u:p@h/d?hostaddr=127.0.0.1"),
            ("port", "postgres://u:p@h/d?port=5433"),
            ("dbname", "postgres://u:p@h/d?dbname=postgres"),
            ("passfile", "postgres://u:p@h/d?passfile=/etc/passwd"),
            ("options", "postgres://u:p@h/d?options=-csearch_path%3Devil"),
            ("service", "postgres://u:p@h/d?service=prod"),
            ("sslrootcert", "postgres://u:p@h/d?sslrootcert=/etc/ssl/x"),
            ("sslkey", "postgres://u:p@h/d?sslkey=/root/.ssh/id_rsa"),
            ("sslcert", "postgres://u:p@h/d?sslcert=/x"),
            ("sslcrl", "postgres://u:p@h/d?sslcrl=/x"),
            ("requirepeer", "postgres://u:p@h/d?requirepeer=root"),
            (
                "target_session_attrs",
                "postgres://u:p@h/d?target_session_attrs=any",
            ),
            (
                "socketFactory",
                "jdbc:postgresql://h/d?user=u&password=p&socketFactory=x.Y",
            ),
            (
                "socketFactoryArg",
                "jdbc:postgresql://h/d?user=u&password=p&socketFactoryArg=/x",
            ),
            (
                "loggerFile",
                "jdbc:postgresql://h/d?user=u&password=p&loggerFile=/tmp/x",
            ),
            (
                "sslfactory",
                "jdbc:postgresql://h/d?user=u&password=p&sslfactory=a.B",
            ),
            (
                "sslhostnameverifier",
                "jdbc:postgresql://h/d?user=u&password=p&sslhostnameverifier=a.B",
            ),
            (
                "sslpasswordcallback",
                "jdbc:postgresql://h/d?user=u&password=p&sslpasswordcallback=a.B",
            ),
            (
                "authenticationPluginClassName",
                "jdbc:postgresql://h/d?user=u&password=p&authenticationPluginClassName=a.B",
            ),
            ("PassFile", "postgres://u:p@h/d?PassFile=/x"),
            ("passfile", "postgres://u:p@h/d?pass%66ile=/x"),
            (
                "host",
                "jdbc:postgresql://h/d?user=u&password=p&ho%73t=/tmp",
            ),
            ("frobnicate", "postgres://u:p@h/d?frobnicate=1"),
        ] {
            let why = refusal(uri);
            assert!(why.contains(&format!("`{param}`")), "{uri}: {why}");
            assert!(
                !why.contains("/etc") && !why.contains("/tmp"),
                "{uri}: {why}"
            );
        }
        for uri in [
            "postgres://u:p@h/d?sslmode=bogus",
            "postgres://u:p@h/d?channel_binding=require",
            "postgres://u:p@h/d?sslmode=prefer&channel_binding=require",
            "jdbc:postgresql://h/d?user=u&password=p&ssl=yes",
            "postgres://u:p@h/d?connect_timeout=abc",
            "postgres://u:p@h/d?connect_timeout=-1",
            "postgres://u:p@h/d?application_name=x&application_name=y",
            "postgres://u:p@h/d?user=v",
            "postgres://u:p@h/d?password=q",
            "jdbc:postgresql://h/d?user=u&user=v&password=p",
        ] {
            refusal(uri);
        }
        assert!(refusal("postgres://u:p@h/d?%ZZ=1").contains("percent-encoded"));
        assert!(refusal("postgres://u:p@h/d?x%00y=1").contains("NUL"));
    }

    #[test]
    fn unix_sockets_and_odd_hosts_are_refused() {
        for uri in [
            "postgres://u:p@/d",
            "postgres://u:p@/d?host=/var/run/postgresql",
            "postgres://u:p@%2Fvar%2Frun%2Fpostgresql/d",
            "postgres://u:p@%2fvar%2frun%2fpostgresql/d",
            "postgres://u:p@%40abstract/d",
            "postgres://u:p@@/tmp",
            "postgres:///d?user=u&password=p",
            "postgres:/var/run/postgresql",
            "jdbc:postgresql:d?user=u&password=p",
            "jdbc:postgresql:///d?user=u&password=p",
            "postgres://u:p@h1,h2/d",
            "postgres://u:p@h1:5432,h2:5432/d",
            "postgres://u:p@h%20x/d",
            "postgres://u:p@h%5Cx/d",
            "postgres://u:p@[::1/d",
            "postgres://u:p@[fe80::1%25eth0]/d",
            "postgres://u:p@[::1]x/d",
            "postgres://u:p@%3A%3A1/d",
            "postgres://u:p@h:0/d",
            "postgres://u:p@h:70000/d",
            "postgres://u:p@h:+5432/d",
            "postgres://u:p@h:/d",
            "postgres://u:p@h:5432x/d",
            "postgres://u:p@h/d#frag",
            "postgres://u:p@h/d\nx",
            "postgres://u:p@h /d",
            "postgres://u:p@h/d%00",
            "mysql://u:p@h/d",
            "host=h user=u password=p",
            "",
        ] {
            let e = parse(uri);
            assert!(matches!(e, Err(DirectError::Refused(_))), "{uri:?}: {e:?}");
        }
        assert!(refusal("postgres://u:p@%2Fvar%2Frun/d").contains("unix-socket"));
        assert!(refusal("postgres://u:p@%40abstract/d").contains("unix"));
        // An unencoded `@` belongs to the password: the host is still TCP.
        assert_eq!(ok("postgres://u:p@@abstract/d").host, "abstract");
    }

    #[tokio::test]
    async fn auth_watch_sees_whether_the_password_was_asked_for() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for (first, verdict) in [
            (vec![b'R', 0, 0, 0, 8, 0, 0, 0, 3], SEEN_CHALLENGE),
            (
                vec![b'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4],
                SEEN_CHALLENGE,
            ),
            (vec![b'R', 0, 0, 0, 23, 0, 0, 0, 10, b'S'], SEEN_CHALLENGE),
            (vec![b'R', 0, 0, 0, 8, 0, 0, 0, 0], SEEN_NO_CHALLENGE),
            (vec![b'E', 0, 0, 0, 8, b'S', b'x', 0, 0], SEEN_NO_CHALLENGE),
        ] {
            // Plain (sslmode=disable); after an `N` to the SSLRequest
            // (prefer, no TLS on the server); after an `S` (TLS: the plain
            // stream carries ciphertext, the watch inside TLS judges).
            for (answer, expected) in [
                (None, verdict),
                (Some(b'N'), verdict),
                (Some(b'S'), SEEN_NOTHING),
            ] {
                let (client, mut server) = tokio::io::duplex(64);
                let seen = Arc::new(AtomicU8::new(SEEN_NOTHING));
                let mut watch = AuthWatch::new(client, answer.is_some(), seen.clone());
                let bytes: Vec<u8> = answer.into_iter().chain(first.iter().copied()).collect();
                // Byte by byte: the verdict must not depend on read sizes.
                for b in &bytes {
                    server.write_all(&[*b]).await.unwrap();
                    let mut one = [0u8; 1];
                    watch.read_exact(&mut one).await.unwrap();
                    assert_eq!(one[0], *b);
                }
                assert_eq!(
                    seen.load(Ordering::SeqCst),
                    expected,
                    "{answer:?} {first:?}"
                );
            }
        }
    }

    #[test]
    fn header_preference() {
        assert_eq!(pick([None, None, None]), None);
        assert_eq!(pick([Some(" "), None, None]), None);
        assert_eq!(
            pick([Some("a"), Some("b"), Some("c")]),
            Some(("x-pg-uri", "a"))
        );
        assert_eq!(
            pick([None, Some("b"), Some("c")]),
            Some(("x-athena-jdbc-url", "b"))
        );
        assert_eq!(
            pick([Some(""), None, Some(" c ")]),
            Some(("x-jdbc-url", "c"))
        );
    }

    #[test]
    fn connect_timeout_is_capped() {
        let pools = DirectPools::new(
            PoolSettings {
                max_size: 16,
                connect_timeout: Duration::from_secs(5),
                acquire_timeout: Duration::from_secs(5),
                statement_timeout: Duration::from_secs(5),
                tls: Default::default(),
            },
            options(
                2,
                FailureLimits {
                    per_target: 5,
                    per_caller: 20,
                    window: Duration::from_secs(60),
                },
            ),
        );
        let t = |uri| pools.connect_timeout(&ok(uri));
        assert_eq!(t("postgres://u:p@h/d"), Duration::from_secs(5));
        assert_eq!(
            t("postgres://u:p@h/d?connect_timeout=0"),
            Duration::from_secs(5)
        );
        assert_eq!(
            t("postgres://u:p@h/d?connect_timeout=2"),
            Duration::from_secs(2)
        );
        assert_eq!(
            t("postgres://u:p@h/d?connect_timeout=600"),
            Duration::from_secs(5)
        );
        let pinned: SocketAddr = "203.0.113.7:6543".parse().unwrap();
        let c = pools.config(
            &ok("postgres://u:p@db.example.com:6543/d?connect_timeout=600"),
            pinned,
        );
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(5)));
        assert_eq!(c.get_options(), Some("-c statement_timeout=5000"));
        // Pooled connections go to the checked address, never to the name.
        assert_eq!(c.get_hostaddrs(), [pinned.ip()]);
        assert_eq!(c.get_ports(), [6543]);
        assert_eq!(
            c.get_hosts(),
            [tokio_postgres::config::Host::Tcp("db.example.com".into())]
        );
    }

    fn options(cap: usize, limits: FailureLimits) -> DirectOptions {
        DirectOptions {
            cap,
            allow_trust: false,
            outbound: Arc::default(),
            limits,
        }
    }

    #[test]
    fn failure_limits() {
        let failures = Failures {
            limits: FailureLimits {
                per_target: 2,
                per_caller: 3,
                window: Duration::from_secs(60),
            },
            map: Mutex::default(),
        };
        let me: IpAddr = "198.51.100.1".parse().unwrap();
        let a: SocketAddr = "203.0.113.1:5432".parse().unwrap();
        let b: SocketAddr = "203.0.113.2:5432".parse().unwrap();
        // Successes give their slots back.
        for _ in 0..10 {
            let r = failures.reserve(me, &[a]).unwrap();
            failures.settle(r, Outcome::Success);
        }
        // Two refused authentications at `a`: the third attempt is 429.
        for _ in 0..2 {
            let r = failures.reserve(me, &[a]).unwrap();
            failures.settle(r, Outcome::AuthRefused(a));
        }
        let e = failures.reserve(me, &[a]).err().unwrap();
        let DomainError::RateLimited { retry_after, .. } = e else {
            panic!("{e:?}")
        };
        assert!((1..=60).contains(&retry_after));
        // A name resolving to `a` and `b` is throttled too.
        assert!(failures.reserve(me, &[b, a]).is_err());
        // Another caller is not.
        let other: IpAddr = "198.51.100.2".parse().unwrap();
        failures.reserve(other, &[a]).unwrap();
        // `b` is still open for `me`, until the caller-wide limit (3).
        let r = failures.reserve(me, &[b]).unwrap();
        failures.settle(r, Outcome::Failed);
        let e = failures.reserve(me, &[b]).err().unwrap();
        assert!(format!("{e:?}").contains("from this caller;"), "{e:?}");
        // Attempts in flight hold their slots: concurrency cannot overrun.
        let c: SocketAddr = "203.0.113.3:5432".parse().unwrap();
        let third: IpAddr = "198.51.100.3".parse().unwrap();
        let held: Vec<_> = (0..2)
            .map(|_| failures.reserve(third, &[c]).unwrap())
            .collect();
        assert!(failures.reserve(third, &[c]).is_err());
        for r in held {
            failures.settle(r, Outcome::Success);
        }
        failures.reserve(third, &[c]).unwrap();
        // IPv6 callers count per /64.
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        for _ in 0..2 {
            let r = failures.reserve(v6a, &[a]).unwrap();
            failures.settle(r, Outcome::AuthRefused(a));
        }
        assert!(failures.reserve(v6b, &[a]).is_err());
        assert!(failures
            .reserve("2001:db8:1:3::1".parse().unwrap(), &[a])
            .is_ok());
    }

    #[test]
    fn callers_spread_over_many_addresses_share_a_target_limit() {
        let failures = Failures {
            limits: FailureLimits {
                per_target: 2,
                per_caller: 0,
                window: Duration::from_secs(60),
            },
            map: Mutex::default(),
        };
        let db: SocketAddr = "203.0.113.9:5432".parse().unwrap();
        // Ten /64s of one /48, two wrong passwords each: 20 = 2 × 10.
        for i in 0..ANY_CALLER_FACTOR {
            let caller: IpAddr = format!("2001:db8:1:{i:x}::1").parse().unwrap();
            for _ in 0..2 {
                let r = failures.reserve(caller, &[db]).unwrap();
                failures.settle(r, Outcome::AuthRefused(db));
            }
        }
        let fresh: IpAddr = "2001:db8:1:ff::1".parse().unwrap();
        let e = failures.reserve(fresh, &[db]).err().unwrap();
        assert!(format!("{e:?}").contains("to this database;"), "{e:?}");
        // Another database is not affected.
        let other: SocketAddr = "203.0.113.10:5432".parse().unwrap();
        assert!(failures.reserve(fresh, &[other]).is_ok());
    }

    #[test]
    fn zero_disables_a_limit() {
        let failures = Failures {
            limits: FailureLimits {
                per_target: 0,
                per_caller: 0,
                window: Duration::from_secs(60),
            },
            map: Mutex::default(),
        };
        let me: IpAddr = "198.51.100.1".parse().unwrap();
        let a: SocketAddr = "203.0.113.1:5432".parse().unwrap();
        for _ in 0..50 {
            let r = failures.reserve(me, &[a]).unwrap();
            failures.settle(r, Outcome::AuthRefused(a));
        }
        assert!(failures.lock().is_empty());
    }
}
