-- Payment links (issue 32).
--
-- A link asks for an amount (all at once, or in parts when accept_partial); each attempt on its
-- page is an order of the link (orders.payment_link_id), and a successful payment of such an
-- order adds to amount_paid in the transaction that records it. Every status change is a
-- conditional update: created -> partially_paid -> paid, or expired / cancelled.
CREATE TABLE payment_links (
    id                       TEXT PRIMARY KEY,
    merchant_id              TEXT NOT NULL REFERENCES merchants (id),
    amount                   INTEGER NOT NULL CHECK (amount >= 100),
    amount_paid              INTEGER NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
    currency                 TEXT NOT NULL,
    accept_partial           BOOLEAN NOT NULL,
    first_min_partial_amount INTEGER,
    description              TEXT,
    customer                 TEXT NOT NULL,
    reference_id             TEXT,
    expire_by                TEXT,
    callback_url             TEXT,
    notes                    TEXT NOT NULL,
    status                   TEXT NOT NULL
        CHECK (status IN ('created', 'partially_paid', 'paid', 'expired', 'cancelled')),
    short_url                TEXT NOT NULL,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    paid_at                  TEXT,
    expired_at               TEXT,
    cancelled_at             TEXT
);
CREATE INDEX payment_links_merchant_created_idx
    ON payment_links (merchant_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX payment_links_reference_idx
    ON payment_links (merchant_id, reference_id) WHERE reference_id IS NOT NULL;
-- What the expiry job reads: the open links, by when they expire.
CREATE INDEX payment_links_open_expiry_idx ON payment_links (expire_by)
    WHERE status IN ('created', 'partially_paid') AND expire_by IS NOT NULL;

ALTER TABLE orders ADD COLUMN payment_link_id TEXT REFERENCES payment_links (id);
CREATE INDEX orders_payment_link_idx ON orders (payment_link_id) WHERE payment_link_id IS NOT NULL;
