//! Health, the test merchant, and queue status.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::{Value, json};

use crate::{
    http::{ApiState, error::ApiError, extract::Authed},
    merchants::test_merchant,
    queue::QUEUES,
    store::now,
    views::iso,
};

/// `GET /health`: 200 `healthy`, or `degraded` when no worker is alive; 503 `unhealthy`
/// when the database or Redis does not answer, naming it.
pub async fn health(State(app): State<ApiState>) -> impl IntoResponse {
    let (database, redis) = tokio::join!(app.store.ping(), app.queue.backend_healthy());
    let workers = app.queue.live_workers().await.unwrap_or(0);
    let up = database && redis != Some(false);
    let status = if !up {
        "unhealthy"
    } else if workers == 0 {
        "degraded"
    } else {
        "healthy"
    };
    let body = json!({
        "status": status,
        "database": if database { "connected" } else { "disconnected" },
        "redis": match redis {
            None => "not_configured",
            Some(true) => "connected",
            Some(false) => "disconnected",
        },
        "worker": if workers > 0 { "running" } else { "stopped" },
        "workers": workers,
        "timestamp": iso(now()),
    });
    let code = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
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

async fn counts(app: &ApiState, queue: Option<&str>) -> Result<Value, ApiError> {
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

async fn worker_status(app: &ApiState) -> Result<(&'static str, i64), ApiError> {
    let live = app
        .queue
        .live_workers()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok((if live > 0 { "running" } else { "stopped" }, live))
}

/// `GET /api/v1/test/jobs/status`: counts from the queue, worker status from heartbeats.
pub async fn jobs_status(State(app): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let mut body = counts(&app, None).await?;
    let (status, live) = worker_status(&app).await?;
    body["worker_status"] = json!(status);
    body["workers"] = json!(live);
    Ok(Json(body))
}

/// `GET /api/v1/queue/status`: the same figures per queue.
pub async fn queue_status(State(app): State<ApiState>, _: Authed) -> Result<Json<Value>, ApiError> {
    let mut queues = serde_json::Map::new();
    for q in QUEUES {
        queues.insert((*q).to_owned(), counts(&app, Some(q)).await?);
    }
    let (status, live) = worker_status(&app).await?;
    Ok(Json(
        json!({"queues": queues, "worker_status": status, "workers": live}),
    ))
}
