INSERT INTO bench_writes (name, score) VALUES ('x', 1) RETURNING id;
