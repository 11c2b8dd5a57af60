-- GET / on bench_floor (examples/bench_floor.rs): the HTTP floor, a point
-- read's JSON answered by a bare hyper server with nothing behind it.
wrk.method = "GET"
