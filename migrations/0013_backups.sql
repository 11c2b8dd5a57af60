-- Backups to S3, restores, schedules and the daemon registry (issue 18;
-- `src/backups/`, `/admin/backups*`, `/admin/daemons`).
--
-- `athena_backup_jobs` is a job table of the shared lease module
-- (`src/jobs/mod.rs`: `id uuid`, status, run_token, worker_id, attempts,
-- run_after, started_at — renewed by the running worker —, finished_at,
-- result, error). `job_id` is the number the API shows. A direct `pg_uri`
-- target is kept only sealed (`src/secrets.rs`, `target_sealed`); its
-- printable form is `target_redacted` (`postgres://user:***@host:port/db`).
-- `cancel_requested` is the flag the owning worker polls every second.
-- A scheduled job carries its `(schedule_id, slot)`: unique, so every
-- replica's scheduler may try to queue a due slot and exactly one succeeds.
CREATE TABLE IF NOT EXISTS athena_backup_jobs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id              bigserial NOT NULL UNIQUE,
    job_type            text NOT NULL CHECK (job_type IN ('backup', 'restore')),
    client_name         text,
    target_sealed       bytea,
    target_redacted     text,
    label               text,
    recovery_strategy   text NOT NULL DEFAULT 'none'
                        CHECK (recovery_strategy IN ('none', 'repair_missing_role_oids')),
    timeout_seconds     integer CHECK (timeout_seconds IS NULL OR timeout_seconds > 0),
    s3_bucket           text,
    s3_key              text,
    upload_id           text,
    size_bytes          bigint,
    bytes_written       bigint NOT NULL DEFAULT 0,
    progress_stage      text NOT NULL DEFAULT 'pending',
    cancel_requested    boolean NOT NULL DEFAULT false,
    schedule_id         bigint,
    slot                timestamptz,
    execution_daemon_id text,
    status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    attempts            integer NOT NULL DEFAULT 0,
    result              jsonb,
    error               text,
    run_token           uuid,
    worker_id           text,
    run_after           timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    first_started_at    timestamptz,
    started_at          timestamptz,
    finished_at         timestamptz,
    UNIQUE (schedule_id, slot)
);

CREATE INDEX IF NOT EXISTS athena_backup_jobs_queued
    ON athena_backup_jobs (created_at) WHERE status IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS athena_backup_jobs_completed
    ON athena_backup_jobs (finished_at DESC, job_id DESC)
    WHERE status = 'completed' AND job_type = 'backup';

-- What a job did, line by line (`GET /admin/backups/jobs/{id}` → `logs`).
-- Never a password: messages are written by the worker, tool output is
-- redacted first.
CREATE TABLE IF NOT EXISTS athena_backup_job_logs (
    id         bigserial PRIMARY KEY,
    job        uuid NOT NULL REFERENCES athena_backup_jobs (id) ON DELETE CASCADE,
    level      text NOT NULL DEFAULT 'info',
    message    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS athena_backup_job_logs_job ON athena_backup_job_logs (job, id);

-- Schedules: a due slot (UTC) becomes one job of `athena_backup_jobs`.
CREATE TABLE IF NOT EXISTS athena_backup_schedules (
    id                  bigserial PRIMARY KEY,
    client_name         text NOT NULL,
    frequency           text NOT NULL CHECK (frequency IN ('hourly', 'daily', 'weekly', 'monthly')),
    time_of_day         text NOT NULL DEFAULT '00:00',
    day_of_week         integer CHECK (day_of_week IS NULL OR day_of_week BETWEEN 0 AND 6),
    day_of_month        integer CHECK (day_of_month IS NULL OR day_of_month BETWEEN 1 AND 31),
    label               text,
    enabled             boolean NOT NULL DEFAULT true,
    execution_daemon_id text,
    last_slot           timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Every background worker loop of every replica, heartbeating.
CREATE TABLE IF NOT EXISTS athena_daemon_registry (
    daemon_id         text PRIMARY KEY,
    kind              text NOT NULL,
    host              text NOT NULL,
    pid               integer NOT NULL,
    version           text NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at timestamptz NOT NULL DEFAULT now()
);
