//! `management`: schema changes on the caller's client database
//! (`/management/*`, issue 16), through `crate::management` (audit, one
//! transaction with DDL timeouts, SQLSTATE map, cache invalidation).
//! Authorization (`Access::Bound`) already required an API key bound to
//! `X-Athena-Client` holding the route's right. The hosted-provider routes
//! (`/management/provision/providers/*`, issue 21) are at the end; the
//! local-database ones keep their 501 defaults here.

use crate::api::operations::Operation;
use crate::api::{models, params, responses, traits::ManagementApi};
use crate::audit::ddl::AuditEntry;
use crate::db::tenants::Tenant;
use crate::domain::{success, DomainError};
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, RequestCx};
use crate::management::ddl::{self, Name};
use crate::management::{Caller, Change, Management};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// `supported_operations` of the capabilities, with the operation whose
/// access row (`crate::auth::access`) names the right.
const OPERATIONS: &[(&str, Operation)] = &[
    ("capabilities", Operation::GetManagementCapabilities),
    ("create_table", Operation::PostManagementTables),
    ("edit_table", Operation::PatchManagementTablesByTableName),
    ("drop_table", Operation::DeleteManagementTablesByTableName),
    (
        "drop_column",
        Operation::DeleteManagementTablesByTableNameColumnsByColumnName,
    ),
    ("create_index", Operation::PostManagementIndexes),
    ("drop_index", Operation::DeleteManagementIndexesByIndexName),
    ("create_view", Operation::PostManagementViews),
    ("drop_view", Operation::DeleteManagementViewsByViewName),
    ("list_functions", Operation::GetManagementFunctions),
    ("upsert_function", Operation::PutManagementFunctions),
    ("drop_function", Operation::DeleteManagementFunctions),
    (
        "install_extension",
        Operation::PostManagementExtensionsInstall,
    ),
];

/// `POST /management/views` (the contract declares no body; ours is
/// recorded in `openapi/CHANGES.md`).
#[derive(serde::Deserialize)]
struct CreateViewRequest {
    #[serde(default)]
    schema_name: String,
    view_name: String,
    query: String,
    #[serde(default)]
    materialized: bool,
    #[serde(default)]
    or_replace: bool,
}

/// `DELETE /management/views/{view_name}` (optional body).
#[derive(serde::Deserialize, Default)]
struct DropViewRequest {
    #[serde(default)]
    schema_name: String,
    #[serde(default)]
    materialized: bool,
    #[serde(default)]
    cascade: bool,
}

