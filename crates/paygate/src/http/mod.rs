//! The HTTP surface. Handlers are adapters: extract, authenticate, validate into domain
//! types, call one service function, render the result.

pub mod api;
pub mod error;
pub mod extract;
pub mod idempotency;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderValue, StatusCode},
    middleware::{self, Next},
    response::Response,
};

use crate::app::App;
use error::ApiError;

/// Largest accepted request body, bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Serialises a view to a JSON response body.
pub fn render<T: serde::Serialize>(view: T) -> Result<axum::Json<serde_json::Value>, ApiError> {
    serde_json::to_value(view)
        .map(axum::Json)
        .map_err(|e| ApiError::internal(&e))
}

/// The API router (port 8000).
pub fn api_router(app: App) -> Router {
    with_api_rejections(api::routes(&app))
        .layer(middleware::from_fn(request_id))
        .with_state(app)
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

/// Gives every response an `X-Request-Id` (the client's, or a new one) and logs the request
/// with it at debug level.
async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = std::time::Instant::now();
    let mut response = next.run(req).await;
    tracing::debug!(request_id = %id, %method, %path, status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64, "request");
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
