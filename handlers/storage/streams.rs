//! The streamed managed-file operations as `src/http/server/streams.rs`
//! calls them (not through the generated dispatch, which buffers bodies):
//! `PUT …/upload` with the body as a stream, `proxy` answering the S3
//! body unread. Their trait methods (`files.rs`, streams section) are the
//! buffered fallbacks.

use crate::api::{params, responses as r};
use crate::handlers::Handlers;
use crate::http::{ApiError, HttpResponse, RequestCx};
use crate::storage::files::{ByteStream, Proxied};

impl Handlers {
    /// `PUT /storage/files/{file_id}/upload` (write permission).
    pub async fn upload_file_stream(
        &self,
        cx: RequestCx,
        params: params::PutStorageFilesByFileIdUpload,
        content_type: Option<String>,
        body: ByteStream,
    ) -> Result<HttpResponse, ApiError> {
        let user = self.end_user(&cx).await?;
        let data = (self.storage)
            .file_put_stream(
                &params.x_athena_client,
                &user,
                &params.file_id,
                content_type.as_deref(),
                body,
            )
            .await?;
        Ok(
            r::PutStorageFilesByFileIdUpload::Ok(super::answer_whole("File uploaded", data)?)
                .into_http(),
        )
    }

    /// `GET /storage/files/{file_id}/proxy` for the request's end user
    /// (read permission).
    pub async fn proxy_file(
        &self,
        cx: RequestCx,
        params: params::GetStorageFilesByFileIdProxy,
        range: Option<&str>,
    ) -> Result<Proxied, ApiError> {
        let user = self.end_user(&cx).await?;
        Ok((self.storage)
            .file_proxy(
                &params.x_athena_client,
                &user,
                &params.file_id,
                params.purpose.as_deref(),
                range,
            )
            .await?)
    }

    /// `GET /storage/files/{file_id}/proxy?client=…&expires=…&token=…`:
    /// the token (a proxy-url) is the only credential.
    pub async fn proxy_file_signed(
        &self,
        file_id: &str,
        query: &[(String, String)],
        range: Option<&str>,
    ) -> Result<Proxied, ApiError> {
        let grant = self.storage.verify_proxy_token(file_id, query)?;
        Ok(self.storage.file_proxy_granted(&grant, range).await?)
    }
}
