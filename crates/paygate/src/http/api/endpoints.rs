//! Webhook endpoints: `/api/v1/webhooks/endpoints[/{id}]`.

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Answer, ApiJson, ApiResult, ApiState, Authed, IdParam, IdPath, Idempotency, render};
use crate::{
    http::extract::nullable,
    store::{endpoints::Endpoint, idempotency::Stored},
    views::{DeletedBody, DeliveryBody, EndpointBody, EndpointList, QueuedBody},
    webhooks::endpoints::EndpointChange,
};

/// The body of `POST /api/v1/webhooks/endpoints`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// Where to deliver: an absolute http(s) URL, at most 2048 characters.
    #[schema(example = "https://example.com/webhooks/payments")]
    pub url: String,
    /// A note for the merchant, at most 255 characters.
    pub description: Option<String>,
    /// Whether it gets deliveries (default `true`).
    pub enabled: Option<bool>,
    /// The event types it wants: exact names (`refund.processed`) or trailing wildcards
    /// (`payment.*`); empty or absent for every event.
    #[schema(example = json!(["payment.*", "refund.processed"]))]
    pub events: Option<Vec<String>>,
}

/// The body of `PATCH /api/v1/webhooks/endpoints/{id}`: what to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    /// A new URL.
    pub url: Option<String>,
    /// A new description, or `null` to clear it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `false` holds its deliveries; `true` resumes them.
    pub enabled: Option<bool>,
    /// The event types it wants (replacing the list); empty for every event.
    pub events: Option<Vec<String>>,
}

/// The body of `POST /api/v1/webhooks/endpoints/{id}/secret/rotate` (`{}` for the default
/// overlap).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateEndpointSecret {
    /// How long the current secret keeps signing beside the new one, seconds (default
    /// 86400; 0 revokes it now; at most 604800).
    #[schema(minimum = 0, maximum = 604800)]
    pub overlap_seconds: Option<i64>,
}

fn render_endpoint(status: StatusCode) -> impl Fn(&Endpoint) -> Stored + Send + Sync + 'static {
    move |e| Answer::json(status, &EndpointBody::from(e))
}

/// Create a webhook endpoint.
///
/// Each event is delivered once to each enabled endpoint that wants its type (and to the
/// default endpoint, the URL of `PUT /api/v1/webhooks/config`). Answers `201` with the
/// endpoint and its own `whsec_…` secret.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints", operation_id = "createWebhookEndpoint",
    tag = "Webhooks", request_body = CreateEndpoint,
    responses((status = 201, description = "The endpoint, with its secret", body = EndpointBody)))]
pub async fn create(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    key: Idempotency,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> ApiResult<Answer> {
    let change = EndpointChange {
        url: Some(body.url.trim().to_owned()),
        description: Some(body.description),
        enabled: body.enabled,
        events: body.events,
    };
    key.answer(render_endpoint(StatusCode::CREATED), |replay| {
        app.webhooks.create_endpoint(&by, change, replay)
    })
    .await
}

/// List webhook endpoints, oldest first.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints", operation_id = "listWebhookEndpoints",
    tag = "Webhooks",
    responses((status = 200, description = "Every endpoint of the merchant", body = EndpointList)))]
pub async fn list(State(app): State<ApiState>, Authed(m, ..): Authed) -> ApiResult {
    let all = app.webhooks.endpoints(&m.id).await?;
    render(EndpointList {
        data: all.iter().map(EndpointBody::from).collect(),
        total: all.len(),
    })
}

/// Fetch a webhook endpoint.
#[utoipa::path(get, path = "/api/v1/webhooks/endpoints/{id}", operation_id = "getWebhookEndpoint",
    tag = "Webhooks", params(IdParam),
    responses((status = 200, description = "The endpoint", body = EndpointBody)))]
pub async fn get(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    IdPath(id): IdPath,
) -> ApiResult {
    let e = app.webhooks.endpoint(&m.id, &id).await?;
    render(EndpointBody::from(&e))
}

/// Change a webhook endpoint.
///
/// Only the fields given change. Disabling holds its pending deliveries; enabling resumes them.
#[utoipa::path(patch, path = "/api/v1/webhooks/endpoints/{id}",
    operation_id = "updateWebhookEndpoint", tag = "Webhooks", params(IdParam),
    request_body = UpdateEndpoint,
    responses((status = 200, description = "The endpoint", body = EndpointBody)))]
pub async fn update(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<UpdateEndpoint>,
) -> ApiResult {
    let change = EndpointChange {
        url: body.url.map(|u| u.trim().to_owned()),
        description: body.description,
        enabled: body.enabled,
        events: body.events,
    };
    let e = app.webhooks.update_endpoint(&by, &id, change).await?;
    render(EndpointBody::from(&e))
}

/// Delete a webhook endpoint.
///
/// Its pending deliveries end `failed`; its delivery log stays.
#[utoipa::path(delete, path = "/api/v1/webhooks/endpoints/{id}",
    operation_id = "deleteWebhookEndpoint", tag = "Webhooks", params(IdParam),
    responses((status = 200, description = "Deleted", body = DeletedBody)))]
