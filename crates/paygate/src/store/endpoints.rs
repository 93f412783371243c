//! Webhook endpoints (`webhook_endpoints`): several per merchant, each with its URL, event
//! filter and secret (and, for a while after a rotation, the previous secret).

use chrono::{DateTime, Utc};

use super::{Store, Tx, sql};

/// A stored endpoint. (No `Debug`: it holds its secrets.)
#[derive(Clone, sqlx::FromRow)]
pub struct Endpoint {
    pub id: String,
    pub merchant_id: String,
    pub url: String,
    pub description: Option<String>,
    pub enabled: bool,
    /// The event types it wants, space-separated; empty for all.
    pub events: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Since when every attempt has failed; `None` after a success.
    pub failing_since: Option<DateTime<Utc>>,
    /// `failing` when the gateway disabled it.
    pub disabled_reason: Option<String>,
}

macro_rules! cols {
    () => {
        "id, merchant_id, url, description, enabled, events, secret, previous_secret, \
         previous_secret_until, created_at, updated_at, failing_since, disabled_reason"
    };
}

/// Writes a new endpoint unless the merchant has `max` already: `false` then. The count and
/// the insert are one statement after a lock on the merchant's row (PostgreSQL; SQLite's
/// write transactions run one at a time), so concurrent creates cannot pass the limit.
pub async fn insert_within(tx: &mut Tx, e: &Endpoint, max: i64) -> Result<bool, sqlx::Error> {
    super::merchants::lock(tx, &e.merchant_id).await?;
    let sql = concat!(
        "INSERT INTO webhook_endpoints (",
        cols!(),
        ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 ",
        "WHERE (SELECT COUNT(*) FROM webhook_endpoints WHERE merchant_id = $2) < $14"
    );
    let inserted = sql!(on_tx(tx) => execute(sql, &e.id, &e.merchant_id, &e.url, &e.description,
        e.enabled, &e.events, &e.secret, &e.previous_secret, e.previous_secret_until,
        e.created_at, e.updated_at, e.failing_since, &e.disabled_reason, max))?;
    Ok(inserted == 1)
}

/// The merchant's endpoints, oldest first.
pub async fn list(store: &Store, merchant_id: &str) -> Result<Vec<Endpoint>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        cols!(),
        " FROM webhook_endpoints WHERE merchant_id = $1 ORDER BY created_at, id"
    );
    sql!(on_pool(store) => fetch_all(sql, merchant_id))
}

/// The merchant's endpoint with this id.
pub async fn get(
    store: &Store,
    merchant_id: &str,
    id: &str,
) -> Result<Option<Endpoint>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        cols!(),
        " FROM webhook_endpoints WHERE id = $1 AND merchant_id = $2"
    );
    sql!(on_pool(store) => fetch_optional(sql, id, merchant_id))
}

/// What an update sets; `None` leaves a column as it is.
pub struct Change<'a> {
    pub url: Option<&'a str>,
    pub description: Option<Option<&'a str>>,
    /// Enabling or disabling also clears the failing record and the reason it was disabled.
    pub enabled: Option<bool>,
    pub events: Option<&'a str>,
}

