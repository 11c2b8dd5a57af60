-- Per-client configuration overrides (`athena_client_configs`, the typed
-- schema of src/catalog/client_configs.rs) and the admission limiter's
-- event log (`gateway_admission_events`, src/admission/).
--
-- A change to an override notifies `athena_clients_changed` like a change
-- to the client row itself, so every replica drops the client's pool and
-- record at once and rebuilds them with the new settings.
CREATE TABLE IF NOT EXISTS athena_client_configs (
    client_name text PRIMARY KEY REFERENCES athena_clients (client_name) ON DELETE CASCADE,
    config jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

DROP TRIGGER IF EXISTS athena_client_configs_changed ON athena_client_configs;
CREATE TRIGGER athena_client_configs_changed
    AFTER INSERT OR UPDATE OR DELETE ON athena_client_configs
    FOR EACH ROW EXECUTE FUNCTION athena_clients_notify();

CREATE TABLE IF NOT EXISTS gateway_admission_events (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    event_id text NOT NULL,
    method text NOT NULL,
    route text NOT NULL,
    client_name text,
    request_bytes bigint,
    defer_requested boolean NOT NULL DEFAULT false,
    is_query_route boolean NOT NULL DEFAULT false,
    decision text NOT NULL,
    reason text,
    deferred_request_id text,
    retry_after_seconds integer,
    window_seconds integer,
    global_limit_per_window bigint,
    per_client_limit_per_window bigint,
    meta jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX IF NOT EXISTS gateway_admission_events_created
    ON gateway_admission_events (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS gateway_admission_events_client
    ON gateway_admission_events (client_name, created_at DESC);
