//! Per-API-key rate limits on the authenticated API, with `governor` (a GCRA token bucket per
//! key, in memory: each `serve` process limits on its own, so N processes admit up to N times
//! the rate). A key over its limit gets `429` in the API's error shape with `Retry-After` and
//! the `RateLimit-*` headers of the IETF draft; every answer carries `RateLimit-Limit` and
//! `RateLimit-Remaining`. The key is the one presented, before authentication, so a flood of
//! bad secrets for one key is limited too; one key at its limit does not touch another's.

use std::{num::NonZeroU32, sync::Arc};

use axum::{
    extract::{Request, State},
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

/// How often keys whose bucket is full again are forgotten.
const FORGET_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// The limiter of every API key.
pub struct Limits {
    limiter: Keyed,
    rate: u32,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl Limits {
    /// `rate` requests per second with bursts of `burst` per key; `None` if `rate` is 0. Keys
    /// are whatever clients present, so a task forgets those whose bucket has refilled (every
    /// [`FORGET_EVERY`]) and the table cannot grow without bound; it ends with the limiter.
    pub fn new(rate: u32, burst: u32) -> Option<Arc<Self>> {
        let per_second = NonZeroU32::new(rate)?;
        let burst = NonZeroU32::new(burst.max(rate))?;
        let quota = Quota::per_second(per_second).allow_burst(burst);
        let limits = Arc::new(Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            rate,
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

/// The middleware: admits the request or answers 429. Requests without a key pass (they are
/// refused by authentication).
pub async fn limit(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    let Some(key) = presented_key(req.headers()) else {
        return next.run(req).await;
    };
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
            let mut res = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMIT_ERROR",
                "Too many requests for this API key; retry after the time in Retry-After",
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
