//! Merchants: API credentials, authentication, the seeded test merchant.
//!
//! API secrets are random and long, so they are stored as a SHA-256 digest (not a slow
//! password hash): verifying a request costs one digest and a constant-time comparison.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

pub mod profile;
pub mod team;
pub mod two_factor;

use base64::Engine as _;
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    audit::{self, Actor},
    store::{
        Store,
        merchants::{self, Merchant},
        now,
    },
};

/// The seeded test merchant (SPEC A1).
pub mod test_merchant {
    pub const ID: &str = "550e8400-e29b-41d4-a716-446655440000";
    pub const NAME: &str = "Test Merchant";
    pub const EMAIL: &str = "test@example.com";
    pub const API_KEY: &str = "key_test_abc123";
    pub const API_SECRET: &str = "secret_test_xyz789";
    pub const WEBHOOK_SECRET: &str = "whsec_test_abc123";
    /// The VPA it receives UPI intent and QR payments at.
    pub const UPI_ID: &str = "testmerchant@paygate";
    /// The dashboard password it is seeded with by default (`TEST_MERCHANT_PASSWORD`): public.
    pub const PASSWORD: &str = "password123";
}

/// Why a request could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid API credentials")]
    Invalid,
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Why a merchant could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("a merchant with this email exists")]
    EmailTaken,
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// A new merchant with its secrets, shown once.
pub struct Created {
    pub merchant: Merchant,
    pub api_secret: String,
}

/// The hex SHA-256 digest under which an API secret is stored.
pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new webhook secret: `whsec_` + base64 of 32 random bytes (Standard Webhooks format).
pub fn new_webhook_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Recently read merchants by API key, so that authenticating a request costs no query.
/// An entry lives [`CredentialCache::TTL`] (one second): a rotated or revoked secret stops
/// working in every process within that time, with no message between processes to be lost
/// (the price: one indexed read per API key per second per process).
#[derive(Default)]
pub struct CredentialCache {
    entries: Mutex<HashMap<String, (Merchant, Instant)>>,
}

impl CredentialCache {
    /// How long a cached merchant is trusted.
    pub const TTL: Duration = Duration::from_secs(1);
    /// Entries kept at most; the cache is emptied when it would grow past this.
    const CAPACITY: usize = 10_000;

    fn get(&self, api_key: &str) -> Option<Merchant> {
        let entries = self.entries.lock().ok()?;
        let (merchant, at) = entries.get(api_key)?;
        (at.elapsed() < Self::TTL).then(|| merchant.clone())
    }

    fn put(&self, merchant: &Merchant) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
            entries.insert(merchant.api_key.clone(), (merchant.clone(), Instant::now()));
        }
    }

    /// Forgets a merchant's credentials (after a rotation in this process).
    pub fn forget(&self, api_key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(api_key);
        }
    }
}

/// The merchant owning `api_key`, if `api_secret` matches its secret, or the secret before
/// the last rotation while that rotation's overlap lasts (both compared in constant time).
pub async fn authenticate(
    store: &Store,
    cache: &CredentialCache,
    api_key: &str,
    api_secret: &str,
) -> Result<Merchant, AuthError> {
    let digest = secret_digest(api_secret);
    let merchant = match cache.get(api_key) {
        Some(m) => m,
        None => {
            let m = merchants::find_by_api_key(store, api_key)
                .await?
                .ok_or(AuthError::Invalid)?;
            cache.put(&m);
            m
        }
    };
    let current = digest.as_bytes().ct_eq(merchant.api_secret_hash.as_bytes());
    let previous = merchant
        .previous
        .api_secret_hash(now())
        .map_or(subtle::Choice::from(0), |h| {
            digest.as_bytes().ct_eq(h.as_bytes())
        });
    if bool::from(current | previous) {
        Ok(merchant)
    } else {
        Err(AuthError::Invalid)
    }
}

