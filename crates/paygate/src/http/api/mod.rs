//! `/health` and `/api/v1/*`, one file per resource.

mod account;
pub mod health;
mod orders;
mod payments;
mod refunds;
mod webhooks;

use axum::{
    Router, middleware,
    routing::{get, post},
};

use paygate_core::OrderAmount;

// What the handlers of every resource work with (they import it from here).
use crate::http::{
    ApiResult, ApiState,
    error::ApiError,
    extract::{ApiJson, Authed, IdPath, Paging},
    idempotency::{Answer, Idempotency, idempotency},
    render,
};

/// A request's optional `amount`, checked: when given, a positive integer of at most
/// [`OrderAmount::MAX`].
fn positive_amount(amount: Option<i64>) -> ApiResult<Option<i64>> {
    if amount.is_some_and(|a| !(1..=OrderAmount::MAX).contains(&a)) {
        return Err(ApiError::bad_request(format!(
            "amount must be a positive integer of at most {}",
            OrderAmount::MAX
        )));
    }
    Ok(amount)
}

/// The unauthenticated endpoints of the checkout page, relative to `/api/v1`; served on the
/// API port and on the checkout port (where the page calls them on its own origin).
pub fn public_routes_v1() -> Router<ApiState> {
    Router::new()
        .route("/orders/{id}/public", get(orders::get_public))
        .route("/payments/public", post(payments::create_public))
        .route("/payments/{id}/public", get(payments::get_public))
}

/// Every API route; `/api/v1/test/*` only when `TEST_ENDPOINTS`. The authenticated routes
/// honour `Idempotency-Key` on POST.
pub fn routes(app: &ApiState) -> Router<ApiState> {
    let authenticated = Router::new()
        .route("/api/v1/merchant", get(account::merchant))
        .route("/api/v1/orders", post(orders::create).get(orders::list))
        .route("/api/v1/orders/{id}", get(orders::get))
        .route(
            "/api/v1/payments",
            post(payments::create).get(payments::list),
        )
        .route("/api/v1/payments/{id}", get(payments::get))
        .route("/api/v1/payments/{id}/capture", post(payments::capture))
        .route(
            "/api/v1/payments/{id}/refunds",
            post(refunds::create).get(refunds::for_payment),
        )
        .route("/api/v1/refunds", get(refunds::list))
        .route("/api/v1/refunds/{id}", get(refunds::get))
        .route("/api/v1/queue/status", get(health::queue_status))
        .route("/api/v1/webhooks", get(webhooks::list))
        .route("/api/v1/webhooks/{id}/retry", post(webhooks::retry))
        .route(
            "/api/v1/webhooks/config",
            get(webhooks::get_config).put(webhooks::put_config),
        )
        .route(
            "/api/v1/webhooks/config/secret",
            post(webhooks::rotate_secret),
        )
        .route("/api/v1/webhooks/test", post(webhooks::test))
        .route("/api/v1/events", get(webhooks::events))
        .route_layer(middleware::from_fn_with_state(app.clone(), idempotency));
    let authenticated = match &app.settings.rate_limits {
        Some(limits) => authenticated.route_layer(middleware::from_fn_with_state(
            limits.clone(),
            crate::http::ratelimit::limit,
        )),
        None => authenticated,
    };
    let mut router = Router::new()
        .route("/health", get(health::health))
        .nest("/api/v1", public_routes_v1())
        .merge(authenticated);
    if app.settings.test_endpoints {
        router = router
            .route("/api/v1/test/merchant", get(health::test_merchant))
            .route("/api/v1/test/jobs/status", get(health::jobs_status));
    }
    router
}
