-- POST /chat/rooms/{room}/messages: one message per request into one room
-- (BENCH_CHAT_ROOM), the sender rotating over its 64 members
-- (bench-chat-1 … bench-chat-64, trusted headers of the admin key
-- BENCH_KEY): every send takes the room row lock for its room_seq.
local room = os.getenv("BENCH_CHAT_ROOM")
local key = os.getenv("BENCH_KEY")
local n = 0
request = function()
  n = n + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Athena-Client"] = "bench",
    ["X-Athena-Key"] = key,
    ["X-User-Id"] = "bench-chat-" .. (n % 64 + 1),
    ["X-Organization-Id"] = "bench-org",
  }
  return wrk.format("POST", "/chat/rooms/" .. room .. "/messages", headers,
    '{"body_text":"bench message ' .. n .. '"}')
end
