//! The storage service: what the `storage_*` handlers call. Catalogs live
//! in each tenant's database (created on first use by the tenant migration
//! set, `src/db/migrate.rs`); their secrets are sealed with
//! `ATHENA_SECRET_KEY` before they are stored and never returned.

use super::catalog::{self, Catalog, CredentialItem, SealedCredential, Settings};
use super::endpoint;
use super::s3::Store;
use crate::db::tenants::{Tenant, Tenants};
use crate::domain::DomainError;
use crate::outbound::OutboundPolicy;
use crate::secrets::Secrets;
use crate::ttl::TtlCache;
use serde_json::{Map, Value};
use std::sync::Arc;
use uuid::Uuid;

pub struct Storage {
    pub tenants: Arc<Tenants>,
    /// The S3 wire (every connection through `outbound`).
    pub s3: super::s3::S3,
    pub secrets: Option<Secrets>,
    pub outbound: Arc<OutboundPolicy>,
    /// `ATHENA_STORAGE_ALLOW_HTTP`.
    pub allow_http: bool,
    /// Resolved catalog stores (`catalog_store`), by tenant database,
    /// client and catalog id: presigning and HEAD are the hot calls, and
    /// each would otherwise read and open the credential. A change on this
    /// replica drops the entry at once; another replica's change is seen
    /// within `STORE_TTL`.
    pub stores: StoreCache,
    /// The gateway's Redis: the managed files' presigned-URL cache
    /// (`src/storage/files/url_cache.rs`); none → no cache.
    pub redis: Option<deadpool_redis::Pool>,
}

/// Resolved catalog stores by (tenant database URI, client, catalog id):
/// the store and the catalog's bucket.
pub type StoreCache = TtlCache<(String, String, Uuid), Arc<(Store, Option<String>)>>;

/// How long a resolved catalog store is reused.
pub const STORE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// The store cache of a new `Storage`.
pub fn store_cache() -> StoreCache {
    TtlCache::new(STORE_TTL, 4096)
}

/// `POST /storage/catalogs`.
pub struct NewCatalog {
    pub name: String,
    pub description: Option<String>,
    pub endpoint: String,
    pub region: String,
    pub bucket: Option<String>,
    pub provider: Option<String>,
    pub access_key_id: String,
    pub secret_key: String,
    pub session_token: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

/// `PATCH /storage/catalogs/{id}`: `None` leaves a field as it is; both key
/// fields together rotate the credential.
#[derive(Default)]
pub struct CatalogPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub bucket: Option<String>,
    pub provider: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_key: Option<String>,
    pub session_token: Option<String>,
    pub is_active: Option<bool>,
    pub metadata: Option<Map<String, Value>>,
}

const DEFAULT_PROVIDER: &str = "custom_s3";

/// Where a request's objects live: a catalog of the client (`s3_id`, the
/// SDK's `s3Id`) or inline credentials (the contract's
/// `StorageS3Connection`).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Connection {
    #[serde(alias = "s3Id")]
    pub s3_id: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_key: Option<String>,
    pub session_token: Option<String>,
}

impl Storage {
    /// The tenant of `client`, its storage tables migrated.
    pub(crate) async fn tenant(&self, client: &str) -> Result<Arc<Tenant>, DomainError> {
        let tenant = self.tenants.resolve(client.trim()).await?;
        crate::db::migrate::tenant(&tenant).await.map_err(|e| {
            tracing::warn!(client = %tenant.name, error = ?e, "tenant storage catalog unavailable");
            DomainError::ServiceUnavailable(format!(
                "the S3 catalog of client `{}` is unavailable (its database could not be prepared)",
                tenant.name
            ))
        })?;
        Ok(tenant)
    }

    fn secrets(&self) -> Result<&Secrets, DomainError> {
        self.secrets.as_ref().ok_or_else(|| {
            DomainError::ServiceUnavailable(
                "S3 credentials cannot be stored: ATHENA_SECRET_KEY is not set".into(),
            )
        })
    }

    /// Checks and seals a credential for its own row: the associated data
    /// names the client, the catalog and the credential, so a ciphertext
    /// moved to another row, catalog or tenant database does not open.
    fn seal(
        &self,
        client: &str,
        catalog_id: Uuid,
        access_key_id: &str,
        secret_key: &str,
        session_token: Option<&str>,
    ) -> Result<SealedCredential, DomainError> {
        endpoint::check_key("access_key_id", access_key_id, 256)?;
        endpoint::check_key("secret_key", secret_key, 1024)?;
        if let Some(t) = session_token {
            endpoint::check_key("session_token", t, 4096)?;
        }
        let secrets = self.secrets()?;
        let id = Uuid::new_v4();
        Ok(SealedCredential {
            id,
            access_key_id: access_key_id.to_string(),
            secret: secrets.seal(
                &catalog::credential_context(client, catalog_id, id, "secret"),
                secret_key,
            )?,
            session_token: session_token
                .map(|t| {
                    let context =
                        catalog::credential_context(client, catalog_id, id, "session_token");
                    secrets.seal(&context, t)
                })
                .transpose()?,
        })
    }

