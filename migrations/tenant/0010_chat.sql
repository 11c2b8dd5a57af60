-- Durable chat (issue 20): rooms, members, ordered messages, reactions,
-- attachments (managed files, `athena.files`) and the chat outbox, in the
-- tenant's own schema `athena_chat`. Messages are ordered by `room_seq`,
-- assigned under the room row lock (`rooms.last_message_seq + 1`), so a
-- room's sequence is gapless and unique. Re-runnable like the other sets.
CREATE SCHEMA IF NOT EXISTS athena_chat;

CREATE TABLE IF NOT EXISTS athena_chat.rooms (
    id                uuid PRIMARY KEY,
    client_name       text NOT NULL,
    organization_id   text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('dm', 'group', 'channel')),
    title             text,
    created_by        text NOT NULL,
    -- A dm's two participants, ordered (low < high) by bytes, as the
    -- gateway orders them: COLLATE "C", whatever the database's collation
    -- (under en_US "Bob" sorts after "alice", in bytes before). One room
    -- per pair.
    dm_user_low       text COLLATE "C",
    dm_user_high      text COLLATE "C",
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    archived_at       timestamptz,
    last_message_id   uuid,
    last_message_seq  bigint NOT NULL DEFAULT 0,
    last_message_at   timestamptz,
    version           bigint NOT NULL DEFAULT 1,
    CHECK ((kind = 'dm') = (dm_user_low IS NOT NULL AND dm_user_high IS NOT NULL)),
    CHECK (dm_user_low IS NULL OR dm_user_low < dm_user_high)
);
CREATE UNIQUE INDEX IF NOT EXISTS chat_rooms_dm_pair
    ON athena_chat.rooms (client_name, organization_id, dm_user_low, dm_user_high) WHERE kind = 'dm';
CREATE INDEX IF NOT EXISTS chat_rooms_org ON athena_chat.rooms (client_name, organization_id);

CREATE TABLE IF NOT EXISTS athena_chat.members (
    room_id               uuid NOT NULL REFERENCES athena_chat.rooms (id) ON DELETE CASCADE,
    user_id               text NOT NULL,
    role                  text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at             timestamptz NOT NULL DEFAULT now(),
    last_read_seq         bigint NOT NULL DEFAULT 0,
    last_read_message_id  uuid,
    muted                 boolean NOT NULL DEFAULT false,
    notification_mode     text,
    hidden_at             timestamptz,
    PRIMARY KEY (room_id, user_id)
);
-- The actor's rooms (list, search).
CREATE INDEX IF NOT EXISTS chat_members_user ON athena_chat.members (user_id, room_id);

CREATE TABLE IF NOT EXISTS athena_chat.messages (
    id                   uuid PRIMARY KEY,
    room_id              uuid NOT NULL REFERENCES athena_chat.rooms (id) ON DELETE CASCADE,
    room_seq             bigint NOT NULL,
    sender_id            text NOT NULL,
    client_message_id    text,
    -- sha256 of the send request: a retry with the same client_message_id
    -- and another body is a conflict.
    request_fingerprint  text,
    body_text            text,
    body_json            jsonb,
    reply_to_message_id  uuid,
    metadata_json        jsonb,
    created_at           timestamptz NOT NULL DEFAULT now(),
    edited_at            timestamptz,
    deleted_at           timestamptz,
    search               tsvector GENERATED ALWAYS AS (to_tsvector('simple', coalesce(body_text, ''))) STORED,
    -- Listing the last N messages of a room of any size: an index range.
    UNIQUE (room_id, room_seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS chat_messages_client_id
    ON athena_chat.messages (room_id, sender_id, client_message_id) WHERE client_message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS chat_messages_search ON athena_chat.messages USING gin (search);

CREATE TABLE IF NOT EXISTS athena_chat.reactions (
    message_id  uuid NOT NULL REFERENCES athena_chat.messages (id) ON DELETE CASCADE,
    user_id     text NOT NULL,
    emoji       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id, emoji)
);

CREATE TABLE IF NOT EXISTS athena_chat.attachments (
    message_id  uuid NOT NULL REFERENCES athena_chat.messages (id) ON DELETE CASCADE,
    ordinal     integer NOT NULL,
    file_id     uuid NOT NULL,
    PRIMARY KEY (message_id, ordinal)
);

-- Chat events written in the transaction of the change they describe, for
-- the realtime gateway (a later issue) to deliver in order.
CREATE TABLE IF NOT EXISTS athena_chat.outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id       uuid NOT NULL,
    kind          text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    delivered_at  timestamptz
);
CREATE INDEX IF NOT EXISTS chat_outbox_pending ON athena_chat.outbox (id) WHERE delivered_at IS NULL;
