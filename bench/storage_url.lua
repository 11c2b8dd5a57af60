-- POST /storage/objects/url: a presigned GET URL for one object of a
-- catalog (BENCH_S3_ID, BENCH_BUCKET; the admin key BENCH_KEY).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Athena-Client"] = "bench"
wrk.headers["X-Athena-Key"] = os.getenv("BENCH_KEY")
wrk.body = '{"s3_id":"' .. os.getenv("BENCH_S3_ID") .. '","bucket":"' .. os.getenv("BENCH_BUCKET") .. '","key":"bench/object.txt"}'
