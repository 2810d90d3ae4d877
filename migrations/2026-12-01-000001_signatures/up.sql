-- Every X-Signature-256 that verified, for the 300 s window either side of its time: a
-- second request with the same (t, v1) is a replay, refused on every node.
CREATE TABLE webhook_signatures (
    mac  TEXT NOT NULL PRIMARY KEY,
    t    BIGINT NOT NULL
);
CREATE INDEX webhook_signatures_t ON webhook_signatures (t);
