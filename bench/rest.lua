-- GET /rest/v1/bench_items?id=eq.N: point read of a random primary key.
wrk.headers["X-Athena-Client"] = "bench"
request = function()
  local id = math.random(1, 10000)
  return wrk.format("GET", "/rest/v1/bench_items?select=id,name,score&id=eq." .. id)
end
