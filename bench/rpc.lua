-- POST /gateway/rpc: a set-returning function, point lookup.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Athena-Client"] = "bench"
request = function()
  local id = math.random(1, 10000)
  return wrk.format(nil, nil, nil, '{"function":"bench_point","args":{"p_id":' .. id .. '}}')
end
