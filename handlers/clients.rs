use super::Handlers;
use crate::api::{models, responses, traits::ClientsApi};
use crate::catalog::clients;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};

impl ClientsApi for Handlers {
    async fn get_clients(&self, _cx: RequestCx) -> ApiResult<responses::GetClients> {
        Ok(responses::GetClients::Ok(Json::new(
            self.client_names().await?,
        )))
    }
}

impl Handlers {
    /// Names of the live, active clients (`/clients`, `/schema/clients`).
    pub(super) async fn client_names(
        &self,
    ) -> Result<models::ClientsResponse, crate::domain::DomainError> {
        let list = clients::list(self.tenants.catalog()).await?;
        let clients = list
            .into_iter()
            .filter(|c| c.is_active)
            .map(|c| c.client_name)
            .collect();
        Ok(models::ClientsResponse { clients })
    }
}
