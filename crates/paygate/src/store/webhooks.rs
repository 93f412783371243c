//! Webhook delivery rows (`webhook_logs`). The retry schedule lives here: `next_retry_at`.

use chrono::{DateTime, Utc};
use paygate_core::DeliveryStatus;

use super::{Store, Tx, sql, table::table};

/// A stored delivery.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub merchant_id: String,
    pub event_id: String,
    pub event: String,
    /// The exact body sent, every attempt.
    pub payload: String,
    #[sqlx(try_from = "String")]
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// Incremented by every manual retry (a new cycle of attempts).
    pub cycle: i32,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub response_code: Option<i32>,
    pub response_body: Option<String>,
    pub duration_ms: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The endpoint it goes to; `None` for the merchant's default endpoint (its webhook URL).
    pub endpoint_id: Option<String>,
    /// The event's sequence number (`None` for deliveries made before there were any).
    pub sequence: Option<i64>,
}

macro_rules! cols {
    () => {
        "id, merchant_id, event_id, event, payload, status, attempts, cycle, next_retry_at, \
         last_attempt_at, response_code, response_body, duration_ms, created_at, updated_at, \
         endpoint_id, sequence"
    };
}

table!(Delivery, "webhook_logs", cols, "created_at, id");

/// A delivery to create: to the merchant's default endpoint (if it has a webhook URL) when
/// `endpoint_id` is `None`, else to that endpoint.
pub struct NewDelivery {
    pub id: String,
    pub merchant_id: String,
    pub event_id: String,
    pub event: String,
    pub payload: String,
    pub endpoint_id: Option<String>,
    /// The event's sequence number.
    pub sequence: i64,
}

/// The deliveries as the input rows (`v`) of an insert, made by the replay `replay` if any.
fn delivery_rows(
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
    replay: Option<&str>,
) -> super::rows::Rows {
    super::rows::Rows::new(deliveries.len())
        .text("id", deliveries.iter().map(|d| d.id.clone()))
        .text(
            "merchant_id",
            deliveries.iter().map(|d| d.merchant_id.clone()),
        )
        .opt_text(
            "endpoint_id",
            deliveries.iter().map(|d| d.endpoint_id.clone()),
        )
        .text("event_id", deliveries.iter().map(|d| d.event_id.clone()))
        .text("event", deliveries.iter().map(|d| d.event.clone()))
        .text("payload", deliveries.iter().map(|d| d.payload.clone()))
        .int("sequence", deliveries.iter().map(|d| d.sequence))
        .time("at", deliveries.iter().map(|_| now))
        .opt_text(
            "replay_id",
            deliveries.iter().map(|_| replay.map(str::to_owned)),
        )
}

/// Inserts the deliveries `from` admits (a `FROM` clause over the input rows `v` and, as `m`,
/// their merchants) in one statement inside the caller's transaction; returns the ids
/// inserted.
async fn insert_from(
    tx: &mut Tx,
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
    from: &str,
    replay: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO webhook_logs (id, merchant_id, endpoint_id, event_id, event, payload, \
         sequence, status, attempts, next_retry_at, created_at, updated_at, replay_id) \
         SELECT v.id, m.id, v.endpoint_id, v.event_id, v.event, v.payload, v.sequence, \
         'pending', 0, v.at, v.at, v.at, v.replay_id {from} RETURNING id"
    );
    let rows = delivery_rows(deliveries, now, replay);
    let ids: Vec<(String,)> = super::rows::fetch(tx, rows, &sql).await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Inserts deliveries to endpoints (chosen by the caller, inside its transaction), in one
/// statement. Returns the ids inserted.
pub async fn insert_for_endpoints(
    tx: &mut Tx,
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    let from = "FROM v JOIN merchants m ON m.id = v.merchant_id WHERE v.endpoint_id IS NOT NULL";
    insert_from(tx, deliveries, now, from, None).await
}

