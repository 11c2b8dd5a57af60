-- How the actor of a managed-file operation was established (issue 12):
-- `jwt`, `session`, `trusted_headers` (the admin key or a storage.service
-- key naming the user) or `service` (the SDK's service routes).
ALTER TABLE athena.audit_log_files ADD COLUMN actor_source text;
