//! `admin_ip_lists`: the IP policy of API keys (`/admin/api-keys/{id}/ip-*`,
//! `/admin/api-keys/{id}/virgin/*`) and the global lists
//! (`/admin/ip-global-whitelist`, `/admin/ip-global-blacklist`). The policy
//! itself is `src/auth/ip_policy.rs`; the catalog, `src/catalog/ip_policy.rs`.

use crate::api::{models, params, responses, traits::AdminIpListsApi};
use crate::auth::ip_policy::{parse_entries, parse_net};
use crate::catalog::clients;
use crate::catalog::ip_policy::{self as catalog, GlobalRule, List, Policy, Rule};
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, Code, RequestCx};
use serde_json::{json, Value};
use uuid::Uuid;

impl AdminIpListsApi for Handlers {
    async fn get_admin_api_keys_by_id_ip_policy(
        &self,
        _cx: RequestCx,
        params: params::GetAdminApiKeysByIdIpPolicy,
    ) -> ApiResult<responses::GetAdminApiKeysByIdIpPolicy> {
        let policy = catalog::policy(self.tenants.catalog(), params.id)
            .await?
            .ok_or_else(|| key_not_found(params.id))?;
        Ok(responses::GetAdminApiKeysByIdIpPolicy::Ok(Json::new(
            models::GetAdminApiKeysByIdIpPolicyResponse200 {
                data: Some(policy_model(&policy)),
            },
        )))
    }

    async fn post_admin_api_keys_by_id_ip_whitelist(
        &self,
        _cx: RequestCx,
        params: params::PostAdminApiKeysByIdIpWhitelist,
        body: models::IpEntriesRequest,
    ) -> ApiResult<responses::PostAdminApiKeysByIdIpWhitelist> {
        let policy = add(self, params.id, List::White, &body).await?;
        Ok(responses::PostAdminApiKeysByIdIpWhitelist::Ok(policy))
    }

    async fn delete_admin_api_keys_by_id_ip_whitelist(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminApiKeysByIdIpWhitelist,
        body: models::IpEntriesRequest,
    ) -> ApiResult<responses::DeleteAdminApiKeysByIdIpWhitelist> {
        let policy = remove(self, params.id, List::White, &body).await?;
        Ok(responses::DeleteAdminApiKeysByIdIpWhitelist::Ok(policy))
    }

    async fn post_admin_api_keys_by_id_ip_blacklist(
        &self,
        _cx: RequestCx,
        params: params::PostAdminApiKeysByIdIpBlacklist,
        body: models::IpEntriesRequest,
    ) -> ApiResult<responses::PostAdminApiKeysByIdIpBlacklist> {
        let policy = add(self, params.id, List::Black, &body).await?;
        Ok(responses::PostAdminApiKeysByIdIpBlacklist::Ok(policy))
    }

    async fn delete_admin_api_keys_by_id_ip_blacklist(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminApiKeysByIdIpBlacklist,
        body: models::IpEntriesRequest,
    ) -> ApiResult<responses::DeleteAdminApiKeysByIdIpBlacklist> {
        let policy = remove(self, params.id, List::Black, &body).await?;
        Ok(responses::DeleteAdminApiKeysByIdIpBlacklist::Ok(policy))
    }

