//! Merchant rows.

use chrono::{DateTime, Utc};

use super::{Store, Tx, sql};

/// A stored merchant. `api_secret_hash` is the hex SHA-256 of the API secret.
#[derive(Clone, sqlx::FromRow)]
pub struct Merchant {
    pub id: String,
    pub name: String,
    pub email: String,
    pub api_key: String,
    pub api_secret_hash: String,
    pub webhook_secret: String,
    pub webhook_url: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The VPA the merchant receives UPI payments at: the payee of intent and QR payments.
    pub upi_id: Option<String>,
}

impl std::fmt::Debug for Merchant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merchant")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

macro_rules! cols {
    () => {
        "id, name, email, api_key, api_secret_hash, webhook_secret, webhook_url, created_at, upi_id"
    };
}

/// Inserts a merchant and its first owner (a user with the merchant's id, email and name); with
/// `if_missing`, an existing id is left as it is. Returns whether a merchant row was written.
pub async fn insert(store: &Store, m: &Merchant, if_missing: bool) -> Result<bool, sqlx::Error> {
    let sql = if if_missing {
        concat!(
            "INSERT INTO merchants (",
            cols!(),
            ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8) ON CONFLICT (id) DO NOTHING"
        )
    } else {
        concat!(
            "INSERT INTO merchants (",
            cols!(),
            ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)"
        )
    };
    let mut tx = store.begin().await?;
    let done = sql!(on_tx(&mut tx) => execute(
        sql, &m.id, &m.name, &m.email, &m.api_key, &m.api_secret_hash, &m.webhook_secret,
        &m.webhook_url, m.created_at, &m.upi_id,
    ))?;
    super::users::insert_owner(&mut tx, m, if_missing).await?;
    tx.commit().await?;
    Ok(done == 1)
}

/// The merchant with this API key.
pub async fn find_by_api_key(
    store: &Store,
    api_key: &str,
) -> Result<Option<Merchant>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        cols!(),
        " FROM merchants WHERE api_key = $1 AND disabled_reason IS NULL"
    );
    sql!(on_pool(store) => fetch_optional(sql, api_key))
}

/// Disables the active merchants whose API secret digest is `secret_digest`, and the one with
/// id `also` (when given), for `reason`; returns their ids.
pub async fn disable(
    store: &Store,
    secret_digest: &str,
    also: Option<&str>,
    reason: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = "UPDATE merchants SET disabled_reason = $3 WHERE disabled_reason IS NULL \
               AND (api_secret_hash = $1 OR id = $2) RETURNING id";
    let ids: Vec<(String,)> =
        sql!(on_write(store) => fetch_all(sql, secret_digest, also.unwrap_or_default(), reason))?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Locks the merchant's row until the end of the transaction (PostgreSQL; SQLite's write
/// transactions run one at a time already): for limits counted over the merchant's rows.
pub async fn lock(tx: &mut Tx, id: &str) -> Result<(), sqlx::Error> {
    if let Tx::Postgres(_) = tx {
        let sql = "SELECT id FROM merchants WHERE id = $1 FOR UPDATE";
        sql!(on_tx(tx) => execute(sql, id))?;
    }
    Ok(())
}

/// The merchant with this id.
pub async fn get(store: &Store, id: &str) -> Result<Option<Merchant>, sqlx::Error> {
    let sql = concat!("SELECT ", cols!(), " FROM merchants WHERE id = $1");
    sql!(on_pool(store) => fetch_optional(sql, id))
}

/// Every merchant, oldest first.
pub async fn list(store: &Store) -> Result<Vec<Merchant>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        cols!(),
        " FROM merchants ORDER BY created_at, id"
    );
    sql!(on_pool(store) => fetch_all(sql))
}

/// Sets (or clears) the merchant's webhook URL; returns the updated merchant.
pub async fn set_webhook_url(
    tx: &mut Tx,
    id: &str,
    url: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Merchant>, sqlx::Error> {
    let sql = concat!(
        "UPDATE merchants SET webhook_url = $2, updated_at = $3 WHERE id = $1 RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, url, now))
}

/// Sets (or clears) the VPA the merchant receives UPI payments at; returns the merchant.
pub async fn set_upi_id(
    tx: &mut Tx,
    id: &str,
    upi_id: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Merchant>, sqlx::Error> {
    let sql = concat!(
        "UPDATE merchants SET upi_id = $2, updated_at = $3 WHERE id = $1 RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, upi_id, now))
}

/// Replaces the merchant's webhook secret; returns the updated merchant.
pub async fn set_webhook_secret(
    tx: &mut Tx,
    id: &str,
    secret: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Merchant>, sqlx::Error> {
    let sql = concat!(
        "UPDATE merchants SET webhook_secret = $2, updated_at = $3 WHERE id = $1 RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, secret, now))
}
