-- Webhook sinks (issue 15): an event of a source client projected into a
-- row of a target client's table (`/admin/webhook-sinks*`,
-- `src/catalog/webhook_sinks.rs`, delivery in `src/events/sinks.rs`).
--
-- `column_map` maps each target column to a JSON pointer into the event
-- (`/row/...` points into the current source row). `on_conflict`:
-- `{columns: [...], action: merge|nothing}` or NULL (plain insert).
-- The target client has no foreign key: a sink whose target was removed
-- retries its jobs and then marks them failed. Every change notifies
-- `athena_events_changed` (the subscription index of every replica).
CREATE TABLE IF NOT EXISTS athena_webhook_sinks (
    id                 bigserial PRIMARY KEY,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    source_client_name text NOT NULL REFERENCES athena_clients (client_name) ON UPDATE CASCADE ON DELETE CASCADE,
    route_key          text NOT NULL,
    source_table_name  text,
    target_client_name text NOT NULL,
    target_schema      text NOT NULL DEFAULT 'public',
    target_table       text NOT NULL,
    column_map         jsonb NOT NULL CHECK (jsonb_typeof(column_map) = 'object'),
    on_conflict        jsonb,
    enabled            boolean NOT NULL DEFAULT true,
    max_attempts       integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 10),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_client_name, name)
);

-- Every delivery attempt of a sink (the worker's and `test`'s; a test is
-- rolled back, `committed` false).
CREATE TABLE IF NOT EXISTS gateway_webhook_sink_deliveries (
    id           bigserial PRIMARY KEY,
    sink_id      bigint NOT NULL REFERENCES athena_webhook_sinks (id) ON DELETE CASCADE,
    outbox_id    uuid,
    event_id     uuid NOT NULL,
    route_key    text NOT NULL,
    attempt      integer NOT NULL,
    ok           boolean NOT NULL,
    affected     bigint NOT NULL DEFAULT 0,
    rows         jsonb,
    duration_ms  integer NOT NULL,
    error        text,
    test         boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS gateway_webhook_sink_deliveries_sink
    ON gateway_webhook_sink_deliveries (sink_id, id DESC);

DROP TRIGGER IF EXISTS athena_events_changed ON athena_webhook_sinks;
CREATE TRIGGER athena_events_changed
    AFTER INSERT OR UPDATE OR DELETE ON athena_webhook_sinks
    FOR EACH STATEMENT EXECUTE FUNCTION athena_events_notify();
