//! The cross-cutting layers every listener wears, from tower-http: a request id (the client's
//! `X-Request-Id`, or a new UUID), sent back in the response and recorded on the request's
//! tracing span (so every log line written while handling the request names it); a trace span
//! per request with its method, path, route template and (once authenticated) merchant, and a
//! line with status and latency when it ends (target [`ACCESS_LOG`]); a timeout; and a panic turned into the API's 500. Security headers are set per
//! listener (the API's here; the pages set their own, with their Content-Security-Policy),
//! each list through [`with_headers`].

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    extract::MatchedPath,
    http::{HeaderName, HeaderValue, Request, Response, StatusCode, header},
    response::IntoResponse,
};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use super::error::ApiError;

/// The target of the line logged when a request is answered (its status and latency; the
/// request's span adds its id, route and merchant). Off in the text format's default filter.
pub const ACCESS_LOG: &str = "paygate::access";

/// How long a request may take before it is answered 408 (its writes, group-committed on
/// tasks of their own, still run to completion).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The request id, tracing, timeout and panic layers.
pub fn common(router: Router) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(request_id))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request<Body>| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default();
                        let route = req
                            .extensions()
                            .get::<MatchedPath>()
                            .map_or("", MatchedPath::as_str);
                        // A path that carries a secret (an invitation's token) is logged as
                        // its route: every line of the request carries this span.
                        let path = if route.contains("{token}") {
                            route
                        } else {
                            req.uri().path()
                        };
                        tracing::info_span!(
                            "request",
                            request_id = %id,
                            method = %req.method(),
                            path = %path,
                            route,
                            merchant_id = tracing::field::Empty,
                        )
                    })
                    .on_response(answered),
            )
            .layer(CatchPanicLayer::custom(|_| {
                ApiError::internal(&"a request handler panicked").into_response()
            }))
            .layer(axum::middleware::map_response(timed_out))
            .layer(axum::middleware::from_fn(refuse_nul))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                REQUEST_TIMEOUT,
            )),
    )
}

/// A 400 for a URL that encodes U+0000 (`%00`) in its path or query: no id, filter or page
/// parameter may hold it, and the databases cannot store it in text.
async fn refuse_nul(req: Request<Body>, next: axum::middleware::Next) -> Response<Body> {
    let uri = req.uri();
    let encoded = |s: &str| s.as_bytes().windows(3).any(|w| w == b"%00");
    if encoded(uri.path()) || uri.query().is_some_and(encoded) {
        return ApiError::bad_request("The URL must not contain the NUL character (%00)")
            .into_response();
    }
    next.run(req).await
}

/// The access line of a request, in its span.
fn answered<B>(res: &Response<B>, latency: Duration, _: &tracing::Span) {
    tracing::info!(
        target: ACCESS_LOG,
        status = res.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "answered"
    );
}

/// The timeout's answer in the API's error shape (tower-http's has an empty body).
async fn timed_out(res: Response<Body>) -> Response<Body> {
    if res.status() == StatusCode::REQUEST_TIMEOUT
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
        return ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "BAD_REQUEST_ERROR",
            "The request took too long",
        )
        .into_response();
    }
    res
}

/// The API's security headers: nothing it answers is to be sniffed, framed or sent on as a
/// referrer.
pub fn api_headers(router: Router) -> Router {
    let headers = [
        NO_SNIFF,
        NO_FRAMES,
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    with_headers(router, Set::IfNotPresent, &headers)
}

/// A header every listener sets: no answer's type is to be sniffed.
pub const NO_SNIFF: (HeaderName, &str) = (header::X_CONTENT_TYPE_OPTIONS, "nosniff");
/// A header of the listeners whose answers no page may frame (all but the checkout's).
pub const NO_FRAMES: (HeaderName, &str) = (header::X_FRAME_OPTIONS, "DENY");

/// Whether a header layer replaces a value the handler set.
#[derive(Clone, Copy, Debug)]
pub enum Set {
    /// The layer's value, always.
    Overriding,
    /// The handler's value when it set one.
    IfNotPresent,
}

/// `router` with a layer per header setting it on every response, in the order given.
pub fn with_headers(router: Router, set: Set, headers: &[(HeaderName, &'static str)]) -> Router {
    headers.iter().fold(router, |router, (name, value)| {
        let value = HeaderValue::from_static(value);
        router.layer(match set {
            Set::Overriding => SetResponseHeaderLayer::overriding(name.clone(), value),
            Set::IfNotPresent => SetResponseHeaderLayer::if_not_present(name.clone(), value),
        })
    })
}
