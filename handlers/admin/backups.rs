//! `admin_backups`: backups to S3, restores, jobs and schedules (issue 18).
//! The work is in `src/backups/` (service, worker, schedules); these
//! methods only map bodies and models. `GET /admin/backups/{key}/download`
//! streams (`src/http/server/streams.rs` → `Handlers::backup_download`).
//! `GET /admin/daemons` belongs to `admin_runtime` (`runtime.rs`).

use crate::api::{models, params, responses, traits::AdminBackupsApi};
use crate::backups::Target;
use crate::domain::DomainError;
use crate::handlers::Handlers;
use crate::http::payload::Json;
use crate::http::{ApiResult, RequestCx};
use serde_json::{json, Map, Value};

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn success(message: impl Into<String>, data: Value) -> Map<String, Value> {
    let mut out = crate::domain::success(message);
    out.insert("data".into(), data);
    out
}

fn job_not_found(id: i64) -> DomainError {
    DomainError::not_found("backup job", id.to_string())
}

impl Handlers {
    /// `GET /admin/backups/{key}/download`, served by the streaming route:
    /// the object's length and body, passed on as they arrive.
    pub async fn backup_download(
        &self,
        _cx: RequestCx,
        params: params::GetAdminBackupsByKeyDownload,
    ) -> Result<(String, Option<String>, hyper::body::Incoming), crate::http::ApiError> {
        let (length, body) = self.backups.open_download(&params.key).await?;
        let name = params
            .key
            .rsplit('/')
            .next()
            .unwrap_or("backup.dump")
            .replace(['"', '\\'], "_");
        Ok((name, length, body))
    }
}

impl AdminBackupsApi for Handlers {
    async fn get_admin_backups(
        &self,
        _cx: RequestCx,
        params: params::GetAdminBackups,
    ) -> ApiResult<responses::GetAdminBackups> {
        let (items, next) = self
            .backups
            .list_backups(
                params.client_name.as_deref(),
                params.limit,
                params.cursor.as_deref(),
            )
            .await?;
        let backups: Vec<models::BackupListItem> = items
            .into_iter()
            .map(|b| models::BackupListItem {
                client_name: b.client_name,
                completed_at: b.completed_at,
                execution_daemon_id: b.execution_daemon_id,
                job_id: Some(b.job_id),
                label: b.label,
                s3_bucket: b.s3_bucket,
                s3_key: b.s3_key,
                size_bytes: b.size_bytes,
            })
            .collect();
        Ok(responses::GetAdminBackups::Ok(Json::new(
            models::GetAdminBackupsResponse200 {
                message: Some(format!("{} backups", backups.len())),
                status: Some("success".into()),
                data: Some(models::BackupListData {
                    backups,
                    next_cursor: next,
                }),
            },
        )))
    }

    async fn post_admin_backups(
        &self,
        _cx: RequestCx,
        body: models::CreateBackupRequest,
    ) -> ApiResult<responses::PostAdminBackups> {
        // 503 before anything else when backups are not configured.
        self.backups.configured()?;
        let target = self
            .backups
            .target(body.client_name.as_deref(), body.pg_uri.as_deref())
            .await?;
        let strategy = match body.recovery_strategy {
            Some(models::CreateBackupRequestRecoveryStrategy::RepairMissingRoleOids) => {
                "repair_missing_role_oids"
            }
            _ => "none",
        };
        let label = body.label.filter(|l| !l.trim().is_empty());
        let job = self
            .backups
            .create_backup(target, label, strategy, body.timeout_seconds)
            .await?;
        Ok(responses::PostAdminBackups::Accepted(
            Json::new(models::PostAdminBackupsResponse202 {
                message: Some("backup queued".into()),
                status: Some("success".into()),
                data: Some(models::PostAdminBackupsResponse202Data {
                    client_name: job["client_name"].as_str().map(String::from),
                    job_id: job["job_id"].as_i64(),
                    status: job["status"].as_str().map(String::from),
                }),
            })
            .with_field("job", job),
        ))
    }

