-- "Retry all failed" on the dashboard (issue 35): a merchant's failed deliveries, found without
-- reading the rest of its delivery log.
CREATE INDEX webhook_logs_failed_idx ON webhook_logs (merchant_id, created_at) WHERE status = 'failed';
