-- The full client record of the contract (AthenaClientRecord), soft deletes,
-- and a notification on every change so each replica drops its cached pool
-- and record at once.
ALTER TABLE athena_clients
    ADD COLUMN IF NOT EXISTS id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN IF NOT EXISTS pg_uri_env_var text,
    ADD COLUMN IF NOT EXISTS config_uri_template text,
    ADD COLUMN IF NOT EXISTS metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN IF NOT EXISTS last_synced_from_config_at timestamptz,
    ADD COLUMN IF NOT EXISTS last_seen_at timestamptz,
    ADD COLUMN IF NOT EXISTS deleted_at timestamptz,
    ALTER COLUMN pg_uri DROP NOT NULL;

ALTER TABLE athena_clients
    ADD CONSTRAINT athena_clients_uri_source CHECK (pg_uri IS NOT NULL OR pg_uri_env_var IS NOT NULL);

CREATE UNIQUE INDEX IF NOT EXISTS athena_clients_id ON athena_clients (id);

CREATE OR REPLACE FUNCTION athena_clients_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('athena_clients_changed', COALESCE(NEW.client_name, OLD.client_name));
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS athena_clients_changed ON athena_clients;
CREATE TRIGGER athena_clients_changed
    AFTER INSERT OR UPDATE OR DELETE ON athena_clients
    FOR EACH ROW EXECUTE FUNCTION athena_clients_notify();
