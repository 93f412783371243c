//! Two-factor sign-in rows: the users' sealed TOTP secrets (pending while being set up), the
//! last step a code was accepted for, recovery code digests, and the merchants' requirement.
//! Every acceptance is a conditional update, so a code or a recovery code works once even when
//! two sign-ins race with it.

use chrono::{DateTime, Utc};

use super::{
    Store,
    audit_log::{self, Entry},
    sql,
};

/// Stores a sealed secret being set up (replacing any earlier one).
pub async fn set_pending(store: &Store, user_id: &str, sealed: &str) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users SET totp_pending = $2 WHERE id = $1";
    sql!(on_write(store) => execute(sql, user_id, sealed))?;
    Ok(())
}

/// The user's sealed secrets: `(enabled, pending)`.
pub async fn secrets(
    store: &Store,
    user_id: &str,
) -> Result<(Option<String>, Option<String>), sqlx::Error> {
    let sql = "SELECT totp_secret, totp_pending FROM users WHERE id = $1";
    let row: Option<(Option<String>, Option<String>)> =
        sql!(on_pool(store) => fetch_optional(sql, user_id))?;
    Ok(row.unwrap_or((None, None)))
}

/// Turns two-factor sign-in on with the pending secret `sealed` (only while it is still the
/// pending one), its confirming code's `step` used, and replaces the user's recovery codes with
/// `recovery` (digests), in one transaction. Whether it was turned on.
pub async fn enable(
    store: &Store,
    user_id: &str,
    sealed: &str,
    step: i64,
    recovery: &[String],
    audit: Option<&Entry>,
) -> Result<bool, sqlx::Error> {
    let mut tx = store.begin().await?;
    let sql = "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, \
               totp_last_step = $3 WHERE id = $1 AND totp_pending = $2";
    if sql!(on_tx(&mut tx) => execute(sql, user_id, sealed, step))? != 1 {
        return Ok(false);
    }
    let sql = "DELETE FROM recovery_codes WHERE user_id = $1";
    sql!(on_tx(&mut tx) => execute(sql, user_id))?;
    for digest in recovery {
        let sql = "INSERT INTO recovery_codes (user_id, digest) VALUES ($1, $2)";
        sql!(on_tx(&mut tx) => execute(sql, user_id, digest))?;
    }
    audit_log::append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// Turns two-factor sign-in off and forgets the recovery codes.
pub async fn disable(
    store: &Store,
    user_id: &str,
    audit: Option<&Entry>,
) -> Result<(), sqlx::Error> {
    let mut tx = store.begin().await?;
    let sql = "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL \
               WHERE id = $1";
    sql!(on_tx(&mut tx) => execute(sql, user_id))?;
    let sql = "DELETE FROM recovery_codes WHERE user_id = $1";
    sql!(on_tx(&mut tx) => execute(sql, user_id))?;
    audit_log::append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

/// Accepts a code of time step `step`: only a step later than the last one accepted. Whether
/// it was accepted (false: that code, or a later one, was used already).
pub async fn use_step(store: &Store, user_id: &str, step: i64) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_secret IS NOT NULL \
               AND (totp_last_step IS NULL OR totp_last_step < $2)";
    Ok(sql!(on_write(store) => execute(sql, user_id, step))? == 1)
}

/// Uses the recovery code with this digest, once. Whether it was unused.
pub async fn use_recovery(
    store: &Store,
    user_id: &str,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE recovery_codes SET used_at = $3 \
               WHERE user_id = $1 AND digest = $2 AND used_at IS NULL";
    Ok(sql!(on_write(store) => execute(sql, user_id, digest, now))? == 1)
}

/// How many of the user's recovery codes are left.
pub async fn recovery_left(store: &Store, user_id: &str) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL";
    sql!(on_pool(store) => scalar::fetch_one(sql, user_id))
}

/// Requires (or stops requiring) two-factor sign-in of every user of the merchant.
pub async fn set_required(
    store: &Store,
    merchant_id: &str,
    required: bool,
    audit: Option<&Entry>,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE merchants SET require_two_factor = $2 WHERE id = $1";
    let mut tx = store.begin().await?;
    sql!(on_tx(&mut tx) => execute(sql, merchant_id, required))?;
    audit_log::append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether the merchant requires two-factor sign-in.
pub async fn required(store: &Store, merchant_id: &str) -> Result<bool, sqlx::Error> {
    let sql = "SELECT require_two_factor FROM merchants WHERE id = $1";
    let row: Option<bool> = sql!(on_pool(store) => scalar::fetch_optional(sql, merchant_id))?;
    Ok(row.unwrap_or(false))
}
