//! Rows of webhook replays (`webhook_replays`): one running per endpoint (a unique partial
//! index), running while any delivery it queued is pending.

use chrono::{DateTime, Utc};

use super::{Tx, sql};

/// Ends the endpoint's running replay if none of its deliveries is pending any more.
pub async fn finish_idle(tx: &mut Tx, endpoint_id: &str) -> Result<(), sqlx::Error> {
    let sql = "UPDATE webhook_replays SET status = 'done' \
               WHERE endpoint_id = $1 AND status = 'running' AND NOT EXISTS (\
               SELECT 1 FROM webhook_logs w WHERE w.replay_id = webhook_replays.id \
               AND w.status = 'pending')";
    sql!(on_tx(tx) => execute(sql, endpoint_id))?;
    Ok(())
}

/// The endpoint's running replay, if any.
pub async fn running(tx: &mut Tx, endpoint_id: &str) -> Result<Option<String>, sqlx::Error> {
    let sql = "SELECT id FROM webhook_replays WHERE endpoint_id = $1 AND status = 'running'";
    let row: Option<(String,)> = sql!(on_tx(tx) => fetch_optional(sql, endpoint_id))?;
    Ok(row.map(|(id,)| id))
}

/// Deliveries the merchant's replays queued since `since`.
pub async fn queued_since(
    tx: &mut Tx,
    merchant_id: &str,
    since: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    // PostgreSQL sums BIGINTs as NUMERIC: cast back.
    let sql = "SELECT CAST(COALESCE(SUM(queued), 0) AS BIGINT) FROM webhook_replays \
               WHERE merchant_id = $1 AND created_at > $2";
    sql!(on_tx(tx) => scalar::fetch_one(sql, merchant_id, since))
}

/// A replay to record.
pub struct NewReplay<'a> {
    pub id: &'a str,
    pub merchant_id: &'a str,
    pub endpoint_id: &'a str,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub queued: i64,
    pub at: DateTime<Utc>,
}

/// Records a replay: running when it queued deliveries, done otherwise. `false` when another
/// replay of the endpoint is running (the unique index: concurrent replays cannot both run).
pub async fn insert(tx: &mut Tx, r: &NewReplay<'_>) -> Result<bool, sqlx::Error> {
    let status = if r.queued > 0 { "running" } else { "done" };
    let sql = "INSERT INTO webhook_replays \
               (id, merchant_id, endpoint_id, since, until, queued, status, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
               ON CONFLICT (endpoint_id) WHERE status = 'running' DO NOTHING";
    let inserted = sql!(on_tx(tx) => execute(sql, r.id, r.merchant_id, r.endpoint_id, r.since,
        r.until, r.queued, status, r.at))?;
    Ok(inserted == 1)
}
