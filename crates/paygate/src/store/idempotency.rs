//! Idempotency keys: one row per (merchant, key), `running` while the first request runs and
//! `done` with its stored response afterwards.
//!
//! A claim carries a random token. Completing a key (in the transaction of the change it
//! reports, [`complete_in`]) and releasing it are conditional on that token, so a request
//! whose key was taken over (it ran past the takeover window) can neither store its response
//! over the new holder's nor free the key under it: its transaction is rolled back instead.

use chrono::{DateTime, Utc};

use super::{Store, Tx, sql};

/// What a request with an idempotency key may do.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: run it, holding this claim.
    Acquired(Held),
    /// The key's request finished: answer with its stored response.
    Replay(Stored),
    /// The key was used for a different request.
    Mismatch,
    /// The key's first request is still running.
    InUse,
}

/// A claim on a key, held by one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub merchant_id: String,
    pub key: String,
    pub token: String,
}

/// A stored response: status and body bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Stored {
    /// The status as the `response_status` column holds it.
    fn code(&self) -> i32 {
        i32::from(self.status)
    }
}

/// A key as [`claim`] reads it when the key exists.
#[derive(sqlx::FromRow)]
struct KeyRow {
    request_hash: String,
    /// `running` or `done`.
    status: String,
    response_status: Option<i32>,
    response_body: Option<Vec<u8>>,
}

/// Claims `key` for a request with `hash`, held by the process `owner`, under a new random
/// token. A key whose row expired, or whose request has been `running` since before
/// `stale_before` (its process died: when its owner is known dead, its claim is dated back by
/// `liveness`, so the next request takes it over at once), is taken over (with a new token).
#[allow(clippy::too_many_arguments)]
pub async fn claim(
    store: &Store,
    merchant_id: &str,
    key: &str,
    hash: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    stale_before: DateTime<Utc>,
    owner: &str,
) -> Result<Claim, sqlx::Error> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let sql = "INSERT INTO idempotency_keys (merchant_id, key, request_hash, status, claim_token, created_at, expires_at, owner) \
         VALUES ($1, $2, $3, 'running', $7, $4, $5, $8) \
         ON CONFLICT (merchant_id, key) DO UPDATE SET request_hash = excluded.request_hash, \
         status = 'running', claim_token = excluded.claim_token, owner = excluded.owner, response_status = NULL, \
         response_body = NULL, created_at = excluded.created_at, expires_at = excluded.expires_at \
         WHERE idempotency_keys.expires_at < $4 \
         OR (idempotency_keys.status = 'running' AND idempotency_keys.created_at < $6) \
         RETURNING status";
    let taken: Vec<(String,)> = sql!(on_write(store) => fetch_all(
        sql, merchant_id, key, hash, now, expires_at, stale_before, &token, owner,
    ))?;
    if !taken.is_empty() {
        return Ok(Claim::Acquired(Held {
            merchant_id: merchant_id.to_owned(),
            key: key.to_owned(),
            token,
        }));
    }
    let sql = "SELECT request_hash, status, response_status, response_body FROM idempotency_keys \
               WHERE merchant_id = $1 AND key = $2";
    let row: Option<KeyRow> = sql!(on_pool(store) => fetch_optional(sql, merchant_id, key))?;
    let Some(row) = row else {
        // Released by its request a moment ago: the caller may try again.
        return Ok(Claim::InUse);
    };
    if row.request_hash != hash {
        return Ok(Claim::Mismatch);
    }
    match (row.status.as_str(), row.response_status, row.response_body) {
        ("done", Some(code), Some(body)) => Ok(Claim::Replay(Stored {
            status: u16::try_from(code).unwrap_or(500),
            body,
        })),
        _ => Ok(Claim::InUse),
    }
}

/// Stores the response of the key's request in `tx`, the transaction of the change it
/// reports. `false` when `held` no longer holds the key (it was taken over): the caller must
/// roll back.
pub async fn complete_in(tx: &mut Tx, held: &Held, response: &Stored) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE idempotency_keys SET status = 'done', response_status = $4, \
               response_body = $5 WHERE merchant_id = $1 AND key = $2 AND claim_token = $3 \
               AND status = 'running'";
    let done = sql!(on_tx(tx) => execute(
        sql, &held.merchant_id, &held.key, &held.token, response.code(), &response.body,
    ))?;
    Ok(done == 1)
}

/// [`complete_in`] for many keys in one statement; returns the `(merchant_id, key)` of those
/// completed (a key missing from the answer was taken over: its change must not commit).
pub async fn complete_all_in(
    tx: &mut Tx,
    done: &[(&Held, Stored)],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let input = super::rows::Rows::new(done.len())
        .text(
            "merchant_id",
            done.iter().map(|(h, _)| h.merchant_id.clone()),
        )
        .text("key", done.iter().map(|(h, _)| h.key.clone()))
        .text("token", done.iter().map(|(h, _)| h.token.clone()))
        .int("status", done.iter().map(|(_, r)| i64::from(r.status)))
        .bytes("body", done.iter().map(|(_, r)| r.body.clone()));
    super::rows::fetch(
        tx,
        input,
        "UPDATE idempotency_keys SET status = 'done', response_status = v.status, \
         response_body = v.body FROM v WHERE idempotency_keys.merchant_id = v.merchant_id \
         AND idempotency_keys.key = v.key AND idempotency_keys.claim_token = v.token \
         AND idempotency_keys.status = 'running' \
         RETURNING idempotency_keys.merchant_id, idempotency_keys.key",
    )
    .await
}

/// Replaces a completed key's stored response with a later view of the same result (the
/// outcome of the test webhook's first attempt), if `held` still holds it.
pub async fn update_response(
    store: &Store,
    held: &Held,
    response: &Stored,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE idempotency_keys SET response_status = $4, response_body = $5 \
               WHERE merchant_id = $1 AND key = $2 AND claim_token = $3 AND status = 'done'";
    let done = sql!(on_write(store) => execute(
        sql, &held.merchant_id, &held.key, &held.token, response.code(), &response.body,
    ))?;
    Ok(done == 1)
}

/// Stores the response of a key's request outside any other transaction (for an endpoint
/// whose change is not a transaction of ours); `false` when `held` lost the key.
pub async fn complete(store: &Store, held: &Held, response: &Stored) -> Result<bool, sqlx::Error> {
    let mut tx = store.begin().await?;
    let done = complete_in(&mut tx, held, response).await?;
    tx.commit().await?;
    Ok(done)
}

/// Forgets a key whose request stored nothing (it failed), so it can be used again; only
/// while `held` holds it.
pub async fn release(store: &Store, held: &Held) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND key = $2 \
               AND claim_token = $3 AND status = 'running'";
    sql!(on_write(store) => execute(sql, &held.merchant_id, &held.key, &held.token))?;
    Ok(())
}

/// Deletes expired keys; returns how many.
pub async fn purge_expired(store: &Store, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM idempotency_keys WHERE expires_at < $1";
    sql!(on_write(store) => execute(sql, now))
}

/// The status of the merchant's key (`running` or `done`), if it exists.
pub async fn status(
    store: &Store,
    merchant_id: &str,
    key: &str,
) -> Result<Option<String>, sqlx::Error> {
    let sql = "SELECT status FROM idempotency_keys WHERE merchant_id = $1 AND key = $2";
    let row: Option<(String,)> = sql!(on_pool(store) => fetch_optional(sql, merchant_id, key))?;
    Ok(row.map(|(s,)| s))
}
