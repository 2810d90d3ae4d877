-- DESIGN 13: when a user's last socket went (ms), stored when the user turns offline.
ALTER TABLE users ADD COLUMN last_seen_at BIGINT;

-- Outbound webhook events waiting for a 2xx from webhooks.outbound_url. A row is the exact
-- body POSTed on every attempt; it is deleted once accepted (or dropped: 410, 24 h old).
-- Within a key (`user:<id>`, `room:<id>`) only the row with the lowest (seq, id) is sent,
-- so events of a key arrive in order. A node sends a row only while it holds its lease
-- (owner, lease_until): exactly one node at a time, another one after a node died.
CREATE TABLE outbound_events (
    id           TEXT PRIMARY KEY,
    event_key    TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      BIGINT NOT NULL,
    owner        TEXT NOT NULL DEFAULT '',
    lease_until  BIGINT NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX outbound_events_order ON outbound_events (event_key, seq, id);
CREATE INDEX outbound_events_due ON outbound_events (next_at);
CREATE INDEX outbound_events_age ON outbound_events (created_at);