impl Handlers {
    fn management(&self) -> Management<'_> {
        Management {
            audit: &self.audit,
            events: &self.events,
            catalog: self.tenants.catalog(),
            settings: &self.config.management,
        }
    }

    /// The client's tenant; an unknown client is a 400 (issue 16).
    async fn management_tenant(&self, client: &str) -> Result<Arc<Tenant>, ApiError> {
        match self.gateway.tenant(Some(client)).await {
            Ok(t) => Ok(t),
            Err(DomainError::NotFound {
                kind: "client",
                key,
            }) => Err(ApiError::bad_request(format!(
                "X-Athena-Client `{}` is not a registered client",
                key.chars().take(128).collect::<String>()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Tenant, audit caller, and the change applied.
    async fn apply_change(
        &self,
        cx: &RequestCx,
        client: &str,
        change: &Change,
    ) -> Result<Arc<Tenant>, ApiError> {
        let tenant = self.management_tenant(client).await?;
        let caller = Caller {
            client,
            api_key_id: AuditEntry::key_id(cx.actor()),
            request_id: cx.request_id(),
        };
        self.management().apply(&tenant, &caller, change).await?;
        Ok(tenant)
    }
}

/// The success envelope with `data`.
fn envelope(message: impl Into<String>, data: Value) -> Value {
    let mut out = success(message);
    out.insert("data".into(), data);
    Value::Object(out)
}

/// A table's columns as `/schema/columns` lists them (ordinal order).
async fn columns_of(tenant: &Tenant, schema: &Name, table: &Name) -> Result<Vec<Value>, ApiError> {
    let conn = tenant.pool.get().await.map_err(DomainError::from)?;
    let rows = conn
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod),
                    pg_get_expr(d.adbin, d.adrelid), NOT a.attnotnull
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&schema.as_str(), &table.as_str()],
        )
        .await
        .map_err(DomainError::from)?;
    Ok(rows
        .iter()
        .map(|r| {
            json!({
                "column_name": r.get::<_, String>(0),
                "data_type": r.get::<_, String>(1),
                "column_default": r.get::<_, Option<String>>(2),
                "is_nullable": if r.get::<_, bool>(3) { "YES" } else { "NO" },
            })
        })
        .collect())
}

/// The current definition of `schema.name(arg types)`, if it exists.
async fn function_definition(tenant: &Tenant, signature: &str) -> Option<String> {
    let conn = tenant.pool.get().await.ok()?;
    conn.query_one(
        "SELECT pg_get_functiondef(to_regprocedure($1))",
        &[&signature],
    )
    .await
    .ok()
    .and_then(|r| r.get::<_, Option<String>>(0))
}

impl ManagementApi for Handlers {
    // --- issue 21: local databases on the caller's own server
    // (`src/provision/local.rs`); the key is bound to `X-Athena-Client`
    // (`src/auth/access.rs`), the body's `client_name` is ignored. ---
    async fn get_management_provision_local_databases(
        &self,
        _cx: RequestCx,
        params: params::GetManagementProvisionLocalDatabases,
    ) -> ApiResult<responses::GetManagementProvisionLocalDatabases> {
        let body = self.local_databases(&params.x_athena_client, true).await?;
        Ok(responses::GetManagementProvisionLocalDatabases::Ok(
            Json::new(body),
        ))
    }

    async fn post_management_provision_local_databases(
        &self,
        cx: RequestCx,
        params: params::PostManagementProvisionLocalDatabases,
        body: models::LocalClusterCreateDatabaseRequest,
    ) -> ApiResult<responses::PostManagementProvisionLocalDatabases> {
        // A tenant's key: its own server, nothing of another tenant's.
        // Templates are the stock ones only (TEMPLATE copies a database);
        // no OWNER / TABLESPACE; a registration only under a new name or
        // the caller's own (a taken or deleted name is a 409 at create).
        if let Some(t) = body
            .template
            .as_deref()
            .filter(|t| !matches!(*t, "template0" | "template1"))
        {
            return Err(ApiError::bad_request(format!(
                "template `{}` is not allowed here: template0 or template1",
                t.chars().take(63).collect::<String>()
            )));
        }
        if body.owner.is_some() || body.tablespace.is_some() {
            return Err(ApiError::bad_request(
                "owner and tablespace are admin-only (POST /admin/provision/local/databases)",
            ));
        }
        if body
            .register_name
            .as_deref()
            .is_some_and(|n| n != params.x_athena_client)
        {
            return Err(DomainError::Forbidden(
                "register_name must be absent or the caller's own client".into(),
            )
            .into());
        }
        let create = crate::provision::local::Create {
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
        let entry = AuditEntry {
            client_name: params.x_athena_client.clone(),
            api_key_id: AuditEntry::key_id(cx.actor()),
            request_id: cx.request_id().to_string(),
            operation: "management.provision.local_databases.create".into(),
            object_schema: None,
            object_name: Some(create.database_name.clone()),
            statement: crate::provision::local::create_statement(&create)?,
            function: None,
        };
        let audit_id = self.audit.begin(&entry).await?;
        let out = crate::provision::local::create(
            &self.provision.tenants,
            &params.x_athena_client,
            &create,
        )
        .await;
        match &out {
            Ok(_) => self.audit.finish(audit_id, Ok(())).await,
            Err(e) => self.audit.finish(audit_id, Err(&e.to_string())).await,
        }
        let out = out?;
        Ok(responses::PostManagementProvisionLocalDatabases::Created(
            Json::new(out),
        ))
    }
    // --- end issue 21 ---

    async fn get_management_capabilities(
        &self,
        _cx: RequestCx,
        params: params::GetManagementCapabilities,
    ) -> ApiResult<responses::GetManagementCapabilities> {
        self.management_tenant(&params.x_athena_client).await?;
        let required_rights = OPERATIONS
            .iter()
            .map(
                |(name, op)| models::ManagementCapabilitiesRequiredRightsItem {
                    operation: Some(name.to_string()),
                    required_right: crate::auth::access::rule(*op)
                        .right()
                        .map(|r| r.as_str().to_string()),
                },
            )
            .collect();
        Ok(responses::GetManagementCapabilities::Ok(Json::new(
            models::ManagementCapabilitiesEnvelope {
                status: Some("success".into()),
                message: Some("Management capabilities".into()),
                data: Some(models::ManagementCapabilities {
                    backend: Some("postgresql".into()),
                    retention_mutation_supported: Some(false),
                    replication_mutation_supported: Some(false),
                    supported_operations: OPERATIONS.iter().map(|(n, _)| n.to_string()).collect(),
                    required_rights,
                    allowed_index_methods: ddl::INDEX_METHODS
                        .iter()
                        .map(|m| m.to_string())
                        .collect(),
                    allowed_column_data_types: ddl::COLUMN_TYPES
                        .iter()
                        .map(|t| t.to_string())
                        .collect(),
                }),
            },
        )))
    }

    async fn post_management_tables(
        &self,
        cx: RequestCx,
        params: params::PostManagementTables,
        body: models::CreateTableRequest,
    ) -> ApiResult<responses::PostManagementTables> {
        let schema = ddl::schema_or_public("schema_name", &body.schema_name)?;
        let table = ddl::writable_table(&schema, "table_name", &body.table_name)?;
        let mut seen = std::collections::HashSet::new();
        let mut defs = Vec::with_capacity(body.columns.len());
        for (i, c) in body.columns.iter().enumerate() {
            let (name, sql) = ddl::column_definition(
                &format!("columns[{i}]"),
                &c.name,
                &c.data_type,
                c.nullable,
                c.default_expression.as_deref(),
            )?;
            if !seen.insert(name.as_str().to_string()) {
                return Err(DomainError::invalid_field(
                    format!("columns[{i}].name"),
                    format!("column `{}` is listed twice", name.as_str()),
                )
                .into());
            }
            defs.push(sql);
        }
        // `if_not_exists` is ignored, as documented: an existing table is 409.
        let sql = format!("CREATE TABLE {schema}.{table} ({})", defs.join(", "));
        let change = Change::new(
            "management.tables.create",
            schema.as_str(),
            table.as_str(),
            sql,
        );
        let tenant = self
            .apply_change(&cx, &params.x_athena_client, &change)
            .await?;
        let columns = columns_of(&tenant, &schema, &table).await?;
        let Value::Object(out) = envelope(
            format!("Table {}.{} created", schema.as_str(), table.as_str()),
            json!({
                "schema_name": schema.as_str(),
                "table_name": table.as_str(),
                "columns": columns,
                "statement": change.statement(),
            }),
        ) else {
            unreachable!("envelope is an object")
        };
        Ok(responses::PostManagementTables::Created(Json::new(
            models::PostManagementTablesResponse201(out),
        )))
    }

    async fn patch_management_tables_by_table_name(
        &self,
        cx: RequestCx,
        params: params::PatchManagementTablesByTableName,
        body: models::EditTableRequest,
    ) -> ApiResult<responses::PatchManagementTablesByTableName> {
        use models::EditTableRequestOperationsItem as Op;
        let schema = ddl::schema_or_public("schema_name", &body.schema_name)?;
        let table = ddl::writable_table(&schema, "table_name", &params.table_name)?;
        if body.operations.is_empty() {
            return Err(DomainError::invalid_field("operations", "must not be empty").into());
        }
        if body.operations.len() > 100 {
            return Err(DomainError::invalid_field("operations", "at most 100 per request").into());
        }
        let alter = format!("ALTER TABLE {schema}.{table}");
        let mut statements = Vec::with_capacity(body.operations.len());
        for (i, op) in body.operations.iter().enumerate() {
            let field = |f: &str| format!("operations[{i}].{f}");
            let sql = match op {
                Op::AddColumn { column } => {
                    let (_, def) = ddl::column_definition(
                        &field("column"),
                        &column.name,
                        &column.data_type,
                        column.nullable,
                        column.default_expression.as_deref(),
                    )?;
                    format!("{alter} ADD COLUMN {def}")
                }
                Op::RenameColumn { from, to } => format!(
                    "{alter} RENAME COLUMN {} TO {}",
                    Name::parse(&field("from"), from)?,
                    Name::parse(&field("to"), to)?
                ),
                Op::SetDefault {
                    column_name,
                    default_expression,
                } => format!(
                    "{alter} ALTER COLUMN {} SET DEFAULT {}",
                    Name::parse(&field("column_name"), column_name)?,
                    ddl::default_expression(&field("default_expression"), default_expression)?
                ),
                Op::DropDefault { column_name } => format!(
                    "{alter} ALTER COLUMN {} DROP DEFAULT",
                    Name::parse(&field("column_name"), column_name)?
                ),
                Op::SetNotNull { column_name } => format!(
                    "{alter} ALTER COLUMN {} SET NOT NULL",
                    Name::parse(&field("column_name"), column_name)?
                ),
                Op::DropNotNull { column_name } => format!(
                    "{alter} ALTER COLUMN {} DROP NOT NULL",
                    Name::parse(&field("column_name"), column_name)?
                ),
            };
            statements.push(sql);
        }
        let change = Change {
            statements,
            ..Change::new(
                "management.tables.alter",
                schema.as_str(),
                table.as_str(),
                String::new(),
            )
        };
        let tenant = self
            .apply_change(&cx, &params.x_athena_client, &change)
            .await?;
        let columns = columns_of(&tenant, &schema, &table).await?;
        Ok(responses::PatchManagementTablesByTableName::Ok(Json::new(
            envelope(
                format!("Table {}.{} altered", schema.as_str(), table.as_str()),
                json!({
                    "schema_name": schema.as_str(),
                    "table_name": table.as_str(),
                    "operations": body.operations.len(),
                    "columns": columns,
                    "statement": change.statement(),
                }),
            ),
        )))
    }

    async fn delete_management_tables_by_table_name(
        &self,
        cx: RequestCx,
        params: params::DeleteManagementTablesByTableName,
        body: models::DropTableRequest,
    ) -> ApiResult<responses::DeleteManagementTablesByTableName> {
        let schema = ddl::schema_or_public("schema_name", &body.schema_name)?;
        let table = ddl::writable_table(&schema, "table_name", &params.table_name)?;
        let mode = if body.cascade { "CASCADE" } else { "RESTRICT" };
        let sql = format!("DROP TABLE {schema}.{table} {mode}");
        let change = Change::new(
            "management.tables.drop",
            schema.as_str(),
            table.as_str(),
            sql,
        );
        self.apply_change(&cx, &params.x_athena_client, &change)
            .await?;
        Ok(responses::DeleteManagementTablesByTableName::Ok(Json::new(
            envelope(
                format!("Table {}.{} dropped", schema.as_str(), table.as_str()),
                json!({
                    "schema_name": schema.as_str(),
                    "table_name": table.as_str(),
                    "cascade": body.cascade,
                    "statement": change.statement(),
                }),
            ),
        )))
    }

    async fn delete_management_tables_by_table_name_columns_by_column_name(
        &self,
        cx: RequestCx,
        params: params::DeleteManagementTablesByTableNameColumnsByColumnName,
        body: models::DropColumnRequest,
    ) -> ApiResult<responses::DeleteManagementTablesByTableNameColumnsByColumnName> {
        let schema = ddl::schema_or_public("schema_name", &body.schema_name)?;
        let table = ddl::writable_table(&schema, "table_name", &params.table_name)?;
        let column = Name::parse("column_name", &params.column_name)?;
        let tenant = self.management_tenant(&params.x_athena_client).await?;
        {
            let conn = tenant.pool.get().await.map_err(DomainError::from)?;
            let row = conn
                .query_one(
                    "SELECT c.oid IS NOT NULL,
                            a.attnum IS NOT NULL,
                            EXISTS (SELECT 1 FROM pg_index i
                                     WHERE i.indrelid = c.oid AND i.indisprimary
                                       AND a.attnum = ANY (i.indkey))
                       FROM (SELECT 1) one
                       LEFT JOIN pg_namespace n ON n.nspname = $1
                       LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = $2
                                           AND c.relkind IN ('r', 'p')
                       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3
                                               AND a.attnum > 0 AND NOT a.attisdropped",
                    &[&schema.as_str(), &table.as_str(), &column.as_str()],
                )
                .await
                .map_err(DomainError::from)?;
            let (table_exists, column_exists, primary): (bool, bool, bool) =
                (row.get(0), row.get(1), row.get(2));
            if !table_exists {
                return Err(DomainError::not_found(
                    "table",
                    format!("{}.{}", schema.as_str(), table.as_str()),
                )
                .into());
            }
            if !column_exists {
                return Err(ApiError::not_found(
                    crate::http::Code::NotFound,
                    format!(
                        "column `{}` does not exist in {}.{}",
                        column.as_str(),
                        schema.as_str(),
                        table.as_str()
                    ),
                ));
            }
            if primary {
                return Err(DomainError::invalid_field(
                    "column_name",
                    "is part of the primary key (reserved); it cannot be dropped",
                )
                .into());
            }
        }
        let mode = if body.cascade { "CASCADE" } else { "RESTRICT" };
        let sql = format!("ALTER TABLE {schema}.{table} DROP COLUMN {column} {mode}");
        let change = Change::new(
            "management.columns.drop",
            schema.as_str(),
            table.as_str(),
            sql,
        );
        self.apply_change(&cx, &params.x_athena_client, &change)
            .await?;
        Ok(
            responses::DeleteManagementTablesByTableNameColumnsByColumnName::Ok(Json::new(
                envelope(
                    format!("Column {} dropped", column.as_str()),
                    json!({
                        "schema_name": schema.as_str(),
                        "table_name": table.as_str(),
                        "column_name": column.as_str(),
                        "cascade": body.cascade,
                        "statement": change.statement(),
                    }),
                ),
            )),
        )
    }

    async fn post_management_indexes(
        &self,
        cx: RequestCx,
        params: params::PostManagementIndexes,
        body: models::CreateIndexRequest,
    ) -> ApiResult<responses::PostManagementIndexes> {
        let schema = ddl::schema_or_public("schema_name", &body.schema_name)?;
        let table = ddl::writable_table(&schema, "table_name", &body.table_name)?;
        if body.columns.is_empty() || body.columns.len() > 32 {
            return Err(DomainError::invalid_field("columns", "between 1 and 32 columns").into());
        }
        let columns = body
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| Name::parse(&format!("columns[{i}]"), c))
            .collect::<Result<Vec<_>, _>>()?;
        let method = ddl::index_method(&body.method)?;
        let index = match body.index_name.as_deref().map(str::trim) {
            Some(n) if !n.is_empty() => Name::parse("index_name", n)?,
            _ => Name::parse("index_name", &ddl::default_index_name(&table, &columns))?,
        };
        let list = columns
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let unique = if body.unique { "UNIQUE " } else { "" };
        let sql =
            format!("CREATE {unique}INDEX {index} ON {schema}.{table} USING {method} ({list})");
        let change = Change::new(
            "management.indexes.create",
            schema.as_str(),
            index.as_str(),
            sql,
        );
        self.apply_change(&cx, &params.x_athena_client, &change)
            .await?;
        Ok(responses::PostManagementIndexes::Created(Json::new(
            envelope(
                format!("Index {} created", index.as_str()),
                json!({
                    "schema_name": schema.as_str(),
                    "table_name": table.as_str(),
                    "index_name": index.as_str(),
                    "columns": columns.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                    "unique": body.unique,
                    "method": method,
                    "statement": change.statement(),
                }),
            ),
        )))
    }

    async fn delete_management_indexes_by_index_name(
        &self,
        cx: RequestCx,
        params: params::DeleteManagementIndexesByIndexName,
        body: models::DropIndexRequest,
    ) -> ApiResult<responses::DeleteManagementIndexesByIndexName> {
        let schema = ddl::schema_or_public("schema_name", &body.schema_name)?;
        let index = Name::parse("index_name", &params.index_name)?;
        let sql = format!("DROP INDEX {schema}.{index} RESTRICT");
        let change = Change::new(
            "management.indexes.drop",
            schema.as_str(),
            index.as_str(),
            sql,
        );
        self.apply_change(&cx, &params.x_athena_client, &change)
            .await?;
        Ok(responses::DeleteManagementIndexesByIndexName::Ok(
            Json::new(envelope(
                format!("Index {} dropped", index.as_str()),
                json!({
                    "schema_name": schema.as_str(),
                    "index_name": index.as_str(),
                    "statement": change.statement(),
                }),
            )),
        ))
    }

    async fn post_management_views(
        &self,
        cx: RequestCx,
        params: params::PostManagementViews,
    ) -> ApiResult<responses::PostManagementViews> {
        let body: CreateViewRequest = serde_json::from_slice(cx.body()).map_err(|e| {
            DomainError::Invalid(format!(
                "the body must be {{view_name, query, schema_name?, materialized?, or_replace?}}: {e}"
            ))
        })?;
        let schema = ddl::schema_or_public("schema_name", &body.schema_name)?;
        let view = ddl::writable_table(&schema, "view_name", &body.view_name)?;
        let query = ddl::checked_view_query(&body.query)?;
        let head = match (body.materialized, body.or_replace) {
            (true, true) => {
                return Err(DomainError::invalid_field(
                    "or_replace",
                    "a materialized view cannot be replaced; drop it first",
                )
                .into())
            }
            (true, false) => "CREATE MATERIALIZED VIEW",
            (false, true) => "CREATE OR REPLACE VIEW",
            (false, false) => "CREATE VIEW",
        };
        let sql = format!("{head} {schema}.{view} AS {query}");
        let change = Change {
            view: Some(format!("{schema}.{view}")),
            ..Change::new(
                "management.views.create",
                schema.as_str(),
                view.as_str(),
                sql,
            )
        };
        self.apply_change(&cx, &params.x_athena_client, &change)
            .await?;
        Ok(responses::PostManagementViews::Ok(Json::new(envelope(
            format!("View {}.{} created", schema.as_str(), view.as_str()),
            json!({
                "schema_name": schema.as_str(),
                "view_name": view.as_str(),
                "materialized": body.materialized,
                "statement": change.statement(),
            }),
        ))))
    }

    async fn delete_management_views_by_view_name(
        &self,
        cx: RequestCx,
        params: params::DeleteManagementViewsByViewName,
    ) -> ApiResult<responses::DeleteManagementViewsByViewName> {
        let body: DropViewRequest = if cx.body().iter().all(u8::is_ascii_whitespace) {
            DropViewRequest::default()
        } else {
            serde_json::from_slice(cx.body()).map_err(|e| {
                DomainError::Invalid(format!(
                    "the body must be {{schema_name?, materialized?, cascade?}}: {e}"
                ))
            })?
        };
        let schema = ddl::schema_or_public("schema_name", &body.schema_name)?;
        let view = ddl::writable_table(&schema, "view_name", &params.view_name)?;
        let kind = if body.materialized {
            "MATERIALIZED VIEW"
        } else {
            "VIEW"
        };
        let mode = if body.cascade { "CASCADE" } else { "RESTRICT" };
        let sql = format!("DROP {kind} {schema}.{view} {mode}");
        let change = Change::new("management.views.drop", schema.as_str(), view.as_str(), sql);
        self.apply_change(&cx, &params.x_athena_client, &change)
            .await
            .map_err(|e| match e.status().as_u16() {
                // DROP VIEW of an unknown view: 42P01 is "table" to Postgres.
                404 => ApiError::not_found(
                    crate::http::Code::NotFound,
                    format!("view {}.{} does not exist", schema.as_str(), view.as_str()),
                ),
                _ => e,
            })?;
        Ok(responses::DeleteManagementViewsByViewName::Ok(Json::new(
            envelope(
                format!("View {}.{} dropped", schema.as_str(), view.as_str()),
                json!({
                    "schema_name": schema.as_str(),
                    "view_name": view.as_str(),
                    "materialized": body.materialized,
                    "cascade": body.cascade,
                    "statement": change.statement(),
                }),
            ),
        )))
    }

    async fn get_management_functions(
        &self,
        _cx: RequestCx,
        params: params::GetManagementFunctions,
    ) -> ApiResult<responses::GetManagementFunctions> {
        let schema = params
            .schema
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Name::parse("schema", s))
            .transpose()?;
        let name_like = params
            .name_like
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| match s.len() {
                0..=128 => Ok(s.to_string()),
                _ => Err(DomainError::invalid_field("name_like", "at most 128 bytes")),
            })
            .transpose()?;
        let include_system = params.include_system.unwrap_or(false);
        let include_definition = params.include_definition.unwrap_or(false);
        let tenant = self.management_tenant(&params.x_athena_client).await?;
        let conn = tenant.pool.get().await.map_err(DomainError::from)?;
        let rows = conn
            .query(
                "SELECT n.nspname::text, p.proname::text,
                        pg_get_function_identity_arguments(p.oid),
                        pg_get_function_result(p.oid), l.lanname::text,
                        CASE p.provolatile WHEN 'i' THEN 'immutable'
                                           WHEN 's' THEN 'stable' ELSE 'volatile' END,
                        CASE WHEN $4 THEN pg_get_functiondef(p.oid) END
                   FROM pg_proc p
                   JOIN pg_namespace n ON n.oid = p.pronamespace
                   JOIN pg_language l ON l.oid = p.prolang
                  WHERE p.prokind = 'f'
                    AND ($1::text IS NULL OR n.nspname = $1)
                    AND ($2::text IS NULL OR p.proname ILIKE '%' || $2 || '%')
                    AND ($3 OR (n.nspname NOT IN ('pg_catalog', 'information_schema', 'athena_gateway')
                                AND n.nspname NOT LIKE 'pg\\_%'))
                  ORDER BY 1, 2, 3
                  LIMIT 5000",
                &[
                    &schema.as_ref().map(|s| s.as_str()),
                    &name_like,
                    &include_system,
                    &include_definition,
                ],
            )
            .await
            .map_err(DomainError::from)?;
        let functions: Vec<Value> = rows
            .iter()
            .map(|r| {
                let mut f = Map::new();
                f.insert("schema".into(), json!(r.get::<_, String>(0)));
                f.insert("name".into(), json!(r.get::<_, String>(1)));
                f.insert("arguments".into(), json!(r.get::<_, Option<String>>(2)));
                f.insert("returns".into(), json!(r.get::<_, Option<String>>(3)));
                f.insert("language".into(), json!(r.get::<_, String>(4)));
                f.insert("volatility".into(), json!(r.get::<_, String>(5)));
                if include_definition {
                    f.insert("definition".into(), json!(r.get::<_, Option<String>>(6)));
                }
                Value::Object(f)
            })
            .collect();
        Ok(responses::GetManagementFunctions::Ok(Json::new(envelope(
            format!("{} functions", functions.len()),
            json!({ "functions": functions, "count": functions.len() }),
        ))))
    }

    async fn put_management_functions(
        &self,
        cx: RequestCx,
        params: params::PutManagementFunctions,
        body: models::UpsertFunctionRequest,
    ) -> ApiResult<responses::PutManagementFunctions> {
        let f = ddl::checked_function_ddl(&body.ddl)?;
        let tenant = self.management_tenant(&params.x_athena_client).await?;
        let signature = format!("{}.{}({})", f.schema, f.name, f.arg_types.join(", "));
        let previous = function_definition(&tenant, &signature).await;
        let replaced = previous.is_some();
        let change = Change {
            function: Some(previous),
            ..Change::new(
                "management.functions.upsert",
                f.schema.as_str(),
                f.name.as_str(),
                f.sql.clone(),
            )
        };
        self.apply_change(&cx, &params.x_athena_client, &change)
            .await?;
        Ok(responses::PutManagementFunctions::Ok(Json::new(envelope(
            format!(
                "Function {}.{} {}",
                f.schema.as_str(),
                f.name.as_str(),
                if replaced { "replaced" } else { "created" }
            ),
            json!({
                "schema": f.schema.as_str(),
                "name": f.name.as_str(),
                "replaced": replaced,
                "statement": change.statement(),
            }),
        ))))
    }

    async fn delete_management_functions(
        &self,
        cx: RequestCx,
        params: params::DeleteManagementFunctions,
        body: models::DropFunctionRequest,
    ) -> ApiResult<responses::DeleteManagementFunctions> {
        let schema = ddl::schema_or_public("schema_name", &body.schema_name)?;
        let name = Name::parse("function_name", &body.function_name)?;
        if body.arg_types.len() > 100 {
            return Err(DomainError::invalid_field("arg_types", "at most 100 types").into());
        }
        let checked = body
            .arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                crate::gateway::filter::check_type_name(t)
                    .map_err(|e| DomainError::invalid_field(format!("arg_types[{i}]"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tenant = self.management_tenant(&params.x_athena_client).await?;
        // Each type resolved in pg_type (its canonical spelling is what runs).
        let mut types = Vec::with_capacity(checked.len());
        {
            let conn = tenant.pool.get().await.map_err(DomainError::from)?;
            for (i, t) in checked.iter().enumerate() {
                let resolved: Option<String> = conn
                    .query_one("SELECT to_regtype($1)::text", &[t])
                    .await
                    .ok()
                    .and_then(|r| r.get(0));
                types.push(resolved.ok_or_else(|| {
                    DomainError::invalid_field(format!("arg_types[{i}]"), "is not a known type")
                })?);
            }
        }
        let signature = format!("{schema}.{name}({})", types.join(", "));
        let Some(previous) = function_definition(&tenant, &signature).await else {
            return Err(DomainError::not_found(
                "function",
                format!(
                    "{}.{}({})",
                    schema.as_str(),
                    name.as_str(),
                    types.join(", ")
                ),
            )
            .into());
        };
        let sql = format!("DROP FUNCTION {signature} RESTRICT");
        let change = Change {
            function: Some(Some(previous)),
            ..Change::new(
                "management.functions.drop",
                schema.as_str(),
                name.as_str(),
                sql,
            )
        };
        self.apply_change(&cx, &params.x_athena_client, &change)
            .await?;
        Ok(responses::DeleteManagementFunctions::Ok(Json::new(
            envelope(
                format!("Function {}.{} dropped", schema.as_str(), name.as_str()),
                json!({
                    "schema": schema.as_str(),
                    "name": name.as_str(),
                    "arg_types": types,
                    "statement": change.statement(),
                }),
            ),
        )))
    }

    async fn post_management_extensions_install(
        &self,
        cx: RequestCx,
        params: params::PostManagementExtensionsInstall,
        body: models::PostManagementExtensionsInstallRequest,
    ) -> ApiResult<responses::PostManagementExtensionsInstall> {
        let name = body.extension_name.trim();
        let allowed = &self.config.management.extension_allowlist;
        if !allowed.iter().any(|a| a == name)
            || name.is_empty()
            || name.len() > ddl::MAX_NAME_BYTES
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(DomainError::invalid_field(
                "extension_name",
                format!(
                    "`{}` is not allowlisted (ATHENA_EXTENSION_ALLOWLIST: {})",
                    name.chars().take(64).collect::<String>(),
                    allowed.join(", ")
                ),
            )
            .into());
        }
        let tenant = self.management_tenant(&params.x_athena_client).await?;
        {
            let conn = tenant.pool.get().await.map_err(DomainError::from)?;
            let available: bool = conn
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)",
                    &[&name],
                )
                .await
                .map_err(DomainError::from)?
                .get(0);
            if !available {
                return Err(DomainError::invalid_field(
                    "extension_name",
                    format!("`{name}` is not available on this database server"),
                )
                .into());
            }
        }
        let if_not_exists = if body.if_not_exists {
            "IF NOT EXISTS "
        } else {
            ""
        };
        // Checked above: letters, digits, `_`, `-`; quoted.
        let sql = format!("CREATE EXTENSION {if_not_exists}\"{name}\"");
        let change = Change {
            schema: None,
            ..Change::new("management.extensions.install", "", name, sql)
        };
        let tenant = self
            .apply_change(&cx, &params.x_athena_client, &change)
            .await?;
        let version: Option<String> = {
            let conn = tenant.pool.get().await.map_err(DomainError::from)?;
            conn.query_opt(
                "SELECT extversion FROM pg_extension WHERE extname = $1",
                &[&name],
            )
            .await
            .map_err(DomainError::from)?
            .map(|r| r.get(0))
        };
        Ok(responses::PostManagementExtensionsInstall::Ok(Json::new(
            envelope(
                format!("Extension {name} installed"),
                json!({
                    "extension_name": name,
                    "version": version,
                    "statement": change.statement(),
                }),
            ),
        )))
    }

    // Issue 21 (integrations): hosted providers for the caller's own
    // client (`Access::Bound`: a key bound to `X-Athena-Client` holding
    // `management.provision.write`); the body's `client_name`, when given,
    // must be that client.
    async fn post_management_provision_providers_neon(
        &self,
        _cx: RequestCx,
        params: params::PostManagementProvisionProvidersNeon,
        body: models::PostManagementProvisionProvidersNeonRequest,
    ) -> ApiResult<responses::PostManagementProvisionProvidersNeon> {
        let out = self
            .provision_own(
                crate::integrations::providers::Provider::Neon,
                &params.x_athena_client,
                body.0,
            )
            .await?;
        Ok(responses::PostManagementProvisionProvidersNeon::Ok(
            Json::new(out),
        ))
    }

    async fn post_management_provision_providers_railway(
        &self,
        _cx: RequestCx,
        params: params::PostManagementProvisionProvidersRailway,
        body: models::PostManagementProvisionProvidersRailwayRequest,
    ) -> ApiResult<responses::PostManagementProvisionProvidersRailway> {
        let out = self
            .provision_own(
                crate::integrations::providers::Provider::Railway,
                &params.x_athena_client,
                body.0,
            )
            .await?;
        Ok(responses::PostManagementProvisionProvidersRailway::Ok(
            Json::new(out),
        ))
    }

    async fn post_management_provision_providers_render(
        &self,
        _cx: RequestCx,
        params: params::PostManagementProvisionProvidersRender,
        body: models::PostManagementProvisionProvidersRenderRequest,
    ) -> ApiResult<responses::PostManagementProvisionProvidersRender> {
        let out = self
            .provision_own(
                crate::integrations::providers::Provider::Render,
                &params.x_athena_client,
                body.0,
            )
            .await?;
        Ok(responses::PostManagementProvisionProvidersRender::Ok(
            Json::new(out),
        ))
    }
}

impl Handlers {
    /// A management provider request: `client_name` is the caller's client.
    async fn provision_own(
        &self,
        provider: crate::integrations::providers::Provider,
        client: &str,
        body: Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let body = crate::integrations::providers::Body::new(Value::Object(body))?;
        if body.client_name()?.is_some_and(|n| n != client) {
            return Err(ApiError::invalid_parameter(
                "client_name",
                "must be the X-Athena-Client client (management keys provision their own client)",
            ));
        }
        self.integrations
            .provision(
                provider,
                client,
                body,
                crate::integrations::providers::Caller::Management,
            )
            .await
    }
}
