//! Webhook configuration, deliveries, and the event log.

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    http::{
        ApiState,
        error::ApiError,
        extract::{ApiJson, Authed, IdPath, Paging, nullable},
        idempotency::{Answer, Idempotency},
        render,
    },
    idempotent::{Render, Replay},
    store::{events, merchants::Merchant, webhooks::Delivery},
    views::{Page, iso},
    webhooks::delivery_json,
};

fn config(m: &Merchant) -> Value {
    json!({"webhook_url": m.webhook_url, "webhook_secret": m.webhook_secret})
}

/// `GET /api/v1/webhooks/config`, read fresh (the authenticated merchant may come from the
/// credential cache).
pub async fn get_config(
    State(app): State<ApiState>,
    Authed(m): Authed,
) -> Result<Json<Value>, ApiError> {
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
) -> Result<Json<Value>, ApiError> {
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
    Idempotency(held): Idempotency,
) -> Result<Answer, ApiError> {
    let render: Render<Merchant> =
        Arc::new(|m: &Merchant| Answer::json(StatusCode::OK, &config(m)));
    let replay = held.map(|held| Replay {
        held,
        render: render.clone(),
    });
    let updated = app.webhooks.rotate_secret(&m.id, replay.clone()).await?;
    Ok(Answer {
        response: render(&updated),
        stored: replay.is_some(),
    })
}

/// `POST /api/v1/webhooks/test`: a `webhook.test` delivery, attempted now.
pub async fn test(
    State(app): State<ApiState>,
    Authed(m): Authed,
    Idempotency(held): Idempotency,
) -> Result<Answer, ApiError> {
    let render: Render<Delivery> =
        Arc::new(|d: &Delivery| Answer::json(StatusCode::OK, &delivery_json(d)));
    let replay = held.map(|held| Replay {
        held,
        render: render.clone(),
    });
    let delivery = app.webhooks.send_test(&m, replay.clone()).await?;
    Ok(Answer {
        response: render(&delivery),
        stored: replay.is_some(),
    })
}

/// `GET /api/v1/webhooks`: the delivery log, newest first.
pub async fn list(
    State(app): State<ApiState>,
    Authed(m): Authed,
    page: Paging,
) -> Result<Json<Value>, ApiError> {
    let (rows, total) = app.webhooks.list(&m.id, page.limit, page.offset).await?;
    let data = rows.iter().map(delivery_json).collect();
    render(Page {
        data,
        total,
        limit: page.limit,
        offset: page.offset,
    })
}

/// `POST /api/v1/webhooks/{id}/retry`: a new cycle of attempts, starting now.
pub async fn retry(
    State(app): State<ApiState>,
    Authed(m): Authed,
    IdPath(id): IdPath,
    Idempotency(held): Idempotency,
) -> Result<Answer, ApiError> {
    let render: Render<Delivery> = Arc::new(|d: &Delivery| {
        let body = json!({"id": d.id, "status": "pending", "message": "Webhook retry scheduled"});
        Answer::json(StatusCode::OK, &body)
    });
    let replay = held.map(|held| Replay {
        held,
        render: render.clone(),
    });
    let d = app.webhooks.retry(&m.id, &id, replay.clone()).await?;
    Ok(Answer {
        response: render(&d),
        stored: replay.is_some(),
    })
}

/// `GET /api/v1/events`: the event log, newest first.
pub async fn events(
    State(app): State<ApiState>,
    Authed(m): Authed,
    page: Paging,
) -> Result<Json<Value>, ApiError> {
    let (rows, total) = events::list(&app.store, &m.id, page.limit, page.offset)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let data = rows
        .iter()
        .map(|e| {
            json!({"id": e.id, "event": e.event_type, "resource_id": e.resource_id, "data": e.data,
                   "created_at": iso(e.created_at)})
        })
        .collect();
    render(Page {
        data,
        total,
        limit: page.limit,
        offset: page.offset,
    })
}
