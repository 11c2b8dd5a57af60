//! Integrations (issue 21): hosted database providers (Neon, Railway,
//! Render), Typesense sync and search, Supabase SSL enforcement and the
//! cluster mirror health check. Every outbound call goes through the one
//! JSON client of [`http`] (outbound policy, timeouts, capped answers, no
//! redirects); base URLs come from request bodies or the environment
//! ([`Settings`]) and are checked against the outbound policy.

pub mod cluster;
pub mod http;
pub mod providers;
pub mod supabase;
pub mod typesense;

use crate::db::tenants::Tenants;
use crate::outbound::OutboundPolicy;
use crate::secrets::Secrets;
use std::sync::Arc;

pub const NEON_API_URL: &str = "https://console.neon.tech/api/v2";
pub const RAILWAY_GRAPHQL_URL: &str = "https://backboard.railway.com/graphql/v2";
pub const RENDER_API_URL: &str = "https://api.render.com/v1";
pub const SUPABASE_API_URL: &str = "https://api.supabase.com";

/// The integrations' environment (README "Integrations").
#[derive(Clone, Default)]
pub struct Settings {
    /// `NEON_API_KEY`, `RAILWAY_API_TOKEN`, `RENDER_API_KEY`: used when a
    /// provider request carries no `api_key`.
    pub neon_api_key: Option<String>,
    pub railway_api_token: Option<String>,
    pub render_api_key: Option<String>,
    /// `ATHENA_NEON_API_URL`, `ATHENA_RAILWAY_GRAPHQL_URL`,
    /// `ATHENA_RENDER_API_URL`: defaults of `api_base_url` / `graphql_url`.
    pub neon_api_url: Option<String>,
    pub railway_graphql_url: Option<String>,
    pub render_api_url: Option<String>,
    /// `ATHENA_SUPABASE_API_URL` (default `https://api.supabase.com`).
    pub supabase_api_url: Option<String>,
    /// `SUPABASE_ACCESS_TOKEN`, `PROJECT_REF`: defaults of the body's
    /// `access_token` / `project_ref`.
    pub supabase_access_token: Option<String>,
    pub supabase_project_ref: Option<String>,
    /// `ATHENA_CLUSTER_MIRRORS`: comma-separated mirror base URLs.
    pub cluster_mirrors: Vec<String>,
    /// `ATHENA_TYPESENSE_SYNC_JOBS`: the configured sync jobs (a JSON array,
    /// or `@/path/to/file.json`), upserted into `typesense_sync_jobs` at
    /// start.
    pub typesense_jobs: Vec<typesense::JobConfig>,
    /// How long a provider call may take inside one request (default
    /// `providers::PROVIDER_DEADLINE`, 25 s; tests shorten it).
    pub provider_deadline: Option<std::time::Duration>,
}

impl std::fmt::Debug for Settings {
    /// Tokens never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("integrations::Settings")
            .field("neon_api_key", &set(&self.neon_api_key))
            .field("railway_api_token", &set(&self.railway_api_token))
            .field("render_api_key", &set(&self.render_api_key))
            .field("neon_api_url", &self.neon_api_url)
            .field("railway_graphql_url", &self.railway_graphql_url)
            .field("render_api_url", &self.render_api_url)
            .field("supabase_api_url", &self.supabase_api_url)
            .field("supabase_access_token", &set(&self.supabase_access_token))
            .field("supabase_project_ref", &self.supabase_project_ref)
            .field("cluster_mirrors", &self.cluster_mirrors)
            .field("typesense_jobs", &self.typesense_jobs.len())
            .finish()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        let typesense_jobs = match var("ATHENA_TYPESENSE_SYNC_JOBS") {
            None => Vec::new(),
            Some(text) => {
                let text = match text.strip_prefix('@') {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| format!("ATHENA_TYPESENSE_SYNC_JOBS: reading {path}: {e}"))?,
                    None => text,
                };
                typesense::JobConfig::parse_list(&text)
                    .map_err(|e| format!("ATHENA_TYPESENSE_SYNC_JOBS: {e}"))?
            }
        };
        Ok(Settings {
            neon_api_key: var("NEON_API_KEY"),
            railway_api_token: var("RAILWAY_API_TOKEN"),
            render_api_key: var("RENDER_API_KEY"),
            neon_api_url: var("ATHENA_NEON_API_URL"),
            railway_graphql_url: var("ATHENA_RAILWAY_GRAPHQL_URL"),
            render_api_url: var("ATHENA_RENDER_API_URL"),
            supabase_api_url: var("ATHENA_SUPABASE_API_URL"),
            supabase_access_token: var("SUPABASE_ACCESS_TOKEN"),
            supabase_project_ref: var("PROJECT_REF"),
            cluster_mirrors: var("ATHENA_CLUSTER_MIRRORS")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            typesense_jobs,
            provider_deadline: None,
        })
    }
}

/// The integrations service (one field of `Handlers`).
pub struct Integrations {
    pub settings: Settings,
    pub http: http::JsonHttp,
    pub tenants: Arc<Tenants>,
    pub secrets: Option<Secrets>,
    pub outbound: Arc<OutboundPolicy>,
    /// Runs of this process (`kill` aborts them).
    pub runs: typesense::LocalRuns,
    /// `/health/cluster`'s last report (single flight, 5 s).
    pub cluster: cluster::ClusterCache,
}

impl Integrations {
    /// Builds the service and upserts the configured Typesense jobs.
    pub async fn start(
        settings: Settings,
        tenants: Arc<Tenants>,
        secrets: Option<Secrets>,
        outbound: Arc<OutboundPolicy>,
    ) -> Result<Integrations, String> {
        let service = Integrations {
            http: http::JsonHttp::new(&outbound),
            settings,
            tenants,
            secrets,
            outbound,
            runs: Default::default(),
            cluster: Default::default(),
        };
        typesense::upsert_configured(&service)
            .await
            .map_err(|e| format!("ATHENA_TYPESENSE_SYNC_JOBS: {e}"))?;
        Ok(service)
    }
}
