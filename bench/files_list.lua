-- POST /storage/files/list: the 100 managed files under one prefix of a
-- catalog (BENCH_S3_ID) among the tenant's other rows, for an end user named
-- by the trusted headers the admin key (BENCH_KEY) may send.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Athena-Client"] = "bench"
wrk.headers["X-Athena-Key"] = os.getenv("BENCH_KEY")
wrk.headers["X-User-Id"] = "bench-user"
wrk.headers["X-Organization-Id"] = "bench-org"
wrk.body = '{"s3_id":"' .. os.getenv("BENCH_S3_ID") .. '","prefix":"bench-list/","limit":100}'
