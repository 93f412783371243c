-- Hardening (issue 28).
--
-- A merchant refused by the gateway: `seeded_credentials` when a production start found it
-- still holding the test merchant's public credentials (its API keys answer 401 and its
-- dashboard sign-in is refused until `paygate merchant rotate-keys`). NULL: active.
ALTER TABLE merchants ADD COLUMN disabled_reason TEXT;

-- Replays of an endpoint's events: one running per endpoint (the unique index), and a daily
-- cap per merchant on the deliveries they queue. A replay is running while any delivery it
-- queued is pending.
CREATE TABLE webhook_replays (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    endpoint_id TEXT NOT NULL,
    since       TIMESTAMPTZ NOT NULL,
    until       TIMESTAMPTZ NOT NULL,
    queued      BIGINT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX webhook_replays_running_idx ON webhook_replays (endpoint_id)
    WHERE status = 'running';
CREATE INDEX webhook_replays_merchant_idx ON webhook_replays (merchant_id, created_at);
ALTER TABLE webhook_logs ADD COLUMN replay_id TEXT;
CREATE INDEX webhook_logs_replay_pending_idx ON webhook_logs (replay_id)
    WHERE status = 'pending' AND replay_id IS NOT NULL;
-- A pending delivery of an event to an endpoint is not queued twice (replays look it up).
CREATE INDEX webhook_logs_endpoint_event_pending_idx ON webhook_logs (endpoint_id, event_id)
    WHERE status = 'pending';

-- The overview's rollups per currency: amounts of different currencies are never added up.
CREATE TABLE payment_days_by_currency (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    day         TEXT NOT NULL,
    currency    TEXT NOT NULL,
    payments    BIGINT NOT NULL DEFAULT 0,
    successful  BIGINT NOT NULL DEFAULT 0,
    amount      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, day, currency)
);
INSERT INTO payment_days_by_currency (merchant_id, day, currency, payments, successful, amount)
SELECT merchant_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), currency,
       COUNT(*),
       SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END),
       SUM(CASE WHEN status = 'success' THEN amount ELSE 0 END)
FROM payments GROUP BY merchant_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), currency;
DROP TABLE payment_days;
ALTER TABLE payment_days_by_currency RENAME TO payment_days;

-- The sweep pages through overdue deliveries by (next_retry_at, id): the index holds both.
DROP INDEX webhook_logs_due_idx;
CREATE INDEX webhook_logs_due_idx ON webhook_logs (next_retry_at, id) WHERE status = 'pending';