/// Inserts the deliveries of the replay `replay` to endpoints, except those whose event has a
/// delivery to the same endpoint pending already (it is not queued twice). Returns the ids
/// inserted.
pub async fn insert_replayed(
    tx: &mut Tx,
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
    replay: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let from = "FROM v JOIN merchants m ON m.id = v.merchant_id WHERE v.endpoint_id IS NOT NULL \
                AND NOT EXISTS (SELECT 1 FROM webhook_logs p WHERE p.endpoint_id = v.endpoint_id \
                AND p.event_id = v.event_id AND p.status = 'pending')";
    insert_from(tx, deliveries, now, from, Some(replay)).await
}

/// Inserts the deliveries to default endpoints whose merchants have a webhook URL, for any
/// number of merchants, in one statement that reads the merchants inside the caller's
/// transaction. Returns the ids inserted.
pub async fn insert_if_configured(
    tx: &mut Tx,
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    let from = "FROM v JOIN merchants m ON m.id = v.merchant_id \
                WHERE m.webhook_url IS NOT NULL AND v.endpoint_id IS NULL";
    insert_from(tx, deliveries, now, from, None).await
}

/// The delivery with this id, whoever owns it.
pub async fn get(store: &Store, id: &str) -> Result<Option<Delivery>, sqlx::Error> {
    super::table::get(store, id).await
}

/// The delivery with this id, read inside a transaction.
pub async fn get_in(tx: &mut Tx, id: &str) -> Result<Option<Delivery>, sqlx::Error> {
    super::table::get_in(tx, id).await
}

/// An attempt to record, as the batched update takes it.
pub struct AttemptRow {
    pub id: String,
    /// The attempts recorded before this one, and the cycle, as the attempt read them.
    pub previous: i32,
    pub cycle: i32,
    pub at: DateTime<Utc>,
    pub status: DeliveryStatus,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub response_code: Option<i32>,
    pub response_body: String,
    pub duration_ms: i64,
}

