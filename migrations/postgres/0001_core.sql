-- paygate core schema (PostgreSQL).
CREATE TABLE merchants (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    email           TEXT NOT NULL,
    api_key         TEXT NOT NULL,
    api_secret_hash TEXT NOT NULL,
    webhook_secret  TEXT NOT NULL,
    webhook_url     TEXT,
    password_hash   TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT merchants_api_key_key UNIQUE (api_key),
    CONSTRAINT merchants_email_key UNIQUE (email)
);

CREATE TABLE orders (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    amount      BIGINT NOT NULL CHECK (amount >= 100),
    currency    TEXT NOT NULL,
    receipt     TEXT,
    notes       JSONB NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('created', 'paid')),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX orders_merchant_created_idx ON orders (merchant_id, created_at DESC);

CREATE TABLE payments (
    id                TEXT PRIMARY KEY,
    merchant_id       TEXT NOT NULL REFERENCES merchants (id),
    order_id          TEXT NOT NULL REFERENCES orders (id),
    amount            BIGINT NOT NULL CHECK (amount > 0),
    currency          TEXT NOT NULL,
    method            TEXT NOT NULL CHECK (method IN ('upi', 'card')),
    vpa               TEXT,
    card_network      TEXT,
    card_last4        TEXT,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'success', 'failed')),
    captured          BOOLEAN NOT NULL DEFAULT FALSE,
    error_code        TEXT,
    error_description TEXT,
    forced_outcome    TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX payments_merchant_created_idx ON payments (merchant_id, created_at DESC);
-- At most one payment per order may be pending or successful: no double charge.
CREATE UNIQUE INDEX payments_one_open_per_order ON payments (order_id)
    WHERE status IN ('pending', 'success');

CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    event_type  TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    data        JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_merchant_seq_idx ON events (merchant_id, seq DESC);
CREATE INDEX events_resource_idx ON events (resource_id, seq);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    queue        TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'active', 'completed', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       TIMESTAMPTZ NOT NULL,
    locked_by    TEXT,
    locked_until TIMESTAMPTZ,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX jobs_due_idx ON jobs (status, run_at);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    concurrency  INTEGER NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);
