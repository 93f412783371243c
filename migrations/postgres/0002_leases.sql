-- Named leases: which process runs a periodic duty (the recovery sweep) this tick.
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  TIMESTAMPTZ NOT NULL
);
