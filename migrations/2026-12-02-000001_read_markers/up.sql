-- Read markers apart from membership (DESIGN 9): chat:read in a public room stores the
-- reader's marker without making the reader a member, so a room made private later is
-- closed to them unless the directory lists them.
CREATE TABLE read_markers (
    room_id               TEXT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    last_read_message_id  TEXT NOT NULL,
    last_read_at          BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

INSERT INTO read_markers (room_id, user_id, last_read_message_id, last_read_at)
    SELECT room_id, user_id, last_read_message_id, last_read_at
    FROM room_members
    WHERE last_read_message_id IS NOT NULL AND last_read_at IS NOT NULL;

-- chat:read created its rows with joined_at = last_read_at (one instant); the directory
-- never writes a marker. Those rows were never memberships.
DELETE FROM room_members WHERE last_read_at IS NOT NULL AND joined_at = last_read_at;

ALTER TABLE room_members DROP COLUMN last_read_message_id;
ALTER TABLE room_members DROP COLUMN last_read_at;
