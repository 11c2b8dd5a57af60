-- GET /rest/v1/bench_items: a 50-row page from a random starting id.
wrk.headers["X-Athena-Client"] = "bench"
request = function()
  local id = math.random(1, 9950)
  return wrk.format("GET", "/rest/v1/bench_items?select=id,name,score&id=gte." .. id .. "&order=id&limit=50")
end
