//! Listing and searching managed files: the readable files that match
//! filters, a page at a time.
//!
//! The SQL narrows the rows to those the read rule could allow and to the
//! filters, index-friendly (`storage_key LIKE 'prefix%'` on the
//! `(s3_id, storage_key COLLATE "C")` index, ordered by it, so a page of a
//! small prefix costs the same among 100 or 100,000 rows);
//! `file_access::decide` has the last word on each row.

use super::*;
use tokio_postgres::types::ToSql;

/// `POST /storage/files/list` and `/storage/files/search`: the contract's
/// `s3_id` and `prefix`, and the SDK's filters (`ListStorageFilesRequest`,
/// `SearchStorageFilesRequest`).
#[derive(Debug, Default, Deserialize)]
pub struct ListRequest {
    #[serde(alias = "s3Id")]
    pub s3_id: Option<String>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    /// The SDK's other name for `prefix` (both apply when both are sent).
    pub key_prefix: Option<String>,
    pub name: Option<String>,
    pub mime_type: Option<String>,
    pub content_type: Option<String>,
    pub resource_id: Option<String>,
    pub status: Option<String>,
    pub visibility: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub query: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Most files one page answers.
pub(super) const LIST_LIMIT: i64 = 500;

/// `LIKE` text matching `text` literally.
pub(super) fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A `WHERE` clause over `athena.files f` with its bound values.
pub(super) struct Narrowing {
    pub conditions: Vec<String>,
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Narrowing {
    /// The live rows of the tenant's client that `user` could read.
    pub fn readable(tenant: &Tenant, user: &EndUser) -> Narrowing {
        let mut n = Narrowing {
            conditions: Vec::new(),
            params: Vec::new(),
        };
        let client = n.bind(tenant.name.clone());
        let me = n.bind(user.user_id.clone());
        let org = n.bind(user.organization_id.clone());
        n.conditions.push(format!("f.client_name = {client}"));
        n.conditions
            .push("f.status NOT IN ('soft_deleted', 'purged')".into());
        n.conditions.push(format!(
            "(f.uploaded_by_user_id = {me} OR f.visibility = 'public'
              OR (f.visibility = 'organization' AND f.organization_id = {org})
              OR EXISTS (SELECT 1 FROM athena.file_permissions g
                          WHERE g.file_id = f.id AND g.revoked_at IS NULL
                            AND (g.expires_at IS NULL OR g.expires_at > now())
                            AND ((g.principal_type = 'user' AND g.principal_id = {me})
                              OR (g.principal_type = 'organization' AND g.principal_id = {org}))))"
        ));
        n
    }

    /// `$n` for a new bound value.
    pub fn bind<T: ToSql + Sync + Send + 'static>(&mut self, value: T) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    /// Keys under `prefix` (matched literally) of catalog `s3_id`.
    pub fn under(&mut self, s3_id: Uuid, prefix: &str) {
        let s3 = self.bind(s3_id);
        self.conditions.push(format!("f.s3_id = {s3}"));
        if !prefix.is_empty() {
            let p = self.bind(format!("{}%", like_escape(prefix)));
            self.conditions
                .push(format!("f.storage_key COLLATE \"C\" LIKE {p}"));
        }
    }

    /// `SELECT {COLUMNS}` of the matching rows by key, `limit` from `offset`.
    pub fn select(&mut self, limit: i64, offset: i64) -> String {
        let l = self.bind(limit);
        let o = self.bind(offset);
        format!(
            "SELECT {COLUMNS} FROM athena.files f WHERE {}
              ORDER BY f.storage_key COLLATE \"C\", f.id LIMIT {l} OFFSET {o}",
            self.conditions.join(" AND ")
        )
    }

    pub fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// A catalog id.
pub(super) fn catalog_id(text: &str) -> Result<Uuid, DomainError> {
    Uuid::parse_str(text.trim()).map_err(|_| DomainError::invalid_field("s3_id", "not a UUID"))
}

impl ListRequest {
    /// Adds the filters to `n` (the catalog and prefix included).
    fn narrow(&self, n: &mut Narrowing, s3_id: Option<Uuid>) -> Result<(), DomainError> {
        let prefixes: Vec<&str> = [&self.prefix, &self.key_prefix]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|p| !p.is_empty())
            .collect();
        for p in &prefixes {
            check_object_key("prefix", p)?;
        }
        match s3_id {
            Some(id) => n.under(id, prefixes.first().copied().unwrap_or("")),
            None => {
                if let Some(p) = prefixes.first() {
                    let p = n.bind(format!("{}%", like_escape(p)));
                    n.conditions
                        .push(format!("f.storage_key COLLATE \"C\" LIKE {p}"));
                }
            }
        }
        if let Some(p) = prefixes.get(1) {
            let p = n.bind(format!("{}%", like_escape(p)));
            n.conditions
                .push(format!("f.storage_key COLLATE \"C\" LIKE {p}"));
        }
        for (field, value, max) in [
            ("bucket", &self.bucket, 63),
            ("name", &self.name, 512),
            ("resource_id", &self.resource_id, 256),
            ("query", &self.query, 256),
        ] {
            text(field, value, max)?;
        }
        let exact = [
            ("bucket", &self.bucket),
            ("name", &self.name),
            ("resource_id", &self.resource_id),
        ];
        for (column, value) in exact {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                let b = n.bind(v.to_string());
                n.conditions.push(format!("f.{column} = {b}"));
            }
        }
        // `mime_type` (or the SDK's `content_type`): exact, or `type/*`.
        if let Some(m) = self
            .mime_type
            .as_deref()
            .or(self.content_type.as_deref())
            .filter(|m| !m.is_empty())
        {
            if m.len() > 255 || m.chars().any(char::is_control) {
                return Err(DomainError::invalid_field(
                    "mime_type",
                    "at most 255 characters, no control characters",
                ));
            }
            match m.strip_suffix("/*") {
                Some(major) => {
                    let b = n.bind(format!("{}/%", like_escape(major)));
                    n.conditions.push(format!("f.mime_type LIKE {b}"));
                }
                None => {
                    let b = n.bind(m.to_string());
                    n.conditions.push(format!("f.mime_type = {b}"));
                }
            }
        }
        if let Some(s) = self.status.as_deref().filter(|s| !s.is_empty()) {
            if !matches!(s, "pending" | "available" | "failed") {
                return Err(DomainError::invalid_field(
                    "status",
                    "pending, available or failed (deleted files are not listed)",
                ));
            }
            let b = n.bind(s.to_string());
            n.conditions.push(format!("f.status = {b}"));
        }
        if let Some(v) = self.visibility.as_deref().filter(|v| !v.is_empty()) {
            if Visibility::parse(v).is_none() {
                return Err(DomainError::invalid_field(
                    "visibility",
                    "private, organization or public",
                ));
            }
            let b = n.bind(v.to_string());
            n.conditions.push(format!("f.visibility = {b}"));
        }
        if let Some(m) = self.metadata.as_ref().filter(|m| !m.is_empty()) {
            let b = n.bind(Value::Object(m.clone()));
            n.conditions.push(format!("f.metadata @> {b}"));
        }
        if let Some(q) = self
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
        {
            let b = n.bind(format!("%{}%", like_escape(q)));
            n.conditions
                .push(format!("(f.name ILIKE {b} OR f.storage_key ILIKE {b})"));
        }
        Ok(())
    }
}

