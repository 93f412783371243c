-- Workers and the recovery sweep read only the work that is due, whatever the table sizes.
--
-- A claim reads the queue's due queued jobs and its active ones (whose lease may have run
-- out) through jobs_queue_due_idx (queue, status, run_at), one branch each. The sweep's purge
-- of completed jobs reads only the completed jobs older than a day through (status,
-- updated_at), not every completed job (a day of them at full rate is tens of millions);
-- (status, run_at) served nothing the queue index does not.
DROP INDEX jobs_due_idx;
CREATE INDEX jobs_status_idx ON jobs (status, updated_at);
-- Pending refunds, the sweep's other read, like payments_pending_idx: only pending rows.
DROP INDEX refunds_pending_idx;
CREATE INDEX refunds_pending_idx ON refunds (created_at) WHERE status = 'pending';
-- Deliveries waiting for an attempt, the sweep's third read.
DROP INDEX webhook_logs_due_idx;
CREATE INDEX webhook_logs_due_idx ON webhook_logs (next_retry_at) WHERE status = 'pending';

-- An endpoint's deliveries, newest first: its health on the webhooks page reads its latest
-- deliveries (a bounded number), and retrying or waking its deliveries reads only its own.
CREATE INDEX webhook_logs_endpoint_idx ON webhook_logs (endpoint_id, created_at DESC);
-- When an attempt to the endpoint last failed, kept with each attempt's outcome (not found by
-- reading its deliveries on every page view).
ALTER TABLE webhook_endpoints ADD COLUMN last_failure_at TIMESTAMPTZ;
UPDATE webhook_endpoints SET last_failure_at = (
    SELECT MAX(w.last_attempt_at) FROM webhook_logs w
    WHERE w.endpoint_id = webhook_endpoints.id AND w.attempts > 0
      AND (w.response_code IS NULL OR w.response_code < 200 OR w.response_code > 299));
