-- The management DDL audit log (issue 16): every `/management/*` write is
-- recorded here BEFORE its statement runs (status `pending`), then marked
-- `success` or `error` (`src/audit/ddl.rs`). A row still `pending` at start
-- was left by a crash and becomes `error`. Lives in the logging store: the
-- catalog unless `ATHENA_LOGGING_DATABASE_URL` names another database (the
-- same statements are applied there at start; they are idempotent).
CREATE TABLE IF NOT EXISTS database_audit_log (
    id            bigserial PRIMARY KEY,
    client_name   text NOT NULL,
    api_key_id    text,
    request_id    text NOT NULL,
    operation     text NOT NULL,
    object_schema text,
    object_name   text,
    statement     text NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'success', 'error')),
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    CHECK ((status = 'pending') = (finished_at IS NULL)),
    CHECK (status <> 'error' OR error IS NOT NULL)
);

CREATE INDEX IF NOT EXISTS database_audit_log_client_created
    ON database_audit_log (client_name, created_at DESC);
CREATE INDEX IF NOT EXISTS database_audit_log_pending
    ON database_audit_log (id) WHERE status = 'pending';

-- Function DDL (`PUT|DELETE /management/functions`) also keeps the
-- definition it replaced or dropped (`pg_get_functiondef`; NULL for a new
-- function), one row per `database_audit_log` row.
CREATE TABLE IF NOT EXISTS function_ddl_audit_log (
    id                  bigserial PRIMARY KEY,
    audit_id            bigint NOT NULL UNIQUE REFERENCES database_audit_log (id) ON DELETE CASCADE,
    client_name         text NOT NULL,
    api_key_id          text,
    request_id          text NOT NULL,
    operation           text NOT NULL,
    object_schema       text,
    object_name         text,
    statement           text NOT NULL,
    previous_definition text,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'success', 'error')),
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    CHECK ((status = 'pending') = (finished_at IS NULL)),
    CHECK (status <> 'error' OR error IS NOT NULL)
);
