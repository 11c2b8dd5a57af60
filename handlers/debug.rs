//! `debug`: diagnostics for operators (admin key). `/debug/s3` reports S3
//! catalog resolution and bucket readiness (`src/storage/debug.rs`).

use crate::api::{responses, traits::DebugApi};
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};

impl DebugApi for Handlers {
    async fn get_debug_s3(&self, cx: RequestCx) -> ApiResult<responses::GetDebugS3> {
        let client = crate::auth::header_client(cx.headers());
        let data = self
            .storage
            .debug_report(self.tenants.catalog(), client)
            .await?;
        let mut body = crate::domain::success("S3 catalog diagnostics");
        body.insert("data".into(), data);
        Ok(responses::GetDebugS3::Ok(Json::new(body.into())))
    }
}
