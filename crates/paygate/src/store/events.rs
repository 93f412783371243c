//! Event rows: the outbox. Every state change writes its events in the same transaction;
//! `seq` orders them as they were written.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Store, Tx, sql, table::table};

/// A stored event.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Event {
    pub id: String,
    pub merchant_id: String,
    pub event_type: String,
    pub resource_id: String,
    /// The webhook payload's `data` object, e.g. `{"payment": {…}}`.
    #[sqlx(json)]
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

macro_rules! cols {
    () => {
        "id, merchant_id, event_type, resource_id, data, created_at"
    };
}

table!(Event, "events", cols, "seq");

impl Event {
    /// A new event (with a new id) of the merchant's resource.
    pub fn new(
        merchant_id: &str,
        event_type: &str,
        resource_id: &str,
        data: Value,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: paygate_core::EventId::generate().into_string(),
            merchant_id: merchant_id.to_owned(),
            event_type: event_type.to_owned(),
            resource_id: resource_id.to_owned(),
            data,
            created_at,
        }
    }
}

/// Inserts events in one statement, in the order given; returns each event's sequence number
/// (its `seq`, the log's position: an event written after another of the same resource has a
/// larger one), by event id.
pub async fn insert(
    tx: &mut Tx,
    events: &[Event],
) -> Result<std::collections::HashMap<String, i64>, sqlx::Error> {
    let input = super::rows::Rows::new(events.len())
        .text("id", events.iter().map(|e| e.id.clone()))
        .text("merchant_id", events.iter().map(|e| e.merchant_id.clone()))
        .text("event_type", events.iter().map(|e| e.event_type.clone()))
        .text("resource_id", events.iter().map(|e| e.resource_id.clone()))
        .json("data", events.iter().map(|e| e.data.to_string()))
        .time("created_at", events.iter().map(|e| e.created_at))
        .int("ord", (0..events.len()).map(|i| i as i64));
    let seqs: Vec<(String, i64)> = super::rows::fetch(
        tx,
        input,
        concat!(
            "INSERT INTO events (",
            cols!(),
            ") SELECT ",
            cols!(),
            " FROM v ORDER BY ord RETURNING id, seq"
        ),
    )
    .await?;
    Ok(seqs.into_iter().collect())
}

/// The merchant's events created in `[since, until)`, oldest first, at most `limit`, with
/// their sequence numbers.
pub async fn in_range(
    store: &Store,
    merchant_id: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Event, i64)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        event: Event,
        seq: i64,
    }
    let sql = concat!(
        "SELECT ",
        cols!(),
        ", seq FROM events WHERE merchant_id = $1 AND created_at >= $2 AND created_at < $3 \
         ORDER BY seq LIMIT $4"
    );
    let rows: Vec<Row> = sql!(on_pool(store) => fetch_all(sql, merchant_id, since, until, limit))?;
    Ok(rows.into_iter().map(|r| (r.event, r.seq)).collect())
}

/// The events of one resource, oldest first.
pub async fn for_resource(store: &Store, resource_id: &str) -> Result<Vec<Event>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        cols!(),
        " FROM events WHERE resource_id = $1 ORDER BY seq"
    );
    sql!(on_pool(store) => fetch_all(sql, resource_id))
}
