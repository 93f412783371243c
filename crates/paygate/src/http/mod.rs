//! The HTTP API (an adapter). Handlers extract, authenticate, validate into domain types, call
//! one service function, and render the result; they see services and the store only through
//! [`ApiState`], which the composition root builds.
//!
//! The cross-cutting layers are tower-http's: request ids (set when the client sent none,
//! returned in `X-Request-Id`, and recorded on the request's tracing span so every log line of
//! a request carries it), trace spans, request timeouts, panic catching, and the security
//! headers (see [`layers`]).

pub mod api;
pub mod error;
pub mod extract;
pub mod forwarded;
pub mod idempotency;
pub mod layers;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod receiver;

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::DefaultBodyLimit, http::StatusCode};

use crate::{
    config::FaultPoint, merchants::CredentialCache, orders::Orders, payment_links::PaymentLinks,
    payments::service::Payments, queue::Queue, refunds::Refunds, settlements::Settlements,
    store::Store, webhooks::Webhooks,
};
use error::ApiError;

/// Largest accepted request body, bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The settings the API reads.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Serve `/api/v1/test/*`.
    pub test_endpoints: bool,
    /// How long a `running` idempotency key is kept for its request.
    pub idempotency_takeover: Duration,
    /// The test hook of `TEST_FAULT_PAUSE`.
    pub fault_pause: Option<(FaultPoint, Duration)>,
    /// The SHA-256 of `METRICS_TOKEN`: `/metrics` and the queue status then require it as a
    /// bearer token.
    pub metrics_token_digest: Option<String>,
    /// `PAYGATE_ENV=production`: `/metrics` and the queue status are closed without the token.
    pub production: bool,
    /// The proxies whose `X-Forwarded-For` names the client (the address the audit log
    /// records).
    pub trusted_proxies: forwarded::TrustedProxies,
    /// Per-API-key limits (`RATE_LIMIT_PER_SECOND`), when on.
    pub rate_limits: Option<Arc<ratelimit::Limits>>,
    /// Per-address limits of the checkout's public endpoints
    /// (`CHECKOUT_RATE_LIMIT_PER_SECOND`), when on.
    pub public_rate_limits: Option<Arc<ratelimit::Limits>>,
}

/// What the API's handlers work with. Cheap to clone.
pub type ApiState = Arc<ApiParts>;

/// The parts of an [`ApiState`].
pub struct ApiParts {
    pub store: Store,
    /// This process's id: the owner of the idempotency keys its requests hold.
    pub owner: Arc<str>,
    pub queue: Arc<dyn Queue>,
    pub credentials: Arc<CredentialCache>,
    pub orders: Arc<Orders>,
    pub payments: Arc<Payments>,
    pub payment_links: Arc<PaymentLinks>,
    pub refunds: Arc<Refunds>,
    pub settlements: Arc<Settlements>,
    pub webhooks: Arc<Webhooks>,
    pub settings: ApiSettings,
}

/// Renders an askama template as an HTML answer (a 500 in the API's error shape if it cannot).
pub fn html<T: askama::Template>(page: &T) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match page.render() {
        Ok(body) => axum::response::Html(body).into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

/// What a handler answers: `T` (a JSON body by default), or the API's error body.
pub type ApiResult<T = axum::Json<serde_json::Value>> = Result<T, ApiError>;

/// Serialises a view to a JSON response body.
pub fn render<T: serde::Serialize>(view: T) -> ApiResult {
    serde_json::to_value(view)
        .map(axum::Json)
        .map_err(|e| ApiError::internal(&e))
}

/// The API port's routes and their OpenAPI document (see [`openapi`]).
pub fn api_routes(state: &ApiState) -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    let (routes, collected) = api::routes(state)
        .routes(utoipa_axum::routes!(metrics::scrape))
        .routes(utoipa_axum::routes!(openapi::serve))
        .split_for_parts();
    (routes, openapi::finish(collected))
}

/// The API router (port 8000), and its rendered OpenAPI document.
pub fn api_router(state: ApiState) -> (Router, openapi::Document) {
    let (routes, document) = api_routes(&state);
    let document = openapi::Document(Arc::new(document.to_pretty_json().unwrap_or_default()));
    let router = with_api_rejections(routes)
        .route_layer(axum::middleware::from_fn(metrics::track))
        .layer(axum::Extension(document.clone()))
        .with_state(state);
    (layers::common(layers::api_headers(router)), document)
}

/// `GET /health` and `GET /metrics`, for a worker process's `WORKER_PORT`.
pub fn worker_router(state: ApiState) -> Router {
    let router = Router::new()
        .route("/health", axum::routing::get(api::health::health))
        .route("/metrics", axum::routing::get(metrics::scrape))
        .with_state(state);
    layers::common(layers::api_headers(with_api_rejections(router)))
}

/// `GET /health` alone, for the dashboard and checkout listeners (the same answer as the
/// API port's, so a load balancer can probe any of them).
pub fn health_router(state: ApiState) -> Router {
    Router::new()
        .route("/health", axum::routing::get(api::health::health))
        .with_state(state)
}

/// The public endpoints of the checkout page, relative to `/api` (for the checkout port, which
/// serves them on the page's own origin, with the API's JSON rejections).
pub fn public_router(state: ApiState) -> Router {
    let (routes, _) = api::public_routes_v1(&state).split_for_parts();
    with_api_rejections(Router::new().nest("/v1", routes)).with_state(state)
}

/// The API's answers for what no route takes: a JSON 404 for an unknown path, a JSON 405 for
/// a method a path does not take, and a JSON 413 past [`BODY_LIMIT`] (through the JSON
/// extractor). Used by every listener that serves API routes.
pub fn with_api_rejections<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(|| async { ApiError::not_found("No such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "BAD_REQUEST_ERROR",
                "Method not allowed on this endpoint",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}
