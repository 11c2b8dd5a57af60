-- The statement Athena builds for bench/embed.lua (one correlated subquery
-- per row building the reviews array, the page aggregated to JSON text).
\set id random(1, 9950)
SELECT coalesce(json_agg(t.*), '[]'::json)::text FROM (SELECT "_b"."id", "_b"."name", (SELECT coalesce(json_agg("_r".*), '[]'::json) FROM (SELECT "_e1"."id", "_e1"."rating" FROM "public"."bench_reviews" AS "_e1" WHERE "_e1"."item_id" = "_b"."id" LIMIT 1000) AS "_r") AS "reviews" FROM "public"."bench_items" AS "_b" WHERE "_b"."id" >= :id ORDER BY "_b"."id" ASC LIMIT 50) t;
