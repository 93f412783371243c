-- The audit log (issue 34): every change made through the API (by an API key) or the dashboard
-- (by a user), and every sign-in, success or failure. Written in the transaction of the change
-- it records, so a change that rolls back leaves no entry. Append-only: no code path updates
-- or deletes an entry, and the triggers below refuse UPDATE and DELETE.
CREATE TABLE audit_logs (
    id            TEXT PRIMARY KEY,
    merchant_id   TEXT NOT NULL REFERENCES merchants (id),
    actor_type    TEXT NOT NULL CHECK (actor_type IN ('api_key', 'user')),
    actor_id      TEXT NOT NULL,
    -- Who the actor was when it acted: a user's email, an API key's id.
    actor_name    TEXT NOT NULL,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT,
    address       TEXT,
    user_agent    TEXT,
    outcome       TEXT NOT NULL CHECK (outcome IN ('success', 'failure')),
    created_at    TEXT NOT NULL
);
-- A merchant's log newest first, and narrowed to one actor or one resource.
CREATE INDEX audit_logs_merchant_idx ON audit_logs (merchant_id, created_at, id);
CREATE INDEX audit_logs_actor_idx ON audit_logs (merchant_id, actor_id, created_at, id);
CREATE INDEX audit_logs_resource_idx ON audit_logs (merchant_id, resource_id, created_at, id);

CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only: DELETE refused');
END;
