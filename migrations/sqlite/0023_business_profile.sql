-- The business profile (issue 35): the name customers see on the checkout (the account's name
-- when empty), the time zone the dashboard shows times and date ranges in, and a logo kept in
-- its own table (read only by the checkout's logo route), its digest on the merchant naming
-- the current version.
ALTER TABLE merchants ADD COLUMN display_name TEXT;
ALTER TABLE merchants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE merchants ADD COLUMN logo_digest TEXT;
CREATE TABLE merchant_logos (
    merchant_id TEXT PRIMARY KEY REFERENCES merchants(id),
    content_type TEXT NOT NULL,
    bytes BLOB NOT NULL,
    updated_at TEXT NOT NULL
);
