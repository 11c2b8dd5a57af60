-- Deferred gateway writes: insert/update/delete of a client with deferred
-- writes enabled are queued here in the request (the 200 answer follows the
-- COMMIT), then executed by the background workers (src/gateway/deferred.rs).
-- `id` is the request id the client polls with `GET /gateway/deferred/{id}`;
-- it is scoped to `client_name`. `payload` is the validated request body
-- (plus the header-derived options); `operation` names the canonical route.
-- `run_token` fences a worker: only the holder of the current token may
-- record the outcome, so a worker whose job was reclaimed cannot overwrite
-- it. Exactly-once on the tenant side is a marker row written in the same
-- tenant transaction as the write (`athena_deferred_applied`, see the
-- module). `idempotency_key` (the `Idempotency-Key` header) makes a retried
-- enqueue return the first request id instead of queueing twice.
CREATE TABLE IF NOT EXISTS athena_deferred_requests (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_name     text NOT NULL,
    operation       text NOT NULL CHECK (operation IN ('insert', 'update', 'delete')),
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    result          jsonb,
    error           text,
    idempotency_key text,
    run_token       uuid,
    worker_id       text,
    run_after       timestamptz NOT NULL DEFAULT now(),
    requeue_count   integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 255)
);

CREATE UNIQUE INDEX IF NOT EXISTS athena_deferred_requests_idempotency
    ON athena_deferred_requests (client_name, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The claim query: the oldest runnable queued job.
CREATE INDEX IF NOT EXISTS athena_deferred_requests_queued
    ON athena_deferred_requests (run_after, created_at)
    WHERE status = 'queued';

-- Reclaiming jobs whose worker died.
CREATE INDEX IF NOT EXISTS athena_deferred_requests_running
    ON athena_deferred_requests (started_at)
    WHERE status = 'running';
