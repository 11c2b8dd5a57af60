-- The catalog: registered clients (tenants) and their PostgreSQL URIs.
CREATE TABLE IF NOT EXISTS athena_clients (
    client_name  text PRIMARY KEY CHECK (client_name ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$'),
    pg_uri       text NOT NULL,
    description  text,
    is_active    boolean NOT NULL DEFAULT true,
    is_frozen    boolean NOT NULL DEFAULT false,
    source       text NOT NULL DEFAULT 'catalog' CHECK (source IN ('catalog', 'config', 'env')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Rows served by GET /registry: the APIs this gateway fronts.
CREATE TABLE IF NOT EXISTS athena_api_registry (
    api_registry_id text PRIMARY KEY,
    name            text NOT NULL,
    base_url        text,
    description     text,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
