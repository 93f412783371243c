-- The production configuration's guarantees (atomic idempotency, one processor call per
-- payment and refund, fair queues, flash notices) and the indexes the recovery sweep needs.

-- A claimed idempotency key carries its claim's token: only the holder completes or releases it.
ALTER TABLE idempotency_keys ADD COLUMN claim_token TEXT;

-- Who is asking the processor now: a run sets the lease before it calls, so a second run of
-- the same job waits instead of calling again; `processor_calls` counts the calls made.
ALTER TABLE payments ADD COLUMN processor_lease_until TIMESTAMPTZ;
ALTER TABLE payments ADD COLUMN processor_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refunds ADD COLUMN processor_lease_until TIMESTAMPTZ;
ALTER TABLE refunds ADD COLUMN processor_calls INTEGER NOT NULL DEFAULT 0;

-- The simulated bank's memory of the requests it answered, by idempotency key: a second call
-- with a key gets the first answer back, across restarts.
CREATE TABLE processor_operations (
    idempotency_key TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
    succeeded       BOOLEAN NOT NULL,
    error_code      TEXT,
    error_description TEXT,
    calls           INTEGER NOT NULL,
    ready_at        TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);

-- A manual retry starts a new cycle of attempts: an attempt of the old cycle still in flight
-- is not recorded as one of the new cycle.
ALTER TABLE webhook_logs ADD COLUMN cycle INTEGER NOT NULL DEFAULT 0;

-- A job enqueued again while it runs (a manual webhook retry) runs again once it finishes.
ALTER TABLE jobs ADD COLUMN requeue_at TIMESTAMPTZ;
-- Each queue is claimed on its own (fair queues).
CREATE INDEX jobs_queue_due_idx ON jobs (queue, status, run_at);

-- The recovery sweep reads only pending payments.
CREATE INDEX payments_pending_idx ON payments (created_at) WHERE status = 'pending';

-- A notice a dashboard form leaves for the next page.
ALTER TABLE sessions ADD COLUMN flash TEXT;
