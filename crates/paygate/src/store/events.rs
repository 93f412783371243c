//! Event rows: the outbox. Every state change writes its events in the same transaction;
//! `seq` orders them as they were written.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Store, Tx, merchant_page, on_pool};

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

/// Inserts events in one statement.
pub async fn insert(tx: &mut Tx, events: &[Event]) -> Result<(), sqlx::Error> {
    let input = super::rows::Rows::new(events.len())
        .text("id", events.iter().map(|e| e.id.clone()))
        .text("merchant_id", events.iter().map(|e| e.merchant_id.clone()))
        .text("event_type", events.iter().map(|e| e.event_type.clone()))
        .text("resource_id", events.iter().map(|e| e.resource_id.clone()))
        .json("data", events.iter().map(|e| e.data.to_string()))
        .time("created_at", events.iter().map(|e| e.created_at));
    super::rows::execute(
        tx,
        input,
        concat!(
            "INSERT INTO events (",
            cols!(),
            ") SELECT ",
            cols!(),
            " FROM v"
        ),
    )
    .await?;
    Ok(())
}

/// The events of one resource, oldest first.
pub async fn for_resource(store: &Store, resource_id: &str) -> Result<Vec<Event>, sqlx::Error> {
    on_pool!(store, pool => {
        let rows = sqlx::query_as::<_, Event>(concat!("SELECT ", cols!(), " FROM events WHERE resource_id = $1 ORDER BY seq"))
            .bind(resource_id)
            .fetch_all(pool)
            .await?;
        Ok(rows)
    })
}

/// A page of the merchant's events, newest first, and the merchant's total.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Event>, i64), sqlx::Error> {
    merchant_page!(
        store,
        "events",
        cols,
        Event,
        "seq DESC",
        merchant_id,
        limit,
        offset
    )
}
