//! Idempotency keys: one row per (merchant, key), `running` while the first request runs and
//! `done` with its stored response afterwards.

use chrono::{DateTime, Utc};
use sqlx::Row as _;

use super::{Store, on_pool, on_write};

/// What a request with an idempotency key may do.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: run it.
    Acquired,
    /// The key's request finished: answer with its stored response.
    Replay { status: u16, body: Vec<u8> },
    /// The key was used for a different request.
    Mismatch,
    /// The key's first request is still running.
    InUse,
}

/// Claims `key` for a request with `hash`. A key whose row expired, or whose request has been
/// `running` since before `stale_before` (its process died), is taken over.
pub async fn claim(
    store: &Store,
    merchant_id: &str,
    key: &str,
    hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    stale_before: DateTime<Utc>,
) -> Result<Claim, sqlx::Error> {
    let taken = on_write!(store, pool => {
        sqlx::query(
            "INSERT INTO idempotency_keys (merchant_id, key, request_hash, status, created_at, expires_at) \
             VALUES ($1, $2, $3, 'running', $4, $5) \
             ON CONFLICT (merchant_id, key) DO UPDATE SET request_hash = excluded.request_hash, \
             status = 'running', response_status = NULL, response_body = NULL, \
             created_at = excluded.created_at, expires_at = excluded.expires_at \
             WHERE idempotency_keys.expires_at < $4 \
             OR (idempotency_keys.status = 'running' AND idempotency_keys.created_at < $6) \
             RETURNING status",
        )
        .bind(merchant_id)
        .bind(key)
        .bind(hash)
        .bind(now)
        .bind(expires_at)
        .bind(stale_before)
        .fetch_all(pool)
        .await?
        .len()
    });
    if taken > 0 {
        return Ok(Claim::Acquired);
    }
    on_pool!(store, pool => {
        let row = sqlx::query(
            "SELECT request_hash, status, response_status, response_body FROM idempotency_keys \
             WHERE merchant_id = $1 AND key = $2",
        )
        .bind(merchant_id)
        .bind(key)
        .fetch_optional(pool)
        .await?;
        let Some(row) = row else {
            // Released by its request a moment ago: the caller may try again.
            return Ok(Claim::InUse);
        };
        let stored_hash: String = row.try_get("request_hash")?;
        let status: String = row.try_get("status")?;
        if stored_hash != hash {
            return Ok(Claim::Mismatch);
        }
        if status != "done" {
            return Ok(Claim::InUse);
        }
        let code: i32 = row.try_get("response_status")?;
        let body: Vec<u8> = row.try_get("response_body")?;
        Ok(Claim::Replay { status: u16::try_from(code).unwrap_or(500), body })
    })
}

/// Stores the response of the key's request.
pub async fn complete(
    store: &Store,
    merchant_id: &str,
    key: &str,
    status: u16,
    body: &[u8],
) -> Result<(), sqlx::Error> {
    on_write!(store, pool => {
        sqlx::query(
            "UPDATE idempotency_keys SET status = 'done', response_status = $3, response_body = $4 \
             WHERE merchant_id = $1 AND key = $2",
        )
        .bind(merchant_id)
        .bind(key)
        .bind(i32::from(status))
        .bind(body)
        .execute(pool)
        .await?;
        Ok(())
    })
}

/// Forgets a key whose request stored nothing (it failed), so it can be used again.
pub async fn release(store: &Store, merchant_id: &str, key: &str) -> Result<(), sqlx::Error> {
    on_write!(store, pool => {
        sqlx::query("DELETE FROM idempotency_keys WHERE merchant_id = $1 AND key = $2 AND status = 'running'")
            .bind(merchant_id)
            .bind(key)
            .execute(pool)
            .await?;
        Ok(())
    })
}

/// Deletes expired keys; returns how many.
pub async fn purge_expired(store: &Store, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    on_write!(store, pool => {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    })
}
