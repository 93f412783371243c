-- The overview's gross and net volume (issue 35): each day's rollup also sums what was refunded
-- of that day's payments (refunds asked for, as `payments.amount_refunded` counts them), kept in
-- the transaction that creates the refunds. Filled here from the payments.
ALTER TABLE payment_days ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0;
UPDATE payment_days d SET refunded = r.total
FROM (SELECT merchant_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, currency,
             SUM(amount_refunded)::BIGINT AS total
      FROM payments WHERE amount_refunded > 0 GROUP BY 1, 2, 3) r
WHERE d.merchant_id = r.merchant_id AND d.day = r.day AND d.currency = r.currency;
