-- Webhook endpoints: several per merchant, each with its URL, the event types it wants and a
-- secret of its own. The merchant's webhook URL (webhooks/config) stays its default endpoint.
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    url             TEXT NOT NULL,
    description     TEXT,
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    -- The event types it wants, space-separated (exact names or a trailing wildcard,
    -- `payment.*`); empty for every event.
    events          TEXT NOT NULL DEFAULT '',
    secret          TEXT NOT NULL,
    -- After a rotation, the previous secret still signs (beside the new one) until this time.
    previous_secret TEXT,
    previous_secret_until TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_merchant_idx ON webhook_endpoints (merchant_id, created_at);

-- The endpoint a delivery goes to; NULL for the merchant's default endpoint.
ALTER TABLE webhook_logs ADD COLUMN endpoint_id TEXT;
-- The event's sequence number (its position in the event log, increasing with every event of
-- the same resource), sent as `webhook-sequence`; NULL for deliveries made before it existed.
ALTER TABLE webhook_logs ADD COLUMN sequence BIGINT;
