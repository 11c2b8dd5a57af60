\set id random(1, 9950)
SELECT id, name, score FROM bench_items WHERE id >= :id ORDER BY id LIMIT 50;
