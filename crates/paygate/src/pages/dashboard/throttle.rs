//! The sign-in throttle: failed sign-ins are limited per (email, client address) and per client
//! address, each a token bucket that only failures draw from.
//!
//! Guarantees:
//! - An attempt is reserved before its password is hashed: a reservation holds a token of
//!   each of its buckets, so of many attempts sent at once, no more reach the hash than the
//!   buckets have tokens; the rest are answered at once. A success gives its tokens back; a
//!   failure (or an attempt abandoned mid-way) spends them.
//! - Nobody can lock a merchant out from elsewhere: the buckets are keyed by the client's
//!   address (see `http::forwarded` for proxies), never by the email alone, so another
//!   address's attempts for the same email are not slowed down.
//! - One address holds at most [`LoginThrottle::ADDRESS_IN_FLIGHT`] password checks at once,
//!   so it cannot take every hashing slot.
//! - Keys are bounded in length (an email is cut to 254 characters), and buckets that have
//!   refilled are forgotten once there are many, so clients cannot grow the table without
//!   bound.
//!
//! Written here rather than with `governor` (used for the API's rate limits): a sign-in must
//! take a token before the check and give it back on success, and governor's buckets can be
//! drawn from but not refunded.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Limits failed sign-ins; see the module's documentation.
#[derive(Default)]
pub struct LoginThrottle {
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

#[derive(Debug)]
struct Bucket {
    /// Failures left (refilled over time).
    tokens: f64,
    burst: f64,
    refill: Duration,
    at: Instant,
    /// Attempts reserved and not resolved yet.
    in_flight: u32,
}

impl Bucket {
    fn new(burst: u32, refill: Duration, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            refill,
            at: now,
            in_flight: 0,
        }
    }

    fn refresh(&mut self, now: Instant) {
        let gained = now.duration_since(self.at).as_secs_f64() / self.refill.as_secs_f64();
        self.tokens = (self.tokens + gained).min(self.burst);
        self.at = now;
    }

    /// How long until one more attempt may be reserved (zero: now).
    fn wait(&self) -> Duration {
        let free = self.tokens - f64::from(self.in_flight);
        if free >= 1.0 {
            Duration::ZERO
        } else {
            self.refill.mul_f64(1.0 - free)
        }
    }
}

/// Why an attempt was not let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Too many failures: wait this long.
    Wait(Duration),
    /// This address has its password checks in flight already.
    Busy,
}

impl LoginThrottle {
    /// Failures an email may have from one address before attempts are slowed down.
    pub const PAIR_FREE: u32 = 3;
    /// How often such a pair gets one more attempt once its failures are spent.
    pub const PAIR_REFILL: Duration = Duration::from_secs(60);
    /// Failures an address may have (over any emails) before attempts are slowed down.
    pub const ADDRESS_FREE: u32 = 10;
    /// How often an address gets one more attempt once its failures are spent.
    pub const ADDRESS_REFILL: Duration = Duration::from_secs(6);
    /// Password checks one address may have in flight at once.
    pub const ADDRESS_IN_FLIGHT: u32 = 2;
    /// Buckets kept before those refilled and idle are forgotten.
    const FORGET_AT: usize = 10_000;
    /// The longest email a key holds, characters.
    const EMAIL_MAX: usize = 254;

    fn keys(email: &str, addr: IpAddr) -> [(String, u32, Duration); 2] {
        let email: String = email.trim().chars().take(Self::EMAIL_MAX).collect();
        [
            (
                format!("pair:{addr}:{}", email.to_lowercase()),
                Self::PAIR_FREE,
                Self::PAIR_REFILL,
            ),
            (
                format!("addr:{addr}"),
                Self::ADDRESS_FREE,
                Self::ADDRESS_REFILL,
            ),
        ]
    }

