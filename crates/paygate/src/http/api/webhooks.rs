//! Webhook configuration, deliveries, and the event log.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Answer, ApiError, ApiJson, ApiResult, ApiState, Authed, IdPath, Idempotency, Paging};
use crate::{
    http::extract::nullable,
    store::{events::Event, merchants::Merchant, table, webhooks::Delivery},
    views::iso,
    webhooks::delivery_json,
};

fn config(m: &Merchant) -> Value {
    json!({"webhook_url": m.webhook_url, "webhook_secret": m.webhook_secret})
}

/// `GET /api/v1/webhooks/config`, read fresh (the authenticated merchant may come from the
/// credential cache).
pub async fn get_config(State(app): State<ApiState>, Authed(m): Authed) -> ApiResult {
    let current = crate::store::merchants::get(&app.store, &m.id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(ApiError::unauthenticated)?;
    Ok(Json(config(&current)))
}

/// The body of `PUT /api/v1/webhooks/config`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to deliver events: an http(s) URL, or `null` (or an empty string) to turn
    /// webhooks off. Required.
    #[serde(default, deserialize_with = "nullable")]
    pub webhook_url: Option<Option<String>>,
}

/// `PUT /api/v1/webhooks/config`: body `{"webhook_url": "https://…" | null}`.
pub async fn put_config(
    State(app): State<ApiState>,
    Authed(m): Authed,
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
    let updated = app.webhooks.set_url(&m.id, url).await?;
    Ok(Json(config(&updated)))
}

/// `POST /api/v1/webhooks/config/secret`: a new `whsec_…` secret.
pub async fn rotate_secret(
    State(app): State<ApiState>,
    Authed(m): Authed,
    key: Idempotency,
) -> ApiResult<Answer> {
    let render = |m: &Merchant| Answer::json(StatusCode::OK, &config(m));
    key.answer(render, |replay| app.webhooks.rotate_secret(&m.id, replay))
        .await
}

/// `POST /api/v1/webhooks/test`: a `webhook.test` delivery, attempted now.
pub async fn test(
    State(app): State<ApiState>,
    Authed(m): Authed,
    key: Idempotency,
) -> ApiResult<Answer> {
    let render = |d: &Delivery| Answer::json(StatusCode::OK, &delivery_json(d));
    key.answer(render, |replay| app.webhooks.send_test(&m, replay))
        .await
}

/// `GET /api/v1/webhooks`: the delivery log, newest first.
pub async fn list(State(app): State<ApiState>, Authed(m): Authed, page: Paging) -> ApiResult {
    let deliveries = app.webhooks.list(&m.id, page.window()).await?;
    page.render(&deliveries, delivery_json)
}

/// `POST /api/v1/webhooks/{id}/retry`: a new cycle of attempts, starting now.
pub async fn retry(
    State(app): State<ApiState>,
    Authed(m): Authed,
    IdPath(id): IdPath,
    key: Idempotency,
) -> ApiResult<Answer> {
    let render = |d: &Delivery| {
        let body = json!({"id": d.id, "status": "pending", "message": "Webhook retry scheduled"});
        Answer::json(StatusCode::OK, &body)
    };
    key.answer(render, |replay| app.webhooks.retry(&m.id, &id, replay))
        .await
}

/// `GET /api/v1/events`: the event log, newest first.
pub async fn events(State(app): State<ApiState>, Authed(m): Authed, page: Paging) -> ApiResult {
    let events = table::page::<Event>(&app.store, &m.id, page.window())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    page.render(&events, |e| {
        json!({"id": e.id, "event": e.event_type, "resource_id": e.resource_id, "data": e.data,
               "created_at": iso(e.created_at)})
    })
}
