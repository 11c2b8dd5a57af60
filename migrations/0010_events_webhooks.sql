-- Events out (issue 15): webhooks, the outbox and the delivery log.
--
-- `athena_webhooks`: a gateway webhook (`/admin/webhooks*`). `id` is the
-- contract's integer `WebhookIdParam`. `secret` is sealed with
-- `ATHENA_SECRET_KEY` (`src/secrets.rs`, context `webhook:<id>:secret`) and
-- never returned. Every change notifies `athena_events_changed`, so each
-- replica drops its cached subscriptions at once (`src/db/notify.rs`).
CREATE TABLE IF NOT EXISTS athena_webhooks (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    client_name  text NOT NULL REFERENCES athena_clients (client_name) ON UPDATE CASCADE ON DELETE CASCADE,
    route_key    text NOT NULL,
    table_name   text,
    url          text NOT NULL,
    secret       bytea,
    headers      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(headers) = 'object'),
    enabled      boolean NOT NULL DEFAULT true,
    timeout_ms   integer NOT NULL DEFAULT 5000 CHECK (timeout_ms BETWEEN 100 AND 10000),
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 10),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS athena_webhooks_client ON athena_webhooks (client_name, id);

-- The outbox: one job per (event, target) on the shared job/lease module
-- (`src/jobs/mod.rs`: status, run_token, worker_id, attempts, run_after,
-- started_at, finished_at, result, error). `target_kind` names who delivers
-- it (`webhook` now, `sink` later); `target_id` the row of that kind (no
-- foreign key: a deleted target fails its queued jobs). `event` is the whole
-- published event `{event_id, route_key, client_name, table_name,
-- occurred_at, data}`, written before the write's 2xx.
CREATE TABLE IF NOT EXISTS athena_outbox (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id     uuid NOT NULL,
    target_kind  text NOT NULL CHECK (target_kind IN ('webhook', 'sink')),
    target_id    text NOT NULL,
    event        jsonb NOT NULL,
    status       text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    result       jsonb,
    error        text,
    run_token    uuid,
    worker_id    text,
    run_after    timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    UNIQUE (event_id, target_kind, target_id)
);

CREATE INDEX IF NOT EXISTS athena_outbox_queued
    ON athena_outbox (run_after, created_at) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS athena_outbox_running
    ON athena_outbox (started_at) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS athena_outbox_target
    ON athena_outbox (target_kind, target_id, created_at);

-- Every delivery attempt of a webhook (the worker's and `test`'s).
-- `response` holds at most 64 KiB of the receiver's answer.
CREATE TABLE IF NOT EXISTS gateway_webhook_deliveries (
    id           bigserial PRIMARY KEY,
    webhook_id   bigint NOT NULL REFERENCES athena_webhooks (id) ON DELETE CASCADE,
    outbox_id    uuid,
    event_id     uuid NOT NULL,
    route_key    text NOT NULL,
    attempt      integer NOT NULL,
    status_code  integer,
    duration_ms  integer NOT NULL,
    error        text,
    response     text CHECK (response IS NULL OR octet_length(response) <= 65536),
    test         boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS gateway_webhook_deliveries_webhook
    ON gateway_webhook_deliveries (webhook_id, id DESC);

CREATE OR REPLACE FUNCTION athena_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('athena_events_changed', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS athena_events_changed ON athena_webhooks;
CREATE TRIGGER athena_events_changed
    AFTER INSERT OR UPDATE OR DELETE ON athena_webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION athena_events_notify();
