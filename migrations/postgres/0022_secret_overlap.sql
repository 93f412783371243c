-- Rotating the API secret or the default webhook secret with an overlap (issue 35): the
-- previous secret keeps working (the API secret) or signing beside the new one (the webhook
-- secret) until the time stored with it; NULL when the rotation revoked it at once.
ALTER TABLE merchants ADD COLUMN previous_api_secret_hash TEXT;
ALTER TABLE merchants ADD COLUMN previous_api_secret_until TIMESTAMPTZ;
ALTER TABLE merchants ADD COLUMN previous_webhook_secret TEXT;
ALTER TABLE merchants ADD COLUMN previous_webhook_secret_until TIMESTAMPTZ;
