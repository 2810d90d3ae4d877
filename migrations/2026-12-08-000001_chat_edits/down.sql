DROP INDEX read_markers_user;
DROP INDEX room_members_user;
CREATE INDEX messages_room_order ON messages (room_id, id);
DROP INDEX messages_room_unread;
DROP TABLE message_reactions;
ALTER TABLE messages DROP COLUMN deleted_at;
ALTER TABLE messages DROP COLUMN edited_at;