/// Applies `change` to the merchant's endpoint in one statement that writes only the columns
/// it sets, so concurrent changes (a rotation, an auto-disable) are never undone.
pub async fn update(
    tx: &mut Tx,
    merchant_id: &str,
    id: &str,
    change: &Change<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Endpoint>, sqlx::Error> {
    let sql = concat!(
        "UPDATE webhook_endpoints SET url = COALESCE($3, url), ",
        "description = CASE WHEN $4 THEN $5 ELSE description END, ",
        "enabled = COALESCE($6, enabled), ",
        "failing_since = CASE WHEN $6 IS NULL THEN failing_since ELSE NULL END, ",
        "disabled_reason = CASE WHEN $6 IS NULL THEN disabled_reason ELSE NULL END, ",
        "events = COALESCE($7, events), updated_at = $8 ",
        "WHERE id = $1 AND merchant_id = $2 RETURNING ",
        cols!()
    );
    let description = change.description.flatten();
    sql!(on_tx(tx) => fetch_optional(sql, id, merchant_id, change.url,
        change.description.is_some(), description, change.enabled, change.events, now))
}

/// Gives the merchant's endpoint `secret`; the current one signs beside it until `until`
/// (`None`: revoked now). One statement: the secret moved aside is the one stored at that
/// instant, whatever another request did just before.
pub async fn rotate(
    tx: &mut Tx,
    merchant_id: &str,
    id: &str,
    secret: &str,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<Endpoint>, sqlx::Error> {
    let sql = concat!(
        "UPDATE webhook_endpoints SET ",
        "previous_secret = CASE WHEN $4 IS NULL THEN NULL ELSE secret END, ",
        "previous_secret_until = $4, secret = $3, updated_at = $5 ",
        "WHERE id = $1 AND merchant_id = $2 RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, merchant_id, secret, until, now))
}

/// Removes the merchant's endpoint, ending its pending deliveries as `failed` (nothing is
/// sent to a removed endpoint). `false` when there was no such endpoint.
pub async fn delete(
    tx: &mut Tx,
    merchant_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let sql = "DELETE FROM webhook_endpoints WHERE id = $1 AND merchant_id = $2";
    let gone = sql!(on_tx(tx) => execute(sql, id, merchant_id))? > 0;
    if gone {
        let sql = "UPDATE webhook_logs SET status = 'failed', next_retry_at = NULL, \
                   response_body = 'the endpoint was deleted', updated_at = $3 \
                   WHERE endpoint_id = $1 AND merchant_id = $2 AND status = 'pending'";
        sql!(on_tx(tx) => execute(sql, id, merchant_id, now))?;
    }
    Ok(gone)
}

/// The enabled endpoints of these merchants with their filters: `(id, merchant_id, events)`,
/// in one statement inside the caller's transaction.
pub async fn enabled_for(
    tx: &mut Tx,
    merchant_ids: &[String],
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    let mut ids = merchant_ids.to_vec();
    ids.sort();
    ids.dedup();
    let input = super::rows::Rows::new(ids.len()).text("merchant_id", ids);
    super::rows::fetch(
        tx,
        input,
        "SELECT e.id, e.merchant_id, e.events FROM webhook_endpoints e \
         JOIN v ON e.merchant_id = v.merchant_id WHERE e.enabled ORDER BY e.created_at, e.id",
    )
    .await
}

/// How many of an endpoint's latest deliveries its health reads: the page's cost stays flat
/// however many deliveries the endpoint has had.
pub const HEALTH_WINDOW: i64 = 1_000;

/// How an endpoint's latest deliveries went (up to [`HEALTH_WINDOW`] of them): how many, how
/// many succeeded, and when an attempt to it last failed (kept with each attempt's outcome).
#[derive(Clone, Debug, Default)]
pub struct Health {
    pub endpoint_id: String,
    pub deliveries: i64,
    pub succeeded: i64,
    pub last_failure_at: Option<DateTime<Utc>>,
}

/// [`Health`] of each of the merchant's endpoints: one read of its latest deliveries each,
/// through `webhook_logs_endpoint_idx` (a merchant has a handful of endpoints).
pub async fn health(store: &Store, merchant_id: &str) -> Result<Vec<Health>, sqlx::Error> {
    let sql = "SELECT id, last_failure_at FROM webhook_endpoints WHERE merchant_id = $1";
    let endpoints: Vec<(String, Option<DateTime<Utc>>)> =
        sql!(on_pool(store) => fetch_all(sql, merchant_id))?;
    let sql = "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END), 0) \
               FROM (SELECT status FROM webhook_logs WHERE endpoint_id = $1 \
               ORDER BY created_at DESC LIMIT $2) AS latest";
    let mut out = Vec::with_capacity(endpoints.len());
    for (endpoint_id, last_failure_at) in endpoints {
        let (deliveries, succeeded): (i64, i64) =
            sql!(on_pool(store) => fetch_one(sql, &endpoint_id, HEALTH_WINDOW))?;
        out.push(Health {
            endpoint_id,
            deliveries,
            succeeded,
            last_failure_at,
        });
    }
    Ok(out)
}

/// Records how an attempt to the endpoint went: a success clears `failing_since`, a failure
/// sets it if unset. Returns `(failing_since, enabled)` after, `None` for no such endpoint.
pub async fn record_outcome(
    store: &Store,
    id: &str,
    success: bool,
    at: DateTime<Utc>,
) -> Result<Option<(Option<DateTime<Utc>>, bool)>, sqlx::Error> {
    let sql = "UPDATE webhook_endpoints SET failing_since = \
               CASE WHEN $2 THEN NULL ELSE COALESCE(failing_since, $3) END, \
               last_failure_at = CASE WHEN $2 THEN last_failure_at ELSE $3 END \
               WHERE id = $1 RETURNING failing_since, enabled";
    sql!(on_write(store) => fetch_optional(sql, id, success, at))
}

/// Disables the endpoint as `failing` if it is enabled and has failed since `before` or
/// earlier (once: a second call finds it disabled). Returns it when this call disabled it.
pub async fn auto_disable(
    tx: &mut Tx,
    id: &str,
    before: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<Option<Endpoint>, sqlx::Error> {
    let sql = concat!(
        "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = 'failing', ",
        "updated_at = $3 WHERE id = $1 AND enabled AND failing_since <= $2 RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, before, at))
}
