//! Configuration from the environment. Every variable is documented in the
//! README; an invalid value stops the server at start with a message naming it.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
}

/// Cloudflare D1 REST API access (`POST /gateway/sql/d1/migrate` with
/// `dryRun: false`).
#[derive(Clone)]
pub struct D1Config {
    /// `ATHENA_D1_API_URL` (default `https://api.cloudflare.com/client/v4`).
    pub api_url: String,
    /// `ATHENA_D1_ACCOUNT_ID`.
    pub account_id: String,
    /// `ATHENA_D1_API_TOKEN`, sent as `Authorization: Bearer …`.
    pub api_token: String,
    /// `ATHENA_D1_DATABASES`: `client:dbName=database-id` entries
    /// (comma-separated). A client may run migrations only on the `dbName`s
    /// listed for it; nothing else reaches D1.
    pub databases: Vec<D1Database>,
}

/// One `ATHENA_D1_DATABASES` entry: `client:dbName=database-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct D1Database {
    /// The client (`X-Athena-Client`) that owns the database.
    pub client: String,
    /// The `dbName` requests use (`gateway::d1::check_db_name` grammar).
    pub name: String,
    /// The D1 database id (UUID), as put in the API path.
    pub id: String,
}

impl D1Database {
    /// Parses one `client:dbName=database-id` entry.
    pub fn parse(entry: &str) -> Result<D1Database, String> {
        use crate::gateway::d1::{check_database_id, check_db_name};
        let shape = || {
            format!(
                "ATHENA_D1_DATABASES entry {entry:?} is not client:dbName=database-id \
                 (each D1 database names the client allowed to use it)"
            )
        };
        let (left, id) = entry.split_once('=').ok_or_else(shape)?;
        let (client, name) = left.split_once(':').ok_or_else(shape)?;
        let (client, name, id) = (client.trim(), name.trim(), id.trim());
        crate::catalog::clients::check_name(client)
            .map_err(|e| format!("ATHENA_D1_DATABASES entry {entry:?}: {e}"))?;
        check_db_name(name).map_err(|e| format!("ATHENA_D1_DATABASES entry {entry:?}: {e}"))?;
        check_database_id(id).map_err(|e| format!("ATHENA_D1_DATABASES entry {entry:?}: {e}"))?;
        Ok(D1Database {
            client: client.into(),
            name: name.into(),
            id: id.into(),
        })
    }
}

