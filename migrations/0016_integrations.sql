-- Integrations (issue 21): Typesense sync jobs and their runs.
--
-- Jobs come from configuration (`ATHENA_TYPESENSE_SYNC_JOBS`, upserted by
-- id at start, `src/integrations/typesense.rs`); no route creates them.
-- The Typesense API key is sealed with `ATHENA_SECRET_KEY`
-- (`src/secrets.rs`), never stored in clear.
CREATE TABLE IF NOT EXISTS typesense_sync_jobs (
    id                   bigint PRIMARY KEY,
    source_client_name   text NOT NULL,
    source_schema_name   text NOT NULL DEFAULT 'public',
    source_table_name    text NOT NULL,
    key_column           text NOT NULL,
    collection_name      text NOT NULL,
    base_url             text NOT NULL,
    api_key_sealed       bytea NOT NULL,
    batch_size           integer NOT NULL DEFAULT 500 CHECK (batch_size BETWEEN 1 AND 10000),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS typesense_sync_jobs_source
    ON typesense_sync_jobs (source_client_name, source_schema_name, source_table_name);

-- One row per run. `running` rows carry a heartbeat; a running row whose
-- heartbeat is older than the lease is taken as dead (the process that ran
-- it is gone) and marked failed before a new run starts.
CREATE TABLE IF NOT EXISTS typesense_sync_runs (
    id                bigserial PRIMARY KEY,
    job_id            bigint NOT NULL REFERENCES typesense_sync_jobs (id) ON DELETE CASCADE,
    status            text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'killed')),
    cancel_requested  boolean NOT NULL DEFAULT false,
    source_rows       bigint NOT NULL DEFAULT 0,
    imported_count    bigint NOT NULL DEFAULT 0,
    failed_count      bigint NOT NULL DEFAULT 0,
    last_key          text,
    error             text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    heartbeat_at      timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);

-- At most one running run per job (`run` answers 409 otherwise).
CREATE UNIQUE INDEX IF NOT EXISTS typesense_sync_runs_one_running
    ON typesense_sync_runs (job_id) WHERE status = 'running';
