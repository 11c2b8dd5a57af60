//! Hosted database providers (issue 21): `POST /admin/provision/providers/
//! {neon,railway,render}` and their `/management` twins. With
//! `connection_uri` the URI is used as given; otherwise the provider's API
//! is called (`api_key` or `NEON_API_KEY` / `RAILWAY_API_TOKEN` /
//! `RENDER_API_KEY`) at `api_base_url` / `graphql_url` (or the environment
//! default) to find or create the database and read its URI. Then the URI
//! is validated (security.md §1), the tenant migration set applied and the
//! client registered.
//!
//! Provider answers: 4xx → 400 with the provider's message (one line, never
//! the body); unreachable or 5xx → 503. A base URL the outbound policy
//! refuses → 400 naming the field.

use super::http::{upstream_message, Answer, Call, Failure};
use super::Integrations;
use crate::catalog::clients;
use crate::config::redact;
use crate::http::{ApiError, Code};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// Who asks. The operator (admin key) may use the environment's provider
/// tokens, but only toward the environment's (or default) API base URL; a
/// client-bound management key never uses them: it brings its own
/// `api_key` (then a body base URL is allowed: the tenant's token to the
/// tenant's host, still through the outbound policy), and it only updates
/// the URI of its own live client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Management,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Neon,
    Railway,
    Render,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Neon => "neon",
            Provider::Railway => "railway",
            Provider::Render => "render",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Provider::Neon => "Neon",
            Provider::Railway => "Railway",
            Provider::Render => "Render",
        }
    }
}

/// A provider request body (the contract's `*ProviderProvisionRequest`,
/// or the management variant's free-form object), read field by field.
pub struct Body(Map<String, Value>);

impl Body {
    pub fn new(value: Value) -> Result<Body, ApiError> {
        match value {
            Value::Object(map) => Ok(Body(map)),
            _ => Err(ApiError::bad_request("the body must be a JSON object")),
        }
    }

    /// A string field: absent, null and blank are `None`; another type is a 400.
    fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) if s.len() <= 4096 => Ok(Some(s.trim().to_string())),
            Some(Value::String(_)) => Err(ApiError::invalid_parameter(name, "is too long")),
            Some(_) => Err(ApiError::invalid_parameter(name, "must be a string")),
        }
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ApiError::invalid_parameter(name, "must be a boolean")),
        }
    }

    fn object(&self, name: &str) -> Result<Map<String, Value>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err(ApiError::invalid_parameter(name, "must be an object")),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .filter(|n| (1..=65536).contains(n))
                .map(Some)
                .ok_or_else(|| ApiError::invalid_parameter(name, "must be a positive integer")),
        }
    }

    pub fn client_name(&self) -> Result<Option<String>, ApiError> {
        self.text("client_name")
    }
}

/// A provider id in a path: letters, digits, `-`, `_` (1-128).
fn path_id(name: &str, value: &str) -> Result<String, ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(value.to_string())
    } else {
        Err(ApiError::invalid_parameter(
            name,
            "must be an id (letters, digits, `-`, `_`)",
        ))
    }
}

fn unavailable(provider: Provider, why: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(
        Code::ServiceUnavailable,
        format!("the {} API is unavailable: {why}", provider.title()),
    )
}

fn rejected(provider: Provider, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        Code::BadRequest,
        "Provider request rejected",
        format!(
            "the {} API refused the request: {message}",
            provider.title()
        ),
    )
}

fn failure(provider: Provider, field: &str, f: Failure) -> ApiError {
    match f {
        Failure::Refused(why) | Failure::BadUrl(why) => ApiError::invalid_parameter(field, why),
        Failure::Unreachable(why) => unavailable(provider, why),
        Failure::BadCredential(why) => ApiError::invalid_parameter("api_key", why),
    }
}

/// A provider API client bound to one base URL and token.
struct Api<'a> {
    service: &'a Integrations,
    provider: Provider,
    base: String,
    field: &'static str,
    token: String,
}

