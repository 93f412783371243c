//! Webhook configuration, deliveries, and the event log.

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    Answer, ApiError, ApiJson, ApiResult, ApiState, Authed, IdParam, IdPath, Idempotency, Page,
    Paging, PagingParams, render,
};
use crate::{
    http::extract::nullable,
    store::{events::Event, merchants::Merchant, table, webhooks::Delivery},
    views::{DeliveryBody, EventBody, RetryBody, WebhookConfigBody},
};

/// Read the webhook configuration.
///
/// Read fresh (the authenticated merchant may come from the credential cache).
#[utoipa::path(get, path = "/api/v1/webhooks/config", operation_id = "getWebhookConfig", tag = "Webhooks",
    responses((status = 200, description = "The webhook URL and secret", body = WebhookConfigBody)))]
pub async fn get_config(State(app): State<ApiState>, Authed(m, ..): Authed) -> ApiResult {
    let current = crate::store::merchants::get(&app.store, &m.id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(ApiError::unauthenticated)?;
    render(WebhookConfigBody::from(&current))
}

/// The body of `PUT /api/v1/webhooks/config`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to deliver events: an http(s) URL, or `null` (or an empty string) to turn
    /// webhooks off. Required.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, required = true, example = "https://example.com/webhooks")]
    pub webhook_url: Option<Option<String>>,
}

/// Set (or clear) the webhook URL.
///
/// Body `{"webhook_url": "https://…" | null}`.
#[utoipa::path(put, path = "/api/v1/webhooks/config", operation_id = "setWebhookConfig", tag = "Webhooks",
    request_body = WebhookConfig,
    responses((status = 200, description = "The webhook URL and secret", body = WebhookConfigBody)))]
pub async fn put_config(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    ApiJson(body): ApiJson<WebhookConfig>,
) -> ApiResult {
    let url = match &body.webhook_url {
        None => {
            return Err(ApiError::bad_request(
                "webhook_url is required (a URL, or null)",
            ));
        }
        Some(None) => None,
        Some(Some(s)) if s.trim().is_empty() => None,
        Some(Some(s)) => Some(s.trim()),
    };
    let updated = app.webhooks.set_url(&by, url).await?;
    render(WebhookConfigBody::from(&updated))
}

/// Replace the webhook secret.
///
/// A new `whsec_…` secret signs every delivery from now on; the old one stops at once. (The
/// dashboard's "Regenerate secret" can keep the old one signing beside it for a while.)
#[utoipa::path(post, path = "/api/v1/webhooks/config/secret", operation_id = "rotateWebhookSecret", tag = "Webhooks",
    responses((status = 200, description = "The webhook URL and the new secret", body = WebhookConfigBody)))]
pub async fn rotate_secret(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    key: Idempotency,
) -> ApiResult<Answer> {
    let render = |m: &Merchant| Answer::json(StatusCode::OK, &WebhookConfigBody::from(m));
    key.answer(render, |replay| {
        app.webhooks
            .rotate_secret(&by, chrono::Duration::zero(), replay)
    })
    .await
}

/// Send a test webhook.
///
/// A `webhook.test` delivery to the configured URL, attempted now.
#[utoipa::path(post, path = "/api/v1/webhooks/test", operation_id = "sendTestWebhook", tag = "Webhooks",
    responses((status = 200, description = "The delivery", body = DeliveryBody)))]
pub async fn test(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    key: Idempotency,
) -> ApiResult<Answer> {
    let render = |d: &Delivery| Answer::json(StatusCode::OK, &DeliveryBody::from(d));
    key.answer(render, |replay| app.webhooks.send_test(&by, replay))
        .await
}

/// List webhook deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks", operation_id = "listWebhookDeliveries", tag = "Webhooks", params(PagingParams),
    responses((status = 200, description = "A page of deliveries", body = Page<DeliveryBody>)))]
pub async fn list(State(app): State<ApiState>, Authed(m, ..): Authed, page: Paging) -> ApiResult {
    let deliveries = app
        .webhooks
        .list(&m.id, &Default::default(), page.window())
        .await?;
    page.render(&deliveries, DeliveryBody::from)
}

/// Retry a webhook delivery.
///
/// A new cycle of attempts, starting now.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/retry", operation_id = "retryWebhookDelivery", tag = "Webhooks", params(IdParam),
    responses((status = 200, description = "The retry is scheduled", body = RetryBody)))]
pub async fn retry(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    IdPath(id): IdPath,
    key: Idempotency,
) -> ApiResult<Answer> {
    let render = |d: &Delivery| {
        let body = RetryBody {
            id: &d.id,
            status: "pending",
            message: "Webhook retry scheduled",
        };
        Answer::json(StatusCode::OK, &body)
    };
    key.answer(render, |replay| app.webhooks.retry(&by, &id, replay))
        .await
}

/// List events, newest first.
///
/// Every state change the merchant's webhooks report, whether or not a URL was set.
#[utoipa::path(get, path = "/api/v1/events", operation_id = "listEvents", tag = "Events", params(PagingParams),
    responses((status = 200, description = "A page of events", body = Page<EventBody>)))]
pub async fn events(State(app): State<ApiState>, Authed(m, ..): Authed, page: Paging) -> ApiResult {
    let events = table::page::<Event>(&app.store, &m.id, page.window())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    page.render(&events, EventBody::from)
}