    /// Checks a catalog's settings as given and returns them normalized
    /// (the endpoint as `scheme://host[:port]`, an empty bucket as none).
    async fn checked(&self, s: Settings) -> Result<Settings, DomainError> {
        let s = Settings {
            name: s.name.trim().to_string(),
            ..s
        };
        endpoint::check_text("name", &s.name, 1, 128)?;
        endpoint::check_text("description", &s.description, 0, 1024)?;
        endpoint::check_region(&s.region)?;
        endpoint::check_provider(&s.provider)?;
        let bucket = s.bucket.filter(|b| !b.is_empty());
        if let Some(b) = &bucket {
            endpoint::check_bucket(b)?;
        }
        let endpoint = endpoint::parse(&s.endpoint, self.allow_http, &self.outbound).await?;
        Ok(Settings {
            endpoint: endpoint.url(),
            bucket,
            ..s
        })
    }

    pub async fn catalogs(&self, client: &str) -> Result<Vec<Catalog>, DomainError> {
        catalog::list(&*self.tenant(client).await?).await
    }

    pub async fn create_catalog(
        &self,
        client: &str,
        n: NewCatalog,
    ) -> Result<Catalog, DomainError> {
        let settings = self
            .checked(Settings {
                name: n.name,
                description: n.description.unwrap_or_default(),
                endpoint: n.endpoint,
                region: n.region,
                bucket: n.bucket,
                provider: n.provider.unwrap_or_else(|| DEFAULT_PROVIDER.into()),
                metadata: Value::Object(n.metadata.unwrap_or_default()),
                is_active: true,
            })
            .await?;
        let tenant = self.tenant(client).await?;
        let id = Uuid::new_v4();
        let credential = self.seal(
            &tenant.name,
            id,
            &n.access_key_id,
            &n.secret_key,
            n.session_token.as_deref(),
        )?;
        catalog::create(&tenant, id, &settings, &credential).await
    }

    /// Applies a patch to the catalog as it is now: a PATCH racing
    /// another one is re-applied on the newer row (optimistic, on
    /// `updated_at`), never lost.
    pub async fn update_catalog(
        &self,
        client: &str,
        id: Uuid,
        p: CatalogPatch,
    ) -> Result<Catalog, DomainError> {
        let rotate = match (&p.access_key_id, &p.secret_key) {
            (Some(key), Some(secret)) => Some((key.as_str(), secret.as_str())),
            (None, None) if p.session_token.is_none() => None,
            _ => {
                return Err(DomainError::Invalid(
                    "rotating a credential needs both access_key_id and secret_key".into(),
                ))
            }
        };
        let tenant = self.tenant(client).await?;
        let credential = rotate
            .map(|(key, secret)| {
                self.seal(&tenant.name, id, key, secret, p.session_token.as_deref())
            })
            .transpose()?;
        for _ in 0..3 {
            let current = catalog::get(&tenant, id)
                .await?
                .ok_or_else(|| not_found(id))?;
            let seen = current.updated_at;
            let settings = self
                .checked(Settings {
                    name: p.name.clone().unwrap_or(current.name),
                    description: p.description.clone().unwrap_or(current.description),
                    endpoint: p.endpoint.clone().unwrap_or(current.endpoint),
                    region: p.region.clone().unwrap_or(current.region),
                    bucket: p.bucket.clone().or(current.bucket),
                    provider: p.provider.clone().unwrap_or(current.provider),
                    metadata: p
                        .metadata
                        .clone()
                        .map(Value::Object)
                        .unwrap_or(current.metadata),
                    is_active: p.is_active.unwrap_or(current.is_active),
                })
                .await?;
            let updated = catalog::update(&tenant, id, seen, &settings, credential.as_ref()).await;
            self.forget_store(&tenant, id);
            match updated? {
                catalog::Updated::Done(c) => return Ok(*c),
                catalog::Updated::Missing => return Err(not_found(id)),
                catalog::Updated::Changed => continue,
            }
        }
        Err(DomainError::ServiceUnavailable(
            "the S3 catalog kept changing while it was updated; retry".into(),
        ))
    }

    pub async fn delete_catalog(&self, client: &str, id: Uuid) -> Result<(), DomainError> {
        let tenant = self.tenant(client).await?;
        let deleted = catalog::delete(&tenant, id).await;
        self.forget_store(&tenant, id);
        match deleted? {
            true => Ok(()),
            false => Err(not_found(id)),
        }
    }

