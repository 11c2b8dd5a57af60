-- API keys: `ath_{public_id}.{secret}`. Only a keyed hash (HMAC-SHA256 with
-- the server's pepper) of the secret is stored; the plaintext is shown once.
CREATE TABLE IF NOT EXISTS athena_api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    public_id     text NOT NULL UNIQUE CHECK (public_id ~ '^[a-z0-9]{16}$'),
    secret_hash   bytea NOT NULL,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description   text,
    client_name   text,
    expires_at    timestamptz,
    is_active     boolean NOT NULL DEFAULT true,
    virgin_mode   boolean NOT NULL DEFAULT false,
    virgin_until_n_requests integer NOT NULL DEFAULT 0 CHECK (virgin_until_n_requests >= 0),
    max_whitelist_ips integer NOT NULL DEFAULT 0 CHECK (max_whitelist_ips >= 0),
    ip_whitelist  text[] NOT NULL DEFAULT '{}',
    ip_blacklist  text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Kept apart from the key row so recording use does not invalidate every
-- replica's cache (the key table notifies on change).
CREATE TABLE IF NOT EXISTS athena_api_key_usage (
    api_key_id   uuid PRIMARY KEY REFERENCES athena_api_keys (id) ON DELETE CASCADE,
    last_used_at timestamptz NOT NULL
);

-- Rights defined at runtime, beside the native ones compiled into Athena.
CREATE TABLE IF NOT EXISTS athena_api_key_rights (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9_*]+(\.[a-z0-9_*]+)*$'),
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS athena_api_key_grants (
    api_key_id uuid NOT NULL REFERENCES athena_api_keys (id) ON DELETE CASCADE,
    right_name text NOT NULL,
    PRIMARY KEY (api_key_id, right_name)
);

-- Global enforcement (one row) and per-client overrides.
CREATE TABLE IF NOT EXISTS athena_api_key_config (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    enforce_api_keys boolean NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO athena_api_key_config (singleton) VALUES (true) ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS athena_api_key_clients (
    client_name      text PRIMARY KEY,
    enforce_api_keys boolean NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Server secrets generated once and shared by every replica (the pepper).
CREATE TABLE IF NOT EXISTS athena_secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every change to keys, grants or enforcement tells each replica to drop
-- its cached view at once: a revoked key stops working everywhere.
CREATE OR REPLACE FUNCTION athena_auth_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('athena_auth_changed', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['athena_api_keys', 'athena_api_key_grants', 'athena_api_key_config', 'athena_api_key_clients', 'athena_api_key_rights']
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS athena_auth_changed ON %I', t);
        EXECUTE format('CREATE TRIGGER athena_auth_changed AFTER INSERT OR UPDATE OR DELETE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION athena_auth_notify()', t);
    END LOOP;
END
$$;
