//! The simulated bank's memory (`processor_operations`): the answer it gave to each
//! idempotency key, so a repeated call gets the first answer back, across restarts.

use chrono::{DateTime, Utc};

use super::{Store, sql};

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
    let sql = "INSERT INTO processor_operations (idempotency_key, kind, succeeded, error_code, \
         error_description, calls, ready_at, created_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7) \
         ON CONFLICT (idempotency_key) DO UPDATE SET calls = processor_operations.calls + 1 \
         RETURNING idempotency_key, kind, succeeded, error_code, error_description, calls, ready_at";
    sql!(on_write(store) => fetch_one(
        sql, &op.idempotency_key, &op.kind, op.succeeded, &op.error_code, &op.error_description,
        op.ready_at, now,
    ))
}

/// The answer recorded for a key, if any.
pub async fn get(store: &Store, key: &str) -> Result<Option<Operation>, sqlx::Error> {
    let sql = "SELECT idempotency_key, kind, succeeded, error_code, error_description, calls, \
               ready_at FROM processor_operations WHERE idempotency_key = $1";
    sql!(on_pool(store) => fetch_optional(sql, key))
}