impl Api<'_> {
    /// Sends and classifies: 2xx → the JSON; 404 → `Ok(None)` when
    /// `missing_ok`; other 4xx → 400; 5xx / unreachable → 503.
    async fn exchange(&self, call: Call<'_>, missing_ok: bool) -> Result<Option<Value>, ApiError> {
        let answer: Answer = self
            .service
            .http
            .send(call.bearer(&self.token))
            .await
            .map_err(|f| failure(self.provider, self.field, f))?;
        match answer.status {
            200..=299 => Ok(Some(answer.json)),
            404 if missing_ok => Ok(None),
            400..=499 => Err(rejected(self.provider, upstream_message(&answer))),
            _ => Err(unavailable(
                self.provider,
                format!("HTTP {}: {}", answer.status, upstream_message(&answer)),
            )),
        }
    }

    async fn get(&self, path: &str, missing_ok: bool) -> Result<Option<Value>, ApiError> {
        self.exchange(Call::get(format!("{}{path}", self.base)), missing_ok)
            .await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let call = Call::new(::http::Method::POST, format!("{}{path}", self.base)).json(body);
        Ok(self.exchange(call, false).await?.unwrap_or(Value::Null))
    }

    /// One GraphQL operation (Railway): `errors` in a 200 answer are the
    /// provider refusing the request (400).
    async fn graphql(&self, query: &str, variables: Value) -> Result<Value, ApiError> {
        let answer = self
            .post("", &json!({"query": query, "variables": variables}))
            .await?;
        if let Some(errors) = answer.get("errors").and_then(Value::as_array) {
            if !errors.is_empty() {
                let message = errors[0]
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("GraphQL error");
                return Err(rejected(
                    self.provider,
                    message.chars().take(300).collect::<String>(),
                ));
            }
        }
        Ok(answer.get("data").cloned().unwrap_or(Value::Null))
    }
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn missing(provider: Provider, what: &str) -> ApiError {
    rejected(provider, format!("the answer has no {what}"))
}

/// What a provider call produced (non-secret details are returned).
struct Found {
    uri: String,
    details: Map<String, Value>,
}

