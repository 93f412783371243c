//! Named leases: at most one holder at a time, until the lease runs out.

use chrono::{DateTime, Utc};

use super::{Store, sql};

/// Takes or renews the lease `name` for `holder` until `until`; returns whether `holder` now
/// holds it (it was free, expired, or already this holder's).
pub async fn acquire(
    store: &Store,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $4) \
               ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
               WHERE leases.until < $3 OR leases.holder = excluded.holder RETURNING holder";
    let held: Vec<(String,)> = sql!(on_write(store) => fetch_all(sql, name, holder, now, until))?;
    Ok(!held.is_empty())
}
