use super::Handlers;
use crate::api::{responses, traits::SchemaApi};
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};

impl SchemaApi for Handlers {
    async fn get_schema_clients(&self, _cx: RequestCx) -> ApiResult<responses::GetSchemaClients> {
        Ok(responses::GetSchemaClients::Ok(Json::new(
            self.client_names().await?,
        )))
    }
}
