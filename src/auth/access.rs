//! Who may call each operation of the contract (and of the SDK overlay,
//! `openapi/sdk-overlay.yaml`): one row per operation,
//! keyed on the generated `Operation` with an exhaustive `match`, so an
//! operation added to `openapi/openapi.yaml` does not compile until it has
//! a row here. `Auth::authorize` reads nothing else to decide; the flags
//! replace the operation-name lists other modules used to keep.
//!
//! What each caller kind gets is pinned, operation by operation, by
//! `openapi/access-matrix.txt`, which `tests/it/access_matrix.rs` replays
//! against a running server.

use super::rights::Right;
use crate::api::operations::Operation;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: no key is looked at, so a probe with a stale key still
    /// works (health, metrics, docs, the registry).
    Open,
    /// The static admin key (`ATHENA_KEY_12`), failing closed.
    Admin,
    /// The data plane: when API keys are enforced for the client, a key
    /// (or the admin key) holding this right, bound to that client or none.
    Right(Right),
    /// `/public/{route_key}/{op}`: let through here; the handler checks the
    /// key against the route's client and the forwarded operation's right.
    Public,
    /// Always keyed, whether or not API keys are enforced for the client:
    /// the admin key, or an API key holding this right (bound to that
    /// client or none). Storage: the gateway's S3 credentials act for the
    /// caller, so no request reaches them anonymously.
    Keyed(Right),
    /// `/management/*` (issue 16): always keyed, by an API key bound to
    /// the `X-Athena-Client` client and holding this right. The static
    /// admin key and unbound keys are refused (403): schema changes are
    /// made by a key that names its client.
    Bound(Right),
}

/// An operation's row: its access and how its credentials may arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub access: Access,
    /// Routes by a direct PostgreSQL URI header (`src/db/direct.rs`); a URI
    /// carrying a username and password replaces the API key. An operation
    /// that declares the headers but does not route by them must not have it.
    pub direct_uri: bool,
    /// May name its client in the body (`db_name`) when `X-Athena-Client`
    /// is absent: authorization checks the right, and the handler binds the
    /// key to that client (`RequestCx::target_client`).
    pub body_client: bool,
    /// The read right lets it through too: the SDK sends plain lookups as
    /// SQL (`src/gateway/sql_text.rs`); the handler checks the raw-SQL
    /// right for anything else.
    pub sql_lookups: bool,
    /// `GET /storage/files/{file_id}/proxy` only: a request carrying a
    /// proxy-url `token` is let through without a key or an actor; the
    /// streaming route (`src/http/server/streams.rs`) then verifies the
    /// token (HMAC over client, file, purpose and expiry; unexpired) before
    /// anything is read, and serves that one file. Without a token the
    /// operation's access applies as to any other.
    pub signed_url: bool,
    /// Chat (issue 20): `Authorization: Bearer` is the end user's token
    /// (`src/auth/end_user.rs`), never read as an API key, so the SDK's
    /// chat profile may send a bearer with or without `X-Athena-Key`.
    pub end_user_bearer: bool,
}

impl Rule {
    const fn new(access: Access) -> Rule {
        Rule {
            access,
            direct_uri: false,
            body_client: false,
            sql_lookups: false,
            signed_url: false,
            end_user_bearer: false,
        }
    }

    const fn with_end_user_bearer(mut self) -> Rule {
        self.end_user_bearer = true;
        self
    }

    const fn with_signed_url(mut self) -> Rule {
        self.signed_url = true;
        self
    }

    const fn with_direct_uri(mut self) -> Rule {
        self.direct_uri = true;
        self
    }

    const fn with_body_client(mut self) -> Rule {
        self.body_client = true;
        self
    }

    const fn with_sql_lookups(mut self) -> Rule {
        self.sql_lookups = true;
        self
    }

    /// The right the operation needs under key enforcement.
    pub fn right(&self) -> Option<Right> {
        match self.access {
            Access::Right(right) | Access::Keyed(right) | Access::Bound(right) => Some(right),
            _ => None,
        }
    }
}

const OPEN: Rule = Rule::new(Access::Open);
const ADMIN: Rule = Rule::new(Access::Admin);
const PUBLIC: Rule = Rule::new(Access::Public);

const fn right(right: Right) -> Rule {
    Rule::new(Access::Right(right))
}

const fn keyed(right: Right) -> Rule {
    Rule::new(Access::Keyed(right))
}

const fn bound(right: Right) -> Rule {
    Rule::new(Access::Bound(right))
}

