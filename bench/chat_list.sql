-- The page statement of GET /chat/rooms/{room}/messages (src/chat/messages.rs
-- `page_sql(true)`, the whole request's database work in one statement): the
-- owner's standing in the room, the last 50 messages by room_seq, and each
-- message's reactions and attachments as JSON, with the same parameters the
-- gateway binds (`-M prepared` makes every :variable a parameter, so the plan
-- cache sees what the gateway's does). `pgbench -M prepared -D room=<room id>
-- -D above=-9223372036854775808 -D below=9223372036854775807 -D limit=50`.
WITH room AS (
    SELECT r.organization_id = 'bench-org' AS same_org, mb.role
      FROM athena_chat.rooms r
      LEFT JOIN athena_chat.members mb ON mb.room_id = r.id AND mb.user_id = 'bench-chat-owner'
     WHERE r.id = :room::uuid AND r.client_name = 'bench'
), page AS (
    SELECT m.id, m.room_id, m.room_seq, m.sender_id, m.client_message_id, m.body_text, m.body_json,
           m.reply_to_message_id, m.created_at, m.edited_at, m.deleted_at, m.metadata_json,
           m.request_fingerprint
      FROM athena_chat.messages m
     WHERE m.room_id = :room::uuid AND m.room_seq > :above::int8 AND m.room_seq < :below::int8
       AND EXISTS (SELECT 1 FROM room WHERE room.same_org AND room.role IS NOT NULL)
     ORDER BY m.room_seq DESC LIMIT 200
)
SELECT room.same_org, room.role, p.*,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('emoji', x.emoji, 'count', x.n, 'reacted', x.mine)
                                  ORDER BY x.first, x.emoji), '[]'::jsonb)
          FROM (SELECT emoji, count(*) AS n, bool_or(user_id = 'bench-chat-owner') AS mine,
                       min(created_at) AS first
                  FROM athena_chat.reactions WHERE message_id = p.id GROUP BY emoji) x),
       (SELECT jsonb_agg(jsonb_build_object('ordinal', a.ordinal, 'file_id', a.file_id, 'name', f.name,
                         'original_name', f.original_name, 'mime_type', f.mime_type,
                         'size_bytes', f.size_bytes, 'status', f.status, 'visibility', f.visibility)
                         ORDER BY a.ordinal)
          FROM athena_chat.attachments a LEFT JOIN athena.files f ON f.id = a.file_id
         WHERE a.message_id = p.id)
  FROM (SELECT 1) AS one
  LEFT JOIN room ON true
  LEFT JOIN (SELECT * FROM page ORDER BY page.room_seq DESC LIMIT :limit::int8) p ON true
 ORDER BY p.room_seq;