    async fn get_admin_api_keys_by_id_ip_seen(
        &self,
        _cx: RequestCx,
        params: params::GetAdminApiKeysByIdIpSeen,
    ) -> ApiResult<responses::GetAdminApiKeysByIdIpSeen> {
        let limit = params.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::invalid_parameter("limit", "must be 1 to 1000"));
        }
        let offset = params.offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::invalid_parameter(
                "offset",
                "must not be negative",
            ));
        }
        let seen = catalog::seen(self.tenants.catalog(), params.id, limit, offset)
            .await?
            .ok_or_else(|| key_not_found(params.id))?;
        let records = seen
            .iter()
            .map(|s| models::SeenIpRecord {
                id: Some(s.id),
                addr: Some(s.addr.clone()),
                first_seen_at: Some(s.first_seen_at),
                last_seen_at: Some(s.last_seen_at),
                hit_count: Some(s.hit_count),
                locked_in: Some(s.locked_in),
            })
            .collect();
        Ok(responses::GetAdminApiKeysByIdIpSeen::Ok(Json::new(
            models::GetAdminApiKeysByIdIpSeenResponse200 {
                data: Some(models::GetAdminApiKeysByIdIpSeenResponse200Data { records }),
            },
        )))
    }

    async fn post_admin_api_keys_by_id_virgin_promote(
        &self,
        _cx: RequestCx,
        params: params::PostAdminApiKeysByIdVirginPromote,
    ) -> ApiResult<responses::PostAdminApiKeysByIdVirginPromote> {
        let policy = catalog::promote(self.tenants.catalog(), params.id)
            .await?
            .ok_or_else(|| key_not_found(params.id))?;
        self.keys.invalidate().await;
        Ok(responses::PostAdminApiKeysByIdVirginPromote::Ok(
            policy_answer("virgin key locked in", &policy),
        ))
    }

    async fn post_admin_api_keys_by_id_virgin_reset(
        &self,
        _cx: RequestCx,
        params: params::PostAdminApiKeysByIdVirginReset,
        body: models::VirginResetRequest,
    ) -> ApiResult<responses::PostAdminApiKeysByIdVirginReset> {
        let clear_seen = body.clear_seen.unwrap_or(false);
        let policy = catalog::reset(self.tenants.catalog(), params.id, clear_seen)
            .await?
            .ok_or_else(|| key_not_found(params.id))?;
        self.keys.invalidate().await;
        Ok(responses::PostAdminApiKeysByIdVirginReset::Ok(
            policy_answer("virgin state reset", &policy),
        ))
    }

    async fn get_admin_ip_global_whitelist(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminIpGlobalWhitelist> {
        Ok(responses::GetAdminIpGlobalWhitelist::Ok(
            list_global(self, List::White).await?,
        ))
    }

    async fn post_admin_ip_global_whitelist(
        &self,
        _cx: RequestCx,
        body: models::GlobalIpRuleRequest,
    ) -> ApiResult<responses::PostAdminIpGlobalWhitelist> {
        Ok(responses::PostAdminIpGlobalWhitelist::Ok(
            upsert_global(self, List::White, &body).await?,
        ))
    }

    async fn delete_admin_ip_global_whitelist(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminIpGlobalWhitelist,
    ) -> ApiResult<responses::DeleteAdminIpGlobalWhitelist> {
        Ok(responses::DeleteAdminIpGlobalWhitelist::Ok(
            delete_global(
                self,
                List::White,
                &params.addr,
                params.client_name.as_deref(),
            )
            .await?,
        ))
    }

    async fn get_admin_ip_global_blacklist(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminIpGlobalBlacklist> {
        Ok(responses::GetAdminIpGlobalBlacklist::Ok(
            list_global(self, List::Black).await?,
        ))
    }

    async fn post_admin_ip_global_blacklist(
        &self,
        _cx: RequestCx,
        body: models::GlobalIpRuleRequest,
    ) -> ApiResult<responses::PostAdminIpGlobalBlacklist> {
        Ok(responses::PostAdminIpGlobalBlacklist::Ok(
            upsert_global(self, List::Black, &body).await?,
        ))
    }

    async fn delete_admin_ip_global_blacklist(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminIpGlobalBlacklist,
    ) -> ApiResult<responses::DeleteAdminIpGlobalBlacklist> {
        Ok(responses::DeleteAdminIpGlobalBlacklist::Ok(
            delete_global(
                self,
                List::Black,
                &params.addr,
                params.client_name.as_deref(),
            )
            .await?,
        ))
    }
}

/// The shared bodies of the list routes (each one catalog call; this
/// replica drops its cached rules before answering, the others on the
/// catalog notification).
async fn add(
    h: &Handlers,
    id: Uuid,
    list: List,
    body: &models::IpEntriesRequest,
) -> ApiResult<Json<Value>> {
    let nets = parse_entries("addrs", &body.addrs)?;
    let policy = catalog::add(h.tenants.catalog(), id, list, &nets, body.label.as_deref())
        .await?
        .ok_or_else(|| key_not_found(id))?;
    h.keys.invalidate().await;
    Ok(policy_answer(
        &format!("{} entries added", nets.len()),
        &policy,
    ))
}

async fn remove(
    h: &Handlers,
    id: Uuid,
    list: List,
    body: &models::IpEntriesRequest,
) -> ApiResult<Json<Value>> {
    let nets = parse_entries("addrs", &body.addrs)?;
    let policy = catalog::remove(h.tenants.catalog(), id, list, &nets)
        .await?
        .ok_or_else(|| key_not_found(id))?;
    h.keys.invalidate().await;
    Ok(policy_answer(
        &format!("{} entries removed", nets.len()),
        &policy,
    ))
}

async fn list_global(h: &Handlers, list: List) -> ApiResult<Json<Value>> {
    let rules = catalog::list_global(h.tenants.catalog(), list).await?;
    let records: Vec<Value> = rules.iter().map(global_record).collect();
    let mut out = crate::domain::success(format!("{} rules", records.len()));
    out.insert("data".into(), json!({ "records": records }));
    Ok(Json::new(Value::Object(out)))
}

async fn upsert_global(
    h: &Handlers,
    list: List,
    body: &models::GlobalIpRuleRequest,
) -> ApiResult<Json<Value>> {
    let net = parse_net(&body.addr).map_err(|e| DomainError::invalid_field("addr", e))?;
    let client = global_client(body.client_name.as_deref())?;
    let rule = catalog::upsert_global(
        h.tenants.catalog(),
        list,
        net,
        client,
        body.label.as_deref(),
    )
    .await?;
    h.keys.invalidate().await;
    let mut out = crate::domain::success("rule upserted");
    out.insert("data".into(), global_record(&rule));
    Ok(Json::new(Value::Object(out)))
}

async fn delete_global(
    h: &Handlers,
    list: List,
    addr: &str,
    client_name: Option<&str>,
) -> ApiResult<Json<Value>> {
    let net = parse_net(addr).map_err(|e| DomainError::invalid_field("addr", e))?;
    let client = global_client(client_name)?;
    let deleted = catalog::delete_global(h.tenants.catalog(), list, net, client).await?;
    h.keys.invalidate().await;
    let mut out = crate::domain::success(match deleted {
        0 => "no such rule",
        _ => "rule deleted",
    });
    out.insert(
        "data".into(),
        json!({"addr": net.to_string(), "client_name": client, "deleted": deleted}),
    );
    Ok(Json::new(Value::Object(out)))
}

/// A global rule's client: a client name, or none (every client).
fn global_client(client: Option<&str>) -> Result<Option<&str>, DomainError> {
    match client.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => {
            clients::check_name(c)?;
            Ok(Some(c))
        }
    }
}

