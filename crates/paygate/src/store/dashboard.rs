//! Queries of the merchant dashboard: sessions, logins, statistics.

use chrono::{DateTime, Utc};
use paygate_core::MinorUnit;

use std::collections::BTreeMap;

use super::{Db, Store, Tx, payments::Payment, rows, sql};

/// Headline figures of a merchant: payments counted over every currency, amounts per
/// currency (never added across currencies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub total: i64,
    pub successful: i64,
    /// Collected per currency, the largest first.
    pub amounts: Vec<(String, MinorUnit)>,
    /// Refunded per currency (refunds asked for), where anything was.
    pub refunded: Vec<(String, MinorUnit)>,
}

/// The merchant's headline figures, summed from its per-day rollups (a row a day and
/// currency, never a scan of payments).
pub async fn stats(store: &Store, merchant_id: &str) -> Result<Stats, sqlx::Error> {
    // PostgreSQL sums BIGINTs as NUMERIC: cast back (both dialects read CAST … AS BIGINT).
    let sql = "SELECT currency, CAST(COALESCE(SUM(payments), 0) AS BIGINT), \
         CAST(COALESCE(SUM(successful), 0) AS BIGINT), \
         CAST(COALESCE(SUM(amount), 0) AS BIGINT), \
         CAST(COALESCE(SUM(refunded), 0) AS BIGINT) \
         FROM payment_days WHERE merchant_id = $1 GROUP BY currency";
    let rows: Vec<(String, i64, i64, i64, i64)> =
        sql!(on_pool(store) => fetch_all(sql, merchant_id))?;
    let mut stats = Stats::default();
    for (currency, total, successful, amount, refunded) in rows {
        stats.total += total;
        stats.successful += successful;
        if refunded > 0 {
            stats
                .refunded
                .push((currency.clone(), MinorUnit::new(refunded)));
        }
        if amount > 0 {
            stats.amounts.push((currency, MinorUnit::new(amount)));
        }
    }
    stats
        .amounts
        .sort_by(|a, b| b.1.get().cmp(&a.1.get()).then_with(|| a.0.cmp(&b.0)));
    Ok(stats)
}

/// One day of one currency: payments, successful ones, and their amount.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Day {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub currency: String,
    pub payments: i64,
    pub successful: i64,
    pub amount: i64,
    /// Refunded of the day's payments.
    pub refunded: i64,
}

/// The merchant's per-day rollups from the UTC day of `since`, oldest first.
pub async fn daily(
    store: &Store,
    merchant_id: &str,
    since: DateTime<Utc>,
) -> Result<Vec<Day>, sqlx::Error> {
    let sql = "SELECT day, currency, payments, successful, amount, refunded FROM payment_days \
               WHERE merchant_id = $1 AND day >= $2 ORDER BY day, currency";
    sql!(on_pool(store) => fetch_all(sql, merchant_id, day_of(since)))
}

