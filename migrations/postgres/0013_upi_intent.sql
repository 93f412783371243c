-- UPI intent and QR (issue 32).
--
-- A merchant receives UPI payments at its own VPA (upi_id), the payee of every intent and QR
-- payment. An intent or QR payment keeps its flow, the upi://pay link it was created with (the
-- amount and payee fixed at creation), where its QR is served, and when it expires unapproved.
ALTER TABLE merchants ADD COLUMN upi_id TEXT;
ALTER TABLE payments ADD COLUMN upi_flow TEXT;
ALTER TABLE payments ADD COLUMN upi_uri TEXT;
ALTER TABLE payments ADD COLUMN upi_qr_url TEXT;
ALTER TABLE payments ADD COLUMN expires_at TIMESTAMPTZ;
UPDATE merchants SET upi_id = 'testmerchant@paygate'
    WHERE id = '550e8400-e29b-41d4-a716-446655440000' AND upi_id IS NULL;
