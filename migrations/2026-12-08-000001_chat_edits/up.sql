-- Chat, completed (docs/events.md): edits and deletes are stored on the message (a deleted
-- message keeps its row, with its text blanked, so replies and order hold), reactions in a
-- table of their own (one row per message, emoji and user).
ALTER TABLE messages ADD COLUMN edited_at BIGINT;
ALTER TABLE messages ADD COLUMN deleted_at BIGINT;

CREATE TABLE message_reactions (
    message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji       TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);

-- rooms:list counts unread messages from this index alone (room, then order, with the two
-- columns the count filters on); it serves every query the narrower one served.
CREATE INDEX messages_room_unread ON messages (room_id, id, sender_id, deleted_at);
DROP INDEX messages_room_order;

-- rooms:list starts from the user's memberships and read markers.
CREATE INDEX room_members_user ON room_members (user_id);
CREATE INDEX read_markers_user ON read_markers (user_id);
