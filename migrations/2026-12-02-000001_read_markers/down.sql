-- Back to markers on membership rows; markers of readers who are not members are lost.
ALTER TABLE room_members ADD COLUMN last_read_message_id TEXT;
ALTER TABLE room_members ADD COLUMN last_read_at BIGINT;

UPDATE room_members SET
    last_read_message_id = (SELECT m.last_read_message_id FROM read_markers m
        WHERE m.room_id = room_members.room_id AND m.user_id = room_members.user_id),
    last_read_at = (SELECT m.last_read_at FROM read_markers m
        WHERE m.room_id = room_members.room_id AND m.user_id = room_members.user_id);

DROP TABLE read_markers;
