//! [`AthenaClientBuilder`]: the connection settings every request shares.

use crate::Client;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// Connect timeout used unless [`AthenaClientBuilder::connect_timeout`] is set.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout used unless [`AthenaClientBuilder::timeout`] is set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const CLIENT_HEADER: &str = "x-athena-client";
const KEY_HEADER: &str = "x-athena-key";

/// Builds an [`AthenaClient`]: a generated [`Client`] whose `reqwest`
/// client sends `X-Athena-Client` and `X-Athena-Key` on every request, plus
/// a second one carrying the admin key when one is given.
///
/// ```no_run
/// # fn demo() -> Result<(), athena_client::BuildError> {
/// use std::time::Duration;
/// let athena = athena_client::AthenaClientBuilder::new("http://127.0.0.1:4052")
///     .client_name("local")
///     .api_key("client-key")
///     .admin_key("static-admin-key")
///     .timeout(Duration::from_secs(30))
///     .build()?;
/// let admin = athena.admin().expect("admin key configured");
/// # let _ = admin; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AthenaClientBuilder {
    base_url: String,
    client_name: Option<String>,
    api_key: Option<String>,
    admin_key: Option<String>,
    connect_timeout: Duration,
    timeout: Option<Duration>,
    user_agent: String,
}

/// Why [`AthenaClientBuilder::build`] failed.
#[derive(Debug)]
pub enum BuildError {
    /// A value that cannot be sent as an HTTP header (the header is named).
    InvalidHeader(&'static str),
    /// The base URL is not an absolute `http://` or `https://` URL.
    InvalidBaseUrl(String),
    /// `reqwest` refused the configuration.
    Reqwest(reqwest::Error),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::InvalidHeader(h) => {
                write!(f, "the value for {h} is not a valid header value")
            }
            BuildError::InvalidBaseUrl(u) => {
                write!(f, "base URL {u:?} must start with http:// or https://")
            }
            BuildError::Reqwest(e) => write!(f, "building the HTTP client: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Reqwest(e) => Some(e),
            _ => None,
        }
    }
}

impl AthenaClientBuilder {
    /// Starts a builder for the gateway at `base_url` (scheme, host, port and
    /// any path stem, e.g. `http://127.0.0.1:4052`).
    pub fn new(base_url: impl Into<String>) -> Self {
        AthenaClientBuilder {
            base_url: base_url.into(),
            client_name: None,
            api_key: None,
            admin_key: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: Some(DEFAULT_TIMEOUT),
            user_agent: concat!("athena-client-rs/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }

    /// The logical database client sent as `X-Athena-Client` on every
    /// request. A call may still override it with its own
    /// `.x_athena_client(..)`.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }

    /// The API key sent as `X-Athena-Key` on every request.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The static admin key (`ATHENA_KEY_12` on the server). When set,
    /// [`AthenaClient::admin`] returns a client that sends it as
    /// `X-Athena-Key` instead of the API key.
    pub fn admin_key(mut self, key: impl Into<String>) -> Self {
        self.admin_key = Some(key.into());
        self
    }

    /// Timeout for establishing a connection (default
    /// [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Timeout for a whole request, from connecting to the end of the
    /// response body (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// No whole-request timeout (streaming downloads, long exports).
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// Replaces the `User-Agent` (default `athena-client-rs/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Builds the clients.
    pub fn build(self) -> Result<AthenaClient, BuildError> {
        self.build_with(|b| b)
    }

    /// Builds the clients, letting `customize` adjust each
    /// `reqwest::ClientBuilder` (proxies, TLS roots, extra default headers)
    /// after the settings above were applied.
    pub fn build_with(
        self,
        customize: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<AthenaClient, BuildError> {
        let base_url = self.base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(BuildError::InvalidBaseUrl(self.base_url));
        }
        let client =
            Client::new_with_client(&base_url, self.http(self.api_key.as_deref(), &customize)?);
        let admin = match &self.admin_key {
            Some(key) => Some(Client::new_with_client(
                &base_url,
                self.http(Some(key), &customize)?,
            )),
            None => None,
        };
        Ok(AthenaClient { client, admin })
    }

    fn http(
        &self,
        key: Option<&str>,
        customize: &impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<reqwest::Client, BuildError> {
        let mut headers = HeaderMap::new();
        if let Some(name) = &self.client_name {
            let value = HeaderValue::from_str(name)
                .map_err(|_| BuildError::InvalidHeader("X-Athena-Client"))?;
            headers.insert(HeaderName::from_static(CLIENT_HEADER), value);
        }
        if let Some(key) = key {
            let mut value = HeaderValue::from_str(key)
                .map_err(|_| BuildError::InvalidHeader("X-Athena-Key"))?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static(KEY_HEADER), value);
        }
        let mut builder = reqwest::ClientBuilder::new()
            .default_headers(headers)
            .user_agent(self.user_agent.clone())
            .connect_timeout(self.connect_timeout);
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        customize(builder).build().map_err(BuildError::Reqwest)
    }
}

/// The generated [`Client`] configured by an [`AthenaClientBuilder`];
/// dereferences to it, so every operation method is available directly.
#[derive(Clone, Debug)]
pub struct AthenaClient {
    client: Client,
    admin: Option<Client>,
}

impl AthenaClient {
    /// Starts an [`AthenaClientBuilder`].
    pub fn builder(base_url: impl Into<String>) -> AthenaClientBuilder {
        AthenaClientBuilder::new(base_url)
    }

    /// The client sending the API key (the same as dereferencing).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client sending the admin key, for `/admin/*` and the other
    /// admin-only operations; `None` when no admin key was configured.
    pub fn admin(&self) -> Option<&Client> {
        self.admin.as_ref()
    }

    /// The base URL every request goes to.
    pub fn base_url(&self) -> &str {
        crate::ClientInfo::baseurl(&self.client)
    }
}

impl std::ops::Deref for AthenaClient {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_is_checked_and_trimmed() {
        let c = AthenaClientBuilder::new("http://localhost:4052/")
            .build()
            .unwrap();
        assert_eq!(c.base_url(), "http://localhost:4052");
        assert!(c.admin().is_none());
        assert!(matches!(
            AthenaClientBuilder::new("localhost:4052").build(),
            Err(BuildError::InvalidBaseUrl(_))
        ));
    }

    #[test]
    fn header_values_are_checked() {
        let err = AthenaClientBuilder::new("http://h")
            .client_name("bad\nname")
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::InvalidHeader("X-Athena-Client")));
        let c = AthenaClientBuilder::new("http://h")
            .admin_key("k")
            .build()
            .unwrap();
        assert!(c.admin().is_some());
    }
}
