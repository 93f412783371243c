//! Health, the test merchant, and queue status.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::{Value, json};

use crate::{
    app::App,
    http::{error::ApiError, extract::Authed},
    merchants::test_merchant,
    queue::QUEUES,
    store::now,
    views::iso,
};

/// `GET /health`: 200 when the database answers, 503 naming what is down.
pub async fn health(State(app): State<App>) -> impl IntoResponse {
    let database = app.store.ping().await;
    let workers = app.queue.live_workers().await.unwrap_or(0);
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if database { "healthy" } else { "unhealthy" },
        "database": if database { "connected" } else { "disconnected" },
        "redis": if app.config.redis_url.is_some() { "connected" } else { "not_configured" },
        "worker": if workers > 0 { "running" } else { "stopped" },
        "workers": workers,
        "timestamp": iso(now()),
    });
    (status, Json(body))
}

/// `GET /api/v1/test/merchant`.
pub async fn test_merchant() -> Json<Value> {
    Json(json!({
        "id": test_merchant::ID,
        "email": test_merchant::EMAIL,
        "api_key": test_merchant::API_KEY,
        "seeded": true,
    }))
}

async fn counts(app: &App, queue: Option<&str>) -> Result<Value, ApiError> {
    let c = app
        .queue
        .counts(queue)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(json!({
        "pending": c.queued,
        "processing": c.active,
        "completed": c.completed,
        "failed": c.failed,
    }))
}

async fn worker_status(app: &App) -> Result<(&'static str, i64), ApiError> {
    let live = app
        .queue
        .live_workers()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok((if live > 0 { "running" } else { "stopped" }, live))
}

/// `GET /api/v1/test/jobs/status`: counts from the queue, worker status from heartbeats.
pub async fn jobs_status(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let mut body = counts(&app, None).await?;
    let (status, live) = worker_status(&app).await?;
    body["worker_status"] = json!(status);
    body["workers"] = json!(live);
    Ok(Json(body))
}

/// `GET /api/v1/queue/status`: the same figures per queue.
pub async fn queue_status(State(app): State<App>, _: Authed) -> Result<Json<Value>, ApiError> {
    let mut queues = serde_json::Map::new();
    for q in QUEUES {
        queues.insert((*q).to_owned(), counts(&app, Some(q)).await?);
    }
    let (status, live) = worker_status(&app).await?;
    Ok(Json(
        json!({"queues": queues, "worker_status": status, "workers": live}),
    ))
}