/// The UTC day a rollup counts an instant in.
pub fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Adds `payments` (new ones: counted in their day) and `successful` (those that just became
/// successful: counted, with their amount, in the day they were created) to the rollups, in
/// one statement, in the transaction that makes those changes, so the rollups always agree
/// with the payments. Rows are upserted in key order, so concurrent transactions lock them in
/// the same order.
pub async fn count_payments(
    tx: &mut Tx,
    created: &[&Payment],
    successful: &[&Payment],
) -> Result<(), sqlx::Error> {
    let mut deltas: BTreeMap<(&str, String, &str), (i64, i64, i64)> = BTreeMap::new();
    for p in created {
        deltas
            .entry((&p.merchant_id, day_of(p.created_at), &p.currency))
            .or_default()
            .0 += 1;
    }
    for p in successful {
        let d = deltas
            .entry((&p.merchant_id, day_of(p.created_at), &p.currency))
            .or_default();
        d.1 += 1;
        d.2 = d.2.checked_add(p.amount.get()).ok_or_else(|| {
            sqlx::Error::Protocol("a day's collected amount overflows 64 bits".into())
        })?;
    }
    let input = rows::Rows::new(deltas.len())
        .text("merchant_id", deltas.keys().map(|k| k.0.to_owned()))
        .text("day", deltas.keys().map(|k| k.1.clone()))
        .text("currency", deltas.keys().map(|k| k.2.to_owned()))
        .int("payments", deltas.values().map(|d| d.0))
        .int("successful", deltas.values().map(|d| d.1))
        .int("amount", deltas.values().map(|d| d.2));
    // `WHERE TRUE`: SQLite's parser needs it between an `INSERT … SELECT` and `ON CONFLICT`.
    let sql = "INSERT INTO payment_days (merchant_id, day, currency, payments, successful, amount) \
               SELECT merchant_id, day, currency, payments, successful, amount FROM v WHERE TRUE \
               ORDER BY merchant_id, day, currency \
               ON CONFLICT (merchant_id, day, currency) DO UPDATE SET \
               payments = payment_days.payments + excluded.payments, \
               successful = payment_days.successful + excluded.successful, \
               amount = payment_days.amount + excluded.amount";
    rows::execute(tx, input, sql).await?;
    Ok(())
}

/// Adds what `refunded` asks back, each `(payment, amount)`, to the rollup of the payment's day,
/// in one statement, in the transaction that creates the refunds (rows upserted in key order,
/// as [`count_payments`] does).
pub async fn count_refunds(tx: &mut Tx, refunded: &[(Payment, i64)]) -> Result<(), sqlx::Error> {
    let mut deltas: BTreeMap<(&str, String, &str), i64> = BTreeMap::new();
    for (p, amount) in refunded {
        let d = deltas
            .entry((&p.merchant_id, day_of(p.created_at), &p.currency))
            .or_default();
        *d = d.checked_add(*amount).ok_or_else(|| {
            sqlx::Error::Protocol("a day's refunded amount overflows 64 bits".into())
        })?;
    }
    if deltas.is_empty() {
        return Ok(());
    }
    let input = rows::Rows::new(deltas.len())
        .text("merchant_id", deltas.keys().map(|k| k.0.to_owned()))
        .text("day", deltas.keys().map(|k| k.1.clone()))
        .text("currency", deltas.keys().map(|k| k.2.to_owned()))
        .int("refunded", deltas.values().copied());
    let sql = "INSERT INTO payment_days \
               (merchant_id, day, currency, payments, successful, amount, refunded) \
               SELECT merchant_id, day, currency, 0, 0, 0, refunded FROM v WHERE TRUE \
               ORDER BY merchant_id, day, currency \
               ON CONFLICT (merchant_id, day, currency) DO UPDATE SET \
               refunded = payment_days.refunded + excluded.refunded";
    rows::execute(tx, input, sql).await?;
    Ok(())
}

/// The rollups recounted from the payments themselves (a full scan: for tests and checks,
/// never for a page).
pub async fn recount(store: &Store, merchant_id: &str) -> Result<Vec<Day>, sqlx::Error> {
    let sql = match store.db {
        Db::Sqlite(_) => {
            "SELECT substr(created_at, 1, 10) AS day, currency, COUNT(*) AS payments, \
             SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS successful, \
             SUM(CASE WHEN status = 'success' THEN amount ELSE 0 END) AS amount, \
             SUM(amount_refunded) AS refunded \
             FROM payments WHERE merchant_id = $1 GROUP BY day, currency ORDER BY day, currency"
        }
        Db::Postgres(_) => {
            "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, currency, \
             COUNT(*) AS payments, \
             SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END)::BIGINT AS successful, \
             SUM(CASE WHEN status = 'success' THEN amount ELSE 0 END)::BIGINT AS amount, \
             SUM(amount_refunded)::BIGINT AS refunded \
             FROM payments WHERE merchant_id = $1 GROUP BY day, currency ORDER BY day, currency"
        }
    };
    sql!(on_pool(store) => fetch_all(sql, merchant_id))
}

/// The merchant's rollups as stored, oldest first.
pub async fn rollups(store: &Store, merchant_id: &str) -> Result<Vec<Day>, sqlx::Error> {
    let sql = "SELECT day, currency, payments, successful, amount, refunded FROM payment_days \
               WHERE merchant_id = $1 ORDER BY day, currency";
    sql!(on_pool(store) => fetch_all(sql, merchant_id))
}

/// A session: its merchant and user, CSRF token, and the notice left for its next page.
#[derive(sqlx::FromRow)]
pub struct Session {
    pub merchant_id: String,
    pub csrf_token: String,
    pub flash: Option<String>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub user_id: String,
    pub user_name: String,
    pub user_email: String,
    pub role: String,
    /// The user signs in with a second factor.
    pub two_factor: bool,
    /// The merchant requires a second factor of every user.
    pub require_two_factor: bool,
}

/// A new session: who it belongs to and where it was started.
pub struct NewSession<'a> {
    pub digest: &'a str,
    pub merchant_id: &'a str,
    pub user_id: &'a str,
    pub csrf: &'a str,
    pub user_agent: Option<&'a str>,
    pub address: &'a str,
    pub now: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    /// The password was right; the second factor is still to come.
    pub second_factor_pending: bool,
}