impl Storage {
    /// `POST /storage/files/list`: a catalog (`s3_id`) is required.
    pub async fn file_list(
        &self,
        client: &str,
        user: &EndUser,
        r: ListRequest,
    ) -> Result<Value, DomainError> {
        if r.s3_id.as_deref().is_none_or(|s| s.trim().is_empty()) {
            return Err(DomainError::invalid_field("s3_id", "required"));
        }
        self.file_search(client, user, r, LIST_LIMIT, "list").await
    }

    /// The readable files matching the filters, by key, a page at a time
    /// (`limit` ≤ 500, `default_limit` when absent; `has_more`).
    pub async fn file_search(
        &self,
        client: &str,
        user: &EndUser,
        r: ListRequest,
        default_limit: i64,
        operation: &str,
    ) -> Result<Value, DomainError> {
        let (limit, offset) = super::audit::page(r.limit, r.offset, default_limit, LIST_LIMIT)?;
        let s3_id = r
            .s3_id
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(catalog_id)
            .transpose()?;
        let tenant = self.files_tenant(client).await?;
        let mut n = Narrowing::readable(&tenant, user);
        r.narrow(&mut n, s3_id)?;
        if let Some(id) = s3_id {
            // The catalog must be the client's (else the same 404 as a file).
            self.catalog_store(client, id).await?;
        }
        let sql = n.select(limit + 1, offset);
        let rows = {
            let conn = tenant.pool.get().await?;
            conn.query(&sql, &n.values()).await.map_err(pg)?
        };
        let has_more = rows.len() as i64 > limit;
        let candidates: Vec<FileRow> = rows.iter().take(limit as usize).map(row).collect();
        let ids: Vec<Uuid> = candidates.iter().map(|f| f.id).collect();
        let grants = Self::grants(&tenant, &ids).await?;
        let files: Vec<Value> = candidates
            .iter()
            .filter(|f| Self::permits(f, &grants, user, Permission::Read))
            .map(FileRow::view)
            .collect();
        let prefix = r.prefix.as_deref().or(r.key_prefix.as_deref());
        Self::audit(&tenant, operation, "ok", user, None, prefix).await;
        Ok(json!({
            "count": files.len(),
            "files": files,
            "limit": limit,
            "offset": offset,
            "has_more": has_more,
            "next_offset": if has_more { Some(offset + limit) } else { None },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_text_is_literal() {
        assert_eq!(like_escape(r"a%b_c\d"), r"a\%b\_c\\d");
    }

    #[test]
    fn filters_bind_every_value() {
        let r: ListRequest = serde_json::from_value(json!({
            "prefix": "p/", "name": "n'; DROP TABLE x", "mime_type": "image/*", "status": "available",
            "visibility": "public", "metadata": {"k": 1}, "query": "50%",
        }))
        .unwrap();
        let mut n = Narrowing {
            conditions: Vec::new(),
            params: Vec::new(),
        };
        r.narrow(&mut n, Some(Uuid::nil())).unwrap();
        let sql = n.conditions.join(" AND ");
        assert!(!sql.contains("DROP") && !sql.contains("50"), "{sql}");
        assert!(
            sql.contains("f.mime_type LIKE $") && sql.contains("f.metadata @> $"),
            "{sql}"
        );
        assert_eq!(n.params.len(), 8, "{sql}");
        for bad in [
            json!({ "status": "purged" }),
            json!({ "visibility": "everyone" }),
            json!({ "prefix": "../x" }),
            json!({ "name": "x".repeat(513) }),
        ] {
            let r: ListRequest = serde_json::from_value(bad.clone()).unwrap();
            let mut n = Narrowing {
                conditions: Vec::new(),
                params: Vec::new(),
            };
            assert!(r.narrow(&mut n, None).is_err(), "{bad}");
        }
    }
}
