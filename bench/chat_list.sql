-- The page statement of GET /chat/rooms/{room}/messages (src/chat/messages.rs):
-- the last 50 messages by room_seq. `pgbench -D room=<room id>`.
SELECT m.id, m.room_id, m.room_seq, m.sender_id, m.client_message_id, m.body_text, m.body_json,
       m.reply_to_message_id, m.created_at, m.edited_at, m.deleted_at, m.metadata_json,
       m.request_fingerprint
  FROM athena_chat.messages m
 WHERE m.room_id = :room::uuid
 ORDER BY m.room_seq DESC LIMIT 50;