impl std::fmt::Debug for D1Config {
    /// The token never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("D1Config")
            .field("api_url", &self.api_url)
            .field("account_id", &self.account_id)
            .field("api_token", &"<redacted>")
            .field("databases", &self.databases)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_key: Option<String>,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub s3: Option<S3Config>,
    pub otlp_endpoint: Option<String>,
    /// YAML file with clients to seed into the catalog (`ATHENA_CONFIG`).
    pub config_file: Option<String>,
    /// `name=uri;name=uri` clients to seed (`ATHENA_CLIENTS`).
    pub seed_clients: Vec<(String, String)>,
    pub max_body_bytes: usize,
    /// Largest body of a streamed upload (`PUT /storage/files/{id}/upload`,
    /// `ATHENA_MAX_UPLOAD_BYTES`, default 5 GiB); every other route keeps
    /// `max_body_bytes`.
    pub max_upload_bytes: u64,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
    pub pool_max_size: u32,
    pub pool_connect_timeout: Duration,
    pub pool_acquire_timeout: Duration,
    pub statement_timeout: Duration,
    pub max_rows: i64,
    /// Default insert window (`ATHENA_INSERT_WINDOW_MS`, the contract's
    /// `gateway.insert_execution_window_ms`); zero writes each insert alone.
    /// `X-Athena-Insert-Window` overrides it per request.
    pub insert_window: Duration,
    /// Role raw SQL runs as (`SET LOCAL ROLE`), so it cannot exceed that
    /// role's privileges even on a superuser connection.
    pub raw_sql_role: Option<String>,
    /// Password of `raw_sql_role` (`ATHENA_RAW_SQL_PASSWORD`).
    pub raw_sql_password: Option<String>,
    /// Most pools kept for direct PostgreSQL URIs (`ATHENA_DIRECT_POOL_CAP`,
    /// least recently used evicted); 0 disables direct URIs.
    pub direct_pool_cap: usize,
    /// Accept direct URIs to databases that let the gateway in without
    /// checking the password (`trust`), `ATHENA_DIRECT_ALLOW_TRUST_AUTH`.
    pub direct_allow_trust_auth: bool,
    /// Read cache lifetime (`ATHENA_CACHE_TTL_SECS`); zero turns it off.
    pub cache_ttl: Duration,
    /// Background workers draining the deferred-write queue
    /// (`ATHENA_DEFERRED_WORKERS`); 0 only queues (flush still runs jobs).
    pub deferred_workers: usize,
    /// Clients whose gateway writes are deferred (`ATHENA_DEFERRED_CLIENTS`,
    /// comma-separated), besides `metadata.deferred_writes.enabled`.
    pub deferred_clients: Vec<String>,
    /// A job `running` longer than this is taken over by another worker
    /// (`ATHENA_DEFERRED_STALE_SECS`).
    pub deferred_stale_after: Duration,
    /// Cloudflare D1 REST access; `None` (no `ATHENA_D1_ACCOUNT_ID` /
    /// `ATHENA_D1_API_TOKEN`) makes D1 execution answer 503.
    pub d1: Option<D1Config>,
    /// Destinations outside public unicast the gateway may still connect
    /// to (`ATHENA_OUTBOUND_ALLOW`, `src/outbound.rs`).
    pub outbound_allow: Vec<crate::outbound::Allow>,
    /// Failed authentications per caller and direct-URI target within
    /// `direct_failure_window` before 429 (`ATHENA_DIRECT_AUTH_FAILURES`;
    /// 0 = no limit).
    pub direct_auth_failures: u32,
    /// Failed direct-URI connections of any kind per caller within
    /// `direct_failure_window` before 429 (`ATHENA_DIRECT_CONNECT_FAILURES`;
    /// 0 = no limit).
    pub direct_connect_failures: u32,
    /// `ATHENA_DIRECT_FAILURE_WINDOW_SECS`.
    pub direct_failure_window: Duration,
    /// Open connections at once (`ATHENA_MAX_CONNECTIONS`); one more is
    /// answered 503 with `Retry-After` and closed.
    pub max_connections: usize,
    /// Requests handled at once (`ATHENA_MAX_IN_FLIGHT`); one more is
    /// answered 503 with `Retry-After`.
    pub max_in_flight: usize,
    /// Encryption of secrets at rest (`ATHENA_SECRET_KEY`, `src/secrets.rs`);
    /// without it, routes that store a secret answer 503.
    pub secrets: Option<crate::secrets::Secrets>,
    /// Plain-http S3 endpoints are accepted (`ATHENA_STORAGE_ALLOW_HTTP=1`;
    /// local stores and tests). HTTPS otherwise.
    pub storage_allow_http: bool,
    /// End-user bearer JWTs (`ATHENA_AUTH_JWT_SECRET` or
    /// `ATHENA_AUTH_JWT_PUBLIC_KEY`, `_ISSUER`, `_AUDIENCE`;
    /// `src/auth/end_user.rs`).
    pub auth_jwt: Option<crate::auth::end_user::JwtSettings>,
    /// The auth service that resolves end users' session tokens
    /// (`ATHENA_AUTH_URL`, its API base; `src/auth/session.rs`).
    pub auth_url: Option<String>,
    /// Tenant hosts (`ATHENA_WILDCARD_HOST_PATTERN`, e.g.
    /// `*.v3.example.test`; `src/gateway/host_routing.rs`); unset = no host
    /// routing.
    pub wildcard_host: Option<crate::gateway::host_routing::WildcardPattern>,
    /// Peers whose `X-Forwarded-For`/`X-Real-IP`/`Forwarded` name the
    /// client for the IP policy (`ATHENA_TRUSTED_PROXIES`, comma-separated
    /// CIDRs; default none: the socket peer is the client).
    pub trusted_proxies: crate::auth::ip_policy::TrustedProxies,
    /// The admission limiter's defaults (`ATHENA_ADMISSION_*`,
    /// `ATHENA_EXPECTED_REPLICAS`; `src/admission/`).
    pub admission: crate::admission::Settings,
    /// Event delivery: workers, stale takeover, retry backoff
    /// (`ATHENA_EVENT_*`; `src/events/`).
    pub events: crate::events::Settings,
    // --- issue 16: schema discovery and management DDL ---
    /// The DDL audit log's store (`ATHENA_LOGGING_DATABASE_URL`,
    /// `src/audit/ddl.rs`); unset: the catalog database.
    pub logging_database_url: Option<String>,
    /// Management DDL timeouts and the extension allowlist
    /// (`ATHENA_MANAGEMENT_*`, `ATHENA_EXTENSION_ALLOWLIST`; `src/management/`).
    pub management: crate::management::Settings,
    // --- issue 19: the operation log and the health collectors ---
    /// `ATHENA_OPERATION_LOG`, `ATHENA_OPERATION_LOG_CAPACITY`,
    /// `ATHENA_HEALTH_COLLECT_SECONDS`, `ATHENA_OPLOG_RETENTION_HOURS` (168),
    /// `ATHENA_HEALTH_RETENTION_HOURS` (720) (`src/stats/`).
    pub stats: crate::stats::Settings,
    // --- issue 21: provisioning ---
    /// Docker host, tool search path, dependency installs, clone workers
    /// (`DOCKER_HOST`, `ATHENA_PROVISION_*`, `ATHENA_ALLOW_DEPENDENCY_INSTALL`;
    /// `src/provision/`).
    pub provision: crate::provision::Settings,
    // --- issue 18: backups to S3 ---
    /// `ATHENA_BACKUP_S3_BUCKET`, `_PREFIX`, workers, stale takeover,
    /// schedule tick, `PGBIN` (`src/backups/`).
    pub backups: crate::backups::Settings,
    /// Issue 21 integrations: provider tokens and API URLs, Supabase,
    /// cluster mirrors, Typesense sync jobs (`src/integrations/`).
    pub integrations: crate::integrations::Settings,
    /// Issue 21, TLS to PostgreSQL: `ATHENA_PG_SSL_ROOT_CERT`, a PEM bundle
    /// trusted (with the webpki roots) by `sslmode=verify-ca|verify-full`
    /// (`src/db/tls.rs`); never a path from a URI.
    pub pg_ssl_root_cert: Option<std::path::PathBuf>,
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ConfigError(format!("{name}={v:?} is not a valid number"))),
    }
}

