-- Ownership that dies with its owner (issue 30).
--
-- Every process registers itself and beats every PROCESS_HEARTBEAT_MS. One whose beat is older
-- than PROCESS_DEAD_AFTER_MS (the database's clock on PostgreSQL), or whose process is gone
-- from this host, is marked dead by the first live process to notice, which frees what it held:
-- its jobs' leases, its requests' idempotency keys, its processor leases.
CREATE TABLE processes (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    -- Where it runs: the host's name, its boot id, the process id and its start time (clock
    -- ticks since boot), so a process gone from this host is known dead at once.
    host         TEXT NOT NULL,
    boot_id      TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    start_ticks  BIGINT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    dead         BOOLEAN NOT NULL DEFAULT FALSE
);

-- Who holds a running idempotency key, and a processor lease.
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT;
ALTER TABLE payments ADD COLUMN processor_lease_owner TEXT;
ALTER TABLE refunds ADD COLUMN processor_lease_owner TEXT;
-- The claims of one owner, found at once when it dies.
CREATE INDEX jobs_locked_by_idx ON jobs (locked_by) WHERE status = 'active';
CREATE INDEX idempotency_keys_owner_idx ON idempotency_keys (owner) WHERE status = 'running';
CREATE INDEX payments_lease_owner_idx ON payments (processor_lease_owner) WHERE status = 'pending';
CREATE INDEX refunds_lease_owner_idx ON refunds (processor_lease_owner) WHERE status = 'pending';
