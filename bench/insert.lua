-- PUT /gateway/insert: one row.
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Athena-Client"] = os.getenv("BENCH_CLIENT") or "bench"
wrk.body = '{"table_name":"bench_writes","insert_body":{"name":"x","score":1},"columns":["id"]}'