/// Sets the VPA the merchant receives UPI intent and QR payments at (`None` clears it).
/// `Err(None)`: not a valid VPA.
/// `by`, when given, is recorded in the audit log with the change.
pub async fn set_upi_id(
    store: &Store,
    id: &str,
    upi_id: Option<&str>,
    by: Option<&Actor>,
) -> Result<(), Option<sqlx::Error>> {
    let upi_id = match upi_id {
        Some(raw) => Some(paygate_core::Vpa::parse(raw).ok_or(None)?),
        None => None,
    };
    let at = now();
    let vpa = upi_id.as_ref().map(paygate_core::Vpa::as_str);
    let mut tx = store.begin().await.map_err(Some)?;
    merchants::set_upi_id(&mut tx, id, vpa, at)
        .await
        .map_err(Some)?;
    if let Some(by) = by {
        audit::record_in(&mut tx, by, "settings.upi_id", ("merchant", id), at)
            .await
            .map_err(Some)?;
    }
    tx.commit().await.map_err(Some)?;
    Ok(())
}

/// Creates a merchant with fresh credentials.
pub async fn create(store: &Store, name: &str, email: &str) -> Result<Created, CreateError> {
    let name = name.trim();
    let email = email.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(CreateError::Invalid("name must be 1 to 200 characters"));
    }
    if !email.contains('@') || email.len() > 254 {
        return Err(CreateError::Invalid("email must be an email address"));
    }
    let mut rng = rand::rng();
    let api_secret = format!("secret_{}", Alphanumeric.sample_string(&mut rng, 32));
    let merchant = Merchant {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        email: email.to_owned(),
        api_key: format!("key_{}", Alphanumeric.sample_string(&mut rng, 24)),
        api_secret_hash: secret_digest(&api_secret),
        webhook_secret: new_webhook_secret(),
        webhook_url: None,
        created_at: now(),
        upi_id: None,
        previous: Default::default(),
        display_name: None,
        time_zone: "UTC".into(),
        logo_digest: None,
    };
    match merchants::insert(store, &merchant, false).await {
        Ok(_) => Ok(Created {
            merchant,
            api_secret,
        }),
        // The email signs in already: as another merchant's, or as a user of a team.
        Err(e)
            if crate::store::is_unique_violation(&e, "merchants_email_key")
                || crate::store::is_unique_violation(&e, "users_email_key") =>
        {
            Err(CreateError::EmailTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// An argon2id hash of a dashboard password (PHC string).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::PasswordHasher as _;
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches an argon2 PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier as _;
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Password checks in flight at once: argon2 is deliberately slow, so it runs on the blocking
/// pool, a few at a time, and never on the threads that serve requests.
static PASSWORD_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Verifies a dashboard email and password; the user's id when they match. An unknown email
/// is hashed too, so timing does not reveal which emails exist.
pub async fn check_login(
    store: &Store,
    email: &str,
    password: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row = crate::store::users::login_row(store, email).await?;
    let (id, hash) = match row {
        Some((id, Some(hash))) => (Some(id), Some(hash)),
        _ => (None, None),
    };
    let ok = check_password(password, hash).await;
    Ok(id.filter(|_| ok))
}

/// Whether `password` matches `hash` (argon2, on the blocking pool, a few at a time); a
/// missing hash is checked against a dummy one, taking as long, and never matches.
pub async fn check_password(password: &str, hash: Option<String>) -> bool {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J0M4m0nBv0yvxqJUHVpVdM4NF4g9n7p8LDBc1Y0M2Bk";
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY.to_owned());
    let _permit = PASSWORD_CHECKS.acquire().await;
    let password = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    ok && known
}

/// The shortest dashboard password accepted.
pub const MIN_PASSWORD: usize = 8;

/// Sets a user's dashboard password (for a merchant's first owner, the merchant's id), ending
/// their other sessions (all of them without `keep`). `by`, when given, is recorded in the
/// audit log with the change.
pub async fn set_password(
    store: &Store,
    user_id: &str,
    password: &str,
    (keep, by): (Option<&str>, Option<&Actor>),
) -> anyhow::Result<()> {
    if password.chars().count() < MIN_PASSWORD {
        anyhow::bail!("the password must have at least {MIN_PASSWORD} characters");
    }
    let hash = hash_password(password)?;
    let at = now();
    let entry = by.map(|by| by.entry("user.password_change", ("user", user_id), at));
    let users = crate::store::users::set_password_hash;
    if !users(store, user_id, &hash, false, keep, at, entry.as_ref()).await? {
        anyhow::bail!("no such user: the account's first owner was removed from its team");
    }
    Ok(())
}

/// Gives the test merchant's owner its dashboard password if it has none.
pub async fn seed_test_password(store: &Store, password: &str) -> anyhow::Result<()> {
    let has = crate::store::users::login_row(store, test_merchant::EMAIL).await?;
    if let Some((id, None)) = has {
        let hash = hash_password(password)?;
        crate::store::users::set_password_hash(store, &id, &hash, true, None, now(), None).await?;
    }
    Ok(())
}

/// Replaces the merchant's API secret; returns the new secret (shown once) and until when the
/// current one keeps working: `overlap_until`, or `None` (it stops within a second everywhere,
/// as the credential caches forget it) when none is asked or the current secret is the
/// seeded public one, which never lingers. `by`, when given, is recorded in the audit log
/// with the change.
pub async fn rotate_api_secret(
    store: &Store,
    cache: &CredentialCache,
    merchant: &Merchant,
    overlap_until: Option<chrono::DateTime<chrono::Utc>>,
    by: Option<&Actor>,
) -> Result<(String, Option<chrono::DateTime<chrono::Utc>>), sqlx::Error> {
    let secret = format!(
        "secret_{}",
        Alphanumeric.sample_string(&mut rand::rng(), 32)
    );
    let (digest, at) = (secret_digest(&secret), now());
    let seeded = merchant.api_secret_hash == secret_digest(test_merchant::API_SECRET);
    let overlap_until = overlap_until.filter(|_| !seeded);
    let mut tx = store.begin().await?;
    crate::store::dashboard::set_api_secret_hash(&mut tx, &merchant.id, &digest, overlap_until, at)
        .await?;
    if let Some(by) = by {
        let key = ("api_key", merchant.api_key.as_str());
        audit::record_in(&mut tx, by, "api_key.rotate_secret", key, at).await?;
    }
    tx.commit().await?;
    cache.forget(&merchant.api_key);
    Ok((secret, overlap_until))
}

/// Whether the merchant's dashboard password is the test merchant's public one.
pub async fn has_seeded_password(store: &Store, merchant_id: &str) -> anyhow::Result<bool> {
    let Some(hash) = crate::store::users::password_hash(store, merchant_id).await? else {
        return Ok(false);
    };
    let seeded =
        tokio::task::spawn_blocking(move || verify_password(test_merchant::PASSWORD, &hash))
            .await?;
    Ok(seeded)
}

/// For a production start: disables every merchant still holding the seeded public
/// credentials (the test merchant's API secret, or its dashboard password), so neither its
/// API keys nor its dashboard sign-in work until `paygate merchant rotate-keys`. Returns the
/// ids disabled now.
pub async fn disable_seeded(store: &Store) -> anyhow::Result<Vec<String>> {
    let password = has_seeded_password(store, test_merchant::ID)
        .await?
        .then_some(test_merchant::ID);
    let digest = secret_digest(test_merchant::API_SECRET);
    Ok(merchants::disable(store, &digest, password, "seeded_credentials").await?)
}

/// Inserts the test merchant unless it exists; returns whether it was inserted.
pub async fn seed_test_merchant(store: &Store) -> Result<bool, sqlx::Error> {
    let m = Merchant {
        id: test_merchant::ID.into(),
        name: test_merchant::NAME.into(),
        email: test_merchant::EMAIL.into(),
        api_key: test_merchant::API_KEY.into(),
        api_secret_hash: secret_digest(test_merchant::API_SECRET),
        webhook_secret: test_merchant::WEBHOOK_SECRET.into(),
        webhook_url: None,
        created_at: now(),
        upi_id: Some(test_merchant::UPI_ID.into()),
        previous: Default::default(),
        display_name: None,
        time_zone: "UTC".into(),
        logo_digest: None,
    };
    merchants::insert(store, &m, true).await
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    #[test]
    fn webhook_secrets_carry_32_random_bytes() {
        let s = new_webhook_secret();
        let raw = s.strip_prefix("whsec_").expect("prefix");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .expect("base64");
        assert_eq!(bytes.len(), 32);
        assert_ne!(s, new_webhook_secret());
    }

    #[test]
    fn secret_digest_is_hex_sha256() {
        assert_eq!(
            secret_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
