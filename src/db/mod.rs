//! PostgreSQL: pools, catalog migrations, tenant (client) pools, and the
//! introspected schema cache used to resolve identifiers.

pub mod conn;
pub mod direct;
pub mod discovery;
pub mod migrate;
pub mod notify;
pub mod schema_cache;
pub mod schema_report;
pub mod tenants;
pub mod tls;

use crate::domain::DomainError;
use bb8_postgres::PostgresConnectionManager;
use std::time::Duration;

pub type Pool = bb8::Pool<conn::Manager>;

/// Whether `schema` belongs to the login `tx` runs as: the gateway's own
/// schemas in a tenant database (`athena_gateway`, `athena`) are used only
/// then, so one prepared by another role (a raw-SQL role planting a
/// trigger) is refused.
pub async fn schema_owned_by_login(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
) -> Result<bool, DomainError> {
    Ok(tx
        .query_one(
            "SELECT n.nspowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
               FROM pg_catalog.pg_namespace n WHERE n.nspname = $1",
            &[&schema],
        )
        .await?
        .get(0))
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PoolSettings {
    pub max_size: u32,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    /// TLS trust roots (`ATHENA_PG_SSL_ROOT_CERT`, `src/db/tls.rs`).
    pub tls: tls::PgTls,
}

impl PoolSettings {
    /// What every gateway connection to a tenant starts with: the connect
    /// timeout, the statement timeout as a startup option (no per-request
    /// `SET`, no session state to leak) and `athena` as the application
    /// name unless the URI names one.
    pub fn configure(&self, config: &mut tokio_postgres::Config) {
        config.connect_timeout(self.connect_timeout);
        config.options(format!(
            "-c statement_timeout={}",
            self.statement_timeout.as_millis()
        ));
        if config.get_application_name().is_none() {
            config.application_name("athena");
        }
    }
}

/// A lazily connecting pool: nothing is opened until the first checkout, so
/// a tenant whose database is down cannot block start-up. Each connection
/// carries the statement timeout as a startup option, so no per-request
/// `SET` (and no session state to leak) is needed.
pub fn pool(uri: &str, settings: PoolSettings) -> Result<Pool, DomainError> {
    pool_as(uri, settings, None)
}

/// A login other than the URI's own: the role raw SQL runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: Option<String>,
}

/// `pool`, logging in as `login` instead of the URI's user when given.
pub fn pool_as(
    uri: &str,
    settings: PoolSettings,
    login: Option<&Login>,
) -> Result<Pool, DomainError> {
    pool_observed(uri, settings, login, Box::new(bb8::NopErrorSink))
}

/// `pool_as`, with connection errors no caller sees (those of connections
/// opened in the background) sent to `errors` (`GET /admin/pools`'
/// `last_error`, `tenants::PoolStats`).
pub fn pool_observed(
    uri: &str,
    settings: PoolSettings,
    login: Option<&Login>,
    errors: Box<dyn bb8::ErrorSink<tokio_postgres::Error>>,
) -> Result<Pool, DomainError> {
    let (mut config, mode) = tls::config_from_uri(uri)?;
    if let Some(login) = login {
        config.user(&login.user);
        // Never the URI owner's password for another role.
        config.password(login.password.clone().unwrap_or_default());
    }
    settings.configure(&mut config);
    let manager = conn::Manager(PostgresConnectionManager::new(
        config,
        settings.tls.connector(mode),
    ));
    Ok(bb8::Pool::builder()
        .max_size(settings.max_size)
        .connection_timeout(settings.acquire_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        .test_on_check_out(false)
        // The most recently returned connection is handed out first: its
        // backend is still hot, and under light load the rest idle out
        // instead of every backend being woken in turn (measured: less
        // Postgres CPU per request than FIFO).
        .queue_strategy(bb8::QueueStrategy::Lifo)
        .error_sink(errors)
        .build_unchecked(manager))
}
