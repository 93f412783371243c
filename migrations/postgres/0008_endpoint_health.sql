-- Auto-disable: since when every attempt to an endpoint has failed (NULL after a success),
-- and why it was disabled ('failing' when the gateway disabled it; NULL otherwise).
ALTER TABLE webhook_endpoints ADD COLUMN failing_since TIMESTAMPTZ;
ALTER TABLE webhook_endpoints ADD COLUMN disabled_reason TEXT;