/// The access table. An upsert also needs the update right: the handler
/// checks it from the planned write (`Write::rights`).
pub fn rule(operation: Operation) -> Rule {
    use Operation as O;
    match operation {
        // Keyless by design: probes, metrics, docs, the registry.
        O::GetRoot
        | O::GetPing
        | O::GetHealth
        | O::GetHealthCluster
        | O::GetRouterRegistry
        | O::GetMetrics
        | O::GetOpenapiYaml
        | O::GetOpenapiWssYaml
        | O::GetWssInfo
        | O::GetDocs => OPEN,
        // Schema discovery (issue 16): the admin key or a key holding
        // `schema.read`, whether or not keys are enforced (a tenant's
        // schema is never anonymous); a registry entry names a tenant.
        O::GetSchema
        | O::GetSchemaTables
        | O::GetSchemaColumns
        | O::GetSchemaConstraints
        | O::GetSchemaMigrations
        | O::GetRegistryByApiRegistryId => keyed(Right::SchemaRead),
        O::PostPublicByRouteKeyByOp => PUBLIC,
        // Billing provider webhooks: no key is looked at; the provider
        // authenticates the call (Stripe-Signature, or Mollie's id read
        // back from its API with the stored key; src/billing/).
        O::PostBillingProvidersByProviderClientsByClientNameConnectionsByConnectionIdWebhook => {
            OPEN
        }
        // The data plane under key enforcement: every alias of a route
        // needs the canonical route's right.
        O::PostGatewayFetch | O::PostGatewayData => right(Right::GatewayFetch).with_direct_uri(),
        O::GetData | O::GetRestV1ByTable => right(Right::GatewayFetch),
        O::PostQueryCount => right(Right::GatewayFetch).with_body_client(),
        O::PutGatewayInsert => right(Right::GatewayInsert).with_direct_uri(),
        O::PostRestV1ByTable => right(Right::GatewayInsert),
        O::PostGatewayUpdate => right(Right::GatewayUpdate).with_direct_uri(),
        O::PatchRestV1ByTable => right(Right::GatewayUpdate),
        O::DeleteGatewayDelete => right(Right::GatewayDelete).with_direct_uri(),
        O::DeleteRestV1ByTable => right(Right::GatewayDelete),
        O::PostGatewayQuery => right(Right::GatewayQuery)
            .with_direct_uri()
            .with_sql_lookups(),
        O::PostGatewaySql | O::PostQuerySql => right(Right::GatewayQuery)
            .with_direct_uri()
            .with_body_client(),
        O::PostGatewaySqlD1Migrate => right(Right::GatewayQuery),
        O::PostGatewayRpc | O::GetRpcByFunctionName | O::PostRpcByFunctionName => {
            right(Right::GatewayRpc)
        }
        O::GetGatewayDeferredByRequestId | O::PostGatewayDeferredByRequestIdRequeue => {
            right(Right::GatewayDeferredRead)
        }
        O::PostPipelines | O::PostPipelinesSimulate | O::GetPipelinesTemplates => {
            right(Right::PipelinesExecute)
        }
        // Management DDL (issue 16): a key bound to the client, always.
        O::GetManagementCapabilities => bound(Right::ManagementRead),
        O::PostManagementTables | O::PatchManagementTablesByTableName => {
            bound(Right::ManagementTablesWrite)
        }
        O::DeleteManagementTablesByTableName => bound(Right::ManagementTablesDrop),
        O::DeleteManagementTablesByTableNameColumnsByColumnName => {
            bound(Right::ManagementColumnsDrop)
        }
        O::PostManagementIndexes => bound(Right::ManagementIndexesWrite),
        O::DeleteManagementIndexesByIndexName => bound(Right::ManagementIndexesDrop),
        O::PostManagementViews => bound(Right::ManagementViewsWrite),
        O::DeleteManagementViewsByViewName => bound(Right::ManagementViewsDrop),
        O::GetManagementFunctions => bound(Right::ManagementFunctionsRead),
        O::PutManagementFunctions => bound(Right::ManagementFunctionsWrite),
        O::DeleteManagementFunctions => bound(Right::ManagementFunctionsDrop),
        O::PostManagementExtensionsInstall => bound(Right::ManagementExtensionsWrite),
        // Local databases (issue 21): a key bound to the client, its own
        // server only.
        O::GetManagementProvisionLocalDatabases => bound(Right::ManagementProvisionWrite),
        O::PostManagementProvisionLocalDatabases => bound(Right::ManagementProvisionWrite),
        // Issue 21: hosted providers re-point the caller's own client, so
        // only a key bound to it (the contract: "client-bound API key").
        O::PostManagementProvisionProvidersNeon
        | O::PostManagementProvisionProvidersRailway
        | O::PostManagementProvisionProvidersRender => bound(Right::ManagementProvisionWrite),
        // Chat (issue 20): under key enforcement a key holding `chat.use`
        // (the data plane's rule; keyless otherwise, as the SDK may send
        // only the end user's credentials), then the end user
        // (`src/auth/end_user.rs`) against room membership.
        O::GetChatRooms
        | O::PostChatRooms
        | O::GetChatRoomsByRoomId
        | O::PatchChatRoomsByRoomId
        | O::PostChatRoomsByRoomIdArchive
        | O::GetChatRoomsByRoomIdMessages
        | O::PostChatRoomsByRoomIdMessages
        | O::DeleteChatRoomsByRoomIdMessagesByMessageId
        | O::PatchChatRoomsByRoomIdMessagesByMessageId
        | O::PostChatRoomsByRoomIdReadCursor
        | O::GetChatRoomsByRoomIdMembers
        | O::PostChatRoomsByRoomIdMembers
        | O::DeleteChatRoomsByRoomIdMembersByUserId
        | O::PostChatMessagesByMessageIdReactions
        | O::DeleteChatMessagesByMessageIdReactionsByEmoji
        | O::PostChatMessagesSearch
        // SDK only (openapi/sdk-overlay.yaml)
        | O::PostChatRoomsDirectResolve => right(Right::ChatUse).with_end_user_bearer(),
        // typesense (issue 21): the admin key, fail-closed like `/admin/*`
        // (they take credentials and URLs; `is_admin_path` in the codegen).
        O::PostTypesenseBackendsTest
        | O::PostTypesenseCollectionsList
        | O::PostTypesenseSyncJobsByJobIdRun
        | O::PostTypesenseSyncJobsByJobIdCancel
        | O::PostTypesenseSyncRunsByRunIdKill
        | O::PostTypesenseSearch => ADMIN,
        // storage_files: a key holding `storage.files` (not the raw S3
        // right, which would bypass the grants), then the end user
        // (`src/auth/end_user.rs`) against each file's grants.
        O::PostStorageFilesUploadUrl
        | O::GetStorageFilesByFileId
        | O::DeleteStorageFilesByFileId
        | O::PostStorageFilesByFileIdConfirmUpload
        | O::GetStorageFilesByFileIdUrl
        | O::PostStorageFilesList
        | O::PostStorageFilesByFileIdVisibility
        | O::PatchStorageFilesByFileIdVisibility
        | O::PostStorageFilesUploadUrls
        | O::PatchStorageFilesByFileId
        | O::GetStorageFilesByFileIdProxyUrl
        | O::PostStorageFilesSearch
        | O::PostStorageFilesDeleteMany
        | O::PostStorageFilesUpdateMany
        | O::PostStorageFilesVisibilityMany
        | O::PutStorageFilesByFileIdUpload
        | O::PostStorageFilesByFileIdCopy
        | O::PostStorageFilesByFileIdRestore
        | O::DeleteStorageFilesByFileIdPurge
        | O::GetStorageFilesByFileIdPublicUrl
        | O::GetStorageFilesByFileIdVersions
        | O::PostStorageFilesByFileIdVersionsByVersionIdRestore
        | O::DeleteStorageFilesByFileIdVersionsByVersionId
        | O::PostStorageFilesByFileIdRetention
        // SDK only (openapi/sdk-overlay.yaml)
        | O::GetStorageFilesByFileIdRetention
        // storage_folders, storage_permissions (with the audit trail),
        // storage_multipart: the same key, the same end-user rule.
        | O::PostStorageFoldersDelete
        | O::PostStorageFoldersMove
        | O::PostStorageFoldersList
        | O::PostStorageFoldersTree
        | O::PostStoragePermissionsList
        | O::PostStoragePermissionsGrant
        | O::PostStoragePermissionsRevoke
        | O::PostStoragePermissionsCheck
        | O::PostStorageAuditList
        | O::PostStorageMultipartCreate
        | O::PostStorageMultipartSignPart
        | O::PostStorageMultipartComplete
        | O::PostStorageMultipartAbort
        | O::PostStorageMultipartListParts => keyed(Right::StorageFiles),
        // The proxy: keyed like the rest, or a proxy-url token instead.
        O::GetStorageFilesByFileIdProxy => keyed(Right::StorageFiles).with_signed_url(),
        // api
        O::PostApiV2SupabaseSslEnforcement => ADMIN,
        // storage_objects, storage_buckets: the S3 layer (`src/storage/`).
        // Public ACLs (`update` with a public `acl`) also need
        // `storage.admin`, checked by the handler.
        O::PostStorageObjects
        | O::PostStorageObjectsHead
        | O::PostStorageObjectsUpdate
        | O::PostStorageObjectsUrl
        | O::PostStorageObjectsDelete
        | O::PostStorageObjectsFolder
        | O::PostStorageObjectsFolderDelete
        | O::PostStorageObjectsFolderRename
        | O::PostStorageObjectsUploadUrl
        | O::PostStorageObjectsExists
        | O::PostStorageObjectsValidate
        | O::PostStorageObjectsPublicUrl
        | O::PostStorageObjectsCopy
        | O::PostStorageObjectsVersions
        | O::PostStorageObjectsVersionsRestore
        | O::PostStorageObjectsVersionsDelete
        | O::PostStorageBucketsList
        | O::PostStorageBucketsCreate
        | O::PostStorageBucketsDelete
        | O::PostStorageBucketsCors
        | O::PostStorageBucketsCorsSet
        | O::PostStorageBucketsCorsDelete
        | O::PostStorageBucketsLifecycle
        | O::PostStorageBucketsLifecycleSet
        | O::PostStorageBucketsLifecycleDelete => keyed(Right::StorageProxy),
        // The SDK's service routes (openapi/sdk-overlay.yaml): a trusted
        // service acting for an organization (the admin key or
        // `storage.service`), through the same file access path.
        O::PostStorageServiceFiles
        | O::PostStorageServiceFilesList
        | O::GetStorageServiceFilesByFileId
        | O::DeleteStorageServiceFilesByFileId
        | O::PostStorageServiceFilesByFileIdMove
        | O::PostStorageServiceFilesByFileIdRestore
        | O::DeleteStorageServiceFilesByFileIdPurge
        | O::PostStorageServiceFilesByFileIdVisibility
        | O::GetStorageServiceFilesByFileIdPermissions
        | O::PostStorageServiceFilesByFileIdPermissionsGrant
        | O::PostStorageServiceFilesByFileIdPermissionsRevoke => keyed(Right::StorageService),
        // The SDK-only storage operations (openapi/sdk-overlay.yaml):
        // reading and using a store needs the proxy right; changing who
        // may reach it (connections, bucket policy, public-access blocks)
        // needs `storage.admin`.
        O::GetStorageProviders
        | O::GetStorageConnections
        | O::GetStorageConnectionsById
        | O::PostStorageBucketsPolicy
        | O::PostStorageBucketsPublicAccess
        | O::PostStorageObjectsPostPolicy => keyed(Right::StorageProxy),
        O::PostStorageConnections
        | O::PostStorageConnectionsTest
        | O::DeleteStorageConnectionsById
        | O::PostStorageBucketsPolicySet
        | O::PostStorageBucketsPolicyDelete
        | O::PostStorageBucketsPublicAccessSet
        | O::PostStorageBucketsPublicAccessDelete => keyed(Right::StorageAdmin),
        // The admin surface (the contract's admin operations).
        // clients
        O::GetClients => ADMIN,
        // schema
        O::GetSchemaClients => ADMIN,
        // debug
        O::GetDebugSchema | O::GetDebugGateway | O::GetDebugS3 | O::GetDebugBilling => ADMIN,
        // registry
        O::GetRegistry => ADMIN,
        // gateway
        O::PostGatewayDeferredFlush => ADMIN,
        // admin_public_routes
        O::GetAdminPublicRoutes
        | O::PostAdminPublicRoutes
        | O::DeleteAdminPublicRoutesByRouteKey
        | O::PatchAdminPublicRoutesByRouteKey => ADMIN,
        // admin_service_routes
        O::GetAdminServiceRoutes
        | O::PostAdminServiceRoutes
        | O::DeleteAdminServiceRoutesByRouteKeyByServiceKey
        | O::PatchAdminServiceRoutesByRouteKeyByServiceKey
        | O::PutAdminTenantHostnamesByTenant => ADMIN,
        // admin_api_keys
        O::GetAdminApiKeys
        | O::PostAdminApiKeys
        | O::DeleteAdminApiKeysById
        | O::PatchAdminApiKeysById
        | O::GetAdminApiKeyRights
        | O::PostAdminApiKeyRights
        | O::GetAdminRightsCatalog
        | O::DeleteAdminApiKeyRightsById
        | O::PatchAdminApiKeyRightsById
        | O::GetAdminApiKeyConfig
        | O::PutAdminApiKeyConfig
        | O::GetAdminApiKeyClients
        | O::PutAdminApiKeyClientsByClientName
        | O::DeleteAdminApiKeyClientsByClientName => ADMIN,
        // admin_webhooks
        O::GetAdminWebhooks
        | O::PostAdminWebhooks
        | O::GetAdminWebhooksEvents
        | O::GetAdminWebhooksById
        | O::DeleteAdminWebhooksById
        | O::PatchAdminWebhooksById
        | O::GetAdminWebhooksByIdDeliveries
        | O::PostAdminWebhooksByIdTest
        | O::GetAdminWebhookSinksHelpersBilling
        | O::GetAdminWebhookSinks
        | O::PostAdminWebhookSinks
        | O::GetAdminWebhookSinksEvents
        | O::GetAdminWebhookSinksById
        | O::DeleteAdminWebhookSinksById
        | O::PatchAdminWebhookSinksById
        | O::GetAdminWebhookSinksByIdDeliveries
        | O::PostAdminWebhookSinksByIdTest => ADMIN,
        // admin_billing
        O::GetAdminBillingGrants
        | O::GetAdminBillingProviders
        | O::GetAdminBillingClientsByClientNameWebhookEvents
        | O::GetAdminBillingClientsByClientNameConnections
        | O::PostAdminBillingClientsByClientNameConnections
        | O::GetAdminBillingClientsByClientNameConnectionsByConnectionId
        | O::PostAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile
        | O::DeleteAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile
        | O::PatchAdminBillingClientsByClientNameConnectionsByConnectionIdReconcile
        | O::PatchAdminBillingClientsByClientNameConnectionsByConnectionId
        | O::DeleteAdminBillingClientsByClientNameConnectionsByConnectionId
        | O::PostAdminBillingClientsByClientNameWebhookSinksProvision => ADMIN,
        // admin_errors
        O::GetAdminErrorsCatalog => ADMIN,
        // admin_clients
        O::GetAdminClients
        | O::PostAdminClients
        | O::DeleteAdminClientsByClientName
        | O::PatchAdminClientsByClientName
        | O::PutAdminClientsByClientNameFreeze => ADMIN,
        // admin_statistics
        O::GetAdminClientsStatistics
        | O::PostAdminClientsStatisticsRefresh
        | O::GetAdminClientsByClientNameStatistics
        | O::GetAdminClientsPressure
        | O::PostAdminClientsPressureBackfill
        | O::GetAdminClientsByClientNamePressure
        | O::GetAdminClientsByClientNameQueryOptimizations
        | O::PostAdminClientsByClientNameQueryOptimizationsRefresh
        | O::GetAdminClientsByClientNameQueryOptimizationsRuns
        | O::PostAdminClientsByClientNameQueryOptimizationsByRecommendationIdApply
        | O::GetAdminClientsByClientNameTableRowEstimates
        | O::GetAdminClientsByClientNameStatisticsDrilldown => ADMIN,
        // admin_client_configs
        O::GetAdminClientConfigs
        | O::GetAdminClientConfigsByClientName
        | O::PutAdminClientConfigsByClientName
        | O::DeleteAdminClientConfigsByClientName
        | O::PostAdminClientConfigsSeedFromConfig => ADMIN,
        // admin_runtime
        O::GetAdminPools
        | O::GetAdminVacuumHealth
        | O::GetAdminVacuumHealthByClientName
        | O::GetAdminAdmissionEvents
        | O::GetAdminDaemons => ADMIN,
        // admin_provision
        O::PostAdminProvision
        | O::GetAdminProvisionClones
        | O::PostAdminProvisionClones
        | O::GetAdminProvisionClonesByJobId
        | O::PostAdminProvisionClonesByJobIdCancel
        | O::PostAdminProvisionClonesByJobIdRetry
        | O::GetAdminProvisionStatus
        | O::GetAdminProvisionDependencies
        | O::PostAdminProvisionDependenciesInstall
        | O::GetAdminProvisionInstances
        | O::PostAdminProvisionInstances
        | O::GetAdminProvisionInstancesByContainerName
        | O::DeleteAdminProvisionInstancesByContainerName
        | O::PostAdminProvisionInstancesByContainerNameStart
        | O::PostAdminProvisionInstancesByContainerNameStop
        | O::PostAdminProvisionInstancesByContainerNameBindings
        | O::PostAdminProvisionProvidersNeon
        | O::PostAdminProvisionProvidersRailway
        | O::PostAdminProvisionProvidersRender
        | O::PostAdminProvisionLocalPipeline
        | O::GetAdminProvisionLocalDatabases
        | O::PostAdminProvisionLocalDatabases => ADMIN,
        // admin_backups
        O::GetAdminBackups
        | O::PostAdminBackups
        | O::PostAdminBackupsJobsByIdCancel
        | O::GetAdminBackupsJobsByJobIdS3Open
        | O::PostAdminBackupsByKeyRestore
        | O::GetAdminBackupsByKeyDownload
        | O::DeleteAdminBackupsByKey
        | O::GetAdminBackupsConfig
        | O::GetAdminBackupsJobs
        | O::GetAdminBackupsJobsById
        | O::DeleteAdminBackupsJobsById
        | O::GetAdminBackupsSchedules
        | O::PostAdminBackupsSchedules
        | O::DeleteAdminBackupsSchedulesById
        | O::PatchAdminBackupsSchedulesById => ADMIN,
        // storage_catalogs
        O::GetStorageCredentials
        | O::GetStorageCatalogs
        | O::PostStorageCatalogs
        | O::DeleteStorageCatalogsById
        | O::PatchStorageCatalogsById => ADMIN,
        // admin_pipeline_templates
        O::GetAdminPipelineTemplates
        | O::GetAdminPipelineTemplatesByTemplateName
        | O::PutAdminPipelineTemplatesByTemplateName
        | O::DeleteAdminPipelineTemplatesByTemplateName => ADMIN,
        // admin_ip_lists
        O::GetAdminApiKeysByIdIpPolicy
        | O::PostAdminApiKeysByIdIpWhitelist
        | O::DeleteAdminApiKeysByIdIpWhitelist
        | O::PostAdminApiKeysByIdIpBlacklist
        | O::DeleteAdminApiKeysByIdIpBlacklist
        | O::GetAdminApiKeysByIdIpSeen
        | O::PostAdminApiKeysByIdVirginPromote
        | O::PostAdminApiKeysByIdVirginReset
        | O::GetAdminIpGlobalWhitelist
        | O::PostAdminIpGlobalWhitelist
        | O::DeleteAdminIpGlobalWhitelist
        | O::GetAdminIpGlobalBlacklist
        | O::PostAdminIpGlobalBlacklist
        | O::DeleteAdminIpGlobalBlacklist => ADMIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::operations::OPERATIONS;

    /// The admin surface is the contract's (`OperationMeta::admin`): the
    /// table may not open an operation the contract marks admin, nor close
    /// one it does not.
    #[test]
    fn admin_rows_are_the_contracts_admin_operations() {
        for meta in OPERATIONS.iter() {
            let access = rule(meta.operation).access;
            // The S3 layer's contract-admin routes the SDK calls with a
            // client key: the admin key still opens them (openapi/CHANGES.md).
            if meta.admin && matches!(access, Access::Keyed(Right::StorageProxy)) {
                continue;
            }
            let admin = access == Access::Admin;
            assert_eq!(
                admin,
                meta.admin,
                "{} ({} {}): access {:?}, contract admin {}",
                meta.name,
                meta.method,
                meta.path,
                rule(meta.operation).access,
                meta.admin
            );
        }
    }

    #[test]
    fn every_data_plane_operation_needs_a_right() {
        let data_plane = [
            "/gateway/",
            "/rest/",
            "/rpc/",
            "/query/",
            "/data",
            "/management/",
            "/pipelines",
        ];
        for meta in OPERATIONS.iter() {
            let rule = rule(meta.operation);
            if data_plane.iter().any(|p| meta.path.starts_with(p)) && !meta.admin {
                assert!(
                    rule.right().is_some(),
                    "{} ({} {}) has no right",
                    meta.name,
                    meta.method,
                    meta.path
                );
            }
            if rule.direct_uri || rule.body_client || rule.sql_lookups {
                assert!(
                    rule.right().is_some(),
                    "{}: flags without a right",
                    meta.name
                );
            }
        }
    }

    #[test]
    fn no_operation_needs_every_right() {
        for meta in OPERATIONS.iter() {
            assert_ne!(
                rule(meta.operation).right(),
                Some(Right::All),
                "{}",
                meta.name
            );
        }
    }
}
