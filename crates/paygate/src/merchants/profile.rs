//! The business profile: the name customers see on the checkout, the logo beside it, and the
//! time zone the dashboard shows times in. Each change is recorded in the audit log in its
//! own transaction.

use sha2::{Digest, Sha256};

use crate::{
    audit::{self, Actor},
    store::{
        Store,
        merchants::{self, Logo},
        now,
    },
};

/// The longest display name, characters.
pub const NAME_MAX: usize = 100;
/// The largest logo, bytes.
pub const LOGO_MAX: usize = 256 * 1024;

/// Why a profile change was refused: a sentence for the person who made it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// The time zone named `name` (an IANA name such as `Asia/Kolkata`).
pub fn time_zone(name: &str) -> Option<chrono_tz::Tz> {
    name.parse().ok()
}

/// The merchant's time zone; UTC should the stored name not parse.
pub fn zone_of(m: &merchants::Merchant) -> chrono_tz::Tz {
    time_zone(&m.time_zone).unwrap_or(chrono_tz::UTC)
}

/// Sets the display name (empty: the account's name is shown) and the time zone.
pub async fn set(
    store: &Store,
    by: &Actor,
    display_name: &str,
    zone: &str,
) -> Result<merchants::Merchant, Error> {
    let display_name = display_name.trim();
    if display_name.chars().count() > NAME_MAX || display_name.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "The display name must be at most 100 characters, without control characters.",
        ));
    }
    let zone = time_zone(zone.trim()).ok_or(Error::Invalid(
        "The time zone must be an IANA name, like Asia/Kolkata.",
    ))?;
    let name = (!display_name.is_empty()).then_some(display_name);
    let at = now();
    let mut tx = store.begin().await?;
    let updated = merchants::set_profile(&mut tx, &by.merchant_id, (name, zone.name()), at)
        .await?
        .ok_or(Error::Invalid("No such merchant."))?;
    let resource = ("merchant", by.merchant_id.as_str());
    audit::record_in(&mut tx, by, "settings.profile", resource, at).await?;
    tx.commit().await?;
    Ok(updated)
}

/// The media type of a PNG, JPEG or WebP image, read from its first bytes (what the upload
/// says it is does not count); `None` for anything else, SVG included (it can carry script).
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Replaces the logo with `bytes` (a PNG, JPEG or WebP of at most [`LOGO_MAX`] bytes), or
/// removes it with `None`.
pub async fn set_logo(store: &Store, by: &Actor, bytes: Option<Vec<u8>>) -> Result<(), Error> {
    let logo = match bytes {
        None => None,
        Some(bytes) if bytes.len() > LOGO_MAX => {
            return Err(Error::Invalid("The logo must be at most 256 KiB."));
        }
        Some(bytes) => {
            let content_type = image_type(&bytes).ok_or(Error::Invalid(
                "The logo must be a PNG, JPEG or WebP image.",
            ))?;
            let digest = hex::encode(Sha256::digest(&bytes));
            Some((
                Logo {
                    content_type: content_type.to_owned(),
                    bytes,
                },
                digest,
            ))
        }
    };
    let at = now();
    let mut tx = store.begin().await?;
    let given = logo.as_ref().map(|(l, d)| (l, d.as_str()));
    merchants::set_logo(&mut tx, &by.merchant_id, given, at).await?;
    let action = if logo.is_some() {
        "settings.logo"
    } else {
        "settings.logo_removed"
    };
    audit::record_in(&mut tx, by, action, ("merchant", &by.merchant_id), at).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_first_bytes() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        // Neither SVG (it can carry script) nor anything else.
        assert_eq!(image_type(b"%PDF-1.7"), None);
        assert_eq!(image_type(b"GIF89a"), None);
        assert_eq!(image_type(b""), None);
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(
            time_zone("Asia/Kolkata").map(|z| z.name()),
            Some("Asia/Kolkata")
        );
        assert_eq!(time_zone("UTC"), Some(chrono_tz::UTC));
        assert!(time_zone("Mars/Olympus").is_none());
        assert!(time_zone("").is_none());
    }
}
