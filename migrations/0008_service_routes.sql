-- Tenant service routes (issue 13): which service families (`gateway`,
-- `rest`, `storage`, `chat`) a tenant host (`{route_key}.<wildcard
-- suffix>`) serves, and for which client. Keyed by the pair; once a host has
-- one binding, a family without an active binding is not served there.
CREATE TABLE IF NOT EXISTS athena_tenant_service_routes (
    route_key    text NOT NULL CHECK (route_key ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    service_key  text NOT NULL CHECK (service_key IN ('gateway', 'rest', 'storage', 'chat')),
    client_name  text NOT NULL REFERENCES athena_clients (client_name) ON UPDATE CASCADE ON DELETE CASCADE,
    upstream_url text,
    is_active    boolean NOT NULL DEFAULT true,
    metadata     jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (route_key, service_key)
);

CREATE INDEX IF NOT EXISTS athena_tenant_service_routes_client
    ON athena_tenant_service_routes (client_name);

-- Every change to a public route or a service route tells each replica to
-- drop its cached routing at once (`src/db/notify.rs`); the caches' own
-- TTL (2 s) only bounds a missed notification.
CREATE OR REPLACE FUNCTION athena_routes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('athena_routes_changed', COALESCE(NEW.route_key, OLD.route_key));
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS athena_routes_changed ON athena_public_routes;
CREATE TRIGGER athena_routes_changed
    AFTER INSERT OR UPDATE OR DELETE ON athena_public_routes
    FOR EACH ROW EXECUTE FUNCTION athena_routes_notify();

DROP TRIGGER IF EXISTS athena_routes_changed ON athena_tenant_service_routes;
CREATE TRIGGER athena_routes_changed
    AFTER INSERT OR UPDATE OR DELETE ON athena_tenant_service_routes
    FOR EACH ROW EXECUTE FUNCTION athena_routes_notify();