pub async fn delete(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    IdPath(id): IdPath,
) -> ApiResult {
    app.webhooks.delete_endpoint(&by, &id).await?;
    render(DeletedBody {
        id: &id,
        deleted: true,
    })
}

/// Rotate a webhook endpoint's secret.
///
/// Answers the new `secret`. The previous one keeps signing beside it for `overlap_seconds`
/// (default 24 hours; 0 revokes it now): during the overlap `webhook-signature` carries both
/// signatures, so a receiver holding either secret verifies; `X-Webhook-Signature` carries
/// the new one only.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/secret/rotate",
    operation_id = "rotateWebhookEndpointSecret", tag = "Webhooks", params(IdParam),
    request_body = RotateEndpointSecret,
    responses((status = 200, description = "The endpoint, with its new secret", body = EndpointBody)))]
pub async fn rotate_secret(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    IdPath(id): IdPath,
    key: Idempotency,
    ApiJson(body): ApiJson<RotateEndpointSecret>,
) -> ApiResult<Answer> {
    key.answer(render_endpoint(StatusCode::OK), |replay| {
        app.webhooks
            .rotate_endpoint_secret(&by, &id, body.overlap_seconds, replay)
    })
    .await
}

/// The body of `POST /api/v1/webhooks/endpoints/{id}/replay`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// The start of the range, inclusive (RFC 3339), on the events' `created_at`.
    #[schema(example = "2026-12-01T00:00:00Z")]
    pub since: String,
    /// The end, exclusive (RFC 3339); now when absent.
    pub until: Option<String>,
    /// Only these event types (exact or trailing wildcards), within what the endpoint wants.
    pub events: Option<Vec<String>>,
}

fn instant(name: &str, value: &str) -> ApiResult<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            crate::http::error::ApiError::bad_request(format!(
                "{name} must be an RFC 3339 time, like 2026-01-31T00:00:00Z"
            ))
        })
}

/// Replay events to a webhook endpoint.
///
/// Every event created in `[since, until)` that the endpoint wants (and `events` names) is
/// delivered to it again: new deliveries, the same event ids and bodies, so receivers can
/// de-duplicate. At most 10,000 events per call (`has_more`, `next_since` tell where to
/// continue). An event with a delivery to the endpoint pending already is not queued again.
/// One replay runs per endpoint at a time (until every delivery it queued has ended: a second
/// answers 409 `REPLAY_IN_PROGRESS` naming it), and a merchant's replays queue at most
/// `WEBHOOK_REPLAY_DAILY_MAX` deliveries in 24 hours (429 `RATE_LIMIT_ERROR` past that).
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/replay",
    operation_id = "replayWebhookEndpoint", tag = "Webhooks", params(IdParam),
    request_body = Replay,
    responses((status = 200, description = "How many deliveries were queued", body = QueuedBody),
        (status = 409, description = "A replay of this endpoint is running", body = crate::http::error::ErrorBody),
        (status = 429, description = "The daily replay cap would be passed", body = crate::http::error::ErrorBody)))]
pub async fn replay(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<Replay>,
) -> ApiResult {
    let since = instant("since", &body.since)?;
    let until = body
        .until
        .as_deref()
        .map(|u| instant("until", u))
        .transpose()?;
    let done = app
        .webhooks
        .replay(&by, &id, since, until, body.events)
        .await?;
    render(QueuedBody {
        endpoint_id: &id,
        replay_id: Some(&done.id),
        queued: done.queued,
        has_more: done.has_more,
        next_since: done.next_since.map(crate::views::iso),
    })
}

/// Retry every failed delivery of a webhook endpoint.
///
/// Each starts a new cycle of attempts, now.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/retry-failed",
    operation_id = "retryFailedWebhookDeliveries", tag = "Webhooks", params(IdParam),
    responses((status = 200, description = "How many deliveries were queued", body = QueuedBody)))]
pub async fn retry_failed(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    IdPath(id): IdPath,
) -> ApiResult {
    let queued = app.webhooks.retry_failed(&by, &id).await?;
    render(QueuedBody {
        endpoint_id: &id,
        replay_id: None,
        queued,
        has_more: false,
        next_since: None,
    })
}

/// Send a test webhook to an endpoint.
///
/// A `webhook.test` event, delivered to this endpoint only, through the queue (its first
/// attempt follows at once); answers the delivery as queued.
#[utoipa::path(post, path = "/api/v1/webhooks/endpoints/{id}/test",
    operation_id = "testWebhookEndpoint", tag = "Webhooks", params(IdParam),
    responses((status = 200, description = "The test delivery, queued", body = DeliveryBody)))]
pub async fn test(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    IdPath(id): IdPath,
) -> ApiResult {
    let d = app.webhooks.test_endpoint(&by, &id).await?;
    render(DeliveryBody::from(&d))
}