    /// Reserves an attempt for `email` from `addr`, or says why not.
    pub fn reserve(&self, email: &str, addr: IpAddr) -> Result<Attempt, Refused> {
        let keys = Self::keys(email, addr);
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > Self::FORGET_AT {
            buckets.retain(|_, b| {
                b.refresh(now);
                b.in_flight > 0 || b.tokens < b.burst
            });
        }
        let mut wait = Duration::ZERO;
        for (key, burst, refill) in &keys {
            let b = buckets
                .entry(key.clone())
                .or_insert_with(|| Bucket::new(*burst, *refill, now));
            b.refresh(now);
            wait = wait.max(b.wait());
        }
        if !wait.is_zero() {
            return Err(Refused::Wait(wait));
        }
        let address = &keys[1].0;
        if buckets
            .get(address)
            .is_some_and(|b| b.in_flight >= Self::ADDRESS_IN_FLIGHT)
        {
            return Err(Refused::Busy);
        }
        for (key, ..) in &keys {
            if let Some(b) = buckets.get_mut(key) {
                b.in_flight += 1;
            }
        }
        Ok(Attempt {
            buckets: self.buckets.clone(),
            keys: keys.map(|(key, ..)| key),
            resolved: false,
        })
    }
}

/// A reserved sign-in attempt: [`Attempt::succeeded`] gives its tokens back; a failure, or
/// dropping it unresolved, spends them.
pub struct Attempt {
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
    keys: [String; 2],
    resolved: bool,
}

impl Attempt {
    /// The password was right: nothing is counted.
    pub fn succeeded(mut self) {
        self.end(false);
    }

    /// The password was wrong: one failure counted on each bucket.
    pub fn failed(mut self) {
        self.end(true);
    }

    fn end(&mut self, spend: bool) {
        if self.resolved {
            return;
        }
        self.resolved = true;
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in &self.keys {
            if let Some(b) = buckets.get_mut(key) {
                b.refresh(now);
                b.in_flight = b.in_flight.saturating_sub(1);
                if spend {
                    b.tokens = (b.tokens - 1.0).max(0.0);
                }
            }
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.end(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const AWAY: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9));

    #[test]
    fn an_email_is_slowed_down_from_one_address_and_not_from_another() {
        let t = LoginThrottle::default();
        for _ in 0..LoginThrottle::PAIR_FREE {
            t.reserve("Someone@example.com", HOME).unwrap().failed();
        }
        let Err(Refused::Wait(wait)) = t.reserve("SOMEONE@example.com", HOME) else {
            panic!("blocked")
        };
        assert!(wait <= LoginThrottle::PAIR_REFILL, "{wait:?}");
        assert!(wait > LoginThrottle::PAIR_REFILL / 2, "{wait:?}");
        // The merchant, elsewhere, still signs in.
        t.reserve("someone@example.com", AWAY).unwrap().succeeded();
    }

    #[test]
    fn reservations_count_before_the_check_so_a_burst_gets_only_the_free_attempts() {
        let t = LoginThrottle::default();
        let held: Vec<Attempt> = (0..LoginThrottle::ADDRESS_IN_FLIGHT)
            .map(|_| t.reserve("a@example.com", HOME).unwrap())
            .collect();
        assert_eq!(
            t.reserve("a@example.com", HOME).err(),
            Some(Refused::Busy),
            "one address holds at most two checks at once"
        );
        drop(held);
        // Two failures spent (dropped unresolved), one left for the pair.
        let last = t.reserve("a@example.com", HOME).unwrap();
        assert!(matches!(
            t.reserve("a@example.com", HOME),
            Err(Refused::Wait(_))
        ));
        last.succeeded();
        assert!(
            t.reserve("a@example.com", HOME).is_ok(),
            "a success spends nothing"
        );
    }

    #[test]
    fn an_address_is_slowed_down_after_its_free_failures_over_any_emails() {
        let t = LoginThrottle::default();
        for i in 0..LoginThrottle::ADDRESS_FREE {
            t.reserve(&format!("user-{i}@example.com"), HOME)
                .unwrap()
                .failed();
        }
        let Err(Refused::Wait(wait)) = t.reserve("fresh@example.com", HOME) else {
            panic!("blocked")
        };
        assert!(wait <= LoginThrottle::ADDRESS_REFILL, "{wait:?}");
        assert!(t.reserve("fresh@example.com", AWAY).is_ok());
    }

    #[test]
    fn keys_are_bounded_in_length() {
        let long = "x".repeat(100_000);
        let [(pair, ..), _] = LoginThrottle::keys(&long, HOME);
        assert!(pair.len() < 300, "{}", pair.len());
    }
}
