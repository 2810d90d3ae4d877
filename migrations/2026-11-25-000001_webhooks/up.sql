-- Webhook calls carrying an Idempotency-Key: the first call's answer, replayed for 10 minutes.
CREATE TABLE webhook_requests (
    path        TEXT NOT NULL,
    idem_key    TEXT NOT NULL,
    status      INTEGER,
    response    TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (path, idem_key)
);
CREATE INDEX webhook_requests_age ON webhook_requests (created_at);