fn key_not_found(id: Uuid) -> ApiError {
    ApiError::not_found(Code::NotFound, format!("API key {id} was not found"))
}

fn rule_record(r: &Rule) -> models::IpRuleRecord {
    models::IpRuleRecord {
        id: Some(r.id),
        addr: Some(r.addr.clone()),
        label: r.label.clone(),
        created_at: Some(r.created_at),
    }
}

fn policy_model(p: &Policy) -> models::ApiKeyIpPolicyResponse {
    let s = &p.settings;
    models::ApiKeyIpPolicyResponse {
        policy: Some(models::ApiKeyIpPolicyResponsePolicy {
            api_key_id: Some(p.key_id),
            virgin_mode: Some(s.virgin_mode),
            virgin_resolved: Some(s.virgin_resolved),
            virgin_resolved_at: s.virgin_resolved_at,
            virgin_until_n_requests: Some(i64::from(s.virgin_until_n_requests)),
            virgin_request_count: Some(s.virgin_request_count),
            max_whitelist_ips: Some(i64::from(s.max_whitelist_ips)),
        }),
        whitelist: p.whitelist.iter().map(rule_record).collect(),
        blacklist: p.blacklist.iter().map(rule_record).collect(),
    }
}

/// A write's answer: the standard success envelope with the key's policy
/// as it is now (`ApiKeyIpPolicyResponse`) in `data`.
fn policy_answer(message: &str, p: &Policy) -> Json<Value> {
    let mut out = crate::domain::success(message);
    out.insert(
        "data".into(),
        serde_json::to_value(policy_model(p)).unwrap_or(Value::Null),
    );
    Json::new(Value::Object(out))
}

fn global_record(r: &GlobalRule) -> Value {
    json!({
        "id": r.id,
        "addr": r.addr,
        "client_name": r.client_name,
        "label": r.label,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    })
}
