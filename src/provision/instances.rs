//! Docker-managed PostgreSQL instances (issue 21): spin up (or reuse) a
//! labelled container on 127.0.0.1, wait until it accepts connections,
//! bootstrap the tenant schema and register the client. Passwords are
//! random unless given, sealed in `athena_provision_instances`, never
//! returned.

use super::docker::{self, Docker};
use super::{Provisioned, Provisioning, Registration};
use crate::domain::DomainError;
use serde_json::{json, Value};
use std::time::Duration;

/// A spin-up request (validated here).
#[derive(Debug, Clone, Default)]
pub struct SpinUp {
    pub client_name: String,
    pub container_name: Option<String>,
    pub db_name: Option<String>,
    pub host: Option<String>,
    pub host_port: Option<i32>,
    pub image: Option<String>,
    pub password: Option<String>,
    pub username: Option<String>,
    pub provision_schema: bool,
    pub register_catalog: bool,
    pub register_runtime: bool,
    pub reuse_existing: bool,
    pub startup_timeout_secs: Option<i64>,
}

const DEFAULT_IMAGE: &str = "postgres:16";

fn seal_context(container: &str) -> String {
    format!("athena_provision_instances.password:{container}")
}

fn random_password() -> Result<String, DomainError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| DomainError::Internal(format!("random password: {e}")))?;
    Ok(hex::encode(bytes))
}

/// The published host port of 5432/tcp in an inspect answer.
pub fn published_port(inspect: &Value) -> Option<u16> {
    let from = |v: &Value| {
        v["5432/tcp"][0]["HostPort"]
            .as_str()
            .and_then(|p| p.parse().ok())
    };
    from(&inspect["NetworkSettings"]["Ports"])
        .or_else(|| from(&inspect["HostConfig"]["PortBindings"]))
}

fn uri(user: &str, password: &str, host: &str, port: u16, db: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!(
        "postgres://{}:{}@{host}:{port}/{db}",
        utf8_percent_encode(user, NON_ALPHANUMERIC),
        utf8_percent_encode(password, NON_ALPHANUMERIC)
    )
}

impl Provisioning {
    /// The Docker client, or 503 naming why there is none.
    pub fn docker(&self) -> Result<Docker, DomainError> {
        Docker::from_settings(&self.settings, self.outbound.clone())
            .map_err(DomainError::ServiceUnavailable)
    }

    /// Creates (or reuses) the container, waits for it, provisions and
    /// registers the client.
    pub async fn spin_up(&self, r: &SpinUp) -> Result<Value, DomainError> {
        self.spin_up_with_uri(r).await.map(|(v, _)| v)
    }

