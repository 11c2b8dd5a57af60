//! `storage_connections`: the SDK's canonical storage routes
//! (`/storage/providers`, `/storage/connections*`; SDK-only operations of
//! `openapi/sdk-overlay.yaml`). A connection is the camelCase, secret-free
//! view of an S3 catalog row (`/storage/catalogs`): the same rows, created,
//! read and soft-deleted through the same service. The settings a catalog
//! has no column for (`forcePathStyle`, `publicBaseUrl`, `defaultPrefix`,
//! `accountId`) are kept in its metadata under `athena_connection`.
//! `POST /storage/connections/test` HEADs the bucket with the body's
//! credentials, storing nothing.

use crate::api::{models, params, responses, traits::StorageConnectionsApi};
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use crate::storage::catalog::Catalog;
use crate::storage::providers::{self, Provider, PROVIDERS};
use crate::storage::service::NewCatalog;
use serde_json::{Map, Value};

/// The metadata key of a catalog holding its connection-only settings.
const CONNECTION_KEY: &str = "athena_connection";
const PROTOCOL: &str = "s3_compatible";
const SUCCESS: &str = "success";

impl StorageConnectionsApi for Handlers {
    async fn get_storage_providers(
        &self,
        _cx: RequestCx,
        _params: params::GetStorageProviders,
    ) -> ApiResult<responses::GetStorageProviders> {
        Ok(responses::GetStorageProviders::Ok(Json::new(
            models::StorageProvidersResponse {
                status: SUCCESS.into(),
                message: "storage providers".into(),
                data: models::StorageProvidersResponseData {
                    providers: PROVIDERS.iter().map(descriptor).collect(),
                },
            },
        )))
    }

    async fn get_storage_connections(
        &self,
        _cx: RequestCx,
        params: params::GetStorageConnections,
    ) -> ApiResult<responses::GetStorageConnections> {
        let catalogs = self.storage.catalogs(&params.x_athena_client).await?;
        Ok(responses::GetStorageConnections::Ok(Json::new(
            models::StorageConnectionListResponse {
                status: SUCCESS.into(),
                message: "storage connections".into(),
                data: models::StorageConnectionListResponseData {
                    connections: catalogs.into_iter().map(connection).collect(),
                },
            },
        )))
    }

    async fn post_storage_connections(
        &self,
        _cx: RequestCx,
        params: params::PostStorageConnections,
        body: models::CreateStorageConnectionRequest,
    ) -> ApiResult<responses::PostStorageConnections> {
        let new = new_catalog(body)?;
        let created = self
            .storage
            .create_catalog(&params.x_athena_client, new)
            .await?;
        Ok(responses::PostStorageConnections::Ok(Json::new(
            connection_response("storage connection created", created),
        )))
    }

    async fn get_storage_connections_by_id(
        &self,
        _cx: RequestCx,
        params: params::GetStorageConnectionsById,
    ) -> ApiResult<responses::GetStorageConnectionsById> {
        let found = self
            .storage
            .catalog(&params.x_athena_client, params.id)
            .await?;
        Ok(responses::GetStorageConnectionsById::Ok(Json::new(
            connection_response("storage connection", found),
        )))
    }

    async fn delete_storage_connections_by_id(
        &self,
        _cx: RequestCx,
        params: params::DeleteStorageConnectionsById,
    ) -> ApiResult<responses::DeleteStorageConnectionsById> {
        (self.storage)
            .delete_catalog(&params.x_athena_client, params.id)
            .await?;
        Ok(responses::DeleteStorageConnectionsById::Ok(Json::new(
            models::StorageConnectionDeletedResponse {
                status: SUCCESS.into(),
                message: "storage connection deleted".into(),
                data: models::StorageConnectionDeletedResponseData {
                    connection_id: params.id,
                },
            },
        )))
    }

    /// The same body as a create, nothing stored: the bucket is HEADed with
    /// those credentials (refused credentials → 400 naming the S3 code).
    async fn post_storage_connections_test(
        &self,
        _cx: RequestCx,
        _params: params::PostStorageConnectionsTest,
        body: models::CreateStorageConnectionRequest,
    ) -> ApiResult<responses::PostStorageConnectionsTest> {
        let new = new_catalog(body)?;
        let bucket = new.bucket.clone().unwrap_or_default();
        crate::storage::endpoint::check_bucket(&bucket)?;
        let inline = crate::storage::service::Connection {
            s3_id: None,
            endpoint: Some(new.endpoint.clone()),
            region: Some(new.region.clone()),
            access_key_id: Some(new.access_key_id.clone()),
            secret_key: Some(new.secret_key.clone()),
            session_token: new.session_token.clone(),
        };
        let store = self.storage.inline_store(&inline).await?;
        self.storage.probe_bucket(&store, &bucket).await?;
        let now = chrono::Utc::now();
        let view = connection(Catalog {
            id: uuid::Uuid::nil(),
            name: new.name,
            description: new.description.unwrap_or_default(),
            endpoint: store.endpoint.url(),
            region: new.region,
            bucket: Some(bucket),
            provider: new.provider.unwrap_or_default(),
            is_active: true,
            active_credential_id: None,
            active_access_key: None,
            metadata: Value::Object(new.metadata.unwrap_or_default()),
            created_at: now,
            updated_at: now,
        });
        Ok(responses::PostStorageConnectionsTest::Ok(Json::new(
            models::StorageConnectionTestResponse {
                status: SUCCESS.into(),
                message: "storage connection reachable".into(),
                data: models::StorageConnectionTestResponseData {
                    ok: true,
                    config: view.config,
                },
            },
        )))
    }
}

