use super::Handlers;
use crate::api::{models, params, responses, traits::RpcApi};
use crate::domain::DomainError;
use crate::gateway::filter::Cond;
use crate::gateway::plan::{number, rpc_call, split_list};
use crate::gateway::rpc::{function_name, Call};
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use serde_json::{Map, Value};

/// Query parameters of `GET /rpc/{fn}` that shape the result; every other
/// parameter is an argument, or a filter when it reads `op.value`.
const SHAPING: [&str; 6] = ["select", "order", "limit", "offset", "count", "api_key"];

impl RpcApi for Handlers {
    async fn get_rpc_by_function_name(
        &self,
        cx: RequestCx,
        params: params::GetRpcByFunctionName,
    ) -> ApiResult<responses::GetRpcByFunctionName> {
        let (schema, function) = function_name(&params.function_name, None)?;
        let mut call = Call {
            schema,
            function,
            args: Map::new(),
            select: None,
            filters: Vec::new(),
            order: Vec::new(),
            limit: None,
            offset: None,
            count_exact: false,
        };
        for (key, value) in cx.query() {
            match key.as_str() {
                "select" => call.select = Some(split_list(value)),
                "order" => call.order = crate::gateway::cond::order(&Value::String(value.clone()))?,
                "limit" => call.limit = Some(number("limit", value)?),
                "offset" => call.offset = Some(number("offset", value)?),
                "count" => call.count_exact = value == "exact",
                k if SHAPING.contains(&k) => {}
                k => match Cond::from_postgrest(k, value) {
                    Ok(cond) if value.contains('.') => call.filters.push(cond),
                    _ => {
                        call.args
                            .insert(k.to_string(), Value::String(value.clone()));
                    }
                },
            }
        }
        let (rows, count) = self.gateway.rpc(&params.x_athena_client, &call).await?;
        Ok(responses::GetRpcByFunctionName::Ok(
            Json::new(models::GetRpcByFunctionNameResponse200 {
                count,
                data: Vec::new(),
            })
            .with_raw_field("data", rows.into_string()),
        ))
    }

    async fn post_rpc_by_function_name(
        &self,
        _cx: RequestCx,
        params: params::PostRpcByFunctionName,
        body: models::PostRpcByFunctionNameRequest,
    ) -> ApiResult<responses::PostRpcByFunctionName> {
        const WRAPPER: [&str; 8] = [
            "args", "filters", "select", "order", "limit", "offset", "count", "schema",
        ];
        let call = match body {
            models::PostRpcByFunctionNameRequest::GatewayRpcRequest(req) => {
                let mut call = rpc_call(&req)?;
                (call.schema, call.function) = function_name(&params.function_name, None)?;
                call
            }
            // A body with wrapper fields but no `function` is still a wrapper.
            models::PostRpcByFunctionNameRequest::Object(map)
                if WRAPPER.iter().any(|k| map.contains_key(*k)) =>
            {
                let mut map = map;
                map.insert(
                    "function".into(),
                    Value::String(params.function_name.clone()),
                );
                let req: models::GatewayRpcRequest = serde_json::from_value(Value::Object(map))
                    .map_err(|e| DomainError::Invalid(format!("invalid RPC body: {e}")))?;
                rpc_call(&req)?
            }
            models::PostRpcByFunctionNameRequest::Object(args) => {
                let (schema, function) = function_name(&params.function_name, None)?;
                Call {
                    schema,
                    function,
                    args,
                    select: None,
                    filters: Vec::new(),
                    order: Vec::new(),
                    limit: None,
                    offset: None,
                    count_exact: false,
                }
            }
        };
        let (rows, count) = self.gateway.rpc(&params.x_athena_client, &call).await?;
        Ok(responses::PostRpcByFunctionName::Ok(
            Json::new(models::PostRpcByFunctionNameResponse200 {
                count,
                data: Vec::new(),
            })
            .with_raw_field("data", rows.into_string()),
        ))
    }
}
