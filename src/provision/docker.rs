//! The Docker Engine API (issue 21), spoken over `DOCKER_HOST` with hyper:
//! a unix socket (`unix:///var/run/docker.sock`, the default when it
//! exists) or `tcp://host:port` (connected through the outbound policy,
//! `src/outbound.rs`). One connection per request, a total timeout, answers
//! capped. Only containers labelled `athena.managed=true` are Athena's.

use crate::domain::DomainError;
use crate::outbound::OutboundPolicy;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The label every Athena container carries.
pub const MANAGED_LABEL: &str = "athena.managed";

/// Longest one Engine API call may take (an image pull is longer).
const TIMEOUT: Duration = Duration::from_secs(30);
const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// Largest Engine API answer read.
const ANSWER_CAP: usize = 4 << 20;

#[derive(Debug, Clone)]
enum Endpoint {
    Unix(PathBuf),
    Tcp(String, u16),
}

/// A Docker Engine API client.
#[derive(Clone)]
pub struct Docker {
    endpoint: Endpoint,
    outbound: Arc<OutboundPolicy>,
}

impl Docker {
    /// From `DOCKER_HOST`, else the default socket when it exists; `Err`
    /// names why there is none.
    pub fn from_settings(
        settings: &super::Settings,
        outbound: Arc<OutboundPolicy>,
    ) -> Result<Docker, String> {
        let endpoint = match settings.docker_host.as_deref() {
            Some(h) if h.starts_with("unix://") => {
                Endpoint::Unix(PathBuf::from(&h["unix://".len()..]))
            }
            Some(h) if h.starts_with("tcp://") => {
                let rest = h["tcp://".len()..].trim_end_matches('/');
                let (host, port) = rest
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
                    .ok_or_else(|| "DOCKER_HOST tcp://host:port has no valid port".to_string())?;
                Endpoint::Tcp(host, port)
            }
            Some(_) => return Err("DOCKER_HOST must be unix:///path or tcp://host:port".into()),
            None => {
                let default = PathBuf::from("/var/run/docker.sock");
                if !default.exists() {
                    return Err(
                        "Docker is not available (no DOCKER_HOST, no /var/run/docker.sock)".into(),
                    );
                }
                Endpoint::Unix(default)
            }
        };
        Ok(Docker { endpoint, outbound })
    }