fn descriptor(p: &Provider) -> models::StorageProviderDescriptor {
    let schema = models::StorageProviderConnectionSchema {
        fields: providers::fields(p)
            .into_iter()
            .map(|f| models::StorageProviderConnectionField {
                key: f.key.into(),
                description: f.description.into(),
                required: f.required,
                secret: f.secret,
                value_type: f.value_type.into(),
                allowed_values: Vec::new(),
                default_value: None,
            })
            .collect(),
    };
    models::StorageProviderDescriptor {
        id: p.id.into(),
        provider: p.id.into(),
        protocol: PROTOCOL.into(),
        implementation_status: "implemented".into(),
        default_region: p.default_region.into(),
        force_path_style_default: p.force_path_style,
        default_endpoint_template: p.endpoint_template.map(Into::into),
        connection_config: schema.clone(),
        connection_schema: schema,
    }
}

/// The SDK's flat body (`serializeConnectionInput`) or its nested input
/// type (`config`, `credentials`) as a new catalog; a top-level field wins.
fn new_catalog(body: models::CreateStorageConnectionRequest) -> Result<NewCatalog, DomainError> {
    let config = body.config.unwrap_or_default();
    let credentials = body.credentials.unwrap_or_default();
    let required = |value: Option<String>, field: &str| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| DomainError::invalid_field(field, "is required"))
    };
    let provider = providers::canonical(body.provider.trim()).to_string();
    let defaults = providers::defaults(&provider);
    let account_id = body.account_id.or(config.account_id);
    let (endpoint, region) = providers::endpoint_and_region(
        &defaults,
        body.endpoint.or(config.endpoint),
        body.region.or(config.region),
        account_id.as_deref(),
    )?;
    let public_base_url = body.public_base_url.or(config.public_base_url);
    if let Some(url) = &public_base_url {
        check_url("publicBaseUrl", url)?;
    }
    let default_prefix = body.default_prefix.or(config.default_prefix);
    if let Some(prefix) = &default_prefix {
        check_text("defaultPrefix", prefix)?;
    }
    let mut settings = Map::new();
    let mut keep = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            settings.insert(key.into(), v);
        }
    };
    keep(
        "forcePathStyle",
        body.force_path_style
            .or(config.force_path_style)
            .map(Value::Bool),
    );
    keep("publicBaseUrl", public_base_url.map(Value::String));
    keep("defaultPrefix", default_prefix.map(Value::String));
    keep("accountId", account_id.map(Value::String));
    let mut metadata = match body.metadata.is_empty() {
        true => config.metadata,
        false => body.metadata,
    };
    metadata.insert(CONNECTION_KEY.into(), Value::Object(settings));
    Ok(NewCatalog {
        name: body.name,
        description: body.description,
        endpoint,
        region,
        bucket: Some(required(body.bucket.or(config.bucket), "bucket")?),
        provider: Some(provider),
        access_key_id: required(
            body.access_key_id.or(credentials.access_key_id),
            "accessKeyId",
        )?,
        secret_key: required(
            body.secret_access_key.or(credentials.secret_access_key),
            "secretAccessKey",
        )?,
        session_token: body.session_token.or(credentials.session_token),
        metadata: Some(metadata),
    })
}

fn check_text(field: &str, value: &str) -> Result<(), DomainError> {
    if value.len() > 1024 || value.chars().any(char::is_control) {
        return Err(DomainError::invalid_field(
            field,
            "at most 1024 characters, no control characters",
        ));
    }
    Ok(())
}

fn check_url(field: &str, value: &str) -> Result<(), DomainError> {
    check_text(field, value)?;
    let lower = value.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) || value.contains(' ') {
        return Err(DomainError::invalid_field(field, "must be an http(s) URL"));
    }
    Ok(())
}

fn connection_response(message: &str, c: Catalog) -> models::StorageConnectionResponse {
    models::StorageConnectionResponse {
        status: SUCCESS.into(),
        message: message.into(),
        data: models::StorageConnectionResponseData {
            connection: connection(c),
        },
    }
}

/// A catalog row as the SDK's `StorageConnection` (never a secret).
fn connection(c: Catalog) -> models::StorageConnection {
    let mut metadata = match c.metadata {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let settings = match metadata.remove(CONNECTION_KEY) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let text = |key: &str| settings.get(key).and_then(Value::as_str).map(String::from);
    let force_path_style = settings
        .get("forcePathStyle")
        .and_then(Value::as_bool)
        .unwrap_or(providers::defaults(&c.provider).force_path_style);
    models::StorageConnection {
        id: c.id,
        name: c.name,
        description: Some(c.description).filter(|d| !d.is_empty()),
        provider_id: c.provider,
        protocol: PROTOCOL.into(),
        vendor: None,
        is_active: c.is_active,
        config: models::StorageConnectionConfig {
            bucket: c.bucket,
            endpoint: c.endpoint,
            region: c.region,
            force_path_style,
            metadata,
            public_base_url: text("publicBaseUrl"),
            default_prefix: text("defaultPrefix"),
        },
        credential_state: models::StorageConnectionCredentialState {
            configured: c.active_credential_id.is_some(),
            active_credential_id: c.active_credential_id,
        },
        created_at: Some(c.created_at),
        updated_at: Some(c.updated_at),
    }
}
