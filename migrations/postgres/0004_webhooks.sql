-- Webhook deliveries: one row per event for a merchant with a webhook URL, written in the
-- transaction of the state change; the retry schedule lives here (next_retry_at).
CREATE TABLE webhook_logs (
    id              TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    event_id        TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'success', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_retry_at   TIMESTAMPTZ,
    last_attempt_at TIMESTAMPTZ,
    response_code   INTEGER,
    response_body   TEXT,
    duration_ms     BIGINT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_logs_merchant_created_idx ON webhook_logs (merchant_id, created_at DESC);
CREATE INDEX webhook_logs_due_idx ON webhook_logs (status, next_retry_at);
CREATE INDEX webhook_logs_event_idx ON webhook_logs (event_id);