fn flag(name: &str) -> Result<bool, ConfigError> {
    match var(name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
        Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
        Some(v) => Err(ConfigError(format!(
            "{name}={v:?} is not a boolean (true/false)"
        ))),
    }
}

/// A cap: 1 to 1 000 000.
fn cap(name: &str, default: usize) -> Result<usize, ConfigError> {
    match number(name, default)? {
        n @ 1..=1_000_000 => Ok(n),
        _ => Err(ConfigError(format!("{name} must be between 1 and 1000000"))),
    }
}

fn millis(name: &str, default: u64) -> Result<Duration, ConfigError> {
    number(name, default).map(Duration::from_millis)
}

/// `ATHENA_OUTBOUND_ALLOW`, plus `ATHENA_OUTBOUND_ALLOWLIST` (the name
/// issue 21 uses; an alias, both may be set and their entries add up).
fn outbound_allow() -> Result<Vec<crate::outbound::Allow>, ConfigError> {
    let mut all = Vec::new();
    for name in ["ATHENA_OUTBOUND_ALLOW", "ATHENA_OUTBOUND_ALLOWLIST"] {
        if let Some(list) = var(name) {
            all.extend(
                crate::outbound::parse_allow_list(&list)
                    .map_err(|e| ConfigError(format!("{name}: {e}")))?,
            );
        }
    }
    Ok(all)
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        let listen = match var("ATHENA_LISTEN_ADDR") {
            Some(addr) => addr.parse().map_err(|_| {
                ConfigError(format!("ATHENA_LISTEN_ADDR={addr:?} is not host:port"))
            })?,
            None => {
                let port: u16 = number("PORT", 4052)?;
                SocketAddr::from(([127, 0, 0, 1], port))
            }
        };
        let database_url = var("DATABASE_URL").ok_or_else(|| {
            ConfigError(
                "DATABASE_URL is required (the catalog database); `make serve` starts a local one"
                    .into(),
            )
        })?;
        let s3 = match var("S3_ENDPOINT") {
            None => None,
            Some(endpoint) => Some(S3Config {
                endpoint,
                region: var("S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                access_key: var("S3_ACCESS_KEY_ID").ok_or_else(|| {
                    ConfigError("S3_ACCESS_KEY_ID is required with S3_ENDPOINT".into())
                })?,
                secret_key: var("S3_SECRET_ACCESS_KEY").ok_or_else(|| {
                    ConfigError("S3_SECRET_ACCESS_KEY is required with S3_ENDPOINT".into())
                })?,
            }),
        };
        let seed_clients = match var("ATHENA_CLIENTS") {
            None => Vec::new(),
            Some(list) => list
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(n, u)| (n.trim().to_string(), u.trim().to_string()))
                        .ok_or_else(|| {
                            ConfigError(format!(
                                "ATHENA_CLIENTS entry {:?} is not name=uri",
                                redact(pair)
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let d1 = match (var("ATHENA_D1_ACCOUNT_ID"), var("ATHENA_D1_API_TOKEN")) {
            (None, None) => None,
            (Some(account_id), Some(api_token)) => Some(D1Config {
                api_url: var("ATHENA_D1_API_URL")
                    .unwrap_or_else(|| "https://api.cloudflare.com/client/v4".into()),
                account_id,
                api_token,
                databases: match var("ATHENA_D1_DATABASES") {
                    None => Vec::new(),
                    Some(list) => list
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|entry| D1Database::parse(entry).map_err(ConfigError))
                        .collect::<Result<_, _>>()?,
                },
            }),
            _ => {
                return Err(ConfigError(
                    "ATHENA_D1_ACCOUNT_ID and ATHENA_D1_API_TOKEN go together".into(),
                ))
            }
        };
        Ok(Config {
            d1,
            listen,
            admin_key: var("ATHENA_KEY_12"),
            database_url,
            logging_database_url: var("ATHENA_LOGGING_DATABASE_URL"),
            management: crate::management::Settings::from_env().map_err(ConfigError)?,
            stats: crate::stats::Settings::from_env().map_err(ConfigError)?,
            provision: crate::provision::Settings {
                docker_host: var("DOCKER_HOST"),
                tool_path: var("ATHENA_PROVISION_PATH"),
                allow_dependency_install: flag("ATHENA_ALLOW_DEPENDENCY_INSTALL")?,
                clone_workers: number("ATHENA_CLONE_WORKERS", 1)?,
                public_bind: flag("ATHENA_PROVISION_PUBLIC_BIND")?,
                clone_lease: Duration::from_secs(
                    number::<u64>("ATHENA_CLONE_LEASE_SECS", 120)?.max(1),
                ),
            },
            backups: crate::backups::Settings::from_env().map_err(ConfigError)?,
            integrations: crate::integrations::Settings::from_env().map_err(ConfigError)?,
            pg_ssl_root_cert: var(crate::db::tls::ROOT_CERT_ENV).map(Into::into),
            redis_url: var("REDIS_URL"),
            s3,
            otlp_endpoint: var("OTEL_EXPORTER_OTLP_ENDPOINT"),
            config_file: var("ATHENA_CONFIG"),
            seed_clients,
            max_body_bytes: number("ATHENA_MAX_BODY_BYTES", 10 * 1024 * 1024)?,
            max_upload_bytes: number("ATHENA_MAX_UPLOAD_BYTES", 5 << 30)?,
            request_timeout: millis("ATHENA_REQUEST_TIMEOUT_MS", 30_000)?,
            header_read_timeout: millis("ATHENA_HEADER_READ_TIMEOUT_MS", 10_000)?,
            shutdown_grace: millis("ATHENA_SHUTDOWN_GRACE_MS", 10_000)?,
            pool_max_size: number("ATHENA_POOL_MAX_SIZE", 16)?,
            pool_connect_timeout: millis("ATHENA_POOL_CONNECT_TIMEOUT_MS", 5_000)?,
            pool_acquire_timeout: millis("ATHENA_POOL_ACQUIRE_TIMEOUT_MS", 5_000)?,
            statement_timeout: millis("ATHENA_STATEMENT_TIMEOUT_MS", 15_000)?,
            max_rows: number("ATHENA_MAX_ROWS", 1_000)?,
            insert_window: match millis("ATHENA_INSERT_WINDOW_MS", 0)? {
                w if w.as_millis() > 60_000 => {
                    return Err(ConfigError(
                        "ATHENA_INSERT_WINDOW_MS must be at most 60000".into(),
                    ))
                }
                w => w,
            },
            raw_sql_role: var("ATHENA_RAW_SQL_ROLE"),
            raw_sql_password: var("ATHENA_RAW_SQL_PASSWORD"),
            cache_ttl: Duration::from_secs(number("ATHENA_CACHE_TTL_SECS", 0)?),
            direct_pool_cap: number("ATHENA_DIRECT_POOL_CAP", 32)?,
            direct_allow_trust_auth: flag("ATHENA_DIRECT_ALLOW_TRUST_AUTH")?,
            deferred_workers: number("ATHENA_DEFERRED_WORKERS", 1)?,
            deferred_clients: var("ATHENA_DEFERRED_CLIENTS")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            deferred_stale_after: match number("ATHENA_DEFERRED_STALE_SECS", 60u64)? {
                0 => {
                    return Err(ConfigError(
                        "ATHENA_DEFERRED_STALE_SECS must be at least 1".into(),
                    ))
                }
                n => Duration::from_secs(n),
            },
            outbound_allow: outbound_allow()?,
            direct_auth_failures: number("ATHENA_DIRECT_AUTH_FAILURES", 5)?,
            direct_connect_failures: number("ATHENA_DIRECT_CONNECT_FAILURES", 20)?,
            direct_failure_window: match number("ATHENA_DIRECT_FAILURE_WINDOW_SECS", 60u64)? {
                0 => {
                    return Err(ConfigError(
                        "ATHENA_DIRECT_FAILURE_WINDOW_SECS must be at least 1".into(),
                    ))
                }
                n => Duration::from_secs(n),
            },
            max_connections: cap("ATHENA_MAX_CONNECTIONS", 1024)?,
            max_in_flight: cap("ATHENA_MAX_IN_FLIGHT", 512)?,
            secrets: var("ATHENA_SECRET_KEY")
                .map(|k| crate::secrets::Secrets::from_key_text(&k))
                .transpose()
                .map_err(ConfigError)?,
            storage_allow_http: flag("ATHENA_STORAGE_ALLOW_HTTP")?,
            auth_jwt: crate::auth::end_user::JwtSettings::new(
                var("ATHENA_AUTH_JWT_SECRET").as_deref(),
                var("ATHENA_AUTH_JWT_PUBLIC_KEY").as_deref(),
                var("ATHENA_AUTH_JWT_ISSUER").as_deref(),
                var("ATHENA_AUTH_JWT_AUDIENCE").as_deref(),
            )
            .map_err(ConfigError)?,
            auth_url: var("ATHENA_AUTH_URL"),
            wildcard_host: var("ATHENA_WILDCARD_HOST_PATTERN")
                .map(|p| crate::gateway::host_routing::WildcardPattern::parse(&p))
                .transpose()
                .map_err(|e| ConfigError(format!("ATHENA_WILDCARD_HOST_PATTERN: {e}")))?,
            trusted_proxies: crate::auth::ip_policy::TrustedProxies::parse(
                &var("ATHENA_TRUSTED_PROXIES").unwrap_or_default(),
            )
            .map_err(|e| ConfigError(format!("ATHENA_TRUSTED_PROXIES: {e}")))?
            .reading(
                crate::auth::ip_policy::ForwardHeader::parse(
                    &var("ATHENA_TRUSTED_PROXY_HEADER").unwrap_or_default(),
                )
                .map_err(|e| ConfigError(format!("ATHENA_TRUSTED_PROXY_HEADER: {e}")))?,
            ),
            admission: {
                let d = crate::admission::Settings::default();
                crate::admission::Settings {
                    window_secs: number("ATHENA_ADMISSION_WINDOW_SECS", d.window_secs)?,
                    global_limit: number("ATHENA_ADMISSION_GLOBAL_LIMIT", d.global_limit)?,
                    client_limit: number("ATHENA_ADMISSION_CLIENT_LIMIT", d.client_limit)?,
                    expected_replicas: number("ATHENA_EXPECTED_REPLICAS", d.expected_replicas)?,
                    redis_timeout: millis(
                        "ATHENA_ADMISSION_REDIS_TIMEOUT_MS",
                        d.redis_timeout.as_millis() as u64,
                    )?,
                }
                .checked()
                .map_err(ConfigError)?
            },
            events: {
                let d = crate::events::Settings::default();
                crate::events::Settings {
                    workers: number("ATHENA_EVENT_WORKERS", d.workers)?,
                    stale_after: match number("ATHENA_EVENT_STALE_SECS", 60u64)? {
                        n if n < crate::events::MIN_STALE_SECS => {
                            return Err(ConfigError(format!(
                                "ATHENA_EVENT_STALE_SECS must be at least {} (well past one delivery attempt)",
                                crate::events::MIN_STALE_SECS
                            )))
                        }
                        n => Duration::from_secs(n),
                    },
                    backoff: match millis("ATHENA_EVENT_BACKOFF_MS", 1_000)? {
                        d if d.is_zero() => {
                            return Err(ConfigError("ATHENA_EVENT_BACKOFF_MS must be at least 1".into()))
                        }
                        d => d,
                    },
                    backoff_max: d.backoff_max,
                }
            },
        })
    }
}

/// A connection string with its password replaced, for logs and errors.
pub fn redact(uri: &str) -> String {
    // scheme://user:password@host… → scheme://user:***@host…
    if let Some((scheme, rest)) = uri.split_once("://") {
        if let Some((userinfo, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    if uri.contains("password=") {
        return "<redacted connection string>".into();
    }
    uri.to_string()
}

#[cfg(test)]
mod tests {
    use super::{redact, D1Database};

    #[test]
    fn d1_database_entries_name_their_client() {
        assert_eq!(
            D1Database::parse(" tenant-a : notes_db = 0f1e2d3c-aaaa-bbbb-cccc-000000000001 "),
            Ok(D1Database {
                client: "tenant-a".into(),
                name: "notes_db".into(),
                id: "0f1e2d3c-aaaa-bbbb-cccc-000000000001".into(),
            })
        );
        for bad in [
            "notes=db-1",
            ":notes=db-1",
            "a:=db-1",
            "a:notes=",
            "a b:notes=db-1",
            "a:no/tes=db-1",
            "a:notes=db/1",
            "a:notes=../x",
            "a:notes",
        ] {
            let e = D1Database::parse(bad).unwrap_err();
            assert!(e.contains("ATHENA_D1_DATABASES"), "{bad}: {e}");
        }
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("host=h password=x"), "<redacted connection string>");
        assert_eq!(redact("a=postgres://u:p@h/d"), "a=postgres://u:***@h/d");
    }
}
