-- Issue 18: multipart uploads whose abort failed (the store was down) are
-- kept here and retried by the backup workers with backoff until the store
-- answers; a row is deleted once its upload is aborted (or already gone).
CREATE TABLE IF NOT EXISTS athena_backup_pending_aborts (
    id              bigserial PRIMARY KEY,
    bucket          text NOT NULL,
    s3_key          text NOT NULL,
    upload_id       text NOT NULL,
    job_id          bigint,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bucket, s3_key, upload_id)
);
CREATE INDEX IF NOT EXISTS athena_backup_pending_aborts_due
    ON athena_backup_pending_aborts (next_attempt_at);

-- The daemon registry lists every supervised loop of every replica; a loop
-- backing off after a crash is listed but not running (status `stale`).
ALTER TABLE athena_daemon_registry ADD COLUMN IF NOT EXISTS running boolean NOT NULL DEFAULT true;
