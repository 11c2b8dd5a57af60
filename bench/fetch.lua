-- POST /gateway/fetch: point read of a random primary key.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Athena-Client"] = os.getenv("BENCH_CLIENT") or "bench"
-- BENCH_API_KEY: the key sent (the IP-policy/admission scenario).
local key = os.getenv("BENCH_API_KEY")
if key then wrk.headers["X-Athena-Key"] = key end
request = function()
  local id = math.random(1, 10000)
  local body = '{"table_name":"bench_items","columns":["id","name","score"],"conditions":[{"eq_column":"id","eq_value":"' .. id .. '"}]}'
  return wrk.format(nil, nil, nil, body)
end
