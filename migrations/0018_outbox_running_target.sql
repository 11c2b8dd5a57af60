-- The outbox claim skips targets with a live running batch
-- (`ONE_PER_TARGET` in src/events/mod.rs): a probe per queued candidate.
-- Without this index the probe walked every job of the target (all
-- statuses), so a claim over a busy target's backlog cost O(backlog²).
CREATE INDEX IF NOT EXISTS athena_outbox_running_target
    ON athena_outbox (target_kind, target_id, started_at) WHERE status = 'running';
