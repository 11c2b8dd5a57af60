-- The outbox's per-target index covers queued jobs only (issue 15). The
-- group claim is its one reader and asks for queued jobs of one target in
-- age order; over every status it also held each job's running and
-- completed versions (a status change is not a HOT update, so every
-- claim and every completion added an entry), and the completed jobs kept
-- for a week. Partial, a job is entered once, when queued (again only
-- if a retry queues it anew). The build scans the outbox (completed jobs
-- are kept 7 days) inside the migration transaction, and subscribed
-- writes wait for it: on a large outbox upgrade at a quiet hour.
CREATE INDEX IF NOT EXISTS athena_outbox_queued_target
    ON athena_outbox (target_kind, target_id, created_at) WHERE status = 'queued';
DROP INDEX IF EXISTS athena_outbox_target;