    async fn post_admin_backups_jobs_by_id_cancel(
        &self,
        _cx: RequestCx,
        params: params::PostAdminBackupsJobsByIdCancel,
    ) -> ApiResult<responses::PostAdminBackupsJobsByIdCancel> {
        let job = self
            .backups
            .cancel(params.id)
            .await?
            .ok_or_else(|| job_not_found(params.id))?;
        Ok(responses::PostAdminBackupsJobsByIdCancel::Ok(Json::new(
            Value::Object(success("cancel requested", json!({ "job": job }))),
        )))
    }

    async fn get_admin_backups_jobs_by_job_id_s3_open(
        &self,
        _cx: RequestCx,
        params: params::GetAdminBackupsJobsByJobIdS3Open,
    ) -> ApiResult<responses::GetAdminBackupsJobsByJobIdS3Open> {
        let out = self.backups.presign(params.job_id, 900).await?;
        Ok(responses::GetAdminBackupsJobsByJobIdS3Open::Ok(Json::new(
            out,
        )))
    }

    async fn post_admin_backups_by_key_restore(
        &self,
        _cx: RequestCx,
        params: params::PostAdminBackupsByKeyRestore,
        body: models::RestoreBackupRequest,
    ) -> ApiResult<responses::PostAdminBackupsByKeyRestore> {
        self.backups.configured()?;
        let key = self.backups.check_key(&params.key)?;
        let target = self
            .backups
            .target(body.client_name.as_deref(), body.pg_uri.as_deref())
            .await?;
        let client = match &target {
            Target::Client(c) => Some(c.clone()),
            Target::Direct { .. } => None,
        };
        let job = self
            .backups
            .create_restore(&key, target, body.timeout_seconds)
            .await?;
        Ok(responses::PostAdminBackupsByKeyRestore::Accepted(
            Json::new(models::PostAdminBackupsByKeyRestoreResponse202 {
                message: Some("restore queued".into()),
                status: Some("success".into()),
                data: Some(models::PostAdminBackupsByKeyRestoreResponse202Data {
                    client_name: client,
                    job_id: job["job_id"].as_i64(),
                    key: Some(key),
                    status: job["status"].as_str().map(String::from),
                }),
            })
            .with_field("job", job),
        ))
    }

    async fn get_admin_backups_by_key_download(
        &self,
        _cx: RequestCx,
        _params: params::GetAdminBackupsByKeyDownload,
    ) -> ApiResult<responses::GetAdminBackupsByKeyDownload> {
        Err(DomainError::Internal(
            "GET /admin/backups/{key}/download is served by the streaming route".into(),
        )
        .into())
    }

    async fn delete_admin_backups_by_key(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminBackupsByKey,
    ) -> ApiResult<responses::DeleteAdminBackupsByKey> {
        let key = self.backups.delete_key(&params.key).await?;
        Ok(responses::DeleteAdminBackupsByKey::Ok(
            Json::new(models::DeleteAdminBackupsByKeyResponse200 { key: Some(key) })
                .with_field("status", json!("success"))
                .with_field("message", json!("backup deleted")),
        ))
    }

