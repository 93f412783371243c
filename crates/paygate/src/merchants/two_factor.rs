//! Two-factor sign-in for dashboard users: TOTP (RFC 6238 by `totp-rs`: HMAC-SHA1, six digits,
//! 30-second steps, one step of clock drift either way) and ten one-time recovery codes.
//!
//! - The secret (20 random bytes) is shown once while it is set up, as a QR code of its
//!   `otpauth://` link and as base32 text; setting up ends only when a code from it is given.
//! - Secrets are stored sealed with `PAYGATE_SECRET_KEY` (XChaCha20-Poly1305, a random nonce
//!   each, the user's id as associated data so a sealed secret cannot be moved to another user).
//! - A code is accepted once: its step must be later than the last step accepted (a conditional
//!   update), so a code seen over a shoulder cannot be replayed.
//! - Recovery codes are random (10 characters of a 31-letter alphabet, about 50 bits), stored as
//!   SHA-256 digests (they are random, not passwords: a slow hash adds nothing), each used once.

use base64::Engine as _;
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, Generate, KeyInit, Payload},
};
use rand::RngExt as _;
use totp_rs::{Builder, Totp};

use super::secret_digest;
use crate::{
    audit::Actor,
    config::SecretKey,
    store::{Store, now, two_factor as rows},
};

/// How many recovery codes a user gets.
pub const RECOVERY_CODES: usize = 10;

/// Seals and opens secrets with `PAYGATE_SECRET_KEY`.
pub struct Sealer(XChaCha20Poly1305);

impl Sealer {
    pub fn new(key: &SecretKey) -> Self {
        Self(XChaCha20Poly1305::new(&key.0.into()))
    }

    /// `plain` sealed for `owner`: base64 of nonce and ciphertext.
    pub fn seal(&self, plain: &[u8], owner: &str) -> String {
        let nonce = XNonce::generate();
        let sealed = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: owner.as_bytes(),
                },
            )
            .expect("sealing a few bytes cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// What `sealed` holds, if it was sealed for `owner` with this key.
    pub fn open(&self, sealed: &str, owner: &str) -> Option<Vec<u8>> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .ok()?;
        if raw.len() < 24 {
            return None;
        }
        let (nonce, msg) = raw.split_at(24);
        let nonce = XNonce::try_from(nonce).ok()?;
        self.0
            .decrypt(
                &nonce,
                Payload {
                    msg,
                    aad: owner.as_bytes(),
                },
            )
            .ok()
    }
}

fn totp(secret: Vec<u8>) -> Option<Totp> {
    Builder::new().with_secret(secret).build().ok()
}

/// The time step a code of `secret` matches at `unix` seconds (within one step of drift).
pub fn check_code(secret: &[u8], code: &str, unix: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret.to_vec())?.check(&code, unix)
}

/// A secret being set up: what the user scans or types.
pub struct Setup {
    /// The secret in base32, for typing into an app.
    pub text: String,
    /// An SVG image of its `otpauth://` link, as a `data:` URL.
    pub qr: String,
}

fn unix_now() -> u64 {
    u64::try_from(now().timestamp()).unwrap_or_default()
}

