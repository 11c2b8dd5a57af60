-- The narrowing statement of POST /storage/files/list (src/storage/files/list.rs)
-- for bench-user of bench-org: the readable rows under one prefix, by key.
-- `pgbench -D s3=<catalog id>`.
SELECT id, s3_id, bucket, storage_key, name, original_name, mime_type, size_bytes,
       checksum_sha256, resource_id, organization_id, uploaded_by_user_id, visibility, status,
       metadata, created_at, updated_at, deleted_at
  FROM athena.files f
 WHERE f.client_name = 'bench' AND f.status NOT IN ('soft_deleted', 'purged')
   AND (f.uploaded_by_user_id = 'bench-user' OR f.visibility = 'public'
        OR (f.visibility = 'organization' AND f.organization_id = 'bench-org')
        OR EXISTS (SELECT 1 FROM athena.file_permissions g
                    WHERE g.file_id = f.id AND g.revoked_at IS NULL
                      AND (g.expires_at IS NULL OR g.expires_at > now())
                      AND ((g.principal_type = 'user' AND g.principal_id = 'bench-user')
                        OR (g.principal_type = 'organization' AND g.principal_id = 'bench-org'))))
   AND f.s3_id = :s3::uuid AND f.storage_key COLLATE "C" LIKE 'bench-list/%'
 ORDER BY f.storage_key COLLATE "C", f.id LIMIT 101 OFFSET 0;
