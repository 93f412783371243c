//! Queries of the merchant dashboard: sessions, logins, statistics.

use chrono::{DateTime, Utc};
use paygate_core::MinorUnit;

use super::{Db, Store, on_pool, on_write};

/// Headline figures of a merchant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Stats {
    pub total: i64,
    pub successful: i64,
    #[sqlx(rename = "amount", try_from = "i64")]
    pub successful_amount: MinorUnit,
}

/// Counts all payments and sums the successful ones, in the database.
pub async fn stats(store: &Store, merchant_id: &str) -> Result<Stats, sqlx::Error> {
    on_pool!(store, pool => {
        sqlx::query_as::<_, Stats>(
            // PostgreSQL sums BIGINTs as NUMERIC: cast back (both dialects read CAST … AS BIGINT).
            "SELECT COUNT(*) AS total, \
             CAST(COALESCE(SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), 0) AS BIGINT) AS successful, \
             CAST(COALESCE(SUM(CASE WHEN status = 'success' THEN amount ELSE 0 END), 0) AS BIGINT) AS amount \
             FROM payments WHERE merchant_id = $1",
        )
        .bind(merchant_id)
        .fetch_one(pool)
        .await
    })
}

/// One day of the chart: `(YYYY-MM-DD, payments, successful, successful amount)`.
pub type Day = (String, i64, i64, i64);

/// Payments per UTC day since `since`, oldest first.
pub async fn daily(
    store: &Store,
    merchant_id: &str,
    since: DateTime<Utc>,
) -> Result<Vec<Day>, sqlx::Error> {
    // The day of a timestamp is spelled differently by each dialect.
    let sql = match store.db {
        Db::Sqlite(_) => {
            "SELECT substr(created_at, 1, 10) AS day, COUNT(*) AS n, \
             SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS ok, \
             SUM(CASE WHEN status = 'success' THEN amount ELSE 0 END) AS amount \
             FROM payments WHERE merchant_id = $1 AND created_at >= $2 GROUP BY day ORDER BY day"
        }
        Db::Postgres(_) => {
            "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, COUNT(*) AS n, \
             SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END)::BIGINT AS ok, \
             SUM(CASE WHEN status = 'success' THEN amount ELSE 0 END)::BIGINT AS amount \
             FROM payments WHERE merchant_id = $1 AND created_at >= $2 GROUP BY day ORDER BY day"
        }
    };
    on_pool!(store, pool => {
        sqlx::query_as(sql).bind(merchant_id).bind(since).fetch_all(pool).await
    })
}

/// A session: its merchant, CSRF token, and the notice left for its next page.
#[derive(sqlx::FromRow)]
pub struct Session {
    pub merchant_id: String,
    pub csrf_token: String,
    pub flash: Option<String>,
}

/// Stores a session under the digest of its token.
pub async fn create_session(
    store: &Store,
    digest: &str,
    merchant_id: &str,
    csrf: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_write!(store, pool => {
        sqlx::query("INSERT INTO sessions (id, merchant_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(digest)
            .bind(merchant_id)
            .bind(csrf)
            .bind(now)
            .bind(expires)
            .execute(pool)
            .await?;
        Ok(())
    })
}

/// The live session with this token digest.
pub async fn session(
    store: &Store,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<Session>, sqlx::Error> {
    on_pool!(store, pool => {
        sqlx::query_as("SELECT merchant_id, csrf_token, flash FROM sessions WHERE id = $1 AND expires_at > $2")
            .bind(digest)
            .bind(now)
            .fetch_optional(pool)
            .await
    })
}

/// Leaves a notice for the session's next page.
pub async fn set_flash(store: &Store, digest: &str, notice: &str) -> Result<(), sqlx::Error> {
    on_write!(store, pool => {
        sqlx::query("UPDATE sessions SET flash = $2 WHERE id = $1")
            .bind(digest)
            .bind(notice)
            .execute(pool)
            .await?;
        Ok(())
    })
}

/// Clears the session's notice once a page showed it (only if it is still that notice).
pub async fn take_flash(store: &Store, digest: &str, notice: &str) -> Result<(), sqlx::Error> {
    on_write!(store, pool => {
        sqlx::query("UPDATE sessions SET flash = NULL WHERE id = $1 AND flash = $2")
            .bind(digest)
            .bind(notice)
            .execute(pool)
            .await?;
        Ok(())
    })
}

/// Ends a session, and any expired ones.
pub async fn end_session(
    store: &Store,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_write!(store, pool => {
        sqlx::query("DELETE FROM sessions WHERE id = $1 OR expires_at <= $2")
            .bind(digest)
            .bind(now)
            .execute(pool)
            .await?;
        Ok(())
    })
}

/// The merchant's email and password hash, by email.
pub async fn login_row(
    store: &Store,
    email: &str,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    on_pool!(store, pool => {
        sqlx::query_as("SELECT id, password_hash FROM merchants WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_optional(pool)
            .await
    })
}

/// Sets the merchant's dashboard password hash (only where none is set, with `if_unset`).
pub async fn set_password_hash(
    store: &Store,
    merchant_id: &str,
    hash: &str,
    if_unset: bool,
) -> Result<bool, sqlx::Error> {
    let sql = if if_unset {
        "UPDATE merchants SET password_hash = $2 WHERE id = $1 AND password_hash IS NULL"
    } else {
        "UPDATE merchants SET password_hash = $2 WHERE id = $1"
    };
    on_write!(store, pool => {
        let done = sqlx::query(sql).bind(merchant_id).bind(hash).execute(pool).await?;
        Ok(done.rows_affected() == 1)
    })
}

/// Replaces the merchant's API secret digest.
pub async fn set_api_secret_hash(
    store: &Store,
    merchant_id: &str,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    on_write!(store, pool => {
        sqlx::query("UPDATE merchants SET api_secret_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(merchant_id)
            .bind(digest)
            .bind(now)
            .execute(pool)
            .await?;
        Ok(())
    })
}
