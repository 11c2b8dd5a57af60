//! Folders of managed files (`/storage/folders/list|tree|delete|move`):
//! the prefixes of a catalog's rows, never S3 listings.
//!
//! - `list` / `tree` are built from the rows the caller may read under the
//!   prefix (at most `FOLDER_SCAN` of them; `truncated` says when more
//!   exist).
//! - `delete` / `move` lock every live row under the prefix, check each
//!   one first (`delete`, resp. `write`; a file the caller may not even
//!   read counts as forbidden) — one refusal and nothing is done — then
//!   act: delete soft-deletes the rows in that transaction, then deletes
//!   the objects; move updates the rows in that transaction, copies every
//!   object to its new key, commits, then deletes the old keys. One call handles
//!   at most `FOLDER_FILES` files. Grants, revokes and deletes of those
//!   files wait for the lock, so none changes a decision half-way.

use super::list::{catalog_id, Narrowing};
use super::*;
use crate::storage::objects::{folder_prefix, Source};
use futures_util::stream::{self, StreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `POST /storage/folders/list` and `tree` (`ListStorageFoldersRequest`).
#[derive(Debug, Deserialize)]
pub struct FolderRequest {
    #[serde(alias = "s3Id")]
    pub s3_id: String,
    #[serde(default)]
    pub prefix: String,
}

/// `POST /storage/folders/delete` (`StorageManagedFolderDeleteRequest`).
#[derive(Debug, Deserialize)]
pub struct FolderDeleteRequest {
    #[serde(alias = "s3Id")]
    pub s3_id: String,
    pub prefix: String,
}

/// `POST /storage/folders/move` (`StorageManagedFolderMoveRequest`).
#[derive(Debug, Deserialize)]
pub struct FolderMoveRequest {
    #[serde(alias = "s3Id")]
    pub s3_id: String,
    pub from_prefix: String,
    pub to_prefix: String,
}

/// Most readable rows `list` and `tree` read.
const FOLDER_SCAN: i64 = 10_000;
/// Most files one `delete` or `move` handles.
pub const FOLDER_FILES: usize = 1_000;
/// S3 calls in flight for one folder operation.
const PARALLEL: usize = 8;

/// `act(0..n)`, `PARALLEL` at a time, the results in order.
async fn each<T, F, Fut>(n: usize, act: F) -> Vec<T>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    stream::iter(0..n)
        .map(act)
        .buffered(PARALLEL)
        .collect()
        .await
}

/// A listing prefix: empty (the catalog's root) or a folder ending in `/`.
fn listing_prefix(prefix: &str) -> Result<String, DomainError> {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let p = format!("{trimmed}/");
    check_object_key("prefix", &p)?;
    Ok(p)
}

/// A folder of the tree: its direct files and its sub-folders.
#[derive(Default)]
struct Node {
    files: i64,
    size: i64,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn add(&mut self, rest: &str, size: i64) {
        match rest.split_once('/') {
            Some((dir, tail)) => self
                .children
                .entry(dir.to_string())
                .or_default()
                .add(tail, size),
            None => {
                self.files += 1;
                self.size += size;
            }
        }
    }

    fn totals(&self) -> (i64, i64) {
        self.children
            .values()
            .fold((self.files, self.size), |(f, s), c| {
                let (cf, cs) = c.totals();
                (f + cf, s + cs)
            })
    }

    fn view(&self, name: &str, prefix: &str) -> Value {
        let (total, size) = self.totals();
        let children: Vec<Value> = self
            .children
            .iter()
            .map(|(n, c)| c.view(n, &format!("{prefix}{n}/")))
            .collect();
        json!({
            "name": name,
            "prefix": prefix,
            "file_count": self.files,
            "total_files": total,
            "total_size_bytes": size,
            "children": children,
        })
    }
}

