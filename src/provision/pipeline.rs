//! `POST /admin/provision/local/pipeline` (issue 21; the contract has no
//! body, this one is defined in openapi/CHANGES.md):
//! `{client_name, mode: local_database|docker|neon|railway|render, options}`.
//! The steps run as one job recorded in `athena_provision_pipelines`; the
//! answer is `{job_id, status, steps}`. A client that is already
//! registered is a 409 (nothing is created).

use super::{local, Provisioning};
use crate::domain::DomainError;
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub client_name: String,
    pub mode: String,
    #[serde(default)]
    pub options: serde_json::Map<String, Value>,
}

fn opt_str(o: &serde_json::Map<String, Value>, k: &str) -> Result<Option<String>, DomainError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(DomainError::invalid_field(
            format!("options.{k}"),
            "must be a string",
        )),
    }
}

fn opt_bool(
    o: &serde_json::Map<String, Value>,
    k: &str,
    default: bool,
) -> Result<bool, DomainError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(DomainError::invalid_field(
            format!("options.{k}"),
            "must be a boolean",
        )),
    }
}

impl Provisioning {
    pub async fn run_pipeline(&self, body: &[u8]) -> Result<Value, DomainError> {
        let req: Request = serde_json::from_slice(body).map_err(|e| {
            DomainError::Invalid(format!(
                "expected {{client_name, mode, options}}: {}",
                e.to_string().chars().take(200).collect::<String>()
            ))
        })?;
        crate::catalog::clients::check_name(&req.client_name)?;
        let o = &req.options;
        if !matches!(
            req.mode.as_str(),
            "local_database" | "docker" | "neon" | "railway" | "render"
        ) {
            return Err(DomainError::invalid_field(
                "mode",
                "must be local_database, docker, neon, railway or render",
            ));
        }
        if crate::catalog::clients::get(self.tenants.catalog(), &req.client_name)
            .await?
            .is_some()
        {
            return Err(DomainError::Conflict(format!(
                "client `{}` is already registered",
                req.client_name
            )));
        }
        let job_id = Uuid::new_v4();
        let conn = self.tenants.catalog().get().await?;
        let options = Value::Object(redacted(o));
        conn.execute(
            "INSERT INTO athena_provision_pipelines (job_id, client_name, mode, options, status)
             VALUES ($1, $2, $3, $4, 'running')",
            &[&job_id, &req.client_name, &req.mode, &options],
        )
        .await?;
        drop(conn);
        let result = match req.mode.as_str() {
            "local_database" => {
                let server = opt_str(o, "server_client")?.ok_or_else(|| {
                    DomainError::invalid_field(
                        "options.server_client",
                        "is required for local_database",
                    )
                })?;
                let create = local::Create {
                    database_name: opt_str(o, "database_name")?
                        .unwrap_or_else(|| req.client_name.replace(['.', '-'], "_")),
                    owner: opt_str(o, "owner")?,
                    template: opt_str(o, "template")?,
                    encoding: opt_str(o, "encoding")?,
                    lc_collate: opt_str(o, "lc_collate")?,
                    lc_ctype: opt_str(o, "lc_ctype")?,
                    tablespace: opt_str(o, "tablespace")?,
                    provision_schema: opt_bool(o, "provision_schema", true)?,
                    register_catalog: true,
                    register_runtime: true,
                    register_name: Some(req.client_name.clone()),
                    description: opt_str(o, "description")?,
                };
                local::create(&self.tenants, &server, &create).await.map(|v| {
                    vec![
                        json!({"step": "create_database", "status": "succeeded", "database_name": v["database_name"]}),
                        json!({"step": "provision_schema", "status": if create.provision_schema { "succeeded" } else { "skipped" }, "statements_executed": v["statements_executed"]}),
                        json!({"step": "register_client", "status": "succeeded", "client_name": v["registered_client"]}),
                    ]
                })
            }
            "docker" => {
                let spin = super::instances::SpinUp {
                    client_name: req.client_name.clone(),
                    container_name: opt_str(o, "container_name")?,
                    db_name: opt_str(o, "db_name")?,
                    host: opt_str(o, "host")?,
                    host_port: o
                        .get("host_port")
                        .and_then(Value::as_i64)
                        .map(|p| p.clamp(0, 70000) as i32),
                    image: opt_str(o, "image")?,
                    password: opt_str(o, "password")?,
                    username: opt_str(o, "username")?,
                    provision_schema: opt_bool(o, "provision_schema", true)?,
                    register_catalog: true,
                    register_runtime: true,
                    reuse_existing: opt_bool(o, "reuse_existing", false)?,
                    startup_timeout_secs: o.get("startup_timeout_secs").and_then(Value::as_i64),
                };
                self.spin_up(&spin).await.map(|v| {
                    vec![
                        json!({"step": "start_instance", "status": "succeeded", "container_name": v["container_name"], "reused": v["reused"]}),
                        json!({"step": "provision_schema", "status": if spin.provision_schema { "succeeded" } else { "skipped" }, "statements_executed": v["statements_executed"]}),
                        json!({"step": "register_client", "status": "succeeded", "client_name": req.client_name}),
                    ]
                })
            }
            // The hosted providers have their own routes
            // (`/admin/provision/providers/*`).
            provider => Err(DomainError::Invalid(format!(
                "mode {provider}: use POST /admin/provision/providers/{provider}"
            ))),
        };
        let conn = self.tenants.catalog().get().await?;
        let (status, steps, error) = match &result {
            Ok(steps) => ("completed", json!(steps), None),
            Err(e) => (
                "failed",
                json!([{"step": req.mode, "status": "failed"}]),
                Some(format!("{e:?}").chars().take(300).collect::<String>()),
            ),
        };
        conn.execute(
            "UPDATE athena_provision_pipelines SET status = $2, steps = $3, error = $4, updated_at = now()
              WHERE job_id = $1",
            &[&job_id, &status, &steps, &error],
        )
        .await?;
        let steps = result?;
        Ok(
            json!({"job_id": job_id, "client_name": req.client_name, "mode": req.mode, "status": status, "steps": steps}),
        )
    }
}

/// The options as recorded: passwords and tokens left out.
fn redacted(o: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    o.iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !(k.contains("password")
                || k.contains("token")
                || k.contains("key")
                || k.contains("uri"))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
