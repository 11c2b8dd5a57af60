-- Managed files, sharing/folders/search (issue 12): grant metadata, and the
-- indexes the listings use. `files_prefix (s3_id, storage_key
-- text_pattern_ops)` (0002) serves `LIKE 'prefix%'`; listings page by key,
-- so the same range in byte order ("C") serves both the prefix match and the
-- order (a page of a small prefix among 100,000 rows reads only that page).
ALTER TABLE athena.file_permissions ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}';
CREATE INDEX files_prefix_ordered ON athena.files (s3_id, storage_key COLLATE "C");
-- The caller's own audit events (`/storage/audit/list` without `file_id`).
CREATE INDEX audit_log_files_actor ON athena.audit_log_files (client_name, actor_user_id, created_at);