impl Integrations {
    fn api(
        &self,
        provider: Provider,
        body: &Body,
        field: &'static str,
        caller: Caller,
    ) -> Result<Api<'_>, ApiError> {
        let s = &self.settings;
        let (env_token, env_url, default_url, token_var) = match provider {
            Provider::Neon => (
                &s.neon_api_key,
                &s.neon_api_url,
                super::NEON_API_URL,
                "NEON_API_KEY",
            ),
            Provider::Railway => (
                &s.railway_api_token,
                &s.railway_graphql_url,
                super::RAILWAY_GRAPHQL_URL,
                "RAILWAY_API_TOKEN",
            ),
            Provider::Render => (
                &s.render_api_key,
                &s.render_api_url,
                super::RENDER_API_URL,
                "RENDER_API_KEY",
            ),
        };
        let body_url = body.text(field)?;
        let token = match (body.text("api_key")?, caller) {
            (Some(token), _) => token,
            (None, Caller::Management) => {
                return Err(ApiError::bad_request(
                    "api_key is required unless connection_uri is given (management requests \
                     never use the operator's provider token)",
                ))
            }
            (None, Caller::Admin) if body_url.is_some() => {
                return Err(ApiError::bad_request(format!(
                    "api_key is required when {field} is given ({token_var} is only sent to the \
                     configured {} API)",
                    provider.title()
                )))
            }
            (None, Caller::Admin) => env_token.clone().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "api_key is required (or set {token_var}), unless connection_uri is given"
                ))
            })?,
        };
        let raw = body_url
            .or_else(|| env_url.clone())
            .unwrap_or_else(|| default_url.to_string());
        let base = self
            .http
            .check_base_url(&raw)
            .map_err(|f| failure(provider, field, f))?;
        Ok(Api {
            service: self,
            provider,
            base,
            field,
            token,
        })
    }

    /// Runs one provider request: the URI (given or from the provider),
    /// then validation, migrations and registration. `client_name` is the
    /// body's (admin) or the caller's client (management: it must be a live,
    /// active client, else 403; only its URI and description change).
    pub async fn provision(
        &self,
        provider: Provider,
        client_name: &str,
        body: Body,
        caller: Caller,
    ) -> Result<Value, ApiError> {
        clients::check_name(client_name).map_err(ApiError::from)?;
        if caller == Caller::Management {
            live_client(self, client_name).await?;
        }
        let provision_schema = body.flag("provision_schema", true)?;
        let register_runtime = body.flag("register_runtime", true)?;
        let register_catalog = body.flag("register_catalog", true)?;
        let description = body.text("description")?;
        let found = match body.text("connection_uri")? {
            Some(uri) => Found {
                uri,
                details: Map::new(),
            },
            None => {
                let call = async {
                    match provider {
                        Provider::Neon => self.neon(&body, caller).await,
                        Provider::Railway => self.railway(&body, caller).await,
                        Provider::Render => self.render(&body, caller).await,
                    }
                };
                let deadline = self.settings.provider_deadline.unwrap_or(PROVIDER_DEADLINE);
                match tokio::time::timeout(deadline, call).await {
                    Ok(found) => found?,
                    Err(_) => {
                        let mut e = ApiError::unavailable(
                            Code::ServiceUnavailable,
                            format!(
                                "the {} resource is still being created (the provider did not \
                                 finish within {} s); send the same request again: it finds the \
                                 resource by name and finishes registering",
                                provider.title(),
                                deadline.as_secs()
                            ),
                        );
                        e.retry_after = Some(10);
                        return Err(e);
                    }
                }
            }
        };
        let done = provision_and_register(
            self,
            client_name,
            &found.uri,
            description,
            Steps {
                provision_schema,
                register_runtime,
                register_catalog,
            },
            caller,
        )
        .await?;
        Ok(json!({
            "status": "success",
            "message": format!("{} database provisioned for {client_name}", provider.title()),
            "client_name": client_name,
            "provider": provider.as_str(),
            "provisioned": done.provisioned,
            "registered_runtime": done.registered_runtime,
            "registered_catalog": done.registered_catalog,
            "connection": done.redacted,
            "details": found.details,
        }))
    }

    /// Neon REST: project (or create), branch (default), endpoint
    /// (read-write), role, database (or create), then
    /// `GET /projects/{p}/connection_uri` for the URI.
    async fn neon(&self, body: &Body, caller: Caller) -> Result<Found, ApiError> {
        let p = Provider::Neon;
        let api = self.api(p, body, "api_base_url", caller)?;
        let project_id = match body.text("project_id")? {
            Some(id) => {
                let id = path_id("project_id", &id)?;
                match api.get(&format!("/projects/{id}"), true).await? {
                    Some(_) => id,
                    None if body.flag("create_project_if_missing", false)? => {
                        self.neon_create_project(&api, body).await?
                    }
                    None => return Err(rejected(p, format!("project `{id}` does not exist"))),
                }
            }
            None if body.flag("create_project_if_missing", false)? => {
                self.neon_create_project(&api, body).await?
            }
            None => {
                return Err(ApiError::bad_request(
                    "project_id is required (or create_project_if_missing: true)",
                ))
            }
        };
        let project = format!("/projects/{project_id}");
        let branch_id = match body.text("branch_id")? {
            Some(id) => path_id("branch_id", &id)?,
            None => {
                let branches = api.get(&format!("{project}/branches"), false).await?;
                let list = branches
                    .as_ref()
                    .and_then(|b| b.get("branches"))
                    .and_then(Value::as_array)
                    .ok_or_else(|| missing(p, "branches"))?;
                list.iter()
                    .find(|b| b.get("default").and_then(Value::as_bool) == Some(true))
                    .or_else(|| list.first())
                    .and_then(|b| str_at(b, "/id"))
                    .map(str::to_string)
                    .ok_or_else(|| missing(p, "branch"))?
            }
        };
        let branch = format!("{project}/branches/{branch_id}");
        let endpoint_id = match body.text("endpoint_id")? {
            Some(id) => path_id("endpoint_id", &id)?,
            None => {
                let endpoints = api.get(&format!("{branch}/endpoints"), false).await?;
                let list = endpoints
                    .as_ref()
                    .and_then(|e| e.get("endpoints"))
                    .and_then(Value::as_array)
                    .ok_or_else(|| missing(p, "endpoints"))?;
                list.iter()
                    .find(|e| str_at(e, "/type") == Some("read_write"))
                    .or_else(|| list.first())
                    .and_then(|e| str_at(e, "/id"))
                    .map(str::to_string)
                    .ok_or_else(|| missing(p, "endpoint"))?
            }
        };
        let role_name = match body.text("role_name")? {
            Some(r) => r,
            None => {
                let roles = api.get(&format!("{branch}/roles"), false).await?;
                roles
                    .as_ref()
                    .and_then(|r| r.get("roles"))
                    .and_then(Value::as_array)
                    .and_then(|list| {
                        list.iter()
                            .find(|r| r.get("protected").and_then(Value::as_bool) != Some(true))
                    })
                    .and_then(|r| str_at(r, "/name"))
                    .map(str::to_string)
                    .ok_or_else(|| missing(p, "role"))?
            }
        };
        let wanted = body
            .text("database_name")?
            .map(|n| crate::db::discovery::name("database_name", &n))
            .transpose()
            .map_err(ApiError::from)?;
        let databases = api.get(&format!("{branch}/databases"), false).await?;
        let listed: Vec<String> = databases
            .as_ref()
            .and_then(|d| d.get("databases"))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|d| str_at(d, "/name").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let database_name = match wanted {
            Some(name) if listed.contains(&name) => name,
            Some(name) => {
                api.post(
                    &format!("{branch}/databases"),
                    &json!({"database": {"name": name, "owner_name": role_name}}),
                )
                .await?;
                name
            }
            None => listed
                .into_iter()
                .next()
                .ok_or_else(|| missing(p, "database"))?,
        };
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("branch_id", &branch_id)
            .append_pair("endpoint_id", &endpoint_id)
            .append_pair("database_name", &database_name)
            .append_pair("role_name", &role_name)
            .finish();
        let answer = api
            .get(&format!("{project}/connection_uri?{query}"), false)
            .await?;
        let uri = answer
            .as_ref()
            .and_then(|a| str_at(a, "/uri"))
            .map(str::to_string)
            .ok_or_else(|| missing(p, "connection URI"))?;
        let mut details = Map::new();
        for (k, v) in [
            ("project_id", &project_id),
            ("branch_id", &branch_id),
            ("endpoint_id", &endpoint_id),
            ("role_name", &role_name),
            ("database_name", &database_name),
        ] {
            details.insert(k.into(), json!(v));
        }
        Ok(Found { uri, details })
    }

    async fn neon_create_project(&self, api: &Api<'_>, body: &Body) -> Result<String, ApiError> {
        let mut project = body.object("project_create_payload")?;
        if let Some(name) = body.text("project_name")? {
            // A retry (after a 503 past the deadline) finds the project it
            // created by name instead of creating a second one.
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("search", &name)
                .finish();
            let listed = api.get(&format!("/projects?{query}"), false).await?;
            let existing = listed
                .as_ref()
                .and_then(|l| l.get("projects"))
                .and_then(Value::as_array)
                .and_then(|list| {
                    list.iter()
                        .find(|p| str_at(p, "/name") == Some(name.as_str()))
                })
                .and_then(|p| str_at(p, "/id"));
            if let Some(id) = existing {
                return path_id("project.id", id);
            }
            project.insert("name".into(), json!(name));
        }
        let created = api
            .post("/projects", &json!({ "project": project }))
            .await?;
        str_at(&created, "/project/id")
            .map(|id| path_id("project.id", id))
            .transpose()?
            .ok_or_else(|| missing(Provider::Neon, "project id"))
    }

    /// Railway GraphQL: project (or `projectCreate`), environment (the
    /// first), then a plugin (`plugin_id` / `create_plugin_if_missing`) or
    /// a service (`service_id`, by `service_name`, or `serviceCreate`);
    /// the URI is its `DATABASE_PUBLIC_URL` (else `DATABASE_URL`) variable.
    async fn railway(&self, body: &Body, caller: Caller) -> Result<Found, ApiError> {
        let p = Provider::Railway;
        let api = self.api(p, body, "graphql_url", caller)?;
        const PROJECT: &str = "query project($id: String!) { project(id: $id) { id name \
            environments { edges { node { id name } } } \
            services { edges { node { id name } } } \
            plugins { edges { node { id name } } } } }";
        let project_id = match body.text("project_id")? {
            Some(id) => id,
            None if body.flag("create_project_if_missing", false)? => {
                let mut input = body.object("project_create_input")?;
                let name = body.text("project_name")?;
                // A retry finds the project it created by name.
                let existing = match &name {
                    Some(name) => {
                        let data = api
                            .graphql(
                                "query projects { projects { edges { node { id name } } } }",
                                json!({}),
                            )
                            .await?;
                        data.pointer("/projects/edges")
                            .and_then(Value::as_array)
                            .and_then(|edges| {
                                edges.iter().find_map(|e| {
                                    (str_at(e, "/node/name") == Some(name.as_str()))
                                        .then(|| str_at(e, "/node/id"))
                                        .flatten()
                                })
                            })
                            .map(str::to_string)
                    }
                    None => None,
                };
                if let Some(name) = name {
                    input.insert("name".into(), json!(name));
                }
                if let Some(id) = existing {
                    id
                } else {
                    let data = api
                    .graphql(
                        "mutation projectCreate($input: ProjectCreateInput!) { projectCreate(input: $input) { id } }",
                        json!({"input": input}),
                    )
                    .await?;
                    str_at(&data, "/projectCreate/id")
                        .map(str::to_string)
                        .ok_or_else(|| missing(p, "project id"))?
                }
            }
            None => {
                return Err(ApiError::bad_request(
                    "project_id is required (or create_project_if_missing: true)",
                ))
            }
        };
        let data = api.graphql(PROJECT, json!({"id": project_id})).await?;
        let project = data
            .get("project")
            .filter(|p| !p.is_null())
            .ok_or_else(|| rejected(p, format!("project `{project_id}` does not exist")))?;
        let nodes = |kind: &str| -> Vec<Value> {
            project
                .pointer(&format!("/{kind}/edges"))
                .and_then(Value::as_array)
                .map(|edges| {
                    edges
                        .iter()
                        .filter_map(|e| e.get("node").cloned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let environment_id = match body.text("environment_id")? {
            Some(id) => id,
            None => nodes("environments")
                .first()
                .and_then(|e| str_at(e, "/id"))
                .map(str::to_string)
                .ok_or_else(|| missing(p, "environment"))?,
        };
        let by_name = |kind: &str, name: &str| {
            nodes(kind)
                .iter()
                .find(|n| str_at(n, "/name") == Some(name))
                .and_then(|n| str_at(n, "/id"))
                .map(str::to_string)
        };
        let plugin_wanted =
            body.text("plugin_id")?.is_some() || body.flag("create_plugin_if_missing", false)?;
        let (kind, id) = if plugin_wanted {
            let name = body
                .text("plugin_name")?
                .unwrap_or_else(|| "postgresql".into());
            let id = match body.text("plugin_id")? {
                Some(id) => id,
                None => match by_name("plugins", &name) {
                    Some(id) => id,
                    None => {
                        let mut input = body.object("plugin_create_input")?;
                        input.insert("projectId".into(), json!(project_id));
                        input.insert("name".into(), json!(name));
                        let data = api
                            .graphql(
                                "mutation pluginCreate($input: PluginCreateInput!) { pluginCreate(input: $input) { id } }",
                                json!({"input": input}),
                            )
                            .await?;
                        str_at(&data, "/pluginCreate/id")
                            .map(str::to_string)
                            .ok_or_else(|| missing(p, "plugin id"))?
                    }
                },
            };
            ("pluginId", id)
        } else {
            let name = body
                .text("service_name")?
                .unwrap_or_else(|| "postgres".into());
            let id = match body.text("service_id")? {
                Some(id) => id,
                None => match by_name("services", &name) {
                    Some(id) => id,
                    None if body.flag("create_service_if_missing", false)? => {
                        let mut input = body.object("service_create_input")?;
                        input.insert("projectId".into(), json!(project_id));
                        input.insert("name".into(), json!(name));
                        let data = api
                            .graphql(
                                "mutation serviceCreate($input: ServiceCreateInput!) { serviceCreate(input: $input) { id } }",
                                json!({"input": input}),
                            )
                            .await?;
                        str_at(&data, "/serviceCreate/id")
                            .map(str::to_string)
                            .ok_or_else(|| missing(p, "service id"))?
                    }
                    None => {
                        return Err(rejected(
                            p,
                            format!("service `{name}` does not exist (create_service_if_missing: true creates it)"),
                        ))
                    }
                },
            };
            ("serviceId", id)
        };
        let query = format!(
            "query variables($projectId: String!, $environmentId: String!, ${kind}: String) \
             {{ variables(projectId: $projectId, environmentId: $environmentId, {kind}: ${kind}) }}"
        );
        let data = api
            .graphql(
                &query,
                json!({"projectId": project_id, "environmentId": environment_id, kind: id}),
            )
            .await?;
        let uri = ["/variables/DATABASE_PUBLIC_URL", "/variables/DATABASE_URL"]
            .iter()
            .find_map(|ptr| str_at(&data, ptr))
            .map(str::to_string)
            .ok_or_else(|| missing(p, "DATABASE_URL variable"))?;
        let mut details = Map::new();
        details.insert("project_id".into(), json!(project_id));
        details.insert("environment_id".into(), json!(environment_id));
        details.insert(
            if kind == "pluginId" {
                "plugin_id"
            } else {
                "service_id"
            }
            .into(),
            json!(id),
        );
        Ok(Found { uri, details })
    }

    /// Render REST: the Postgres instance `service_id`, by `service_name`
    /// (`GET /postgres?name=`), or created (`POST /postgres`, then waited
    /// for until `available`); the URI is its
    /// `/postgres/{id}/connection-info` `externalConnectionString`.
    async fn render(&self, body: &Body, caller: Caller) -> Result<Found, ApiError> {
        let p = Provider::Render;
        let api = self.api(p, body, "api_base_url", caller)?;
        let id = match body.text("service_id")? {
            Some(id) => path_id("service_id", &id)?,
            None => {
                let name = body.text("service_name")?;
                let existing = match &name {
                    Some(name) => {
                        let query = {
                            let mut q = url::form_urlencoded::Serializer::new(String::new());
                            q.append_pair("name", name);
                            if let Some(owner) = body.text("owner_id")? {
                                q.append_pair("ownerId", &owner);
                            }
                            q.finish()
                        };
                        let list = api
                            .get(&format!("/postgres?{query}"), false)
                            .await?
                            .unwrap_or(Value::Null);
                        list.as_array()
                            .and_then(|l| l.first())
                            .and_then(|item| str_at(item, "/postgres/id").or(str_at(item, "/id")))
                            .map(str::to_string)
                    }
                    None => None,
                };
                match existing {
                    // Found by name: possibly created by an earlier request
                    // that passed its deadline, so wait for it too.
                    Some(id) => {
                        let id = path_id("postgres.id", &id)?;
                        self.render_wait(&api, &id).await?;
                        id
                    }
                    None if body.flag("create_service_if_missing", false)? => {
                        let mut payload = body.object("service_create_payload")?;
                        let fields = [
                            ("name", name.clone()),
                            ("ownerId", body.text("owner_id")?),
                            ("plan", body.text("plan")?),
                            ("region", body.text("region")?),
                            ("version", body.text("postgres_version")?),
                        ];
                        for (k, v) in fields {
                            if let Some(v) = v {
                                payload.insert(k.into(), json!(v));
                            }
                        }
                        if let Some(gb) = body.int("disk_size_gb")? {
                            payload.insert("diskSizeGB".into(), json!(gb));
                        }
                        if !payload.contains_key("name") || !payload.contains_key("ownerId") {
                            return Err(ApiError::bad_request(
                                "service_name and owner_id are required to create a Render database",
                            ));
                        }
                        let created = api.post("/postgres", &Value::Object(payload)).await?;
                        let id = str_at(&created, "/id")
                            .map(|id| path_id("postgres.id", id))
                            .transpose()?
                            .ok_or_else(|| missing(p, "database id"))?;
                        self.render_wait(&api, &id).await?;
                        id
                    }
                    None => {
                        return Err(ApiError::bad_request(
                            "service_id or an existing service_name is required \
                             (or create_service_if_missing: true)",
                        ))
                    }
                }
            }
        };
        let info = api
            .get(&format!("/postgres/{id}/connection-info"), false)
            .await?
            .unwrap_or(Value::Null);
        let uri = str_at(&info, "/externalConnectionString")
            .map(str::to_string)
            .ok_or_else(|| missing(p, "externalConnectionString"))?;
        let mut details = Map::new();
        details.insert("service_id".into(), json!(id));
        Ok(Found { uri, details })
    }

    /// Waits for a new Render database to be `available` (bounded by the
    /// request's provider deadline).
    async fn render_wait(&self, api: &Api<'_>, id: &str) -> Result<(), ApiError> {
        for attempt in 0..30 {
            let db = api
                .get(&format!("/postgres/{id}"), false)
                .await?
                .unwrap_or(Value::Null);
            match str_at(&db, "/status") {
                Some("available") | None => return Ok(()),
                Some("creating") | Some("unknown") => {}
                Some(other) => {
                    return Err(unavailable(
                        Provider::Render,
                        format!("the new database is `{other}`"),
                    ))
                }
            }
            if attempt < 29 {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
        Err(unavailable(
            Provider::Render,
            "the new database did not become available in time",
        ))
    }
}

/// Which steps run after the URI is known.
#[derive(Debug, Clone, Copy)]
pub struct Steps {
    pub provision_schema: bool,
    pub register_runtime: bool,
    pub register_catalog: bool,
}

/// What the steps did.
#[derive(Debug, Clone)]
pub struct Registered {
    pub provisioned: bool,
    pub registered_runtime: bool,
    pub registered_catalog: bool,
    /// The URI with its password hidden.
    pub redacted: String,
}

/// Longest a provider lookup / creation may take inside one request (the
/// request timeout is 30 s); past it the answer is a 503 with
/// `Retry-After` and the retry finds the resource by name.
pub const PROVIDER_DEADLINE: Duration = Duration::from_secs(25);

/// `uri` pinned to the address the outbound policy checked: tokio-postgres
/// connects to `hostaddr` (keeping `host` for everything else), so neither
/// the migration pool nor the runtime pool resolves the name again (no DNS
/// rebinding between the check and the connection).
fn pinned(uri: &str, addr: std::net::IpAddr) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}hostaddr={addr}")
}

/// The management caller's client: live (not deleted) and active, else 403.
async fn live_client(service: &Integrations, client_name: &str) -> Result<(), ApiError> {
    let record = clients::get(service.tenants.catalog(), client_name)
        .await
        .map_err(ApiError::from)?;
    match record {
        Some(c) if c.is_active => Ok(()),
        _ => Err(ApiError::forbidden(format!(
            "client {client_name} is inactive or deleted: a management key cannot provision it \
             (an operator reactivates clients)"
        ))),
    }
}

/// A provider's database as a client: validate the URI (security.md §1
/// grammar, credentials required, its TLS mode kept), resolve the
/// host once against the outbound policy and pin the URI to that address
/// (`hostaddr`, so the migration and runtime pools connect where was
/// checked), bootstrap the tenant schema through the one bootstrap
/// (`crate::provision::provision_trusted`), then register the catalog
/// client (the management path only re-points its own live client) and
/// open its runtime pool. `/admin/provision` takes the same steps through
/// `crate::provision::provision_and_register` (admin URIs, not pinned).
pub async fn provision_and_register(
    service: &Integrations,
    client_name: &str,
    uri: &str,
    description: Option<String>,
    steps: Steps,
    caller: Caller,
) -> Result<Registered, ApiError> {
    // `sslmode` / `channel_binding` stay: the stored URI connects with
    // them (`src/db/tls.rs`); a server without TLS fails a demanding mode.
    let uri = uri.trim().to_string();
    let lower = uri.to_ascii_lowercase();
    if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
        return Err(ApiError::invalid_parameter(
            "connection_uri",
            "must be a postgres:// or postgresql:// URI",
        ));
    }
    let target = crate::db::direct::parse(&uri).map_err(|e| match e {
        crate::db::direct::DirectError::Refused(why) => {
            ApiError::invalid_parameter("connection_uri", why)
        }
        crate::db::direct::DirectError::MissingCredentials => {
            ApiError::invalid_parameter("connection_uri", "must carry a username and a password")
        }
    })?;
    let host = match target.config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => {
            return Err(ApiError::invalid_parameter(
                "connection_uri",
                "must name a TCP host",
            ))
        }
    };
    let port = target.config.get_ports().first().copied().unwrap_or(5432);
    let checked = service
        .outbound
        .resolve(&host, port)
        .await
        .map_err(|e| match e {
            crate::outbound::OutboundError::Refused { .. }
            | crate::outbound::OutboundError::BadUrl(_) => {
                ApiError::invalid_parameter("connection_uri", e)
            }
            other => ApiError::unavailable(
                Code::DatabaseUnavailable,
                format!("connection_uri: {other}"),
            ),
        })?;
    let addr = checked.first().map(|a| a.ip()).ok_or_else(|| {
        ApiError::unavailable(
            Code::DatabaseUnavailable,
            "connection_uri: the host did not resolve",
        )
    })?;
    let uri = pinned(&uri, addr);
    let redacted = target.redacted.clone();
    let mut provisioned = false;
    if steps.provision_schema {
        // The URI is checked and pinned to the checked address above:
        // the one tenant-schema bootstrap (`src/provision/`) applies the set.
        crate::provision::provision_trusted(&service.tenants, &uri).await.map_err(|e| {
            tracing::warn!(client = %client_name, target = %redacted, error = %e, "provisioning failed");
            match e {
                crate::domain::DomainError::Internal(why) => ApiError::unavailable(
                    Code::DatabaseUnavailable,
                    format!("the database could not be provisioned: {}", redact(&why)),
                ),
                other => ApiError::from(other),
            }
        })?;
        provisioned = true;
    }
    let catalog = service.tenants.catalog();
    let mut registered_catalog = false;
    if steps.register_catalog {
        match caller {
            Caller::Admin => {
                clients::save(
                    catalog,
                    client_name,
                    &clients::Changes {
                        description,
                        pg_uri: Some(uri.clone()),
                        pg_uri_env_var: None,
                        is_active: Some(true),
                    },
                )
                .await
                .map_err(ApiError::from)?;
            }
            // Only the URI (and description) of the live client: never
            // its activation or deletion state.
            Caller::Management => {
                let changes = clients::Changes {
                    description,
                    pg_uri: Some(uri.clone()),
                    pg_uri_env_var: None,
                    is_active: None,
                };
                if clients::update(catalog, client_name, &changes)
                    .await
                    .map_err(ApiError::from)?
                    .is_none()
                {
                    return Err(ApiError::forbidden(format!(
                        "client {client_name} is deleted: a management key cannot provision it"
                    )));
                }
            }
        }
        service.tenants.evict(client_name).await;
        registered_catalog = true;
    }
    // The runtime registry is built from the catalog: a client is
    // "registered at runtime" once its pool opens on the new URI.
    let mut registered_runtime = false;
    if steps.register_runtime {
        let record = clients::get(catalog, client_name)
            .await
            .map_err(ApiError::from)?;
        if record.is_some_and(|r| r.is_active && r.effective_uri().as_deref() == Some(uri.as_str()))
        {
            service.tenants.evict(client_name).await;
            let tenant = service
                .tenants
                .resolve(client_name)
                .await
                .map_err(ApiError::from)?;
            tenant
                .pool
                .get()
                .await
                .map_err(|e| ApiError::from(crate::domain::DomainError::from(e)))?;
            registered_runtime = true;
        }
    }
    Ok(Registered {
        provisioned,
        registered_runtime,
        registered_catalog,
        redacted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_modes_survive_pinning() {
        use crate::db::tls::{config_from_uri, SslMode};
        let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        for (uri, mode) in [
            (
                "postgresql://u:p@h/db?sslmode=require&channel_binding=require",
                SslMode::Require,
            ),
            (
                "postgresql://u:p@h/db?sslmode=verify-full",
                SslMode::VerifyFull,
            ),
            (
                "postgresql://u:p@h/db?application_name=x&sslmode=verify-ca",
                SslMode::VerifyCa,
            ),
            ("postgresql://u:p@h/db", SslMode::Prefer),
        ] {
            let (cfg, got) = config_from_uri(&pinned(uri, ip)).unwrap();
            assert_eq!(got, mode, "{uri}");
            assert_eq!(cfg.get_hostaddrs(), [ip], "{uri}");
        }
    }

    #[test]
    fn pinned_uris_carry_the_checked_address() {
        let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            pinned("postgres://u:p@localhost/db", ip),
            "postgres://u:p@localhost/db?hostaddr=127.0.0.1"
        );
        let cfg: tokio_postgres::Config =
            pinned("postgres://u:p@localhost/db?application_name=a", ip)
                .parse()
                .unwrap();
        assert_eq!(cfg.get_hostaddrs(), &[ip]);
    }

    #[test]
    fn path_ids() {
        assert!(path_id("x", "proj-123_a").is_ok());
        for bad in ["", "../x", "a/b", "a?b", "a b"] {
            assert!(path_id("x", bad).is_err(), "{bad}");
        }
    }
}
