-- Pipelines and statistics (issue 19), all in the catalog (the logging
-- store): pipeline templates and step logs, the gateway operation log and
-- the statistics built from it, pressure snapshots, query optimization runs
-- and recommendations, vacuum health snapshots.

CREATE TABLE IF NOT EXISTS pipeline_templates (
    name        text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
    definition  jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS pipeline_step_log (
    id               bigserial PRIMARY KEY,
    pipeline_run_id  uuid NOT NULL,
    pipeline_name    text,
    step             text NOT NULL CHECK (step IN ('fetch', 'transform', 'sink')),
    client_name      text,
    table_name       text,
    rows_in          bigint NOT NULL DEFAULT 0,
    rows_out         bigint NOT NULL DEFAULT 0,
    errors           integer NOT NULL DEFAULT 0,
    dry_run          boolean NOT NULL DEFAULT false,
    duration_ms      bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS pipeline_step_log_run ON pipeline_step_log (pipeline_run_id);

-- One row per data-plane request, written in batches off the request path.
-- UNLOGGED: telemetry at the request rate, not worth a WAL record per row
-- (a crash empties it; the statistics built from it below are logged
-- tables and stay; streaming replicas do not carry it).
CREATE UNLOGGED TABLE IF NOT EXISTS gateway_operation_log (
    id           bigserial PRIMARY KEY,
    request_id   text NOT NULL,
    client_name  text,
    table_name   text,
    operation    text NOT NULL,
    method       text,
    path         text,
    status_code  integer NOT NULL,
    duration_ms  bigint NOT NULL,
    error        boolean NOT NULL DEFAULT false,
    cached       boolean NOT NULL DEFAULT false,
    cache_key    text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS gateway_operation_log_drill
    ON gateway_operation_log (client_name, table_name, operation, created_at DESC);
-- Appended in time order: a BRIN range index serves retention and time
-- windows at a fraction of a B-tree's upkeep per row.
CREATE INDEX IF NOT EXISTS gateway_operation_log_created
    ON gateway_operation_log USING brin (created_at);

CREATE TABLE IF NOT EXISTS client_statistics (
    client_name            text PRIMARY KEY,
    total_requests         bigint NOT NULL DEFAULT 0,
    successful_requests    bigint NOT NULL DEFAULT 0,
    failed_requests        bigint NOT NULL DEFAULT 0,
    total_cached_requests  bigint NOT NULL DEFAULT 0,
    total_operations       bigint NOT NULL DEFAULT 0,
    last_request_at        timestamptz,
    last_operation_at      timestamptz,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS client_table_statistics (
    client_name       text NOT NULL,
    table_name        text NOT NULL,
    operation         text NOT NULL,
    total_operations  bigint NOT NULL DEFAULT 0,
    error_operations  bigint NOT NULL DEFAULT 0,
    last_operation_at timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_name, table_name, operation)
);

CREATE TABLE IF NOT EXISTS client_pressure_runs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('collect', 'backfill')),
    status       text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    hours_back   integer,
    snapshots    integer NOT NULL DEFAULT 0,
    error        text,
    requested_at timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

CREATE TABLE IF NOT EXISTS client_pressure_snapshots (
    id               bigserial PRIMARY KEY,
    run_id           bigint REFERENCES client_pressure_runs (id) ON DELETE SET NULL,
    client_name      text NOT NULL,
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    requests         bigint NOT NULL,
    errors           bigint NOT NULL,
    request_rate     double precision NOT NULL,
    error_rate       double precision NOT NULL,
    p95_duration_ms  double precision,
    pool_waits       bigint,
    pool_timeouts    bigint,
    tables           jsonb NOT NULL DEFAULT '[]'::jsonb,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS client_pressure_snapshots_client
    ON client_pressure_snapshots (client_name, window_end DESC);

CREATE TABLE IF NOT EXISTS query_optimization_runs (
    id              bigserial PRIMARY KEY,
    client_name     text NOT NULL,
    status          text NOT NULL CHECK (status IN ('completed', 'failed')),
    recommendations integer NOT NULL DEFAULT 0,
    error           text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX IF NOT EXISTS query_optimization_runs_client ON query_optimization_runs (client_name, id DESC);

CREATE TABLE IF NOT EXISTS query_optimization_recommendations (
    id          bigserial PRIMARY KEY,
    run_id      bigint NOT NULL REFERENCES query_optimization_runs (id) ON DELETE CASCADE,
    client_name text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('missing_index', 'unused_index', 'duplicate_index', 'unindexed_foreign_key')),
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    columns     text[] NOT NULL,
    sql         text,
    rationale   text NOT NULL,
    fingerprint text NOT NULL,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'applied', 'dismissed')),
    applied_by  text,
    applied_at  timestamptz,
    apply_error text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (client_name, fingerprint)
);

CREATE TABLE IF NOT EXISTS vacuum_health_snapshots (
    id                    bigserial PRIMARY KEY,
    client_name           text NOT NULL,
    instance_id           uuid,
    host                  text,
    recorded_at           timestamptz NOT NULL DEFAULT now(),
    total_dead_rows       bigint NOT NULL DEFAULT 0,
    tables_needing_vacuum integer NOT NULL DEFAULT 0,
    tables_with_bloat     integer NOT NULL DEFAULT 0,
    xid_freeze_risk       integer NOT NULL DEFAULT 0,
    freeze_max_age        bigint,
    collection_error      text
);
CREATE INDEX IF NOT EXISTS vacuum_health_snapshots_client ON vacuum_health_snapshots (client_name, id DESC);

CREATE TABLE IF NOT EXISTS vacuum_health_table_stats (
    id                        bigserial PRIMARY KEY,
    snapshot_id               bigint NOT NULL REFERENCES vacuum_health_snapshots (id) ON DELETE CASCADE,
    schemaname                text NOT NULL,
    relname                   text NOT NULL,
    n_live_tup                bigint NOT NULL,
    n_dead_tup                bigint NOT NULL,
    dead_pct                  double precision,
    last_vacuum               timestamptz,
    last_autovacuum           timestamptz,
    xid_age                   bigint,
    xid_age_pct_of_freeze_max double precision
);
CREATE INDEX IF NOT EXISTS vacuum_health_table_stats_snapshot ON vacuum_health_table_stats (snapshot_id);
