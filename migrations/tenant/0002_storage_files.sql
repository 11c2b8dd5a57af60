-- Managed files of a tenant (issue 12): files that belong to someone, their
-- grants, their audit trail and their resumable uploads. Rows are scoped by
-- client (two registered clients may share one database) and organization.
CREATE TABLE athena.files (
    id                  uuid PRIMARY KEY,
    client_name         text NOT NULL,
    s3_id               uuid NOT NULL REFERENCES athena.s3_catalogs (id),
    bucket              text NOT NULL,
    storage_key         text NOT NULL,
    name                text NOT NULL,
    original_name       text,
    mime_type           text,
    size_bytes          bigint CHECK (size_bytes IS NULL OR size_bytes >= 0),
    checksum_sha256     text,
    resource_id         text,
    organization_id     text NOT NULL,
    uploaded_by_user_id text,
    visibility          text NOT NULL DEFAULT 'private'
                        CHECK (visibility IN ('private', 'organization', 'public')),
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'available', 'failed', 'soft_deleted', 'purged')),
    metadata            jsonb NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
-- One live row per object; listings by prefix use the pattern index.
CREATE UNIQUE INDEX files_live_key ON athena.files (client_name, s3_id, bucket, storage_key)
    WHERE status <> 'purged';
CREATE INDEX files_prefix ON athena.files (s3_id, storage_key text_pattern_ops);
CREATE INDEX files_organization ON athena.files (client_name, organization_id, created_at);

CREATE TABLE athena.file_permissions (
    id              uuid PRIMARY KEY,
    file_id         uuid NOT NULL REFERENCES athena.files (id),
    principal_type  text NOT NULL CHECK (principal_type IN ('user', 'organization', 'team', 'role')),
    principal_id    text NOT NULL,
    permission      text NOT NULL CHECK (permission IN ('read', 'write', 'delete', 'share', 'owner')),
    granted_by      text,
    expires_at      timestamptz,
    revoked_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX file_permissions_file ON athena.file_permissions (file_id) WHERE revoked_at IS NULL;
CREATE INDEX file_permissions_principal ON athena.file_permissions (principal_type, principal_id)
    WHERE revoked_at IS NULL;

CREATE TABLE athena.audit_log_files (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_name     text NOT NULL,
    file_id         uuid,
    operation       text NOT NULL,
    status          text NOT NULL,
    actor_user_id   text,
    organization_id text,
    storage_key     text,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_files_file ON athena.audit_log_files (file_id, created_at);

CREATE TABLE athena.multipart_uploads (
    id              uuid PRIMARY KEY,
    file_id         uuid NOT NULL REFERENCES athena.files (id),
    upload_id       text NOT NULL,
    actor_user_id   text NOT NULL,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'completed', 'aborted')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX multipart_uploads_upload ON athena.multipart_uploads (upload_id);
