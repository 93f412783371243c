-- Settlements and reconciliation (issue 33).
--
-- A settlement is one payout to a merchant in one currency: every captured payment and every
-- processed refund (of a captured payment) older than the settlement delay and not yet settled,
-- claimed by one conditional statement each (settlement_id IS NULL), so each belongs to exactly
-- one settlement. amount = gross - refunds - fees - tax, never negative: a merchant whose due
-- transactions come to less than nothing keeps them unsettled, carried into the next settlement.
-- The payout moves created -> processed (or failed, retried) by conditional updates.
CREATE TABLE settlements (
    id             TEXT PRIMARY KEY,
    merchant_id    TEXT NOT NULL REFERENCES merchants (id),
    currency       TEXT NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount >= 0),
    gross          BIGINT NOT NULL CHECK (gross >= 0),
    refunds        BIGINT NOT NULL CHECK (refunds >= 0),
    fees           BIGINT NOT NULL CHECK (fees >= 0),
    tax            BIGINT NOT NULL CHECK (tax >= 0),
    count          BIGINT NOT NULL CHECK (count > 0),
    status         TEXT NOT NULL CHECK (status IN ('created', 'processed', 'failed')),
    utr            TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    failure_reason TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    processed_at   TIMESTAMPTZ
);
CREATE INDEX settlements_merchant_created_idx ON settlements (merchant_id, created_at DESC, id DESC);
-- The transfers still to make, least recently tried first: only unprocessed rows.
CREATE INDEX settlements_unpaid_idx ON settlements (updated_at) WHERE status <> 'processed';

-- No foreign key: the claim writes a million rows at a time and the settlement row is written
-- by the same transaction.
ALTER TABLE payments ADD COLUMN settlement_id TEXT;
ALTER TABLE refunds ADD COLUMN settlement_id TEXT;
-- What the next settlement takes: only unsettled captured payments and processed refunds.
CREATE INDEX payments_unsettled_idx ON payments (merchant_id, captured_at)
    WHERE captured AND settlement_id IS NULL;
CREATE INDEX refunds_unsettled_idx ON refunds (merchant_id, processed_at)
    WHERE status = 'processed' AND settlement_id IS NULL;
-- A settlement's transactions.
CREATE INDEX payments_settlement_idx ON payments (settlement_id, id) WHERE settlement_id IS NOT NULL;
CREATE INDEX refunds_settlement_idx ON refunds (settlement_id, id) WHERE settlement_id IS NOT NULL;
-- The reconciliation list: captured payments and processed refunds by time.
CREATE INDEX payments_captured_idx ON payments (merchant_id, captured_at, id) WHERE captured;
CREATE INDEX refunds_processed_idx ON refunds (merchant_id, processed_at, id)
    WHERE status = 'processed';

-- A bank report checked against paygate's transactions of its date; kept with its result.
CREATE TABLE reconciliations (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    report_date TEXT NOT NULL,
    matched     BIGINT NOT NULL,
    mismatched  BIGINT NOT NULL,
    unknown     BIGINT NOT NULL,
    missing     BIGINT NOT NULL,
    lines       JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX reconciliations_merchant_created_idx
    ON reconciliations (merchant_id, created_at DESC, id DESC);
