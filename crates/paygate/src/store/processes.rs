//! Rows of `processes`: every gateway process's identity and liveness, and the claims that
//! die with their owner.
//!
//! Times are the database's own (`clock_timestamp()` on PostgreSQL, SQLite's `'now'`), both
//! for a heartbeat and for deciding that one is too old, so processes whose clocks disagree
//! cannot declare a live one dead.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Db, Store, sql};

/// Who a process is: a random id, and where it runs (to tell at once that a process of this
/// host is gone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub id: String,
    /// `all`, `serve` or `worker`.
    pub kind: String,
    pub host: String,
    pub boot_id: String,
    pub pid: i64,
    /// The process's start time, clock ticks since boot (with the pid, unique on a host).
    pub start_ticks: i64,
}

/// The current time by the database's clock, as SQL.
fn db_now(store: &Store) -> &'static str {
    match store.db {
        Db::Postgres(_) => "clock_timestamp()",
        Db::Sqlite(_) => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    }
}

/// Registers a process (or re-registers it, alive again).
pub async fn register(store: &Store, me: &Identity) -> Result<(), sqlx::Error> {
    let now = db_now(store);
    let sql = format!(
        "INSERT INTO processes (id, kind, host, boot_id, pid, start_ticks, started_at, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $5, $6, {now}, {now}) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, dead = FALSE"
    );
    let sql = sqlx::AssertSqlSafe(sql);
    sql!(on_write(store) => execute(sql, &me.id, &me.kind, &me.host, &me.boot_id, me.pid, me.start_ticks))?;
    Ok(())
}

/// Records that the process is alive, now. `false` when its row is gone (it was removed).
pub async fn beat(store: &Store, id: &str) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE processes SET heartbeat_at = {}, dead = FALSE WHERE id = $1",
        db_now(store)
    );
    let sql = sqlx::AssertSqlSafe(sql);
    Ok(sql!(on_write(store) => execute(sql, id))? == 1)
}

/// Marks dead the live processes whose last beat is older than `after` by the database's
/// clock; returns their ids (only to the caller whose statement marked them).
pub async fn mark_silent_dead(store: &Store, after: Duration) -> Result<Vec<String>, sqlx::Error> {
    let ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    let sql = match store.db {
        Db::Postgres(_) => {
            "UPDATE processes SET dead = TRUE WHERE NOT dead \
             AND heartbeat_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000.0) \
             RETURNING id"
        }
        Db::Sqlite(_) => {
            "UPDATE processes SET dead = TRUE WHERE NOT dead \
             AND heartbeat_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ($1 / 1000.0) || ' seconds') \
             RETURNING id"
        }
    };
    let ids: Vec<(String,)> = sql!(on_write(store) => fetch_all(sql, ms))?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// The live processes registered on this host (same name and boot), other than `me`:
/// `(id, pid, start_ticks)`.
pub async fn on_host(store: &Store, me: &Identity) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let sql = "SELECT id, pid, start_ticks FROM processes \
               WHERE NOT dead AND host = $1 AND boot_id = $2 AND id <> $3";
    sql!(on_pool(store) => fetch_all(sql, &me.host, &me.boot_id, &me.id))
}

/// Marks the process `id` dead (it is gone from this host); `true` when this call did.
pub async fn mark_dead(store: &Store, id: &str) -> Result<bool, sqlx::Error> {
    let sql = "UPDATE processes SET dead = TRUE WHERE id = $1 AND NOT dead";
    Ok(sql!(on_write(store) => execute(sql, id))? == 1)
}

/// Forgets a process that stopped cleanly (it handed back what it held).
pub async fn remove(store: &Store, id: &str) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM processes WHERE id = $1";
    sql!(on_write(store) => execute(sql, id))?;
    Ok(())
}

/// Forgets processes silent for a day (their claims were freed long ago).
pub async fn purge_dead(store: &Store) -> Result<u64, sqlx::Error> {
    let sql = match store.db {
        Db::Postgres(_) => {
            "DELETE FROM processes WHERE dead \
             AND heartbeat_at < clock_timestamp() - interval '1 day'"
        }
        Db::Sqlite(_) => {
            "DELETE FROM processes WHERE dead \
             AND heartbeat_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')"
        }
    };
    sql!(on_write(store) => execute(sql))
}

/// What a dead owner held in the database, freed: its running idempotency keys count as
/// abandoned (a retry takes them over), its processor leases are dropped. (Its jobs are handed
/// back by the queue.) Returns how many of each.
pub async fn free_claims(store: &Store, owner: &str) -> Result<Freed, sqlx::Error> {
    // A key's takeover window counts from its claim: a claim from the distant past is
    // abandoned, and the next request with the key takes it over.
    let keys = "UPDATE idempotency_keys SET created_at = $2 \
                WHERE status = 'running' AND owner = $1";
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    let keys = sql!(on_write(store) => execute(keys, owner, epoch))?;
    let mut leases = 0;
    for table in ["payments", "refunds"] {
        let sql = format!(
            "UPDATE {table} SET processor_lease_until = NULL, processor_lease_owner = NULL \
             WHERE status = 'pending' AND processor_lease_owner = $1"
        );
        let sql = sqlx::AssertSqlSafe(sql);
        leases += sql!(on_write(store) => execute(sql, owner))?;
    }
    Ok(Freed { keys, leases })
}

/// What [`free_claims`] freed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freed {
    pub keys: u64,
    pub leases: u64,
}
