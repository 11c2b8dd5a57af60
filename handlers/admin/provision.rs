//! `admin_provision` (issue 21): tenant schema bootstrap, local databases,
//! dependencies, clones (`src/provision/`), and the hosted providers
//! (`/admin/provision/providers/*`, `src/integrations/providers.rs`).

use super::provision_providers::provision as provider_provision;
use crate::api::{models, params, responses, traits::AdminProvisionApi};
use crate::config::redact;
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};
use crate::integrations::providers::Provider;
use crate::provision::{self, local, Registration};

impl AdminProvisionApi for Handlers {
    async fn post_admin_provision(
        &self,
        _cx: RequestCx,
        body: models::ProvisionRequest,
    ) -> ApiResult<responses::PostAdminProvision> {
        let p = &self.provision;
        let uri = body.uri.as_deref().filter(|u| !u.trim().is_empty());
        let client = body.client_name.as_deref().filter(|c| !c.trim().is_empty());
        let (out, client) = match (uri, client) {
            (Some(uri), None) => {
                let registration = body.register.then(|| Registration {
                    client_name: body
                        .register_name
                        .clone()
                        .unwrap_or_else(|| "provisioned".into()),
                    description: None,
                    catalog: true,
                    runtime: true,
                });
                let out = provision::provision_and_register(
                    &p.tenants,
                    &p.direct,
                    uri,
                    registration.as_ref(),
                )
                .await
                .map_err(refused_target)?;
                (out, redact(uri))
            }
            (None, Some(client)) => (
                provision::provision_client(&p.tenants, client).await?,
                client.to_string(),
            ),
            _ => {
                return Err(ApiError::bad_request(
                    "give exactly one of uri and client_name",
                ))
            }
        };
        Ok(responses::PostAdminProvision::Ok(Json::new(
            models::PostAdminProvisionResponse200 {
                client: Some(client),
                registered: out.registered,
                statements_executed: Some(out.statements_executed as i64),
                tables: out.tables,
            },
        )))
    }

    async fn get_admin_provision_status(
        &self,
        _cx: RequestCx,
        params: params::GetAdminProvisionStatus,
    ) -> ApiResult<responses::GetAdminProvisionStatus> {
        let s = provision::status(&self.provision.tenants, &params.client_name).await?;
        Ok(responses::GetAdminProvisionStatus::Ok(Json::new(
            models::ProvisionStatusResponse {
                client_name: Some(params.client_name),
                provisioned: Some(s.missing.is_empty()),
                missing_tables: s.missing,
                present_tables: s.present,
            },
        )))
    }

    async fn get_admin_provision_local_databases(
        &self,
        _cx: RequestCx,
        params: params::GetAdminProvisionLocalDatabases,
    ) -> ApiResult<responses::GetAdminProvisionLocalDatabases> {
        let body = self.local_databases(&params.client_name).await?;
        Ok(responses::GetAdminProvisionLocalDatabases::Ok(Json::new(
            body,
        )))
    }

