//! `/health` and `/api/v1/*`, one file per resource.

mod health;
mod orders;
mod payments;

use axum::{
    Router,
    routing::{get, post},
};

use crate::app::App;

/// Every API route; `/api/v1/test/*` only when `test_endpoints`.
pub fn routes(test_endpoints: bool) -> Router<App> {
    let mut router = Router::new()
        .route("/health", get(health::health))
        .route("/api/v1/orders", post(orders::create).get(orders::list))
        .route("/api/v1/orders/{id}", get(orders::get))
        .route("/api/v1/orders/{id}/public", get(orders::get_public))
        .route(
            "/api/v1/payments",
            post(payments::create).get(payments::list),
        )
        .route("/api/v1/payments/public", post(payments::create_public))
        .route("/api/v1/payments/{id}", get(payments::get))
        .route("/api/v1/payments/{id}/public", get(payments::get_public))
        .route("/api/v1/queue/status", get(health::queue_status));
    if test_endpoints {
        router = router
            .route("/api/v1/test/merchant", get(health::test_merchant))
            .route("/api/v1/test/jobs/status", get(health::jobs_status));
    }
    router
}
