DROP TABLE outbound_events;
ALTER TABLE users DROP COLUMN last_seen_at;