    async fn post_admin_provision_local_databases(
        &self,
        _cx: RequestCx,
        body: models::PostAdminProvisionLocalDatabasesRequest,
    ) -> ApiResult<responses::PostAdminProvisionLocalDatabases> {
        let server = body
            .client_name
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ApiError::bad_request("client_name is required"))?;
        let create = local::Create {
            database_name: body.database_name,
            owner: body.owner,
            template: body.template,
            encoding: body.encoding,
            lc_collate: body.lc_collate,
            lc_ctype: body.lc_ctype,
            tablespace: body.tablespace,
            provision_schema: body.provision_schema,
            register_catalog: body.register_catalog,
            register_runtime: body.register_runtime,
            register_name: body.register_name,
            description: body.description,
        };
        let out = local::create(&self.provision.tenants, &server, &create).await?;
        Ok(responses::PostAdminProvisionLocalDatabases::Created(
            Json::new(out),
        ))
    }

    async fn get_admin_provision_dependencies(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminProvisionDependencies> {
        let status = provision::deps::status(&self.provision.settings, false).await;
        Ok(responses::GetAdminProvisionDependencies::Ok(Json::new(
            status,
        )))
    }

    async fn post_admin_provision_dependencies_install(
        &self,
        _cx: RequestCx,
        body: Option<models::InstallLocalProvisionDependenciesRequest>,
    ) -> ApiResult<responses::PostAdminProvisionDependenciesInstall> {
        let settings = &self.provision.settings;
        if !settings.allow_dependency_install {
            return Err(DomainError::ServiceUnavailable(
                "dependency installs are disabled: set ATHENA_ALLOW_DEPENDENCY_INSTALL=1".into(),
            )
            .into());
        }
        let body = body.unwrap_or(models::InstallLocalProvisionDependenciesRequest {
            install_docker: true,
            install_postgres: true,
            start_services: true,
            use_sudo: true,
        });
        let result = provision::deps::install(
            settings,
            provision::deps::Wanted {
                postgres: body.install_postgres,
                docker: body.install_docker,
                start_services: body.start_services,
                use_sudo: body.use_sudo,
            },
        )
        .await;
        Ok(responses::PostAdminProvisionDependenciesInstall::Ok(
            Json::new(result),
        ))
    }

    // --- Docker instances (`src/provision/instances.rs`) ---

    async fn get_admin_provision_instances(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminProvisionInstances> {
        let v = self.provision.list_instances().await?;
        let list: models::ListPostgresInstancesResponse = serde_json::from_value(v)
            .map_err(|e| DomainError::Internal(format!("instance list: {e}")))?;
        Ok(responses::GetAdminProvisionInstances::Ok(Json::new(list)))
    }

    async fn post_admin_provision_instances(
        &self,
        _cx: RequestCx,
        body: models::SpinUpInstanceRequest,
    ) -> ApiResult<responses::PostAdminProvisionInstances> {
        let v = self
            .provision
            .spin_up(&provision::instances::SpinUp {
                client_name: body.client_name,
                container_name: body.container_name,
                db_name: body.db_name,
                host: body.host,
                host_port: body.host_port,
                image: body.image,
                password: body.password,
                username: body.username,
                provision_schema: body.provision_schema,
                register_catalog: body.register_catalog,
                register_runtime: body.register_runtime,
                reuse_existing: body.reuse_existing,
                startup_timeout_secs: body.startup_timeout_secs,
            })
            .await?;
        Ok(responses::PostAdminProvisionInstances::Ok(Json::new(v)))
    }

    async fn get_admin_provision_instances_by_container_name(
        &self,
        _cx: RequestCx,
        params: params::GetAdminProvisionInstancesByContainerName,
    ) -> ApiResult<responses::GetAdminProvisionInstancesByContainerName> {
        let v = self.provision.instance(&params.container_name).await?;
        Ok(responses::GetAdminProvisionInstancesByContainerName::Ok(
            Json::new(v),
        ))
    }

    async fn delete_admin_provision_instances_by_container_name(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminProvisionInstancesByContainerName,
        body: Option<models::DeleteInstanceRequest>,
    ) -> ApiResult<responses::DeleteAdminProvisionInstancesByContainerName> {
        let (client, runtime, catalog) = body
            .map(|b| {
                (
                    b.client_name,
                    b.remove_runtime_client,
                    b.remove_catalog_client,
                )
            })
            .unwrap_or((None, true, true));
        let v = self
            .provision
            .remove_instance(&params.container_name, client, runtime, catalog)
            .await?;
        Ok(responses::DeleteAdminProvisionInstancesByContainerName::Ok(
            Json::new(v),
        ))
    }

    async fn post_admin_provision_instances_by_container_name_start(
        &self,
        _cx: RequestCx,
        params: params::PostAdminProvisionInstancesByContainerNameStart,
        body: Option<models::InstanceLifecycleRequest>,
    ) -> ApiResult<responses::PostAdminProvisionInstancesByContainerNameStart> {
        let (client, sync) = body
            .map(|b| (b.client_name, b.sync_runtime))
            .unwrap_or((None, true));
        let v = self
            .provision
            .lifecycle(&params.container_name, "start", client, sync)
            .await?;
        Ok(responses::PostAdminProvisionInstancesByContainerNameStart::Ok(Json::new(v)))
    }

    async fn post_admin_provision_instances_by_container_name_stop(
        &self,
        _cx: RequestCx,
        params: params::PostAdminProvisionInstancesByContainerNameStop,
        body: Option<models::InstanceLifecycleRequest>,
    ) -> ApiResult<responses::PostAdminProvisionInstancesByContainerNameStop> {
        let (client, sync) = body
            .map(|b| (b.client_name, b.sync_runtime))
            .unwrap_or((None, true));
        let v = self
            .provision
            .lifecycle(&params.container_name, "stop", client, sync)
            .await?;
        Ok(responses::PostAdminProvisionInstancesByContainerNameStop::Ok(Json::new(v)))
    }

    async fn post_admin_provision_instances_by_container_name_bindings(
        &self,
        _cx: RequestCx,
        params: params::PostAdminProvisionInstancesByContainerNameBindings,
        body: models::BindInstancePortRouteRequest,
    ) -> ApiResult<responses::PostAdminProvisionInstancesByContainerNameBindings> {
        let v = self
            .provision
            .bind(
                &params.container_name,
                &body.route_key,
                body.public_host,
                body.public_port,
                body.client_name,
                body.persist_in_catalog,
            )
            .await?;
        Ok(responses::PostAdminProvisionInstancesByContainerNameBindings::Ok(Json::new(v)))
    }

    async fn post_admin_provision_local_pipeline(
        &self,
        cx: RequestCx,
    ) -> ApiResult<responses::PostAdminProvisionLocalPipeline> {
        let v = self.provision.run_pipeline(cx.body()).await?;
        Ok(responses::PostAdminProvisionLocalPipeline::Ok(Json::new(v)))
    }

    // --- clones (`src/provision/clones.rs`) ---

    async fn get_admin_provision_clones(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminProvisionClones> {
        let jobs = self.provision.list_clones().await?;
        Ok(responses::GetAdminProvisionClones::Ok(Json::new(
            models::CloneJobListResponse {
                jobs: jobs.iter().map(clone_summary).collect::<Result<_, _>>()?,
            },
        )))
    }

    async fn post_admin_provision_clones(
        &self,
        _cx: RequestCx,
        body: models::CloneJobRequest,
    ) -> ApiResult<responses::PostAdminProvisionClones> {
        let mut target_password = None;
        let target = match body.target {
            models::CloneTargetSpec::ReuseManagedTargetSpec(t) => serde_json::json!({
                "mode": "reuse_managed_instance",
                "existing_client_name": t.existing_client_name,
                "database_name": t.database_name,
                "target_client_name": t.target_client_name,
                "description": t.description,
            }),
            models::CloneTargetSpec::CreateManagedTargetSpec(t) => {
                target_password = t.password;
                serde_json::json!({
                    "mode": "create_managed_instance",
                    "client_name": t.client_name,
                    "container_name": t.container_name,
                    "database_name": t.database_name,
                    "host": t.host,
                    "host_port": t.host_port,
                    "image": t.image,
                    "reuse_existing_container": t.reuse_existing_container,
                    "startup_timeout_secs": t.startup_timeout_secs,
                    "username": t.username,
                })
            }
        };
        // Absent policies: provision and register (catalog and runtime).
        let registration = body.registration.map_or_else(
            || serde_json::json!({"register_catalog": true, "register_runtime": true}),
            |r| {
                serde_json::json!({
                    "register_catalog": r.register_catalog,
                    "register_runtime": r.register_runtime,
                    "register_name": r.register_name,
                    "description": r.description,
                })
            },
        );
        let job = self
            .provision
            .create_clone(provision::clones::NewJob {
                source_uri: body.source.source_uri,
                target_password,
                target,
                provision_schema: body.provisioning.is_none_or(|p| p.provision_schema),
                registration,
                max_attempts: body.max_attempts.unwrap_or(3),
                requested_by: body.requested_by,
            })
            .await?;
        Ok(responses::PostAdminProvisionClones::Created(Json::new(
            clone_detail(&job)?,
        )))
    }

    async fn get_admin_provision_clones_by_job_id(
        &self,
        _cx: RequestCx,
        params: params::GetAdminProvisionClonesByJobId,
    ) -> ApiResult<responses::GetAdminProvisionClonesByJobId> {
        let id = params.job_id;
        let (job, events) = self
            .provision
            .get_clone(id)
            .await?
            .ok_or_else(|| DomainError::not_found("clone job", id.to_string()))?;
        let events = events
            .into_iter()
            .map(|e| {
                Ok(models::CloneJobEvent {
                    created_at: e.created_at,
                    daemon_id: e.daemon_id,
                    details: e.details.as_object().cloned().unwrap_or_default(),
                    event_id: e.event_id,
                    job_id: e.job_id,
                    kind: e.kind,
                    level: enum_of(&e.level)?,
                    message: e.message,
                    phase: enum_of(&e.phase)?,
                })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        Ok(responses::GetAdminProvisionClonesByJobId::Ok(Json::new(
            models::CloneJobDetailResponse {
                events,
                job: clone_detail(&job)?,
            },
        )))
    }

    async fn post_admin_provision_clones_by_job_id_cancel(
        &self,
        _cx: RequestCx,
        params: params::PostAdminProvisionClonesByJobIdCancel,
    ) -> ApiResult<responses::PostAdminProvisionClonesByJobIdCancel> {
        let job = self.provision.cancel_clone(params.job_id).await?;
        Ok(responses::PostAdminProvisionClonesByJobIdCancel::Ok(
            Json::new(clone_detail(&job)?),
        ))
    }

    async fn post_admin_provision_clones_by_job_id_retry(
        &self,
        _cx: RequestCx,
        params: params::PostAdminProvisionClonesByJobIdRetry,
    ) -> ApiResult<responses::PostAdminProvisionClonesByJobIdRetry> {
        let job = self.provision.retry_clone(params.job_id).await?;
        Ok(responses::PostAdminProvisionClonesByJobIdRetry::Ok(
            Json::new(clone_detail(&job)?),
        ))
    }

    async fn post_admin_provision_providers_neon(
        &self,
        _cx: RequestCx,
        body: models::NeonProviderProvisionRequest,
    ) -> ApiResult<responses::PostAdminProvisionProvidersNeon> {
        let out = provider_provision(self, Provider::Neon, body).await?;
        Ok(responses::PostAdminProvisionProvidersNeon::Ok(Json::new(
            out,
        )))
    }

    async fn post_admin_provision_providers_railway(
        &self,
        _cx: RequestCx,
        body: models::RailwayProviderProvisionRequest,
    ) -> ApiResult<responses::PostAdminProvisionProvidersRailway> {
        let out = provider_provision(self, Provider::Railway, body).await?;
        Ok(responses::PostAdminProvisionProvidersRailway::Ok(
            Json::new(out),
        ))
    }

    async fn post_admin_provision_providers_render(
        &self,
        _cx: RequestCx,
        body: models::RenderProviderProvisionRequest,
    ) -> ApiResult<responses::PostAdminProvisionProvidersRender> {
        let out = provider_provision(self, Provider::Render, body).await?;
        Ok(responses::PostAdminProvisionProvidersRender::Ok(Json::new(
            out,
        )))
    }
}

/// A stored enum value as the contract's enum.
fn enum_of<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, DomainError> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| DomainError::Internal(format!("unknown stored clone value `{value}`")))
}

fn object(v: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn clone_summary(j: &provision::clones::Job) -> Result<models::CloneJobSummary, DomainError> {
    Ok(models::CloneJobSummary {
        attempt_count: j.attempts,
        cancel_requested: j.cancel_requested,
        completed_at: j.completed_at,
        created_at: j.created_at,
        execution_daemon_id: j.worker_id.clone(),
        failure_summary: j.failure_summary.as_ref().map(object),
        job_id: j.id,
        max_attempts: j.max_attempts,
        phase: enum_of(&j.phase)?,
        redacted_summary: object(&j.redacted_summary),
        requested_by: j.requested_by.clone(),
        started_at: j.started_at,
        status: enum_of(&j.clone_status)?,
        updated_at: j.updated_at,
        verification_summary: j.verification_summary.as_ref().map(object),
    })
}

/// The job as the API shows it: the source only redacted, no password.
fn clone_detail(j: &provision::clones::Job) -> Result<models::CloneJobDetail, DomainError> {
    let reg = &j.spec["registration"];
    Ok(models::CloneJobDetail {
        lease_expires_at: j.lease_expires_at,
        provisioning: models::CloneProvisioningPolicy {
            provision_schema: j.spec["provisioning"]["provision_schema"]
                .as_bool()
                .unwrap_or(true),
        },
        registration: models::CloneRegistrationPolicy {
            description: reg["description"].as_str().map(str::to_string),
            register_catalog: reg["register_catalog"].as_bool().unwrap_or(false),
            register_name: reg["register_name"].as_str().map(str::to_string),
            register_runtime: reg["register_runtime"].as_bool().unwrap_or(false),
        },
        source: object(&j.redacted_summary["source"]),
        summary: clone_summary(j)?,
        target: object(&j.spec["target"]),
    })
}

impl Handlers {
    /// The local database inventory of a client's server (admin and
    /// management).
    pub(crate) async fn local_databases(
        &self,
        client: &str,
    ) -> Result<models::LocalClusterDatabasesResponse, ApiError> {
        let (all, managed) = local::list(&self.provision.tenants, client)
            .await
            .map_err(unavailable_client)?;
        Ok(models::LocalClusterDatabasesResponse {
            all_databases: all,
            athena_managed_databases: managed
                .into_iter()
                .map(
                    |m| models::LocalClusterDatabasesResponseAthenaManagedDatabasesItem {
                        client_name: m.client_name,
                        database_name: Some(m.database_name),
                        is_active: m.is_active,
                        is_frozen: m.is_frozen,
                        source: m.source,
                    },
                )
                .collect(),
            client_name: Some(client.to_string()),
        })
    }
}

/// The list routes document no 400: an unknown server client is the
/// documented "client unavailable" (503).
fn unavailable_client(e: DomainError) -> ApiError {
    match e {
        DomainError::InvalidField { reason, .. } => DomainError::ServiceUnavailable(reason).into(),
        e => e.into(),
    }
}

/// `POST /admin/provision` documents 400 for a bad target: a URI the
/// outbound policy refuses is one.
fn refused_target(e: DomainError) -> ApiError {
    match e {
        DomainError::Forbidden(m) => DomainError::invalid_field("uri", m).into(),
        e => e.into(),
    }
}
