//! `/health` and `/api/v1/*`, one file per resource. Every route is registered through
//! utoipa-axum's `routes!`, which takes the path and method from the handler's
//! `#[utoipa::path]`: the router and the OpenAPI document are built from the same
//! annotations, so neither can list a route the other lacks.

mod account;
pub mod audit_logs;
mod endpoints;
pub mod health;
mod orders;
pub mod payment_links;
mod payments;
mod refunds;
pub mod settlements;
mod webhooks;

use std::sync::Arc;

use utoipa_axum::{router::OpenApiRouter, routes};

use paygate_core::OrderAmount;

// What the handlers of every resource work with (they import it from here).
use crate::{
    http::{
        ApiResult, ApiState,
        error::ApiError,
        extract::{ApiJson, Authed, IdParam, IdPath, Paging, PagingParams},
        idempotency::{Answer, Idempotency, idempotency},
        ratelimit::Limits,
        render,
    },
    views::Page,
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

/// `from` and `to` of a list's query string (RFC 3339 times, each optional); a time that
/// cannot be read, or `from` after `to`, is a 400 naming it.
fn time_range(q: &std::collections::HashMap<String, String>) -> ApiResult<TimeRange> {
    let instant = |name: &str| match q.get(name) {
        None => Ok(None),
        Some(v) => chrono::DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "{name} must be an RFC 3339 time, like 2026-01-31T00:00:00Z"
                ))
            }),
    };
    let (from, to) = (instant("from")?, instant("to")?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::bad_request("from must not be after to"));
    }
    Ok((from, to))
}

/// A list's `from` and `to`.
type TimeRange = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
);

/// The unauthenticated endpoints of the checkout page, relative to `/api/v1`; served on the
/// API port and on the checkout port (where the page calls them on its own origin).
/// Limited per client address when `CHECKOUT_RATE_LIMIT_PER_SECOND` is set.
pub fn public_routes_v1(app: &ApiState) -> OpenApiRouter<ApiState> {
    let mut routes = OpenApiRouter::default()
        .routes(routes!(orders::get_public))
        .routes(routes!(payments::create_public))
        .routes(routes!(payments::get_public))
        .routes(routes!(payments::qr));
    if app.settings.test_endpoints {
        // The checkout's "Simulate approve / decline" beside the QR, on the page's origin.
        routes = routes
            .routes(routes!(payments::approve_upi))
            .routes(routes!(payments::decline_upi));
    }
    limited(routes, app.settings.public_rate_limits.as_ref())
}

/// `routes` behind `limits`, when on.
fn limited(
    routes: OpenApiRouter<ApiState>,
    limits: Option<&Arc<Limits>>,
) -> OpenApiRouter<ApiState> {
    match limits {
        Some(limits) => routes.route_layer(axum::middleware::from_fn_with_state(
            limits.clone(),
            crate::http::ratelimit::limit,
        )),
        None => routes,
    }
}

/// The routes that authenticate the merchant (`X-Api-Key`/`X-Api-Secret` or Basic).
fn authenticated_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::default()
        .routes(routes!(account::merchant))
        .routes(routes!(audit_logs::list))
        .routes(routes!(orders::create, orders::list))
        .routes(routes!(orders::get))
        .routes(routes!(payments::create, payments::list))
        .routes(routes!(payments::get))
        .routes(routes!(payments::capture))
        .routes(routes!(payment_links::create, payment_links::list))
        .routes(routes!(payment_links::get))
        .routes(routes!(payment_links::cancel))
        .routes(routes!(settlements::list))
        .routes(routes!(settlements::recon))
        .routes(routes!(settlements::get))
        .routes(routes!(
            settlements::reconcile,
            settlements::reconciliations
        ))
        .routes(routes!(settlements::reconciliation))
        .routes(routes!(refunds::create, refunds::for_payment))
        .routes(routes!(refunds::list))
        .routes(routes!(refunds::get))
        .routes(routes!(health::queue_status))
        .routes(routes!(webhooks::list))
        .routes(routes!(webhooks::retry))
        .routes(routes!(webhooks::get_config, webhooks::put_config))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::test))
        .routes(routes!(webhooks::events))
        .routes(routes!(endpoints::create, endpoints::list))
        .routes(routes!(
            endpoints::get,
            endpoints::update,
            endpoints::delete
        ))
        .routes(routes!(endpoints::rotate_secret))
        .routes(routes!(endpoints::replay))
        .routes(routes!(endpoints::retry_failed))
        .routes(routes!(endpoints::test))
}

/// Every API route with its document; `/api/v1/test/*` only when `TEST_ENDPOINTS`. The
/// authenticated routes honour `Idempotency-Key` on POST and, when on, the per-key rate
/// limits.
pub fn routes(app: &ApiState) -> OpenApiRouter<ApiState> {
    let authenticated = authenticated_routes().route_layer(axum::middleware::from_fn_with_state(
        app.clone(),
        idempotency,
    ));
    let authenticated = limited(authenticated, app.settings.rate_limits.as_ref());
    let mut router = OpenApiRouter::default()
        .routes(routes!(health::health))
        .nest("/api/v1", public_routes_v1(app))
        .merge(authenticated);
    if app.settings.test_endpoints {
        router = router
            .routes(routes!(health::test_merchant))
            .routes(routes!(health::jobs_status));
    }
    router
}
