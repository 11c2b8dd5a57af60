-- GET /rest/v1/bench_items with an embed (issue 14): a 50-row page from a
-- random starting id, each row with its reviews (one-to-many, 3 each).
wrk.headers["X-Athena-Client"] = "bench"
request = function()
  local id = math.random(1, 9950)
  return wrk.format("GET", "/rest/v1/bench_items?select=id,name,reviews:bench_reviews(id,rating)&id=gte." .. id .. "&order=id&limit=50")
end