    async fn get_admin_backups_config(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminBackupsConfig> {
        let out = self.backups.config_json()?;
        Ok(responses::GetAdminBackupsConfig::Ok(Json::new(
            models::GetAdminBackupsConfigResponse200(object(out)),
        )))
    }

    async fn get_admin_backups_jobs(
        &self,
        _cx: RequestCx,
        params: params::GetAdminBackupsJobs,
    ) -> ApiResult<responses::GetAdminBackupsJobs> {
        let jobs = self
            .backups
            .list_jobs(
                params.client_name.as_deref(),
                params.status.as_deref(),
                params.job_type.as_deref(),
                params.limit,
            )
            .await?;
        let out = success(
            format!("{} jobs", jobs.len()),
            json!({ "count": jobs.len(), "jobs": jobs }),
        );
        Ok(responses::GetAdminBackupsJobs::Ok(Json::new(
            models::GetAdminBackupsJobsResponse200(out),
        )))
    }

    async fn get_admin_backups_jobs_by_id(
        &self,
        _cx: RequestCx,
        params: params::GetAdminBackupsJobsById,
    ) -> ApiResult<responses::GetAdminBackupsJobsById> {
        let (job, logs) = self
            .backups
            .job(params.id)
            .await?
            .ok_or_else(|| job_not_found(params.id))?;
        let out = success("backup job", json!({ "job": job, "logs": logs }));
        Ok(responses::GetAdminBackupsJobsById::Ok(Json::new(
            models::GetAdminBackupsJobsByIdResponse200(out),
        )))
    }

    async fn delete_admin_backups_jobs_by_id(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminBackupsJobsById,
    ) -> ApiResult<responses::DeleteAdminBackupsJobsById> {
        let job = self
            .backups
            .delete_job(params.id)
            .await?
            .ok_or_else(|| job_not_found(params.id))?;
        let out = success("backup job deleted", json!({ "job": job, "deleted": true }));
        Ok(responses::DeleteAdminBackupsJobsById::Ok(Json::new(
            models::DeleteAdminBackupsJobsByIdResponse200(out),
        )))
    }

    async fn get_admin_backups_schedules(
        &self,
        _cx: RequestCx,
    ) -> ApiResult<responses::GetAdminBackupsSchedules> {
        let schedules = self.backups.schedules().await?;
        let out = success(
            format!("{} schedules", schedules.len()),
            json!({ "count": schedules.len(), "schedules": schedules }),
        );
        Ok(responses::GetAdminBackupsSchedules::Ok(Json::new(
            models::GetAdminBackupsSchedulesResponse200(out),
        )))
    }

    async fn post_admin_backups_schedules(
        &self,
        _cx: RequestCx,
        body: models::PostAdminBackupsSchedulesRequest,
    ) -> ApiResult<responses::PostAdminBackupsSchedules> {
        let schedule = self.backups.create_schedule(&body.0).await?;
        let out = success("schedule created", json!({ "schedule": schedule }));
        Ok(responses::PostAdminBackupsSchedules::Ok(Json::new(
            models::PostAdminBackupsSchedulesResponse200(out),
        )))
    }

    async fn delete_admin_backups_schedules_by_id(
        &self,
        _cx: RequestCx,
        params: params::DeleteAdminBackupsSchedulesById,
    ) -> ApiResult<responses::DeleteAdminBackupsSchedulesById> {
        let schedule = self
            .backups
            .delete_schedule(params.id)
            .await?
            .ok_or_else(|| DomainError::not_found("backup schedule", params.id.to_string()))?;
        let out = success(
            "schedule deleted",
            json!({ "schedule": schedule, "deleted": true }),
        );
        Ok(responses::DeleteAdminBackupsSchedulesById::Ok(Json::new(
            models::DeleteAdminBackupsSchedulesByIdResponse200(out),
        )))
    }

    async fn patch_admin_backups_schedules_by_id(
        &self,
        _cx: RequestCx,
        params: params::PatchAdminBackupsSchedulesById,
        body: models::PatchAdminBackupsSchedulesByIdRequest,
    ) -> ApiResult<responses::PatchAdminBackupsSchedulesById> {
        let schedule = self
            .backups
            .update_schedule(params.id, &body.0)
            .await?
            .ok_or_else(|| DomainError::not_found("backup schedule", params.id.to_string()))?;
        let out = success("schedule updated", json!({ "schedule": schedule }));
        Ok(responses::PatchAdminBackupsSchedulesById::Ok(Json::new(
            models::PatchAdminBackupsSchedulesByIdResponse200(out),
        )))
    }
}
