//! The simulated bank's memory (`processor_operations`): the answer it gave to each
//! idempotency key, so a repeated call gets the first answer back, across restarts.

use chrono::{DateTime, Utc};

use super::{Store, on_pool, on_write};

/// What the bank answered to a key.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Operation {
    pub idempotency_key: String,
    pub kind: String,
    pub succeeded: bool,
    pub error_code: Option<String>,
    pub error_description: Option<String>,
    /// How many calls carried this key.
    pub calls: i32,
    /// When the answer is ready (the simulated processing time).
    pub ready_at: DateTime<Utc>,
}

/// Records the first answer for `op.idempotency_key`, or counts one more call for a key seen
/// before; returns the answer that stands (the first one) in one statement.
pub async fn record(
    store: &Store,
    op: &Operation,
    now: DateTime<Utc>,
) -> Result<Operation, sqlx::Error> {
    on_write!(store, pool => {
        sqlx::query_as::<_, Operation>(
            "INSERT INTO processor_operations (idempotency_key, kind, succeeded, error_code, \
             error_description, calls, ready_at, created_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7) \
             ON CONFLICT (idempotency_key) DO UPDATE SET calls = processor_operations.calls + 1 \
             RETURNING idempotency_key, kind, succeeded, error_code, error_description, calls, ready_at",
        )
        .bind(&op.idempotency_key)
        .bind(&op.kind)
        .bind(op.succeeded)
        .bind(&op.error_code)
        .bind(&op.error_description)
        .bind(op.ready_at)
        .bind(now)
        .fetch_one(pool)
        .await
    })
}

/// The answer recorded for a key, if any.
pub async fn get(store: &Store, key: &str) -> Result<Option<Operation>, sqlx::Error> {
    on_pool!(store, pool => {
        sqlx::query_as::<_, Operation>(
            "SELECT idempotency_key, kind, succeeded, error_code, error_description, calls, ready_at \
             FROM processor_operations WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(pool)
        .await
    })
}
