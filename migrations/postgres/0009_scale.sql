-- Flat cost as data grows.
--
-- The overview's figures come from per-merchant, per-day rollups of payments (by the UTC day
-- the payment was created), updated in the same transaction as the changes they count; never
-- from a scan of payments on a page view. Filled here from the payments already stored.
CREATE TABLE payment_days (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    day         TEXT NOT NULL,
    payments    BIGINT NOT NULL DEFAULT 0,
    successful  BIGINT NOT NULL DEFAULT 0,
    amount      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, day)
);
INSERT INTO payment_days (merchant_id, day, payments, successful, amount)
SELECT merchant_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
       COUNT(*),
       SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END),
       SUM(CASE WHEN status = 'success' THEN amount ELSE 0 END)
FROM payments GROUP BY merchant_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD');

-- Lists page by (created_at, id), newest first, with cursors: each list's index holds the
-- whole key, so a page (first or deep) is an index range read, never a sort.
DROP INDEX orders_merchant_created_idx;
CREATE INDEX orders_merchant_created_idx ON orders (merchant_id, created_at DESC, id DESC);
DROP INDEX payments_merchant_created_idx;
CREATE INDEX payments_merchant_created_idx ON payments (merchant_id, created_at DESC, id DESC);
DROP INDEX refunds_merchant_created_idx;
CREATE INDEX refunds_merchant_created_idx ON refunds (merchant_id, created_at DESC, id DESC);
DROP INDEX webhook_logs_merchant_created_idx;
CREATE INDEX webhook_logs_merchant_created_idx ON webhook_logs (merchant_id, created_at DESC, id DESC);

-- The payment filters (status, method, each with a date range) and the search by order id.
CREATE INDEX payments_merchant_status_idx ON payments (merchant_id, status, created_at DESC, id DESC);
CREATE INDEX payments_merchant_method_idx ON payments (merchant_id, method, created_at DESC, id DESC);
CREATE INDEX payments_order_idx ON payments (order_id);
