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
    /// The API secret before the last rotation, and until when it is still accepted.
    #[sqlx(flatten)]
    pub previous: PreviousSecrets,
    /// The name customers see on the checkout; the account's `name` when `None`.
    pub display_name: Option<String>,
    /// The IANA time zone the dashboard shows times and date ranges in (`UTC` by default).
    pub time_zone: String,
    /// The SHA-256 (hex) of the logo shown on the checkout, when there is one.
    pub logo_digest: Option<String>,
}

impl Merchant {
    /// The name customers see.
    pub fn public_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// The secrets a rotation with an overlap keeps working for a while: the API secret's digest
/// (accepted beside the new one) and the webhook secret (signing beside the new one), each
/// with the end of its overlap. `None` when the last rotation revoked it at once.
#[derive(Clone, Default, sqlx::FromRow)]
pub struct PreviousSecrets {
    #[sqlx(rename = "previous_api_secret_hash")]
    pub api_secret_hash: Option<String>,
    #[sqlx(rename = "previous_api_secret_until")]
    pub api_secret_until: Option<DateTime<Utc>>,
    #[sqlx(rename = "previous_webhook_secret")]
    pub webhook_secret: Option<String>,
    #[sqlx(rename = "previous_webhook_secret_until")]
    pub webhook_secret_until: Option<DateTime<Utc>>,
}

impl PreviousSecrets {
    /// The previous API secret's digest while its overlap lasts at `now`.
    pub fn api_secret_hash(&self, now: DateTime<Utc>) -> Option<&str> {
        live(self.api_secret_hash.as_deref(), self.api_secret_until, now)
    }

    /// Until when the previous API secret works, if it still does at `now`.
    pub fn api_secret_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.api_secret_until.filter(|until| *until > now)
    }

    /// Until when the previous webhook secret signs, if it still does at `now`.
    pub fn webhook_secret_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.webhook_secret_until.filter(|until| *until > now)
    }
}

fn live(secret: Option<&str>, until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<&str> {
    secret.filter(|_| until.is_some_and(|until| until > now))
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
        "id, name, email, api_key, api_secret_hash, webhook_secret, webhook_url, created_at, upi_id, \
         previous_api_secret_hash, previous_api_secret_until, previous_webhook_secret, \
         previous_webhook_secret_until, display_name, time_zone, logo_digest"
    };
}

/// The columns a new merchant is written with (no rotation has happened yet).
macro_rules! inserted {
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
            inserted!(),
            ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8) ON CONFLICT (id) DO NOTHING"
        )
    } else {
        concat!(
            "INSERT INTO merchants (",
            inserted!(),
            ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)"
        )
    };
    let mut tx = store.begin().await?;
    let done = sql!(on_tx(&mut tx) => execute(
        sql, &m.id, &m.name, &m.email, &m.api_key, &m.api_secret_hash, &m.webhook_secret,
        &m.webhook_url, m.created_at, &m.upi_id,
    ))?;
    insert_owner(&mut tx, m, if_missing).await?;
    tx.commit().await?;
    Ok(done == 1)
}

/// Inserts the merchant's first owner (the user with the merchant's id) inside `tx`; with
/// `if_missing`, an existing one is left as it is. (Here, not in `users`, which reads the
/// merchants: the imports run one way.)
async fn insert_owner(
    tx: &mut Tx,
    merchant: &Merchant,
    if_missing: bool,
) -> Result<(), sqlx::Error> {
    let sql = if if_missing {
        "INSERT INTO users (id, merchant_id, email, name, role, created_at, updated_at) \
         VALUES ($1, $1, $2, $3, 'owner', $4, $4) ON CONFLICT (id) DO NOTHING"
    } else {
        "INSERT INTO users (id, merchant_id, email, name, role, created_at, updated_at) \
         VALUES ($1, $1, $2, $3, 'owner', $4, $4)"
    };
    sql!(on_tx(tx) => execute(sql, &merchant.id, &merchant.email, &merchant.name, merchant.created_at))?;
    Ok(())
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

/// Replaces the merchant's webhook secret; the current one keeps signing beside it until
/// `overlap_until` (`None`: it stops now). Returns the updated merchant.
pub async fn set_webhook_secret(
    tx: &mut Tx,
    id: &str,
    secret: &str,
    overlap_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<Merchant>, sqlx::Error> {
    let sql = concat!(
        "UPDATE merchants SET ",
        "previous_webhook_secret = CASE WHEN $3 IS NULL THEN NULL ELSE webhook_secret END, ",
        "previous_webhook_secret_until = $3, webhook_secret = $2, updated_at = $4 ",
        "WHERE id = $1 RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, secret, overlap_until, now))
}

/// Sets the business profile: the name customers see (`None`: the account's name) and the
/// dashboard's time zone (an IANA name, checked by the caller). Returns the merchant.
pub async fn set_profile(
    tx: &mut Tx,
    id: &str,
    (display_name, time_zone): (Option<&str>, &str),
    now: DateTime<Utc>,
) -> Result<Option<Merchant>, sqlx::Error> {
    let sql = concat!(
        "UPDATE merchants SET display_name = $2, time_zone = $3, updated_at = $4 ",
        "WHERE id = $1 RETURNING ",
        cols!()
    );
    sql!(on_tx(tx) => fetch_optional(sql, id, display_name, time_zone, now))
}

/// A merchant's logo: its media type and bytes.
#[derive(sqlx::FromRow)]
pub struct Logo {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Replaces (or, with `None`, removes) the merchant's logo; its digest names the version.
pub async fn set_logo(
    tx: &mut Tx,
    id: &str,
    logo: Option<(&Logo, &str)>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM merchant_logos WHERE merchant_id = $1";
    sql!(on_tx(tx) => execute(sql, id))?;
    let digest = logo.map(|(_, digest)| digest);
    if let Some((logo, _)) = logo {
        let sql = "INSERT INTO merchant_logos (merchant_id, content_type, bytes, updated_at) \
                   VALUES ($1, $2, $3, $4)";
        sql!(on_tx(tx) => execute(sql, id, &logo.content_type, &logo.bytes, now))?;
    }
    let sql = "UPDATE merchants SET logo_digest = $2, updated_at = $3 WHERE id = $1";
    sql!(on_tx(tx) => execute(sql, id, digest, now))?;
    Ok(())
}

/// The merchant's logo, if any.
pub async fn logo(store: &Store, id: &str) -> Result<Option<Logo>, sqlx::Error> {
    let sql = "SELECT content_type, bytes FROM merchant_logos WHERE merchant_id = $1";
    sql!(on_pool(store) => fetch_optional(sql, id))
}
