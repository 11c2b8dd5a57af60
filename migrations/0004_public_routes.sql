-- Public routes: `/public/{route_key}/{op}` forwards a chosen set of gateway
-- operations to a client without naming it. Replicas cache a route for at
-- most 5 s (no notification channel: changes reach other replicas within
-- the TTL, the replica that made the change at once).
CREATE TABLE IF NOT EXISTS athena_public_routes (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    route_key   text NOT NULL UNIQUE CHECK (route_key ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    client_name text NOT NULL REFERENCES athena_clients (client_name) ON UPDATE CASCADE ON DELETE CASCADE,
    allowed_ops text[] NOT NULL CHECK (
        cardinality(allowed_ops) > 0
        AND allowed_ops <@ ARRAY['query', 'fetch', 'insert', 'update', 'delete']::text[]
    ),
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS athena_public_routes_client ON athena_public_routes (client_name);
