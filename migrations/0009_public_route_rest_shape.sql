-- Issue 14: the response shape of a public route. NULL (or 'contract') is
-- the contract's `{data: …}` envelope; 'postgrest' answers as PostgREST does
-- (bare arrays/objects, PostgREST's error JSON: `src/http/rest_shape.rs`),
-- on `/public/{route_key}/{op}` and on `/rest/v1` served through the route's
-- tenant host.
ALTER TABLE athena_public_routes
    ADD COLUMN IF NOT EXISTS rest_shape text CHECK (rest_shape IN ('contract', 'postgrest'));
