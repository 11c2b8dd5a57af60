\set id random(1, 10000)
SELECT id, name, score FROM bench_items WHERE id = :id;
