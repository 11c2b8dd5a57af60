//! `POST /public/{route_key}/{op}`: a public route forwards one of the
//! gateway operations it allows to its client, without the caller naming
//! or seeing the client. The body is the body of the canonical route
//! (`/gateway/fetch`, `/gateway/insert`, …), and the credentials are those
//! of the canonical route for the route's client: when API keys are
//! enforced for that client, the key must be valid, bound to that client or
//! to none, and hold the canonical operation's right.

use super::{fetch_answer, fetch_request, strip_nulls_header, Handlers};
use crate::api::traits::PublicApi;
use crate::api::{models, params, responses};
use crate::auth::{access, Actor};
use crate::catalog::public_routes::Op;
use crate::domain::DomainError;
use crate::gateway::plan;
use crate::gateway::service::Target;
use crate::gateway::write::Write;
use crate::http::payload::Json;
use crate::http::{ApiError, ApiResult, Code, RequestCx};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

impl Handlers {
    /// Runs `op` on the route's client through the gateway service, as
    /// its canonical route would (same planning, same answer body).
    async fn forward(
        &self,
        cx: &RequestCx,
        op: Op,
        client: &str,
        actor: &Actor,
        body: Map<String, Value>,
    ) -> ApiResult<Value> {
        let target = Target::client(client);
        let strip = strip_nulls_header(cx);
        let answer = match op {
            Op::Fetch => {
                let body: models::PostGatewayFetchRequest = typed(body, &[("sortBy", "sort_by")])?;
                let request = fetch_request(&self.gateway, cx, &body)?;
                let fetched = self.gateway.fetch(&target, actor, request).await?;
                return fetch_answer(fetched)
                    .into_value()
                    .map(|j| j.body)
                    .map_err(|e| DomainError::Internal(format!("fetch answer: {e}")).into());
            }
            Op::Insert => {
                let body: models::PutGatewayInsertRequest = typed(body, &[])?;
                let (q, single) = plan::insert_plan(&body, strip)?;
                let write = Write::Insert(q);
                // The planned write's rights (an upsert needs update too),
                // as on the canonical route (`Write::rights`).
                actor.require_all(write.rights(), Some(client))?;
                // Batched like the canonical route (never upserts).
                let batchable = body.update_body.is_empty() && body.on_conflict.is_none();
                let window = self.gateway.insert_window(None, batchable)?;
                let r = self.gateway.write_inline(&target, write, window).await?;
                plan::insert_answer(r, single, &body.table_name, body.count.is_some())
            }
            Op::Update => {
                let body: models::PostGatewayUpdateRequest = typed(body, &[])?;
                let write = Write::Update(plan::update_plan(&body, strip)?);
                plan::update_answer(self.gateway.write_inline(&target, write, None).await?)
            }
            Op::Delete => {
                let body: models::DeleteGatewayDeleteRequest = typed(body, &[])?;
                let write = Write::Delete(plan::delete_plan(&body, strip)?);
                let r = self.gateway.write_inline(&target, write, None).await?;
                plan::delete_answer(r, &body.table_name, body.resource_id.as_ref())
            }
            Op::Query => {
                let body: models::PostGatewayQueryRequest = typed(body, &[])?;
                let schema = body.schema_name.as_deref();
                (self.gateway)
                    .raw(&target, &body.query, schema, &body.params)
                    .await?
            }
        };
        Ok(Value::Object(answer))
    }
}

