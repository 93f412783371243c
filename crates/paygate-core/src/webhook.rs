//! Webhook signatures and the retry schedule.
//!
//! Two signature schemes are sent with every delivery:
//! - `X-Webhook-Signature`: lowercase hex HMAC-SHA256 of the exact body bytes, keyed by the
//!   merchant's webhook secret as it is written (its UTF-8 bytes).
//! - Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
//!   keyed by the base64-decoded part of a `whsec_<base64>` secret (what the public
//!   `standardwebhooks` libraries expect). A secret that is not of that form (the seeded test
//!   merchant's `whsec_test_abc123`) keys with its UTF-8 bytes.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `X-Webhook-Signature`: hex HMAC-SHA256 of the body.
pub fn hex_signature(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac(secret.as_bytes(), &[body]))
}

/// Every event type a webhook can carry.
pub const EVENT_TYPES: &[&str] = &[
    "payment.created",
    "payment.pending",
    "payment.success",
    "payment.failed",
    "payment.captured",
    "refund.created",
    "refund.processed",
    "payment_link.paid",
    "payment_link.partially_paid",
    "payment_link.expired",
    "payment_link.cancelled",
    "settlement.processed",
    "webhook.test",
    "webhook_endpoint.disabled",
];

/// Whether `pattern` names event types: an exact type of [`EVENT_TYPES`], a trailing wildcard
/// over a prefix some type has (`payment.*`), or `*`.
pub fn valid_pattern(pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => prefix.ends_with('.') && EVENT_TYPES.iter().any(|t| t.starts_with(prefix)),
        None => EVENT_TYPES.contains(&pattern),
    }
}

/// Whether an endpoint wanting `patterns` (space-separated; none for every event) gets
/// events of type `event`.
pub fn wants(patterns: &str, event: &str) -> bool {
    let mut any = false;
    for p in patterns.split_whitespace() {
        any = true;
        let hit = match p.strip_suffix('*') {
            Some(prefix) => event.starts_with(prefix),
            None => p == event,
        };
        if hit {
            return true;
        }
    }
    !any
}

/// The key of the Standard Webhooks scheme for a secret.
pub fn standard_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// `webhook-signature`: `v1,<base64>` over `id.timestamp.body`.
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let sig = hmac(
        &standard_key(secret),
        &[id.as_bytes(), b".", ts.as_bytes(), b".", body],
    );
    format!("v1,{}", STANDARD.encode(sig))
}

/// Checks `X-Webhook-Signature` in constant time.
pub fn verify_hex(secret: &str, body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// Checks a `webhook-signature` header (space-separated `v1,<base64>` entries; any may match)
/// in constant time, and that `timestamp` is within `tolerance` of `now`.
pub fn verify_standard(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance: Duration,
) -> bool {
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if (now - timestamp).abs() > tolerance {
        return false;
    }
    let ts = timestamp.to_string();
    header.split_whitespace().any(|entry| {
        let Some(b64) = entry.strip_prefix("v1,") else {
            return false;
        };
        let Ok(given) = STANDARD.decode(b64) else {
            return false;
        };
        let mut mac =
            HmacSha256::new_from_slice(&standard_key(secret)).unwrap_or_else(|_| unreachable!());
        for p in [id.as_bytes(), b".", ts.as_bytes(), b".", body] {
            mac.update(p);
        }
        mac.verify_slice(&given).is_ok()
    })
}

/// Attempts per delivery.
pub const MAX_ATTEMPTS: u32 = 5;
/// Delays before attempts 1–5 (SPEC A6).
pub const SCHEDULE: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 60 * 60),
];
/// The short schedule of `WEBHOOK_RETRY_INTERVALS_TEST`.
pub const TEST_SCHEDULE: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(15),
    Duration::from_secs(20),
];
/// The longest wait a `Retry-After` answer can ask for.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(2 * 60 * 60);

/// What to do after attempt number `attempts` (1-based) failed: `Some(delay)` before the next
/// attempt, or `None` when it was the last. A `Retry-After` from the receiver is honoured:
/// the next attempt comes no earlier than it asks, capped at [`RETRY_AFTER_MAX`], and never
/// earlier than the schedule.
pub fn next_delay(
    schedule: &[Duration],
    attempts: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let planned = schedule
        .get(usize::try_from(attempts).ok()?)
        .copied()
        .unwrap_or(Duration::ZERO);
    Some(match retry_after {
        Some(asked) => planned.max(asked.min(RETRY_AFTER_MAX)),
        None => planned,
    })
}

#[cfg(test)]
mod filter_tests {
    use super::{valid_pattern, wants};

    #[test]
    fn patterns_are_exact_names_or_trailing_wildcards() {
        for ok in [
            "*",
            "payment.*",
            "refund.*",
            "payment.success",
            "webhook.test",
        ] {
            assert!(valid_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            "payment",
            "pay*",
            "payment.succes",
            "order.*",
            "*.success",
            "payment.**",
        ] {
            assert!(!valid_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn an_endpoint_gets_what_it_asked_for() {
        assert!(wants("", "refund.processed"));
        assert!(wants("payment.*", "payment.failed"));
        assert!(!wants("payment.*", "refund.processed"));
        assert!(wants(
            "payment.success refund.processed",
            "refund.processed"
        ));
        assert!(!wants("payment.success refund.processed", "payment.failed"));
        assert!(wants("*", "webhook.test"));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_real_schedule_is_0_1m_5m_30m_2h_and_stops_after_five() {
        let secs: Vec<u64> = (1..MAX_ATTEMPTS)
            .map(|a| next_delay(&SCHEDULE, a, None).unwrap().as_secs())
            .collect();
        assert_eq!(secs, [60, 300, 1800, 7200]);
        assert_eq!(next_delay(&SCHEDULE, 5, None), None);
        let test: Vec<u64> = (1..MAX_ATTEMPTS)
            .map(|a| next_delay(&TEST_SCHEDULE, a, None).unwrap().as_secs())
            .collect();
        assert_eq!(test, [5, 10, 15, 20]);
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(next_delay(&SCHEDULE, 1, s(600)), s(600));
        assert_eq!(
            next_delay(&SCHEDULE, 1, s(10)),
            s(60),
            "never before the schedule"
        );
        assert_eq!(next_delay(&SCHEDULE, 1, s(999_999)), Some(RETRY_AFTER_MAX));
    }

    #[test]
    fn hex_signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex_signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn standard_signature_matches_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = standard_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    proptest! {
        #[test]
        fn signatures_verify_and_any_change_breaks_them(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            flip in any::<usize>(),
            ts in 1_600_000_000i64..2_000_000_000,
        ) {
            let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
            let hex = hex_signature(secret, &body);
            prop_assert!(verify_hex(secret, &body, &hex));
            let std = standard_signature(secret, "evt_1", ts, &body);
            let tol = Duration::from_secs(300);
            prop_assert!(verify_standard(secret, "evt_1", ts, &body, &std, ts, tol));
            prop_assert!(!verify_standard(secret, "evt_2", ts, &body, &std, ts, tol));
            prop_assert!(!verify_standard(secret, "evt_1", ts, &body, &std, ts + 301, tol));
            prop_assert!(!verify_hex("whsec_other", &body, &hex));
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip % changed.len();
                changed[i] ^= 1;
                prop_assert!(!verify_hex(secret, &changed, &hex));
                prop_assert!(!verify_standard(secret, "evt_1", ts, &changed, &std, ts, tol));
            }
        }
    }
}
