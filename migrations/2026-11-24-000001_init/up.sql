-- Times are milliseconds since the epoch (BIGINT) on both backends; ids are text.
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    avatar_url  TEXT,
    role        TEXT NOT NULL DEFAULT 'user',
    is_active   BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE rooms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    is_public   BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE room_members (
    room_id               TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at             BIGINT NOT NULL,
    last_read_message_id  TEXT,
    last_read_at          BIGINT,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE messages (
    id             TEXT PRIMARY KEY,
    room_id        TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    sender_id      TEXT NOT NULL REFERENCES users (id),
    text           TEXT NOT NULL,
    reply_to_id    TEXT,
    client_msg_id  TEXT,
    created_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX messages_sender_client_msg ON messages (sender_id, client_msg_id);
CREATE INDEX messages_room_order ON messages (room_id, id);

CREATE TABLE direct_messages (
    id            TEXT PRIMARY KEY,
    from_user_id  TEXT NOT NULL,
    to_user_id    TEXT NOT NULL,
    message       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    delivered_at  BIGINT
);
CREATE INDEX direct_messages_pending ON direct_messages (to_user_id, delivered_at);

CREATE TABLE product_watchers (
    user_id     TEXT NOT NULL,
    product_id  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX product_watchers_product ON product_watchers (product_id);

CREATE TABLE cart_items (
    user_id     TEXT NOT NULL,
    product_id  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX cart_items_product ON cart_items (product_id);

CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    read_at     BIGINT
);
CREATE INDEX notifications_user_unread ON notifications (user_id, read_at);