impl Storage {
    /// The readable rows under `prefix` of a catalog (at most
    /// `FOLDER_SCAN`), and whether there were more.
    async fn readable_under(
        &self,
        client: &str,
        user: &EndUser,
        s3_id: &str,
        prefix: &str,
    ) -> Result<(Arc<Tenant>, Vec<FileRow>, bool), DomainError> {
        let s3_id = catalog_id(s3_id)?;
        let tenant = self.files_tenant(client).await?;
        self.catalog_store(client, s3_id).await?;
        let mut n = Narrowing::readable(&tenant, user);
        n.under(s3_id, prefix);
        let sql = n.select(FOLDER_SCAN + 1, 0);
        let rows = {
            let conn = tenant.pool.get().await?;
            conn.query(&sql, &n.values()).await.map_err(pg)?
        };
        let truncated = rows.len() as i64 > FOLDER_SCAN;
        let candidates: Vec<FileRow> = rows.iter().take(FOLDER_SCAN as usize).map(row).collect();
        let ids: Vec<Uuid> = candidates.iter().map(|f| f.id).collect();
        let grants = Self::grants(&tenant, &ids).await?;
        let files = candidates
            .into_iter()
            .filter(|f| Self::permits(f, &grants, user, Permission::Read))
            .collect();
        Ok((tenant, files, truncated))
    }

    /// The immediate sub-folders of a prefix (with the readable files
    /// below each) and the number of files directly in it.
    pub async fn folder_list(
        &self,
        client: &str,
        user: &EndUser,
        r: FolderRequest,
    ) -> Result<Value, DomainError> {
        let prefix = listing_prefix(&r.prefix)?;
        let (tenant, files, truncated) =
            self.readable_under(client, user, &r.s3_id, &prefix).await?;
        let mut root = Node::default();
        for f in &files {
            root.add(&f.storage_key[prefix.len()..], f.size_bytes.unwrap_or(0));
        }
        let folders: Vec<Value> = root
            .children
            .iter()
            .map(|(name, c)| {
                let (count, size) = c.totals();
                json!({
                    "name": name,
                    "prefix": format!("{prefix}{name}/"),
                    "file_count": count,
                    "size_bytes": size,
                })
            })
            .collect();
        Self::audit(&tenant, "folder_list", "ok", user, None, Some(&prefix)).await;
        Ok(json!({
            "s3_id": r.s3_id.trim(),
            "prefix": prefix,
            "count": folders.len(),
            "folders": folders,
            "file_count": root.files,
            "truncated": truncated,
        }))
    }

    /// The folder tree below a prefix, with counts and sizes.
    pub async fn folder_tree(
        &self,
        client: &str,
        user: &EndUser,
        r: FolderRequest,
    ) -> Result<Value, DomainError> {
        let prefix = listing_prefix(&r.prefix)?;
        let (tenant, files, truncated) =
            self.readable_under(client, user, &r.s3_id, &prefix).await?;
        let mut root = Node::default();
        for f in &files {
            root.add(&f.storage_key[prefix.len()..], f.size_bytes.unwrap_or(0));
        }
        let name = prefix
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        Self::audit(&tenant, "folder_tree", "ok", user, None, Some(&prefix)).await;
        Ok(json!({
            "s3_id": r.s3_id.trim(),
            "prefix": prefix,
            "tree": root.view(&name, &prefix),
            "truncated": truncated,
        }))
    }

