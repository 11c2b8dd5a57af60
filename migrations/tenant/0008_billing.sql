-- Billing provider ingestion (issue 15): provider connections of a client
-- (credentials sealed with ATHENA_SECRET_KEY, never returned), the canonical
-- billing documents projected from provider objects, and the handled
-- provider webhooks (one row per connection and provider event: a replay is
-- a no-op). The contract names these `billing.billing_*`.
-- Re-runnable: the set is applied again when `athena.schema_migrations`
-- was dropped (storage's "a dropped schema is recreated"), with the billing
-- tables still there.
CREATE SCHEMA IF NOT EXISTS billing;

CREATE TABLE IF NOT EXISTS billing.billing_provider_connections (
    id                    uuid PRIMARY KEY,
    client_name           text NOT NULL,
    provider              text NOT NULL CHECK (provider IN ('stripe', 'mollie')),
    provider_account_id   text,
    owner_kind            text NOT NULL DEFAULT 'client',
    owner_id              text,
    mode                  text NOT NULL DEFAULT 'test' CHECK (mode IN ('test', 'live')),
    display_name          text,
    config                jsonb NOT NULL DEFAULT '{}',
    scopes                text[] NOT NULL DEFAULT '{}',
    api_key_sealed        bytea,
    webhook_secret_sealed bytea,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz
);
CREATE INDEX IF NOT EXISTS billing_connections_client ON billing.billing_provider_connections (client_name, created_at);

-- The four document tables share one shape: one row per connection and
-- provider object, upserted on every event or reconcile.
CREATE TABLE IF NOT EXISTS billing.billing_payments (
    id                    uuid PRIMARY KEY,
    connection_id         uuid NOT NULL REFERENCES billing.billing_provider_connections (id),
    client_name           text NOT NULL,
    provider              text NOT NULL,
    provider_ref          text NOT NULL,
    provider_customer_ref text,
    status                text,
    amount_minor          bigint,
    currency              text,
    document              jsonb NOT NULL,
    provider_payload      jsonb NOT NULL,
    -- When the provider state was observed (a Stripe event's `created`, the
    -- time of a refetch): an older event arriving late does not overwrite.
    observed_at           timestamptz NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (connection_id, provider_ref)
);
CREATE TABLE IF NOT EXISTS billing.billing_subscriptions (LIKE billing.billing_payments INCLUDING ALL);
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'billing_subscriptions_connection_id_fkey') THEN
        ALTER TABLE billing.billing_subscriptions ADD CONSTRAINT billing_subscriptions_connection_id_fkey
            FOREIGN KEY (connection_id) REFERENCES billing.billing_provider_connections (id);
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS billing.billing_invoices (LIKE billing.billing_payments INCLUDING ALL);
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'billing_invoices_connection_id_fkey') THEN
        ALTER TABLE billing.billing_invoices ADD CONSTRAINT billing_invoices_connection_id_fkey
            FOREIGN KEY (connection_id) REFERENCES billing.billing_provider_connections (id);
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS billing.billing_payment_links (LIKE billing.billing_payments INCLUDING ALL);
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'billing_payment_links_connection_id_fkey') THEN
        ALTER TABLE billing.billing_payment_links ADD CONSTRAINT billing_payment_links_connection_id_fkey
            FOREIGN KEY (connection_id) REFERENCES billing.billing_provider_connections (id);
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS billing.billing_webhook_events (
    id                uuid PRIMARY KEY,
    connection_id     uuid NOT NULL REFERENCES billing.billing_provider_connections (id),
    client_name       text NOT NULL,
    provider          text NOT NULL,
    provider_event_id text NOT NULL,
    event_type        text NOT NULL,
    resource_kind     text NOT NULL,
    provider_ref      text NOT NULL,
    document          jsonb NOT NULL,
    payload           jsonb NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (connection_id, provider_event_id)
);
CREATE INDEX IF NOT EXISTS billing_webhook_events_client ON billing.billing_webhook_events (client_name, received_at DESC);