    /// Drops a catalog's resolved store (after a change to its row).
    fn forget_store(&self, tenant: &Tenant, id: Uuid) {
        self.stores
            .remove(&(tenant.uri.clone(), tenant.name.clone(), id));
    }

    /// The store and bucket a request names: its catalog (`s3_id`, in the
    /// tenant of `client`) or its inline credentials; the bucket given, else
    /// the catalog's.
    pub async fn locate(
        &self,
        client: Option<&str>,
        c: &Connection,
        bucket: Option<&str>,
    ) -> Result<(Store, String), DomainError> {
        let (store, default_bucket) = self.store_of(client, c).await?;
        let bucket = match bucket.map(str::trim).filter(|b| !b.is_empty()) {
            Some(b) => b.to_string(),
            None => default_bucket.ok_or_else(|| {
                DomainError::invalid_field("bucket", "required (the catalog names no bucket)")
            })?,
        };
        endpoint::check_bucket(&bucket)?;
        Ok((store, bucket))
    }

    /// The store a request names, with its catalog's bucket if any.
    pub async fn store_of(
        &self,
        client: Option<&str>,
        c: &Connection,
    ) -> Result<(Store, Option<String>), DomainError> {
        match c.s3_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(id) => {
                let id = Uuid::parse_str(id)
                    .map_err(|_| DomainError::invalid_field("s3_id", "not a UUID"))?;
                let client = client.ok_or(DomainError::MissingClient)?;
                self.catalog_store(client, id).await
            }
            None => Ok((self.inline_store(c).await?, None)),
        }
    }

    /// A store from inline credentials, checked like a catalog's.
    pub async fn inline_store(&self, c: &Connection) -> Result<Store, DomainError> {
        let need = |field: &'static str, v: &Option<String>| {
            v.clone().filter(|v| !v.is_empty()).ok_or_else(|| {
                DomainError::invalid_field(field, "required without `s3_id` (or give `s3_id`)")
            })
        };
        let endpoint_text = need("endpoint", &c.endpoint)?;
        let region = need("region", &c.region)?;
        let access_key = need("access_key_id", &c.access_key_id)?;
        let secret_key = need("secret_key", &c.secret_key)?;
        endpoint::check_region(&region)?;
        endpoint::check_key("access_key_id", &access_key, 256)?;
        endpoint::check_key("secret_key", &secret_key, 1024)?;
        if let Some(t) = &c.session_token {
            endpoint::check_key("session_token", t, 4096)?;
        }
        Ok(Store {
            endpoint: endpoint::parse(&endpoint_text, self.allow_http, &self.outbound).await?,
            region,
            access_key,
            secret_key,
            session_token: c.session_token.clone(),
        })
    }

    /// The store of a live, active catalog, its secret opened.
    pub async fn catalog_store(
        &self,
        client: &str,
        id: Uuid,
    ) -> Result<(Store, Option<String>), DomainError> {
        let tenant = self.tenant(client).await?;
        let key = (tenant.uri.clone(), tenant.name.clone(), id);
        let resolved = self
            .stores
            .get_or_load(key, async {
                self.load_catalog_store(&tenant, id).await.map(Arc::new)
            })
            .await?;
        Ok((resolved.0.clone(), resolved.1.clone()))
    }

    async fn load_catalog_store(
        &self,
        tenant: &Tenant,
        id: Uuid,
    ) -> Result<(Store, Option<String>), DomainError> {
        let found = catalog::active_credential(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let secrets = self.secrets()?;
        let open = |field: &str, sealed: &[u8]| {
            secrets.open(
                &catalog::credential_context(&tenant.name, id, found.credential_id, field),
                sealed,
            )
        };
        let secret_key = open("secret", &found.secret)?;
        let session_token = found
            .session_token
            .as_deref()
            .map(|t| open("session_token", t))
            .transpose()?;
        // Stored endpoints were checked when written; the row is the
        // tenant's own data (raw SQL can change it), so check it again.
        let endpoint =
            endpoint::parse(&found.catalog.endpoint, self.allow_http, &self.outbound).await?;
        Ok((
            Store {
                endpoint,
                region: found.catalog.region.clone(),
                access_key: found.access_key_id,
                secret_key,
                session_token,
            },
            found.catalog.bucket,
        ))
    }

    pub async fn credentials(&self, client: &str) -> Result<Vec<CredentialItem>, DomainError> {
        catalog::credentials(&*self.tenant(client).await?).await
    }

    /// One live catalog of `client` (unknown, deleted or another
    /// client's: 404).
    pub async fn catalog(&self, client: &str, id: Uuid) -> Result<Catalog, DomainError> {
        catalog::get(&*self.tenant(client).await?, id)
            .await?
            .ok_or_else(|| not_found(id))
    }
}

/// Unknown, deleted, or another tenant's: the same 404.
fn not_found(id: Uuid) -> DomainError {
    DomainError::not_found("S3 catalog", id.to_string())
}
