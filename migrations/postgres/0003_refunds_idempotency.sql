-- Capture, refunds and idempotency keys.
ALTER TABLE payments ADD COLUMN captured_at TIMESTAMPTZ;
-- Sum of the payment's pending and processed refunds; never above the amount.
ALTER TABLE payments ADD COLUMN amount_refunded BIGINT NOT NULL DEFAULT 0
    CONSTRAINT payments_amount_refunded_check CHECK (amount_refunded >= 0 AND amount_refunded <= amount);

CREATE TABLE refunds (
    id           TEXT PRIMARY KEY,
    merchant_id  TEXT NOT NULL REFERENCES merchants (id),
    payment_id   TEXT NOT NULL REFERENCES payments (id),
    amount       BIGINT NOT NULL CHECK (amount > 0),
    reason       TEXT,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'processed')),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    processed_at TIMESTAMPTZ
);
CREATE INDEX refunds_merchant_created_idx ON refunds (merchant_id, created_at DESC);
CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at);
CREATE INDEX refunds_pending_idx ON refunds (status, created_at);

CREATE TABLE idempotency_keys (
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    key             TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('running', 'done')),
    response_status INTEGER,
    response_body   BYTEA,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