    /// Locks every live row under `prefix` and checks `wanted` on each:
    /// none readable → 404, more than `FOLDER_FILES` → 400, one refused →
    /// 403 (audited), nothing changed.
    async fn lock_folder<'a>(
        tx: tokio_postgres::Transaction<'a>,
        tenant: &Tenant,
        user: &EndUser,
        s3_id: Uuid,
        prefix: &str,
        wanted: Permission,
        operation: &str,
    ) -> Result<(tokio_postgres::Transaction<'a>, Vec<FileRow>), DomainError> {
        let pattern = format!("{}%", super::list::like_escape(prefix));
        let rows = tx
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM athena.files f
                      WHERE client_name = $1 AND s3_id = $2 AND storage_key COLLATE \"C\" LIKE $3
                        AND status NOT IN ('soft_deleted', 'purged')
                      ORDER BY storage_key COLLATE \"C\" LIMIT $4 FOR UPDATE"
                ),
                &[&tenant.name, &s3_id, &pattern, &(FOLDER_FILES as i64 + 1)],
            )
            .await
            .map_err(pg)?;
        let files: Vec<FileRow> = rows.iter().map(row).collect();
        let ids: Vec<Uuid> = files.iter().map(|f| f.id).collect();
        let grants = super::permissions::live_grants(&tx, &ids).await?;
        if !files
            .iter()
            .any(|f| Self::permits(f, &grants, user, Permission::Read))
        {
            return Err(DomainError::not_found("folder", prefix));
        }
        if files.len() > FOLDER_FILES {
            return Err(DomainError::invalid_field(
                "prefix",
                format!(
                    "the folder holds more than {FOLDER_FILES} files, the most one call handles: work on its sub-folders"
                ),
            ));
        }
        if let Some(refused) = files
            .iter()
            .find(|f| !Self::permits(f, &grants, user, wanted))
        {
            let readable = Self::permits(refused, &grants, user, Permission::Read);
            super::audit_on(
                &tx,
                tenant,
                operation,
                "denied",
                user,
                readable.then_some(refused),
                Some(prefix),
            )
            .await?;
            tx.commit().await.map_err(pg)?;
            return Err(DomainError::Forbidden(format!(
                "the end user may not {} one of the files under {prefix}; nothing was changed",
                wanted.as_str()
            )));
        }
        Ok((tx, files))
    }

    /// One audit row per file, written in one statement.
    async fn audit_files(
        tenant: &Tenant,
        operation: &str,
        user: &EndUser,
        outcomes: &[(&FileRow, &str, Option<String>)],
    ) {
        let Ok(conn) = tenant.pool.get().await else {
            return;
        };
        let ids: Vec<Uuid> = outcomes.iter().map(|(f, _, _)| f.id).collect();
        let keys: Vec<&str> = outcomes
            .iter()
            .map(|(f, _, _)| f.storage_key.as_str())
            .collect();
        let statuses: Vec<&str> = outcomes.iter().map(|(_, s, _)| *s).collect();
        let errors: Vec<Option<&str>> = outcomes.iter().map(|(_, _, e)| e.as_deref()).collect();
        let result = conn
            .execute(
                "INSERT INTO athena.audit_log_files
                   (client_name, file_id, operation, status, actor_user_id, organization_id, storage_key,
                    error, actor_source)
                 SELECT $1, u.id, $2, u.status, $3, $4, u.key, u.error, $9
                   FROM unnest($5::uuid[], $6::text[], $7::text[], $8::text[]) AS u(id, key, status, error)",
                &[&tenant.name, &operation, &user.user(), &user.organization_id, &ids, &keys, &statuses, &errors,
                  &user.source.as_str()],
            )
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, operation, "storage audit rows not written");
        }
    }

    /// Deletes every file under a prefix (all or nothing on the checks):
    /// the rows soft-deleted together, then the objects.
    pub async fn folder_delete(
        &self,
        client: &str,
        user: &EndUser,
        r: FolderDeleteRequest,
    ) -> Result<Value, DomainError> {
        let s3_id = catalog_id(&r.s3_id)?;
        let prefix = folder_prefix("prefix", &r.prefix)?;
        let tenant = self.files_tenant(client).await?;
        let (store, _) = self.catalog_store(client, s3_id).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let (tx, files) = Self::lock_folder(
            tx,
            &tenant,
            user,
            s3_id,
            &prefix,
            Permission::Delete,
            "folder_delete",
        )
        .await?;
        let ids: Vec<Uuid> = files.iter().map(|f| f.id).collect();
        tx.execute(
            "UPDATE athena.files SET status = 'soft_deleted', deleted_at = now(), updated_at = now()
              WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        drop(conn);
        // The rows are gone for every reader; now the objects.
        let results: Vec<Result<(), DomainError>> = each(files.len(), |i| {
            let (f, store) = (&files[i], &store);
            async move {
                let call = Call::new(Method::DELETE, Some(&f.bucket), Some(&f.storage_key));
                self.s3.send(store, call, &f.storage_key).await.map(|_| ())
            }
        })
        .await;
        let mut errors = Vec::new();
        let outcomes: Vec<(&FileRow, &str, Option<String>)> = files
            .iter()
            .zip(&results)
            .map(|(f, res)| match res {
                Ok(()) => (f, "ok", Some(prefix.clone())),
                Err(_) => {
                    errors
                        .push(json!({ "file_id": f.id.to_string(), "storage_key": f.storage_key }));
                    (f, "failed", Some("the object was not deleted".to_string()))
                }
            })
            .collect();
        for f in &files {
            self.forget_urls(client, f.id).await;
        }
        Self::audit_files(&tenant, "folder_delete", user, &outcomes).await;
        Ok(json!({
            "s3_id": s3_id.to_string(),
            "prefix": prefix,
            "processed_files": files.len(),
            "errors": errors,
        }))
    }

    /// Moves every file under `from_prefix` to `to_prefix` (all or nothing
    /// on the checks): objects copied, rows updated together, old keys
    /// deleted. Grants stay with the files (same ids).
    pub async fn folder_move(
        &self,
        client: &str,
        user: &EndUser,
        r: FolderMoveRequest,
    ) -> Result<Value, DomainError> {
        let s3_id = catalog_id(&r.s3_id)?;
        let from = folder_prefix("from_prefix", &r.from_prefix)?;
        let to = folder_prefix("to_prefix", &r.to_prefix)?;
        if to.starts_with(&from) || from.starts_with(&to) {
            return Err(DomainError::invalid_field(
                "to_prefix",
                "must not contain or lie inside from_prefix",
            ));
        }
        let tenant = self.files_tenant(client).await?;
        let (store, _) = self.catalog_store(client, s3_id).await?;
        let mut conn = tenant.pool.get().await?;
        let tx = conn.transaction().await.map_err(pg)?;
        let (tx, files) = Self::lock_folder(
            tx,
            &tenant,
            user,
            s3_id,
            &from,
            Permission::Write,
            "folder_move",
        )
        .await?;
        let targets: Vec<String> = files
            .iter()
            .map(|f| format!("{to}{}", &f.storage_key[from.len()..]))
            .collect();
        for t in &targets {
            check_object_key("to_prefix", t)?;
        }
        // No destination may hold a file or an object already.
        let taken = tx
            .query_opt(
                "SELECT 1 FROM athena.files WHERE client_name = $1 AND s3_id = $2
                    AND storage_key = ANY($3) AND status <> 'purged' LIMIT 1",
                &[&tenant.name, &s3_id, &targets],
            )
            .await
            .map_err(pg)?
            .is_some();
        let heads: Vec<Result<bool, DomainError>> = each(files.len(), |i| {
            let (f, t, store) = (&files[i], &targets[i], &store);
            async move { self.key_taken(store, &f.bucket, t).await }
        })
        .await;
        let mut occupied = taken;
        for h in heads {
            occupied |= h?;
        }
        if occupied {
            super::audit_on(&tx, &tenant, "folder_move", "denied", user, None, Some(&to)).await?;
            tx.commit().await.map_err(pg)?;
            return Err(DomainError::Forbidden(format!(
                "a key under {to} is not available to this user; nothing was moved"
            )));
        }
        // The rows first (uncommitted): the unique key index then stops an
        // upload racing for a destination key before any byte is copied
        // (theirs waits for this transaction, or this fails here).
        let ids: Vec<Uuid> = files.iter().map(|f| f.id).collect();
        tx.execute(
            "UPDATE athena.files f SET storage_key = u.key, updated_at = now()
               FROM unnest($1::uuid[], $2::text[]) AS u(id, key) WHERE f.id = u.id",
            &[&ids, &targets],
        )
        .await
        .map_err(|e| match e.as_db_error().map(|d| d.code().code()) {
            Some("23505") => DomainError::Forbidden(format!(
                "a key under {to} is not available to this user; nothing was moved"
            )),
            _ => pg(e),
        })?;
        // Copy every object (a file never uploaded has none to copy).
        let copies: Vec<Result<bool, DomainError>> = each(files.len(), |i| {
            let (f, t, store) = (&files[i], &targets[i], &store);
            async move {
                match self
                    .copy(
                        store,
                        Source::latest(&f.bucket, &f.storage_key),
                        &f.bucket,
                        t,
                        None,
                    )
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(DomainError::NotFound { .. }) if f.status != "available" => Ok(false),
                    Err(e) => Err(e),
                }
            }
        })
        .await;
        let failed = copies
            .iter()
            .find_map(|c| c.as_ref().err().map(ToString::to_string));
        let copied: Vec<(&FileRow, &String)> = files
            .iter()
            .zip(&targets)
            .zip(&copies)
            .filter(|(_, c)| matches!(c, Ok(true)))
            .map(|(ft, _)| ft)
            .collect();
        let updated = match failed {
            Some(why) => {
                drop(tx);
                Err(DomainError::ServiceUnavailable(format!(
                    "an object could not be copied ({why}); nothing was moved"
                )))
            }
            None => tx.commit().await.map_err(pg),
        };
        drop(conn);
        // The keys to delete now, every version of each (nothing in
        // Athena reaches them after the move, and a later file at the key
        // must not find them): the copies when the move failed, else the
        // sources.
        let garbage: Vec<FileRow> = match &updated {
            Err(_) => copied
                .iter()
                .map(|(f, t)| FileRow {
                    storage_key: t.to_string(),
                    ..(*f).clone()
                })
                .collect(),
            Ok(()) => copied.iter().map(|(f, _)| (*f).clone()).collect(),
        };
        let deletes: Vec<bool> = each(garbage.len(), |i| {
            let (f, store) = (&garbage[i], &store);
            async move { self.delete_all_versions(store, f).await.is_ok() }
        })
        .await;
        if let Err(e) = updated {
            Self::audit(&tenant, "folder_move", "failed", user, None, Some(&from)).await;
            return Err(e);
        }
        let mut errors = Vec::new();
        let moved: Vec<FileRow> = files
            .iter()
            .zip(&targets)
            .map(|(f, t)| FileRow {
                storage_key: t.clone(),
                ..f.clone()
            })
            .collect();
        let mut left = deletes.iter();
        let outcomes: Vec<(&FileRow, &str, Option<String>)> = moved
            .iter()
            .zip(&copies)
            .map(|(f, c)| {
                let deleted = !matches!(c, Ok(true)) || *left.next().unwrap_or(&true);
                if deleted {
                    (f, "ok", Some(format!("moved from {from}")))
                } else {
                    errors
                        .push(json!({ "file_id": f.id.to_string(), "storage_key": f.storage_key }));
                    (
                        f,
                        "failed",
                        Some(format!("moved from {from}; the old object was not deleted")),
                    )
                }
            })
            .collect();
        for f in &moved {
            self.forget_urls(client, f.id).await;
        }
        Self::audit_files(&tenant, "folder_move", user, &outcomes).await;
        Ok(json!({
            "s3_id": s3_id.to_string(),
            "prefix": to,
            "from_prefix": from,
            "to_prefix": to,
            "processed_files": files.len(),
            "errors": errors,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_prefixes_are_the_root_or_a_folder() {
        assert_eq!(listing_prefix("").unwrap(), "");
        assert_eq!(listing_prefix("/").unwrap(), "");
        assert_eq!(listing_prefix("a").unwrap(), "a/");
        assert_eq!(listing_prefix("a/b/").unwrap(), "a/b/");
        assert!(listing_prefix("../a").is_err());
        assert!(listing_prefix("a\u{0}b").is_err());
    }

    #[test]
    fn the_tree_counts_direct_and_nested_files() {
        let mut root = Node::default();
        for (key, size) in [("x", 1), ("a/y", 2), ("a/b/z", 3), ("a/b/w", 4), ("c/v", 5)] {
            root.add(key, size);
        }
        let v = root.view("", "");
        assert_eq!(v["file_count"], 1);
        assert_eq!(v["total_files"], 5);
        assert_eq!(v["total_size_bytes"], 15);
        let a = &v["children"][0];
        assert_eq!(
            (a["name"].as_str(), a["prefix"].as_str()),
            (Some("a"), Some("a/"))
        );
        assert_eq!(
            (a["file_count"].as_i64(), a["total_files"].as_i64()),
            (Some(1), Some(3))
        );
        assert_eq!(a["children"][0]["prefix"], "a/b/");
        assert_eq!(a["children"][0]["total_size_bytes"], 7);
        assert_eq!(v["children"][1]["name"], "c");
    }
}
