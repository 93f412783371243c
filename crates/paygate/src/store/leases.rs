//! Named leases: at most one holder at a time, until the lease runs out.

use chrono::{DateTime, Utc};

use super::{Store, on_write};

/// Takes or renews the lease `name` for `holder` until `until`; returns whether `holder` now
/// holds it (it was free, expired, or already this holder's).
pub async fn acquire(
    store: &Store,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    on_write!(store, pool => {
        let rows = sqlx::query(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.until < $3 OR leases.holder = excluded.holder RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now)
        .bind(until)
        .fetch_all(pool)
        .await?;
        Ok(!rows.is_empty())
    })
}