/// Stores a session under the digest of its token.
pub async fn create_session(store: &Store, s: &NewSession<'_>) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO sessions (id, merchant_id, user_id, csrf_token, user_agent, address, \
               created_at, last_seen_at, expires_at, second_factor_pending) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)";
    sql!(on_write(store) => execute(
        sql, s.digest, s.merchant_id, s.user_id, s.csrf, s.user_agent, s.address, s.now, s.expires,
        s.second_factor_pending,
    ))?;
    Ok(())
}

/// A session still waiting for its second factor: its user and CSRF token.
#[derive(sqlx::FromRow)]
pub struct PendingSession {
    pub user_id: String,
    pub email: String,
    pub csrf_token: String,
}

/// The live session with this digest that waits for its second factor.
pub async fn pending_session(
    store: &Store,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<PendingSession>, sqlx::Error> {
    let sql = "SELECT s.user_id, u.email, s.csrf_token FROM sessions s \
               JOIN users u ON u.id = s.user_id JOIN merchants m ON m.id = s.merchant_id \
               WHERE s.id = $1 AND s.expires_at > $2 AND s.second_factor_pending \
               AND m.disabled_reason IS NULL";
    sql!(on_pool(store) => fetch_optional(sql, digest, now))
}

/// The live session with this token digest, with its user (of an active merchant).
pub async fn session(
    store: &Store,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<Session>, sqlx::Error> {
    let sql = "SELECT s.merchant_id, s.csrf_token, s.flash, s.last_seen_at, u.id AS user_id, \
               u.name AS user_name, u.email AS user_email, u.role, \
               u.totp_secret IS NOT NULL AS two_factor, m.require_two_factor FROM sessions s \
               JOIN users u ON u.id = s.user_id JOIN merchants m ON m.id = s.merchant_id \
               WHERE s.id = $1 AND s.expires_at > $2 AND NOT s.second_factor_pending \
               AND m.disabled_reason IS NULL";
    sql!(on_pool(store) => fetch_optional(sql, digest, now))
}

/// Leaves a notice for the session's next page.
pub async fn set_flash(store: &Store, digest: &str, notice: &str) -> Result<(), sqlx::Error> {
    let sql = "UPDATE sessions SET flash = $2 WHERE id = $1";
    sql!(on_write(store) => execute(sql, digest, notice))?;
    Ok(())
}

/// Clears the session's notice once a page showed it (only if it is still that notice).
pub async fn take_flash(store: &Store, digest: &str, notice: &str) -> Result<(), sqlx::Error> {
    let sql = "UPDATE sessions SET flash = NULL WHERE id = $1 AND flash = $2";
    sql!(on_write(store) => execute(sql, digest, notice))?;
    Ok(())
}

/// Ends a session, and any expired ones.
pub async fn end_session(
    store: &Store,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM sessions WHERE id = $1 OR expires_at <= $2";
    sql!(on_write(store) => execute(sql, digest, now))?;
    Ok(())
}

/// Replaces the merchant's API secret digest, enabling a merchant disabled for holding the
/// seeded credentials; the current secret keeps working until `overlap_until` (`None`: it
/// stops now).
pub async fn set_api_secret_hash(
    tx: &mut Tx,
    merchant_id: &str,
    digest: &str,
    overlap_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE merchants SET \
               previous_api_secret_hash = CASE WHEN $3 IS NULL THEN NULL ELSE api_secret_hash END, \
               previous_api_secret_until = $3, api_secret_hash = $2, updated_at = $4, \
               disabled_reason = NULL WHERE id = $1";
    sql!(on_tx(tx) => execute(sql, merchant_id, digest, overlap_until, now))?;
    Ok(())
}
