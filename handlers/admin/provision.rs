//! `admin_provision` (issue 21): tenant schema bootstrap, local databases,
//! dependencies, clones (`src/provision/`). The hosted providers of the
//! same family (`/admin/provision/providers/*`) are built elsewhere and
//! answer 501 here until then.

use crate::api::{models, params, responses, traits::AdminProvisionApi};
use crate::config::redact;
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};
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
        DomainError::InvalidField { reason, .. } => {
            DomainError::ServiceUnavailable(reason).into()
        }
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