/// Records attempt number `previous + 1` of cycle `cycle` of each pending delivery, in one
/// statement; returns the ids recorded. An attempt is not recorded if another attempt was
/// recorded first (two workers raced), a manual retry started a new cycle meanwhile, or the
/// delivery is no longer pending.
pub async fn record_attempts(
    store: &Store,
    rows: &[AttemptRow],
) -> Result<Vec<String>, sqlx::Error> {
    let input = super::rows::Rows::new(rows.len())
        .text("id", rows.iter().map(|r| r.id.clone()))
        .int("previous", rows.iter().map(|r| i64::from(r.previous)))
        .int("cycle", rows.iter().map(|r| i64::from(r.cycle)))
        .time("at", rows.iter().map(|r| r.at))
        .text("status", rows.iter().map(|r| r.status.as_str()))
        .opt_time("next_retry_at", rows.iter().map(|r| r.next_retry_at))
        .opt_int("code", rows.iter().map(|r| r.response_code.map(i64::from)))
        .text("body", rows.iter().map(|r| r.response_body.clone()))
        .int("duration", rows.iter().map(|r| r.duration_ms));
    let ids: Vec<(String,)> = super::rows::fetch_write(
        store,
        input,
        "UPDATE webhook_logs SET attempts = webhook_logs.attempts + 1, status = v.status, \
         next_retry_at = v.next_retry_at, last_attempt_at = v.at, response_code = v.code, \
         response_body = v.body, duration_ms = v.duration, updated_at = v.at FROM v \
         WHERE webhook_logs.id = v.id AND webhook_logs.attempts = v.previous \
         AND webhook_logs.cycle = v.cycle AND webhook_logs.status = 'pending' \
         RETURNING webhook_logs.id",
    )
    .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// A delivery with where and how to send it: its endpoint's URL and secret (for the default
/// endpoint, the merchant's webhook URL and secret), and the previous secret while a
/// rotation's overlap lasts.
#[derive(sqlx::FromRow)]
pub struct Sendable {
    #[sqlx(flatten)]
    pub delivery: Delivery,
    #[sqlx(rename = "target_url")]
    pub url: Option<String>,
    #[sqlx(rename = "target_secret")]
    pub secret: String,
    #[sqlx(rename = "target_previous_secret")]
    pub previous_secret: Option<String>,
    #[sqlx(rename = "target_previous_until")]
    pub previous_until: Option<DateTime<Utc>>,
    /// Whether its endpoint is enabled; `None` for the default endpoint.
    #[sqlx(rename = "target_enabled")]
    pub enabled: Option<bool>,
}

/// The deliveries with these ids, each with where and how to send it, in one statement. A
/// delivery whose endpoint was deleted has no URL.
pub async fn sendable(store: &Store, ids: &[String]) -> Result<Vec<Sendable>, sqlx::Error> {
    let input = super::rows::Rows::new(ids.len()).text("id", ids.iter().cloned());
    let sql = format!(
        "SELECT {}, \
         CASE WHEN webhook_logs.endpoint_id IS NULL THEN m.webhook_url ELSE e.url END \
           AS target_url, \
         CASE WHEN webhook_logs.endpoint_id IS NULL THEN m.webhook_secret \
           ELSE COALESCE(e.secret, m.webhook_secret) END AS target_secret, \
         CASE WHEN webhook_logs.endpoint_id IS NULL THEN m.previous_webhook_secret \
           ELSE e.previous_secret END AS target_previous_secret, \
         CASE WHEN webhook_logs.endpoint_id IS NULL THEN m.previous_webhook_secret_until \
           ELSE e.previous_secret_until END AS target_previous_until, \
         e.enabled AS target_enabled \
         FROM webhook_logs JOIN v ON webhook_logs.id = v.id \
         JOIN merchants m ON m.id = webhook_logs.merchant_id \
         LEFT JOIN webhook_endpoints e ON e.id = webhook_logs.endpoint_id",
        super::rows::qualified("webhook_logs", cols!())
    );
    super::rows::fetch_write(store, input, &sql).await
}

/// Starts a new cycle of attempts for the merchant's delivery: `pending`, 0 attempts, due now.
pub async fn restart(
    tx: &mut Tx,
    id: &str,
    merchant_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Delivery>, sqlx::Error> {
    let sql = concat!(
        "UPDATE webhook_logs SET status = 'pending', attempts = 0, cycle = cycle + 1, ",
        "next_retry_at = $3, updated_at = $3 WHERE id = $1 AND merchant_id = $2 RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, merchant_id, now))
}

/// The deliveries of the events of one resource, oldest first.
pub async fn for_resource(store: &Store, resource_id: &str) -> Result<Vec<Delivery>, sqlx::Error> {
    let sql = "SELECT w.id, w.merchant_id, w.event_id, w.event, w.payload, w.status, w.attempts, \
         w.cycle, w.next_retry_at, w.last_attempt_at, w.response_code, w.response_body, w.duration_ms, \
         w.created_at, w.updated_at, w.endpoint_id, w.sequence FROM webhook_logs w JOIN events e ON e.id = w.event_id \
         WHERE e.resource_id = $1 ORDER BY w.created_at, w.id";
    sql!(on_pool(store) => fetch_all(sql, resource_id))
}

/// Starts a new cycle of attempts, now, for every failed delivery of the merchant's endpoint;
/// returns their ids.
pub async fn restart_failed(
    tx: &mut Tx,
    merchant_id: &str,
    endpoint_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = "UPDATE webhook_logs SET status = 'pending', attempts = 0, cycle = cycle + 1, \
               next_retry_at = $3, updated_at = $3 \
               WHERE endpoint_id = $1 AND merchant_id = $2 AND status = 'failed' RETURNING id";
    let ids: Vec<(String,)> = sql!(on_tx(tx) => fetch_all(sql, endpoint_id, merchant_id, now))?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Starts a new cycle of attempts, now, for the merchant's failed deliveries, every endpoint's
/// and the default's, at most `limit` of them (the oldest first); returns their ids.
pub async fn restart_all_failed(
    tx: &mut Tx,
    merchant_id: &str,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = "UPDATE webhook_logs SET status = 'pending', attempts = 0, cycle = cycle + 1, \
               next_retry_at = $3, updated_at = $3 \
               WHERE id IN (SELECT id FROM webhook_logs WHERE merchant_id = $1 \
               AND status = 'failed' ORDER BY created_at LIMIT $2) RETURNING id";
    let ids: Vec<(String,)> = sql!(on_tx(tx) => fetch_all(sql, merchant_id, limit, now))?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// The filters of the delivery log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// `pending` (not attempted yet), `retrying` (pending after a failed attempt), `success`
    /// or `failed`.
    pub state: Option<String>,
    /// One event type.
    pub event: Option<String>,
    /// One endpoint's id, or `default` for the merchant's webhook URL.
    pub endpoint: Option<String>,
}

impl Filter {
    /// The states a delivery can be shown in.
    pub const STATES: [&'static str; 4] = ["pending", "retrying", "success", "failed"];

    /// The conditions of the filter, read with the merchant's deliveries newest first.
    pub fn conditions(&self) -> super::table::Filter {
        use super::table::Arg;
        let mut c = super::table::Filter::default();
        let text = |s: &str| Arg::Text(s.to_owned());
        match self.state.as_deref() {
            Some("pending") => {
                c = c.and("status = ?", text("pending"));
                c = c.and("attempts = ?", Arg::Int(0));
            }
            Some("retrying") => {
                c = c.and("status = ?", text("pending"));
                c = c.and("attempts > ?", Arg::Int(0));
            }
            Some(status) => c = c.and("status = ?", text(status)),
            None => {}
        }
        if let Some(event) = &self.event {
            c = c.and("event = ?", text(event));
        }
        match self.endpoint.as_deref() {
            Some("default") => c = c.and("COALESCE(endpoint_id, ?) = ''", text("")),
            Some(id) => c = c.and("endpoint_id = ?", text(id)),
            None => {}
        }
        c
    }
}

/// The pending deliveries of an endpoint: their ids.
pub async fn pending_for_endpoint(
    store: &Store,
    endpoint_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = "SELECT id FROM webhook_logs WHERE endpoint_id = $1 AND status = 'pending'";
    let ids: Vec<(String,)> = sql!(on_pool(store) => fetch_all(sql, endpoint_id))?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// The statement of [`due_before`]: `$1` before, `$2` limit, `$3`/`$4` the cursor (the
/// `next_retry_at` and id the last page ended at); it reads only pending deliveries
/// (`webhook_logs_due_idx` holds no others).
pub const DUE_BEFORE: &str = "SELECT id, next_retry_at FROM webhook_logs \
     WHERE status = 'pending' AND next_retry_at < $1 \
     AND (next_retry_at > $3 OR (next_retry_at = $3 AND id > $4)) \
     ORDER BY next_retry_at, id LIMIT $2";

/// Pending deliveries due before `before` that come after `after` (a `next_retry_at` and an
/// id; the start when `None`): `(id, next_retry_at)`, oldest first. Paging by cursor, the
/// sweep gets past deliveries that stay overdue (waiting for a busy destination, say) and
/// reaches every one in turn.
pub async fn due_before(
    store: &Store,
    before: DateTime<Utc>,
    limit: i64,
    after: Option<&(DateTime<Utc>, String)>,
) -> Result<Vec<(String, DateTime<Utc>)>, sqlx::Error> {
    let (t, id) = match after {
        Some((t, id)) => (*t, id.as_str()),
        None => (DateTime::<Utc>::UNIX_EPOCH, ""),
    };
    sql!(on_pool(store) => fetch_all(DUE_BEFORE, before, limit, t, id))
}