    /// One request; `(status, JSON body or Null)`. Transport failures are
    /// a 503 (`ServiceUnavailable`).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), DomainError> {
        let timeout = if path.starts_with("/images/create") {
            PULL_TIMEOUT
        } else {
            TIMEOUT
        };
        tokio::time::timeout(timeout, self.call_inner(method, path, body))
            .await
            .map_err(|_| {
                DomainError::ServiceUnavailable("the Docker Engine did not answer in time".into())
            })?
    }

    async fn call_inner(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), DomainError> {
        let down = |e: String| DomainError::ServiceUnavailable(format!("Docker Engine: {e}"));
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "docker")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| DomainError::Internal(format!("docker request: {e}")))?;
        let response = match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| down(format!("connecting to the socket: {}", e.kind())))?;
                send(stream, request).await.map_err(down)?
            }
            Endpoint::Tcp(host, port) => {
                let (stream, _) = self
                    .outbound
                    .connect(host, *port, Duration::from_secs(5))
                    .await
                    .map_err(|e| down(e.to_string()))?;
                send(stream, request).await.map_err(down)?
            }
        };
        let status = response.status().as_u16();
        let bytes = crate::outbound::read_capped(response.into_body(), ANSWER_CAP)
            .await
            .map_err(down)?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            // Pull progress is a JSON stream: keep the last line.
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .rev()
                    .find_map(|l| serde_json::from_str(l).ok())
                    .unwrap_or(Value::Null)
            })
        };
        Ok((status, value))
    }

    /// Whether the Engine answers `/_ping`.
    pub async fn ping(&self) -> Result<(), DomainError> {
        match self.call("GET", "/_ping", None).await? {
            (200, _) => Ok(()),
            (s, _) => Err(DomainError::ServiceUnavailable(format!(
                "Docker Engine answered /_ping with {s}"
            ))),
        }
    }

    /// Athena's containers (`athena.managed=true`), running or not.
    pub async fn list_managed(&self) -> Result<Vec<Value>, DomainError> {
        let filters = format!("{{\"label\":[\"{MANAGED_LABEL}=true\"]}}");
        let path = format!(
            "/containers/json?all=true&filters={}",
            percent_encoding::utf8_percent_encode(&filters, percent_encoding::NON_ALPHANUMERIC)
        );
        match self.call("GET", &path, None).await? {
            (200, Value::Array(list)) => Ok(list),
            (s, v) => Err(engine_error(s, &v)),
        }
    }

    /// `GET /containers/{name}/json`: `None` when absent.
    pub async fn inspect(&self, name: &str) -> Result<Option<Value>, DomainError> {
        match self
            .call("GET", &format!("/containers/{name}/json"), None)
            .await?
        {
            (200, v) => Ok(Some(v)),
            (404, _) => Ok(None),
            (s, v) => Err(engine_error(s, &v)),
        }
    }

    /// Creates a container; an absent image is pulled once first.
    pub async fn create(
        &self,
        name: &str,
        image: &str,
        spec: &Value,
    ) -> Result<String, DomainError> {
        let path = format!("/containers/create?name={name}");
        let (mut status, mut v) = self.call("POST", &path, Some(spec)).await?;
        if status == 404 {
            let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
            let pull = format!(
                "/images/create?fromImage={}&tag={}",
                percent_encoding::utf8_percent_encode(repo, percent_encoding::NON_ALPHANUMERIC),
                percent_encoding::utf8_percent_encode(tag, percent_encoding::NON_ALPHANUMERIC)
            );
            let (s, pv) = self.call("POST", &pull, None).await?;
            if s != 200 {
                return Err(engine_error(s, &pv));
            }
            (status, v) = self.call("POST", &path, Some(spec)).await?;
        }
        match status {
            201 => Ok(v["Id"].as_str().unwrap_or_default().to_string()),
            409 => Err(DomainError::Conflict(format!(
                "container `{name}` already exists"
            ))),
            s => Err(engine_error(s, &v)),
        }
    }

    /// `start`/`stop`: 204, or 304 when already in that state.
    pub async fn lifecycle(&self, name: &str, action: &str) -> Result<(), DomainError> {
        match self
            .call("POST", &format!("/containers/{name}/{action}"), None)
            .await?
        {
            (204 | 304, _) => Ok(()),
            (404, _) => Err(DomainError::not_found("container", name)),
            (s, v) => Err(engine_error(s, &v)),
        }
    }

    pub async fn remove(&self, name: &str) -> Result<bool, DomainError> {
        match self
            .call(
                "DELETE",
                &format!("/containers/{name}?force=true&v=true"),
                None,
            )
            .await?
        {
            (204, _) => Ok(true),
            (404, _) => Ok(false),
            (s, v) => Err(engine_error(s, &v)),
        }
    }
}

async fn send<S>(
    stream: S,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))
}

fn engine_error(status: u16, v: &Value) -> DomainError {
    let message = v["message"].as_str().unwrap_or("no message").to_string();
    match status {
        400 => DomainError::Invalid(format!("Docker Engine refused the request: {message}")),
        404 => DomainError::Invalid(format!("Docker Engine: {message}")),
        409 => DomainError::Conflict(format!("Docker Engine: {message}")),
        _ => DomainError::ServiceUnavailable(format!("Docker Engine answered {status}: {message}")),
    }
}

/// Whether a container's labels mark it as Athena's.
pub fn is_managed(container: &Value) -> bool {
    let labels = if container["Labels"].is_object() {
        &container["Labels"]
    } else {
        &container["Config"]["Labels"]
    };
    labels[MANAGED_LABEL] == "true"
}

/// Images: `^[a-z0-9./_:-]+$`, at most 255 bytes.
pub fn check_image(image: &str) -> Result<(), DomainError> {
    let ok = !image.is_empty()
        && image.len() <= 255
        && image
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"./_:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid_field(
            "image",
            "must match ^[a-z0-9./_:-]+$",
        ))
    }
}

/// Container names: letters, digits, `_`, `.`, `-`; a letter or digit
/// first; at most 63 bytes.
pub fn check_container(name: &str) -> Result<(), DomainError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid_field(
            "container_name",
            "must be 1-63 characters: letters, digits, `_`, `.`, `-`, starting with a letter or digit",
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_images() {
        assert!(super::check_image("postgres:16").is_ok());
        assert!(super::check_image("ghcr.io/acme/pg_x:16.1-alpine").is_ok());
        for bad in ["Postgres", "pg;rm", "pg 16", "", "pg$x"] {
            assert!(super::check_image(bad).is_err(), "{bad}");
        }
        assert!(super::check_container("athena-pg-shop").is_ok());
        for bad in ["-x", "a/b", "a b", "../x", ""] {
            assert!(super::check_container(bad).is_err(), "{bad}");
        }
    }
}