impl PublicApi for Handlers {
    async fn post_public_by_route_key_by_op(
        &self,
        cx: RequestCx,
        params: params::PostPublicByRouteKeyByOp,
        body: models::PostPublicByRouteKeyByOpRequest,
    ) -> ApiResult<responses::PostPublicByRouteKeyByOp> {
        let key = params.route_key.as_str();
        let op = Op::parse(&params.op).ok_or_else(|| {
            ApiError::invalid_parameter("op", "must be one of query, fetch, insert, update, delete")
        })?;
        let route = (self.public_routes)
            .get(self.tenants.catalog(), key)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(
                    Code::NotFound,
                    format!("public route `{key}` does not exist"),
                )
            })?;
        if !route.is_active {
            return Err(ApiError::forbidden(format!(
                "public route `{key}` is inactive"
            )));
        }
        if !route.allows(op) {
            return Err(ApiError::forbidden(format!(
                "public route `{key}` does not allow `{}`",
                op.as_str()
            )));
        }
        let client = route.client_name.as_str();
        let canonical = op.gateway_operation();
        let right = access::rule(canonical).right().ok_or_else(|| {
            DomainError::Internal(format!("no right for {}", canonical.meta().name))
        })?;
        // Authorization let this operation through (`Access::Public`: no right
        // of its own); the key is checked here, for the canonical
        // operation's right and the route's client.
        let actor = cx
            .data_plane_actor(client)
            .await
            .map_err(|e| hide_client(e, key, client))?;
        if let Actor::Key(k) = &actor {
            if k.client_name
                .as_deref()
                .is_some_and(|bound| bound != client)
            {
                return Err(ApiError::forbidden(
                    "this API key is not valid for this public route",
                ));
            }
        }
        actor.require(right, Some(client))?;
        // The admission limiter, as the gateway operation, for the route's
        // client (`authorize` does not count public routes: their client
        // is known only here).
        cx.admit_client(canonical, client, true)
            .await
            .map_err(|e| hide_client(e, key, client))?;
        let data = self
            .forward(&cx, op, client, &actor, body.0)
            .await
            .map_err(|e| hide_client(e, key, client))?;
        Ok(responses::PostPublicByRouteKeyByOp::Ok(Json::new(data)))
    }
}

/// The forwarded body as its canonical route's model (400 naming the field).
fn typed<T: DeserializeOwned>(
    body: Map<String, Value>,
    aliases: &[(&str, &str)],
) -> Result<T, ApiError> {
    crate::http::extract::typed_json(Value::Object(body), aliases)
}

/// Public responses never name the route's client: errors that would
/// (client gone, frozen, quoted in a message) are reworded.
fn hide_client(mut e: ApiError, key: &str, client: &str) -> ApiError {
    match e.code {
        Code::ClientNotFound => {
            return ApiError::not_found(
                Code::NotFound,
                format!("public route `{key}` has no available backend"),
            )
        }
        Code::ClientFrozen => {
            return ApiError::forbidden(format!("public route `{key}` is frozen"));
        }
        _ => {}
    }
    let quoted = format!("`{client}`");
    if e.detail.contains(&quoted) || e.message.contains(&quoted) {
        e.detail = e.detail.replace(&quoted, "(the route's client)");
        e.message = e.message.replace(&quoted, "(the route's client)");
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_are_hidden() {
        let e = hide_client(
            DomainError::not_found("client", "secret_client").into(),
            "r",
            "secret_client",
        );
        assert_eq!(e.status(), 404);
        assert!(!e.detail.contains("secret_client"));
        let e = hide_client(
            DomainError::FrozenClient("secret_client".into()).into(),
            "r",
            "secret_client",
        );
        assert_eq!(e.status(), 403);
        assert!(!e.detail.contains("secret_client"));
        let e = hide_client(
            ApiError::bad_request("client `secret_client` says no"),
            "r",
            "secret_client",
        );
        assert!(!e.detail.contains("secret_client"), "{}", e.detail);
    }

    #[test]
    fn bodies_are_typed_with_aliases() {
        let body = serde_json::json!({"table_name": "t", "sortBy": "id.desc"});
        let fetch: models::PostGatewayFetchRequest =
            typed(body.as_object().unwrap().clone(), &[("sortBy", "sort_by")]).unwrap();
        assert!(fetch.sort_by.is_some());
        let bad = serde_json::json!({"table_name": 5});
        let e = typed::<models::PostGatewayFetchRequest>(bad.as_object().unwrap().clone(), &[])
            .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.detail.contains("table_name"), "{}", e.detail);
    }
}
