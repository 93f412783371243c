//! Event rows: the outbox. Every state change writes its events in the same transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Row as _, types::Json};

use super::{Store, Tx, on_pool, on_tx};

/// A stored event.
#[derive(Clone, Debug)]
pub struct Event {
    pub id: String,
    pub merchant_id: String,
    pub event_type: String,
    pub resource_id: String,
    /// The webhook payload's `data` object, e.g. `{"payment": {…}}`.
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

/// Inserts an event.
pub async fn insert(tx: &mut Tx, e: &Event) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO events (id, merchant_id, event_type, resource_id, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&e.id)
        .bind(&e.merchant_id)
        .bind(&e.event_type)
        .bind(&e.resource_id)
        .bind(Json(&e.data))
        .bind(e.created_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    })
}

/// The events of one resource, oldest first.
pub async fn for_resource(store: &Store, resource_id: &str) -> Result<Vec<Event>, sqlx::Error> {
    on_pool!(store, pool => {
        let rows = sqlx::query(
            "SELECT id, merchant_id, event_type, resource_id, data, created_at FROM events \
             WHERE resource_id = $1 ORDER BY created_at, id",
        )
        .bind(resource_id)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| {
                let Json(data) = r.try_get::<Json<Value>, _>("data")?;
                Ok(Event {
                    id: r.try_get("id")?,
                    merchant_id: r.try_get("merchant_id")?,
                    event_type: r.try_get("event_type")?,
                    resource_id: r.try_get("resource_id")?,
                    data,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    })
}
