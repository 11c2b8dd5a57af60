-- Provisioning (issue 21): databases Athena created or adopted, clone jobs
-- and their events, Docker instances, local pipelines.

-- A database Athena created (local cluster, Docker instance, clone target).
CREATE TABLE athena_provisioned_databases (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- the client whose server holds it (local), or NULL (docker/clone)
    server_client text,
    database_name text NOT NULL,
    -- the client registered for it, if any
    client_name text,
    kind text NOT NULL CHECK (kind IN ('local', 'docker', 'clone')),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (server_client, database_name)
);

-- Clone jobs. `status`, `run_token`, `worker_id`, `attempts`, `run_after`,
-- `started_at`, `finished_at`, `result`, `error` are the lease columns of
-- src/jobs/mod.rs (queued/running/completed/failed); `clone_status` and
-- `phase` are what the contract shows (CloneJobStatus, CloneJobPhase). The
-- source URI is sealed (src/secrets.rs) and never returned.
CREATE TABLE clone_jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    status text NOT NULL DEFAULT 'queued',
    clone_status text NOT NULL DEFAULT 'queued',
    phase text NOT NULL DEFAULT 'validate_source',
    source_uri_sealed bytea NOT NULL,
    -- the request without secrets (target, provisioning, registration)
    spec jsonb NOT NULL,
    redacted_summary jsonb NOT NULL DEFAULT '{}',
    requested_by text,
    attempts int NOT NULL DEFAULT 0,
    max_attempts int NOT NULL DEFAULT 3,
    cancel_requested boolean NOT NULL DEFAULT false,
    failure_summary jsonb,
    verification_summary jsonb,
    run_token uuid,
    worker_id text,
    result jsonb,
    error text,
    run_after timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    completed_at timestamptz
);
CREATE INDEX clone_jobs_queued ON clone_jobs (created_at) WHERE status IN ('queued', 'running');

CREATE TABLE clone_job_events (
    event_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id uuid NOT NULL REFERENCES clone_jobs (id) ON DELETE CASCADE,
    phase text NOT NULL,
    level text NOT NULL DEFAULT 'info',
    kind text NOT NULL,
    message text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    daemon_id text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX clone_job_events_job ON clone_job_events (job_id, created_at);

-- Docker instances Athena started (containers labelled athena.managed=true).
CREATE TABLE athena_provision_instances (
    container_name text PRIMARY KEY,
    container_id text,
    image text NOT NULL,
    host text NOT NULL DEFAULT '127.0.0.1',
    host_port int,
    database_name text NOT NULL DEFAULT 'postgres',
    db_user text NOT NULL DEFAULT 'postgres',
    password_sealed bytea,
    client_name text,
    bindings jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- POST /admin/provision/local/pipeline runs.
CREATE TABLE athena_provision_pipelines (
    job_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_name text NOT NULL,
    mode text NOT NULL,
    options jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL,
    steps jsonb NOT NULL DEFAULT '[]',
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