    /// [`Provisioning::spin_up`], with the instance's URI (password
    /// included: for the gateway's own use, never shown).
    pub async fn spin_up_with_uri(&self, r: &SpinUp) -> Result<(Value, String), DomainError> {
        crate::catalog::clients::check_name(&r.client_name)?;
        let container = r
            .container_name
            .clone()
            .unwrap_or_else(|| format!("athena-pg-{}", r.client_name.replace('.', "-")));
        docker::check_container(&container)?;
        let image = r.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.into());
        docker::check_image(&image)?;
        let db = r.db_name.clone().unwrap_or_else(|| "postgres".into());
        super::strict_name("db_name", &db)?;
        let user = r.username.clone().unwrap_or_else(|| "postgres".into());
        super::strict_name("username", &user)?;
        let host = r.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        match host.parse::<std::net::IpAddr>() {
            Err(_) => {
                return Err(DomainError::invalid_field(
                    "host",
                    "must be an IP address (default 127.0.0.1)",
                ))
            }
            // A database published beyond this host is an operator's
            // decision, not a request's.
            Ok(ip) if !ip.is_loopback() && !self.settings.public_bind => {
                return Err(DomainError::invalid_field(
                    "host",
                    "must be a loopback address (127.0.0.1, ::1) unless \
                     ATHENA_PROVISION_PUBLIC_BIND=1",
                ))
            }
            Ok(_) => {}
        }
        if let Some(p) = r.host_port {
            if !(1..=65535).contains(&p) {
                return Err(DomainError::invalid_field("host_port", "must be 1-65535"));
            }
        }
        let timeout =
            Duration::from_secs(r.startup_timeout_secs.unwrap_or(60).clamp(1, 600) as u64);
        let secrets = self.secrets.as_ref().ok_or_else(|| {
            DomainError::ServiceUnavailable("Docker instances need ATHENA_SECRET_KEY".into())
        })?;
        let engine = self.docker()?;
        engine.ping().await?;
        let catalog = self.tenants.catalog().get().await?;
        let (password, reused, id) = match engine.inspect(&container).await? {
            Some(existing) => {
                if !r.reuse_existing {
                    return Err(DomainError::Conflict(format!(
                        "container `{container}` exists (set reuse_existing to use it)"
                    )));
                }
                if !docker::is_managed(&existing) {
                    return Err(DomainError::Conflict(format!(
                        "container `{container}` is not managed by Athena"
                    )));
                }
                let recorded = catalog
                    .query_opt(
                        "SELECT password_sealed, client_name FROM athena_provision_instances WHERE container_name = $1",
                        &[&container],
                    )
                    .await?;
                let sealed: Option<Vec<u8>> = recorded.as_ref().and_then(|row| row.get(0));
                let owner: Option<String> = recorded.as_ref().and_then(|row| row.get(1));
                if owner.as_deref().is_some_and(|o| o != r.client_name) {
                    return Err(DomainError::Conflict(format!(
                        "container `{container}` belongs to another client"
                    )));
                }
                let password = match (&r.password, sealed) {
                    (Some(p), _) => p.clone(),
                    (None, Some(s)) => secrets.open(&seal_context(&container), &s)?,
                    (None, None) => {
                        return Err(DomainError::Conflict(format!(
                            "container `{container}` has no password on record: give `password`"
                        )))
                    }
                };
                engine.lifecycle(&container, "start").await?;
                (
                    password,
                    true,
                    existing["Id"].as_str().unwrap_or_default().to_string(),
                )
            }
            None => {
                let password = match &r.password {
                    Some(p) => p.clone(),
                    None => random_password()?,
                };
                let spec = json!({
                    "Image": image,
                    "Env": [
                        format!("POSTGRES_PASSWORD={password}"),
                        format!("POSTGRES_USER={user}"),
                        format!("POSTGRES_DB={db}"),
                    ],
                    "Labels": {docker::MANAGED_LABEL: "true", "athena.client": r.client_name},
                    "ExposedPorts": {"5432/tcp": {}},
                    "HostConfig": {
                        "PortBindings": {"5432/tcp": [{
                            "HostIp": host,
                            "HostPort": r.host_port.map(|p| p.to_string()).unwrap_or_default(),
                        }]},
                        "RestartPolicy": {"Name": "unless-stopped"},
                    },
                });
                let id = engine.create(&container, &image, &spec).await?;
                engine.lifecycle(&container, "start").await?;
                (password, false, id)
            }
        };
        let inspected = engine
            .inspect(&container)
            .await?
            .ok_or_else(|| DomainError::ServiceUnavailable("the container vanished".into()))?;
        let port = published_port(&inspected).ok_or_else(|| {
            DomainError::ServiceUnavailable("the container publishes no port for 5432/tcp".into())
        })?;
        let sealed = secrets.seal(&seal_context(&container), &password)?;
        let uri = uri(&user, &password, &host, port, &db);
        // A reused container's record (password, client) changes only once
        // the given password has been proven; a new one is recorded at once
        // (its password exists nowhere else).
        if reused {
            wait_ready(&uri, timeout).await?;
        }
        catalog
            .execute(
                "INSERT INTO athena_provision_instances
                     (container_name, container_id, image, host, host_port, database_name, db_user, password_sealed, client_name)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (container_name) DO UPDATE SET container_id = $2, image = $3, host = $4,
                     host_port = $5, database_name = $6, db_user = $7, password_sealed = $8,
                     client_name = $9, updated_at = now()",
                &[&container, &id, &image, &host, &i32::from(port), &db, &user, &sealed, &r.client_name],
            )
            .await?;
        drop(catalog);
        if !reused {
            wait_ready(&uri, timeout).await?;
        }
        let mut out = Provisioned::default();
        if r.provision_schema {
            out = super::provisioned(super::provision_trusted(&self.tenants, &uri).await?);
        }
        if r.register_catalog || r.register_runtime {
            let reg = Registration {
                client_name: r.client_name.clone(),
                description: Some(format!("Docker instance {container}")),
                catalog: r.register_catalog,
                runtime: r.register_runtime,
            };
            super::register(&self.tenants, &uri, &reg, &mut out).await?;
        }
        let answer = json!({
            "container_name": container,
            "container_id": id,
            "image": image,
            "host": host,
            "host_port": port,
            "db_name": db,
            "username": user,
            "client_name": r.client_name,
            "reused": reused,
            "provisioned": r.provision_schema,
            "statements_executed": out.statements_executed,
            "registered_catalog": out.registered_catalog,
            "registered_runtime": out.registered_runtime,
        });
        Ok((answer, uri))
    }

    /// The list answer; never an error for a missing Docker.
    pub async fn list_instances(&self) -> Result<Value, DomainError> {
        let (containers, error) = match self.docker() {
            Ok(engine) => match engine.list_managed().await {
                Ok(list) => (list, None),
                Err(e) => (Vec::new(), Some(message(e))),
            },
            Err(e) => (Vec::new(), Some(message(e))),
        };
        let available = error.is_none();
        let deps = super::deps::status(&self.settings, available).await;
        let mut instances = Vec::new();
        for c in &containers {
            let name = c["Names"][0]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            let client = c["Labels"]["athena.client"].as_str().map(str::to_string);
            let linked = match &client {
                Some(cl) => {
                    let record = crate::catalog::clients::get(self.tenants.catalog(), cl).await?;
                    json!({
                        "client_name": cl,
                        "catalog_registered": record.is_some(),
                        "runtime_known": self.tenants.pool_connected(cl).await,
                    })
                }
                None => Value::Null,
            };
            instances.push(json!({
                "container_name": name,
                "image": c["Image"],
                "status": c["Status"],
                "running": c["State"] == "running",
                "host_port": c["Ports"].as_array().and_then(|ports| ports.iter().find(|p| p["PrivatePort"] == 5432)).and_then(|p| p["PublicPort"].as_i64()),
                "labels": if c["Labels"].is_object() { c["Labels"].clone() } else { json!({}) },
                "linked_client": linked,
            }));
        }
        Ok(json!({
            "count": instances.len(),
            "instances": instances,
            "dependencies": deps,
            "instance_runtime_available": available,
            "instance_runtime_error": error,
        }))
    }

    /// One managed container (404 when absent or not Athena's).
    pub async fn instance(&self, name: &str) -> Result<Value, DomainError> {
        docker::check_container(name)?;
        let engine = self.docker()?;
        let c = engine
            .inspect(name)
            .await?
            .filter(docker::is_managed)
            .ok_or_else(|| DomainError::not_found("container", name))?;
        let record = self.instance_row(name).await?;
        Ok(json!({
            "container_name": name,
            "container_id": c["Id"],
            "image": c["Config"]["Image"],
            "running": c["State"]["Running"],
            "status": c["State"]["Status"],
            "host_port": published_port(&c),
            "labels": c["Config"]["Labels"],
            "client_name": record.as_ref().and_then(|r| r["client_name"].as_str().map(str::to_string)),
            "bindings": record.as_ref().map(|r| r["bindings"].clone()).unwrap_or(json!([])),
        }))
    }

    async fn instance_row(&self, name: &str) -> Result<Option<Value>, DomainError> {
        let conn = self.tenants.catalog().get().await?;
        Ok(conn
            .query_opt(
                "SELECT client_name, bindings FROM athena_provision_instances WHERE container_name = $1",
                &[&name],
            )
            .await?
            .map(|r| json!({"client_name": r.get::<_, Option<String>>(0), "bindings": r.get::<_, Value>(1)})))
    }

    async fn managed(&self, name: &str) -> Result<Docker, DomainError> {
        docker::check_container(name)?;
        let engine = self.docker()?;
        engine
            .inspect(name)
            .await?
            .filter(docker::is_managed)
            .ok_or_else(|| DomainError::not_found("container", name))?;
        Ok(engine)
    }

    /// `start` / `stop`, then (with `sync_runtime`) the linked client's
    /// pool is reconnected or dropped.
    pub async fn lifecycle(
        &self,
        name: &str,
        action: &str,
        client: Option<String>,
        sync_runtime: bool,
    ) -> Result<Value, DomainError> {
        let engine = self.managed(name).await?;
        engine.lifecycle(name, action).await?;
        let client = match client {
            Some(c) => Some(c),
            None => self
                .instance_row(name)
                .await?
                .and_then(|r| r["client_name"].as_str().map(str::to_string)),
        };
        let mut synced = false;
        if let (true, Some(c)) = (sync_runtime, &client) {
            self.tenants.evict(c).await;
            if action == "start" {
                // Reconnect when it answers (a fresh container takes a moment).
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                loop {
                    let ok = match self.tenants.resolve(c).await {
                        Ok(t) => t.pool.get().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok || tokio::time::Instant::now() > deadline {
                        synced = ok;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            } else {
                synced = true;
            }
        }
        Ok(json!({
            "container_name": name,
            "action": action,
            "running": action == "start",
            "client_name": client,
            "runtime_synced": synced,
        }))
    }

    /// Removes the container and, as asked, the linked client.
    pub async fn remove_instance(
        &self,
        name: &str,
        client: Option<String>,
        remove_runtime: bool,
        remove_catalog: bool,
    ) -> Result<Value, DomainError> {
        let engine = self.managed(name).await?;
        let client = match client {
            Some(c) => Some(c),
            None => self
                .instance_row(name)
                .await?
                .and_then(|r| r["client_name"].as_str().map(str::to_string)),
        };
        let removed = engine.remove(name).await?;
        let mut catalog_removed = false;
        if let Some(c) = &client {
            if remove_catalog {
                catalog_removed = crate::catalog::clients::delete(self.tenants.catalog(), c)
                    .await?
                    .is_some();
            }
            if remove_runtime || remove_catalog {
                self.tenants.evict(c).await;
            }
        }
        let conn = self.tenants.catalog().get().await?;
        conn.execute(
            "DELETE FROM athena_provision_instances WHERE container_name = $1",
            &[&name],
        )
        .await?;
        Ok(json!({
            "container_name": name,
            "removed": removed,
            "client_name": client,
            "removed_catalog_client": catalog_removed,
            "removed_runtime_client": remove_runtime && client.is_some(),
        }))
    }

    /// Records the public route of an instance's port.
    pub async fn bind(
        &self,
        name: &str,
        route_key: &str,
        public_host: Option<String>,
        public_port: Option<i32>,
        client: Option<String>,
        persist: bool,
    ) -> Result<Value, DomainError> {
        super::strict_name("route_key", route_key)?;
        if let Some(h) = &public_host {
            let ok = !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b));
            if !ok {
                return Err(DomainError::invalid_field(
                    "public_host",
                    "must be a host name",
                ));
            }
        }
        if let Some(p) = public_port {
            if !(1..=65535).contains(&p) {
                return Err(DomainError::invalid_field("public_port", "must be 1-65535"));
            }
        }
        let engine = self.managed(name).await?;
        let c = engine.inspect(name).await?.unwrap_or_default();
        let binding = json!({
            "route_key": route_key,
            "public_host": public_host,
            "public_port": public_port,
            "host_port": published_port(&c),
            "client_name": client,
        });
        let mut persisted = false;
        if persist {
            let conn = self.tenants.catalog().get().await?;
            let n = conn
                .execute(
                    "UPDATE athena_provision_instances
                        SET bindings = (SELECT COALESCE(jsonb_agg(b), '[]') FROM jsonb_array_elements(bindings) b
                                         WHERE b->>'route_key' <> $2) || jsonb_build_array($3::jsonb),
                            updated_at = now()
                      WHERE container_name = $1",
                    &[&name, &route_key, &binding],
                )
                .await?;
            if n == 0 {
                conn.execute(
                    "INSERT INTO athena_provision_instances (container_name, image, bindings)
                     VALUES ($1, $2, jsonb_build_array($3::jsonb))",
                    &[
                        &name,
                        &c["Config"]["Image"].as_str().unwrap_or("unknown"),
                        &binding,
                    ],
                )
                .await?;
            }
            persisted = true;
        }
        Ok(json!({"container_name": name, "binding": binding, "persisted": persisted}))
    }
}

fn message(e: DomainError) -> String {
    match e {
        DomainError::ServiceUnavailable(m) | DomainError::Invalid(m) | DomainError::Conflict(m) => {
            m
        }
        e => format!("{e:?}"),
    }
}

/// Connects until the server answers or `timeout` passes (503).
async fn wait_ready(uri: &str, timeout: Duration) -> Result<(), DomainError> {
    let (mut cfg, mode) = crate::db::tls::config_from_uri(uri)
        .map_err(|_| DomainError::Internal("instance URI".into()))?;
    cfg.connect_timeout(Duration::from_secs(2));
    // Our own container: its URI's sslmode, the webpki roots.
    let tls = crate::db::tls::PgTls::default();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tls.connect(&cfg, mode).await {
            Ok(client) => {
                drop(client);
                return Ok(());
            }
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(_) => {
                return Err(DomainError::ServiceUnavailable(format!(
                    "the instance did not accept connections within {} s",
                    timeout.as_secs()
                )))
            }
        }
    }
}
