-- Single-use tickets for GET /events?ticket= (EventSource cannot send a Bearer header):
-- only a hash of the ticket is kept; a ticket is taken by deleting its row, so exactly one
-- request on one node can use it.
CREATE TABLE sse_tickets (
    ticket_hash  TEXT NOT NULL PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_exp    BIGINT,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sse_tickets_expires_at ON sse_tickets (expires_at);
