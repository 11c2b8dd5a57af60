-- Storage catalogs of a tenant (issue 11): where the tenant's files live.
-- Apps may keep their own tables in schema `athena` (the SDK's
-- athena.users); these tables are the gateway's: the structured data plane
-- never shows them (src/db/migrate.rs TENANT_TABLES), and the secrets in
-- them are AES-256-GCM ciphertext bound to their client, catalog and
-- credential (src/secrets.rs).
CREATE SCHEMA IF NOT EXISTS athena;

CREATE TABLE athena.s3_catalogs (
    id                   uuid PRIMARY KEY,
    -- Two registered clients may share one database: each sees its own.
    client_name          text NOT NULL,
    name                 text NOT NULL,
    description          text NOT NULL DEFAULT '',
    endpoint             text NOT NULL,
    region               text NOT NULL,
    bucket               text,
    provider             text NOT NULL,
    metadata             jsonb NOT NULL DEFAULT '{}',
    is_active            boolean NOT NULL DEFAULT true,
    active_credential_id uuid,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz
);
CREATE UNIQUE INDEX s3_catalogs_live_name ON athena.s3_catalogs (client_name, lower(name)) WHERE deleted_at IS NULL;

CREATE TABLE athena.s3_credentials (
    id                      uuid PRIMARY KEY,
    catalog_id              uuid NOT NULL REFERENCES athena.s3_catalogs (id),
    access_key_id           text NOT NULL,
    secret_ciphertext       bytea NOT NULL,
    session_token_ciphertext bytea,
    is_active               boolean NOT NULL DEFAULT true,
    created_at              timestamptz NOT NULL DEFAULT now(),
    deactivated_at          timestamptz
);
CREATE INDEX s3_credentials_catalog ON athena.s3_credentials (catalog_id);
