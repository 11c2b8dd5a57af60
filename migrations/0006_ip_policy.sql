-- IP policy of API keys (issue 13): per-key and global allow/deny lists and
-- the virgin lock-in. Addresses are `cidr` (a bare IP is a /32 or /128);
-- the server validates and normalizes them before they get here.

-- One row per key with IP settings (no row: no virgin mode, no cap). The
-- counters live here, not on `athena_api_keys`, so that counting a virgin
-- key's requests does not notify every replica (see the trigger below).
CREATE TABLE IF NOT EXISTS api_key_ip_policy (
    api_key_id              uuid PRIMARY KEY REFERENCES athena_api_keys (id) ON DELETE CASCADE,
    virgin_mode             boolean NOT NULL DEFAULT false,
    virgin_until_n_requests integer NOT NULL DEFAULT 0 CHECK (virgin_until_n_requests >= 0),
    max_whitelist_ips       integer NOT NULL DEFAULT 0 CHECK (max_whitelist_ips >= 0),
    virgin_resolved         boolean NOT NULL DEFAULT false,
    virgin_resolved_at      timestamptz,
    virgin_request_count    bigint NOT NULL DEFAULT 0,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS api_key_ip_whitelist (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    api_key_id uuid NOT NULL REFERENCES athena_api_keys (id) ON DELETE CASCADE,
    addr       cidr NOT NULL,
    label      text,
    -- Added by a virgin lock-in (a reset removes these, not the operator's).
    learned    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (api_key_id, addr)
);

CREATE TABLE IF NOT EXISTS api_key_ip_blacklist (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    api_key_id uuid NOT NULL REFERENCES athena_api_keys (id) ON DELETE CASCADE,
    addr       cidr NOT NULL,
    label      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (api_key_id, addr)
);

-- `client_name` NULL: every client; else only requests for that client.
CREATE TABLE IF NOT EXISTS api_key_ip_global_whitelist (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    addr        cidr NOT NULL,
    client_name text CHECK (client_name <> ''),
    label       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS api_key_ip_global_whitelist_rule
    ON api_key_ip_global_whitelist (addr, (COALESCE(client_name, '')));

CREATE TABLE IF NOT EXISTS api_key_ip_global_blacklist (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    addr        cidr NOT NULL,
    client_name text CHECK (client_name <> ''),
    label       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS api_key_ip_global_blacklist_rule
    ON api_key_ip_global_blacklist (addr, (COALESCE(client_name, '')));

-- Addresses a virgin key was used from (host addresses, /32 or /128).
CREATE TABLE IF NOT EXISTS api_key_ip_seen (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    api_key_id    uuid NOT NULL REFERENCES athena_api_keys (id) ON DELETE CASCADE,
    addr          cidr NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    hit_count     bigint NOT NULL DEFAULT 1,
    locked_in     boolean NOT NULL DEFAULT false,
    UNIQUE (api_key_id, addr)
);
CREATE INDEX IF NOT EXISTS api_key_ip_seen_recent ON api_key_ip_seen (api_key_id, last_seen_at DESC);

-- One source of truth: the IP columns of `athena_api_keys` (0003) move here.
-- Key creation refused every non-default value until now, so they are empty;
-- whatever a hand-edited catalog holds is carried over all the same.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name = 'athena_api_keys'
                  AND column_name = 'ip_whitelist') THEN
        INSERT INTO api_key_ip_policy (api_key_id, virgin_mode, virgin_until_n_requests, max_whitelist_ips)
        SELECT id, virgin_mode, virgin_until_n_requests, max_whitelist_ips FROM athena_api_keys
         WHERE virgin_mode OR virgin_until_n_requests > 0 OR max_whitelist_ips > 0
        ON CONFLICT DO NOTHING;
        INSERT INTO api_key_ip_whitelist (api_key_id, addr)
        SELECT id, a::inet::cidr FROM athena_api_keys, unnest(ip_whitelist) a
        ON CONFLICT DO NOTHING;
        INSERT INTO api_key_ip_blacklist (api_key_id, addr)
        SELECT id, a::inet::cidr FROM athena_api_keys, unnest(ip_blacklist) a
        ON CONFLICT DO NOTHING;
        ALTER TABLE athena_api_keys
            DROP COLUMN ip_whitelist,
            DROP COLUMN ip_blacklist,
            DROP COLUMN virgin_mode,
            DROP COLUMN virgin_until_n_requests,
            DROP COLUMN max_whitelist_ips;
    END IF;
END
$$;

-- Every change to the lists tells each replica to drop its cached policy
-- (`KeyStore::invalidate`, within 1 s on every replica). The policy row
-- notifies when what the cache holds changes (mode, resolution, cap), not
-- when a virgin key's request counter moves.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['api_key_ip_whitelist', 'api_key_ip_blacklist',
                             'api_key_ip_global_whitelist', 'api_key_ip_global_blacklist']
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS athena_auth_changed ON %I', t);
        EXECUTE format('CREATE TRIGGER athena_auth_changed AFTER INSERT OR UPDATE OR DELETE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION athena_auth_notify()', t);
    END LOOP;
END
$$;

DROP TRIGGER IF EXISTS athena_auth_changed ON api_key_ip_policy;
CREATE TRIGGER athena_auth_changed AFTER INSERT OR DELETE ON api_key_ip_policy
    FOR EACH STATEMENT EXECUTE FUNCTION athena_auth_notify();
DROP TRIGGER IF EXISTS athena_auth_changed_state ON api_key_ip_policy;
CREATE TRIGGER athena_auth_changed_state AFTER UPDATE ON api_key_ip_policy
    FOR EACH ROW
    WHEN ((OLD.virgin_mode, OLD.virgin_resolved, OLD.max_whitelist_ips)
          IS DISTINCT FROM (NEW.virgin_mode, NEW.virgin_resolved, NEW.max_whitelist_ips))
    EXECUTE FUNCTION athena_auth_notify();
