-- GET /chat/rooms/{room}/messages: the last 50 messages of a seeded room
-- (BENCH_CHAT_LIST_ROOM) for its owner (trusted headers of BENCH_KEY).
wrk.headers["X-Athena-Client"] = "bench"
wrk.headers["X-Athena-Key"] = os.getenv("BENCH_KEY")
wrk.headers["X-User-Id"] = "bench-chat-owner"
wrk.headers["X-Organization-Id"] = "bench-org"
wrk.path = "/chat/rooms/" .. os.getenv("BENCH_CHAT_LIST_ROOM") .. "/messages?limit=50"
