-- Fees (issue 33).
--
-- Every successful payment carries the gateway's fee and the tax on the fee (minor units),
-- computed in the transaction that makes it final from the merchant's pricing for its method:
-- a percentage of the amount and a tax percentage of the fee, both in basis points (0.01 %),
-- each rounded half up to the minor unit. A merchant without a row for a method pays the
-- defaults: 2 % (200) and GST 18 % (1800).
CREATE TABLE pricing (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    method      TEXT NOT NULL CHECK (method IN ('upi', 'card')),
    fee_bps     INTEGER NOT NULL CHECK (fee_bps >= 0 AND fee_bps <= 10000),
    tax_bps     INTEGER NOT NULL CHECK (tax_bps >= 0 AND tax_bps <= 10000),
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (merchant_id, method)
);
ALTER TABLE payments ADD COLUMN fee INTEGER;
ALTER TABLE payments ADD COLUMN tax INTEGER;
-- Payments that succeeded before fees were recorded: at the defaults (everyone's pricing then).
UPDATE payments
    SET fee = (amount / 10000) * 200 + ((amount % 10000) * 200 + 5000) / 10000
    WHERE status = 'success' AND fee IS NULL;
UPDATE payments
    SET tax = (fee / 10000) * 1800 + ((fee % 10000) * 1800 + 5000) / 10000
    WHERE status = 'success' AND tax IS NULL;
