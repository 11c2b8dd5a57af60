\set id random(1, 10000)
SELECT * FROM bench_point(:id);
