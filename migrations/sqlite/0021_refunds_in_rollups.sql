-- The overview's gross and net volume (issue 35): each day's rollup also sums what was refunded
-- of that day's payments (refunds asked for, as `payments.amount_refunded` counts them), kept in
-- the transaction that creates the refunds. Filled here from the payments.
ALTER TABLE payment_days ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0;
UPDATE payment_days SET refunded = (
    SELECT COALESCE(SUM(p.amount_refunded), 0) FROM payments p
    WHERE p.merchant_id = payment_days.merchant_id AND p.currency = payment_days.currency
      AND substr(p.created_at, 1, 10) = payment_days.day AND p.amount_refunded > 0
);