/// The setup of `user`'s pending secret, making one if there is none.
pub async fn setup(
    store: &Store,
    sealer: &Sealer,
    user_id: &str,
    email: &str,
) -> Result<Setup, sqlx::Error> {
    let (_, pending) = rows::secrets(store, user_id).await?;
    let secret = match pending.and_then(|s| sealer.open(&s, user_id)) {
        Some(secret) => secret,
        None => {
            let secret: [u8; 20] = rand::rng().random();
            rows::set_pending(store, user_id, &sealer.seal(&secret, user_id)).await?;
            secret.to_vec()
        }
    };
    let text = totp_rs::Secret::from(secret).to_base32();
    let label: String = url::form_urlencoded::byte_serialize(format!("paygate:{email}").as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let uri = format!("otpauth://totp/{label}?secret={text}&issuer=paygate&digits=6&period=30");
    let svg = qrcode::QrCode::new(uri.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    let qr = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    );
    Ok(Setup { text, qr })
}

/// Why two-factor sign-in was not turned on or off.
#[derive(Debug, thiserror::Error)]
pub enum TwoFactorError {
    #[error("That code is not right: enter the 6 digits your app shows now.")]
    WrongCode,
    #[error("Start the setup again: the secret being set up has changed.")]
    NoSetup,
    #[error("Your team requires two-factor sign-in: it cannot be turned off.")]
    Required,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Turns two-factor sign-in on with a code of the pending secret; the new recovery codes
/// (shown once).
pub async fn enable(
    store: &Store,
    sealer: &Sealer,
    by: &Actor,
    code: &str,
) -> Result<Vec<String>, TwoFactorError> {
    let user_id = by.id.as_str();
    let (_, pending) = rows::secrets(store, user_id).await?;
    let sealed = pending.ok_or(TwoFactorError::NoSetup)?;
    let secret = sealer
        .open(&sealed, user_id)
        .ok_or(TwoFactorError::NoSetup)?;
    let step = check_code(&secret, code, unix_now()).ok_or(TwoFactorError::WrongCode)?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
    let digests: Vec<String> = codes.iter().map(|c| secret_digest(c)).collect();
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    let entry = by.entry("user.two_factor_enable", ("user", user_id), now());
    if !rows::enable(store, user_id, &sealed, step, &digests, Some(&entry)).await? {
        return Err(TwoFactorError::NoSetup);
    }
    Ok(codes)
}

/// Turns two-factor sign-in off, with a current code (or a recovery code); refused while the
/// merchant requires it.
pub async fn disable(
    store: &Store,
    sealer: &Sealer,
    by: &Actor,
    code: &str,
) -> Result<(), TwoFactorError> {
    let user_id = by.id.as_str();
    if rows::required(store, &by.merchant_id).await? {
        return Err(TwoFactorError::Required);
    }
    if !verify(store, sealer, user_id, code).await? {
        return Err(TwoFactorError::WrongCode);
    }
    let entry = by.entry("user.two_factor_disable", ("user", user_id), now());
    rows::disable(store, user_id, Some(&entry)).await?;
    Ok(())
}

/// Checks a second factor at sign-in: a current code of the user's secret, once, or one of
/// their recovery codes, once.
pub async fn verify(
    store: &Store,
    sealer: &Sealer,
    user_id: &str,
    code: &str,
) -> Result<bool, sqlx::Error> {
    let code = code.trim();
    if let Some(recovery) = normalize_recovery(code) {
        return rows::use_recovery(store, user_id, &secret_digest(&recovery), now()).await;
    }
    let (secret, _) = rows::secrets(store, user_id).await?;
    let Some(secret) = secret.and_then(|s| sealer.open(&s, user_id)) else {
        return Ok(false);
    };
    match check_code(&secret, code, unix_now()) {
        Some(step) => rows::use_step(store, user_id, i64::try_from(step).unwrap_or(0)).await,
        None => Ok(false),
    }
}

/// The alphabet of recovery codes: lowercase letters and digits without look-alikes.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A new recovery code: `xxxxx-xxxxx`.
fn recovery_code() -> String {
    let mut rng = rand::rng();
    let mut code = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    code
}

/// A recovery code as typed (any case, with or without its dash and spaces) in its stored
/// form; `None` for anything that is not one (a six-digit code, say).
fn normalize_recovery(typed: &str) -> Option<String> {
    let letters: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid = letters.len() == 10 && letters.bytes().all(|b| ALPHABET.contains(&b));
    valid.then(|| format!("{}-{}", &letters[..5], &letters[5..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret `12345678901234567890`, six digits.
    #[test]
    fn codes_follow_rfc_6238_and_one_step_of_drift() {
        let secret = b"12345678901234567890";
        // 1111111109 s: "07081804" in eight digits; six digits keep the last six.
        assert_eq!(
            check_code(secret, "081804", 1_111_111_109),
            Some(37_037_036)
        );
        assert_eq!(
            check_code(secret, "081804", 1_111_111_109 + 30),
            Some(37_037_036)
        );
        assert_eq!(check_code(secret, "081804", 1_111_111_109 + 90), None);
        assert_eq!(check_code(secret, "12345", 1_111_111_109), None);
        assert_eq!(check_code(secret, "abcdef", 1_111_111_109), None);
    }

    #[test]
    fn sealed_secrets_open_only_for_their_owner_and_key() {
        let sealer = Sealer::new(&SecretKey::development());
        let sealed = sealer.seal(b"a secret", "user-1");
        assert_ne!(sealer.seal(b"a secret", "user-1"), sealed, "a nonce each");
        assert_eq!(
            sealer.open(&sealed, "user-1").as_deref(),
            Some(&b"a secret"[..])
        );
        assert_eq!(sealer.open(&sealed, "user-2"), None);
        let other = Sealer::new(&SecretKey([7; 32]));
        assert_eq!(other.open(&sealed, "user-1"), None);
        assert_eq!(sealer.open("not base64!", "user-1"), None);
    }

    #[test]
    fn recovery_codes_read_back_however_they_are_typed() {
        let code = recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(normalize_recovery(&code).as_deref(), Some(code.as_str()));
        let typed = code.replace('-', " ").to_uppercase();
        assert_eq!(normalize_recovery(&typed).as_deref(), Some(code.as_str()));
        assert_eq!(normalize_recovery("123456"), None);
        assert_ne!(recovery_code(), code);
    }
}
