//! Rate limits with `governor` (a GCRA token bucket per key, in memory: each `serve` process
//! limits on its own, so N processes admit up to N times the rate): per API key on the
//! authenticated API (`RATE_LIMIT_PER_SECOND`), and per client address on the checkout's
//! public endpoints (`CHECKOUT_RATE_LIMIT_PER_SECOND`), on the API port and the checkout port
//! alike. Over its limit a request gets `429` in the API's error shape with `Retry-After` and
//! the `RateLimit-*` headers of the IETF draft; every answer carries `RateLimit-Limit` and
//! `RateLimit-Remaining`. The API key is the one presented, before authentication, so a flood
//! of bad secrets for one key is limited too; one key (or address) at its limit does not
//! touch another's. The client address is the connection's peer, or behind one of
//! `TRUSTED_PROXIES` the address the proxies forwarded (`http::forwarded`). Keys are cut to
//! [`KEY_MAX`] bytes before they reach the table.

use std::{net::SocketAddr, num::NonZeroU32, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};

use super::{error::ApiError, extract::presented_key};

/// The longest key kept, bytes (longer API keys are not ours anyway).
pub const KEY_MAX: usize = 128;
/// How often keys whose bucket is full again are forgotten.
const FORGET_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// What a limiter's keys are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The API key a request presents.
    ApiKey,
    /// The client's address (the connection's peer).
    Address,
}

/// A limiter: a bucket per key of its scope.
pub struct Limits {
    limiter: Keyed,
    rate: u32,
    scope: Scope,
    trusted: super::forwarded::TrustedProxies,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("rate", &self.rate)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl Limits {
    /// `rate` requests per second with bursts of `burst` per key; `None` if `rate` is 0. Keys
    /// are whatever clients present, so a task forgets those whose bucket has refilled (every
    /// [`FORGET_EVERY`]) and the table cannot grow without bound; it ends with the limiter.
    pub fn new(
        scope: Scope,
        rate: u32,
        burst: u32,
        trusted: super::forwarded::TrustedProxies,
    ) -> Option<Arc<Self>> {
        let per_second = NonZeroU32::new(rate)?;
        let burst = NonZeroU32::new(burst.max(rate))?;
        let quota = Quota::per_second(per_second).allow_burst(burst);
        let limits = Arc::new(Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            rate,
            scope,
            trusted,
        });
        let weak = Arc::downgrade(&limits);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FORGET_EVERY).await;
                let Some(limits) = weak.upgrade() else { return };
                limits.limiter.retain_recent();
                limits.limiter.shrink_to_fit();
            }
        });
        Some(limits)
    }
}

/// The middleware: admits the request or answers 429. Requests without an API key pass (they
/// are refused by authentication), as do requests whose address is unknown (none on a
/// listener, which all record it).
pub async fn limit(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let key = match limits.scope {
        Scope::ApiKey => presented_key(req.headers()),
        Scope::Address => req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| limits.trusted.client(addr.ip(), req.headers()).to_string()),
    };
    let Some(mut key) = key else {
        return next.run(req).await;
    };
    if key.len() > KEY_MAX {
        let mut end = KEY_MAX;
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        key.truncate(end);
    }
    let limit = HeaderValue::from(limits.rate);
    match limits.limiter.check_key(&key) {
        Ok(snapshot) => {
            let mut res = next.run(req).await;
            let h = res.headers_mut();
            h.insert("ratelimit-limit", limit);
            h.insert(
                "ratelimit-remaining",
                HeaderValue::from(snapshot.remaining_burst_capacity()),
            );
            res
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let whose = match limits.scope {
                Scope::ApiKey => "this API key",
                Scope::Address => "this client address",
            };
            let mut res = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMIT_ERROR",
                format!("Too many requests for {whose}; retry after the time in Retry-After"),
            )
            .into_response();
            let h = res.headers_mut();
            h.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            h.insert("ratelimit-limit", limit);
            h.insert("ratelimit-remaining", HeaderValue::from(0u32));
            h.insert("ratelimit-reset", HeaderValue::from(seconds));
            res
        }
    }
}
