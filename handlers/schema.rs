//! `schema`: the tenant's schema as `pg_catalog` describes it (issue 16;
//! `src/db/discovery.rs`), and `/schema/clients`. Discovery needs the admin
//! key or a key holding `schema.read` (`crate::auth::access`); the target is
//! `X-Athena-Client`, missing or unknown → 400.

use super::Handlers;
use crate::api::{models, params, responses, traits::SchemaApi};
use crate::db::discovery;
use crate::db::tenants::Tenant;
use crate::domain::DomainError;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use serde_json::json;
use std::sync::Arc;

impl Handlers {
    /// The tenant discovery reads: `X-Athena-Client`, registered and
    /// active; missing or unknown is 400 (the documented status).
    async fn discovery_tenant(&self, client: Option<&str>) -> Result<Arc<Tenant>, DomainError> {
        match self.gateway.tenant(client).await {
            Err(DomainError::NotFound {
                kind: "client",
                key,
            }) => Err(DomainError::invalid_field(
                "X-Athena-Client",
                format!(
                    "client `{}` is not registered",
                    key.chars().take(128).collect::<String>()
                ),
            )),
            other => other,
        }
    }
}

/// `table_name` unknown (in `schema`, or in any schema): 400.
fn unknown_table(schema: Option<&str>, table: &str) -> DomainError {
    let name = match schema {
        Some(s) => format!("{s}.{table}"),
        None => table.to_string(),
    };
    DomainError::invalid_field("table_name", format!("table `{name}` does not exist"))
}

impl SchemaApi for Handlers {
    async fn get_schema_clients(&self, _cx: RequestCx) -> ApiResult<responses::GetSchemaClients> {
        Ok(responses::GetSchemaClients::Ok(Json::new(
            self.client_names().await?,
        )))
    }

    /// Everything one schema (`?schema=`, default `public`) holds, in the
    /// standard envelope: `data {schema, tables, columns, constraints,
    /// indexes, views, functions}`.
    async fn get_schema(
        &self,
        cx: RequestCx,
        params: params::GetSchema,
    ) -> ApiResult<responses::GetSchema> {
        let schema = match params.schema.as_deref() {
            None => "public".to_string(),
            Some(s) => discovery::schema_name("schema", s)?,
        };
        let tenant = self.discovery_tenant(Some(&params.x_athena_client)).await?;
        // Held briefly per tenant (`SchemaCache::report`); DDL through
        // Athena drops it, `Cache-Control: no-cache` reads the catalog now.
        let (data, held) = tenant
            .schema
            .report(
                &schema,
                super::no_cache(&cx),
                discovery::schema(&tenant.pool, &schema),
            )
            .await?
            .ok_or_else(|| {
                DomainError::invalid_field("schema", format!("schema `{schema}` does not exist"))
            })?;
        // Postgres built `data`: served as it is, never parsed here.
        let body = models::GetSchemaResponse200 {
            status: "success".into(),
            message: Some(format!("schema {schema}")),
            data: models::GetSchemaResponse200Data {
                schema: schema.clone(),
                tables: Vec::new(),
                columns: Vec::new(),
                constraints: Vec::new(),
                indexes: Vec::new(),
                views: Vec::new(),
                functions: Vec::new(),
            },
        };
        Ok(responses::GetSchema::Ok(
            Json::new(body)
                .with_raw_field("data", data.to_string())
                .with_header(
                    http::HeaderName::from_static("x-athena-schema-cache"),
                    http::HeaderValue::from_static(if held { "hit" } else { "miss" }),
                ),
        ))
    }

    async fn get_schema_tables(
        &self,
        _cx: RequestCx,
        params: params::GetSchemaTables,
    ) -> ApiResult<responses::GetSchemaTables> {
        let tenant = self.discovery_tenant(Some(&params.x_athena_client)).await?;
        let tables = discovery::tables(&tenant.pool).await?;
        Ok(responses::GetSchemaTables::Ok(
            Json::new(models::GetSchemaTablesResponse200::default())
                .with_raw_field("tables", tables),
        ))
    }

    async fn get_schema_columns(
        &self,
        _cx: RequestCx,
        params: params::GetSchemaColumns,
    ) -> ApiResult<responses::GetSchemaColumns> {
        let (schema, table) =
            discovery::table_ref(&params.table_name, params.table_schema.as_deref())?;
        let tenant = self.discovery_tenant(Some(&params.x_athena_client)).await?;
        let columns = discovery::columns(&tenant.pool, schema.as_deref(), &table)
            .await?
            .ok_or_else(|| unknown_table(schema.as_deref(), &table))?;
        Ok(responses::GetSchemaColumns::Ok(
            Json::new(models::GetSchemaColumnsResponse200::default())
                .with_raw_field("columns", columns),
        ))
    }

    async fn get_schema_constraints(
        &self,
        _cx: RequestCx,
        params: params::GetSchemaConstraints,
    ) -> ApiResult<responses::GetSchemaConstraints> {
        // The documented default: `public` when `table_schema` is omitted
        // (and `table_name` is not qualified).
        let (schema, table) =
            discovery::table_ref(&params.table_name, params.table_schema.as_deref())?;
        let schema = schema.unwrap_or_else(|| "public".into());
        let tenant = self.discovery_tenant(Some(&params.x_athena_client)).await?;
        let constraints = discovery::constraints(&tenant.pool, Some(&schema), &table)
            .await?
            .ok_or_else(|| unknown_table(Some(&schema), &table))?;
        Ok(responses::GetSchemaConstraints::Ok(
            Json::new(models::GetSchemaConstraintsResponse200::default())
                .with_raw_field("constraints", constraints),
        ))
    }

    async fn get_schema_migrations(
        &self,
        _cx: RequestCx,
        params: params::GetSchemaMigrations,
    ) -> ApiResult<responses::GetSchemaMigrations> {
        let tenant = self.discovery_tenant(Some(&params.x_athena_client)).await?;
        let answer = Json::new(models::GetSchemaMigrationsResponse200::default());
        Ok(responses::GetSchemaMigrations::Ok(
            match discovery::migrations(&tenant.pool).await? {
                Some(rows) => answer.with_raw_field("migrations", rows),
                None => answer.with_field(
                    "message",
                    json!("supabase_migrations.schema_migrations does not exist in this database"),
                ),
            },
        ))
    }
}
