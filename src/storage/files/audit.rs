//! The audit trail (`POST /storage/audit/list`).
//!
//! Who may read it: a file's events need `share` or ownership of the file
//! (they name who touched it); a file the caller may not read is a 404, one
//! they may only read a 403. Without `file_id`, the caller's own events
//! (their user in their organization).

use super::*;

/// `POST /storage/audit/list` (the SDK's `StorageAuditQueryRequest`).
#[derive(Debug, Default, Deserialize)]
pub struct AuditRequest {
    #[serde(alias = "fileId")]
    pub file_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Most events one page answers.
const AUDIT_LIMIT: i64 = 500;

/// `StorageAuditEventRecord`: the SDK's `status` (`success` | `error`)
/// with the stored outcome (`ok`, `denied`, `failed`, …) as `outcome`.
fn event(r: &tokio_postgres::Row) -> Value {
    let outcome: String = r.get(3);
    let failed = matches!(outcome.as_str(), "denied" | "failed" | "error");
    json!({
        "id": r.get::<_, i64>(0).to_string(),
        "file_id": r.get::<_, Option<Uuid>>(1).map(|u| u.to_string()),
        "operation": r.get::<_, String>(2),
        "status": if failed { "error" } else { "success" },
        "outcome": outcome,
        "actor_user_id": r.get::<_, Option<String>>(4),
        "organization_id": r.get::<_, Option<String>>(5),
        "storage_key": r.get::<_, Option<String>>(6),
        "error": r.get::<_, Option<String>>(7),
        "created_at": r.get::<_, DateTime<Utc>>(8),
        "s3_id": r.get::<_, Option<Uuid>>(9).map(|u| u.to_string()),
        "bucket": r.get::<_, Option<String>>(10),
        "metadata": {},
    })
}

/// `limit` (1-500, default 50) and `offset` (0 or more).
pub(super) fn page(
    limit: Option<i64>,
    offset: Option<i64>,
    default: i64,
    max: i64,
) -> Result<(i64, i64), DomainError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(DomainError::invalid_field("limit", format!("1-{max}")));
    }
    let offset = offset.unwrap_or(0);
    if !(0..=1_000_000).contains(&offset) {
        return Err(DomainError::invalid_field("offset", "0-1000000"));
    }
    Ok((limit, offset))
}

impl Storage {
    /// Audit events, newest first: a file's (for `share` or an owner) or
    /// the caller's own.
    pub async fn audit_list(
        &self,
        client: &str,
        user: &EndUser,
        r: AuditRequest,
    ) -> Result<Value, DomainError> {
        let (limit, offset) = page(r.limit, r.offset, 50, AUDIT_LIMIT)?;
        let tenant = self.files_tenant(client).await?;
        let file = match r.file_id.as_deref().filter(|f| !f.trim().is_empty()) {
            Some(id) => {
                let file = self.file_for(&tenant, id, user, Permission::Read).await?;
                let grants = Self::grants(&tenant, &[file.id]).await?;
                if !Self::permits(&file, &grants, user, Permission::Share) {
                    Self::audit(&tenant, "audit_list", "denied", user, Some(&file), None).await;
                    return Err(DomainError::Forbidden(
                        "a file's audit trail needs the share permission or ownership".into(),
                    ));
                }
                Some(file)
            }
            None => None,
        };
        let rows = tenant
            .pool
            .get()
            .await?
            .query(
                "SELECT a.id, a.file_id, a.operation, a.status, a.actor_user_id, a.organization_id,
                        a.storage_key, a.error, a.created_at, f.s3_id, f.bucket
                   FROM athena.audit_log_files a LEFT JOIN athena.files f ON f.id = a.file_id
                  WHERE a.client_name = $1
                    AND (($2::uuid IS NOT NULL AND a.file_id = $2)
                      OR ($2::uuid IS NULL AND a.actor_user_id = $3
                          AND a.organization_id IS NOT DISTINCT FROM $4))
                  ORDER BY a.created_at DESC, a.id DESC LIMIT $5 OFFSET $6",
                &[
                    &tenant.name,
                    &file.as_ref().map(|f| f.id),
                    &user.user_id,
                    &user.organization_id,
                    &(limit + 1),
                    &offset,
                ],
            )
            .await
            .map_err(pg)?;
        let has_more = rows.len() as i64 > limit;
        let events: Vec<Value> = rows.iter().take(limit as usize).map(event).collect();
        Self::audit(&tenant, "audit_list", "ok", user, file.as_ref(), None).await;
        Ok(json!({
            "count": events.len(),
            "events": events,
            "limit": limit,
            "offset": offset,
            "has_more": has_more,
            "next_offset": if has_more { Some(offset + limit) } else { None },
        }))
    }
}
