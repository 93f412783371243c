//! Health, the test merchant, and queue status.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    http::{ApiState, error::ApiError, extract::presented_credentials},
    merchants::test_merchant,
    queue::QUEUES,
    store::now,
    views::iso,
};

/// What `GET /health` answers.
#[derive(Serialize, ToSchema)]
pub struct HealthBody {
    /// `healthy`; `degraded` when no worker is alive; `unhealthy` (with a 503) when the
    /// database or Redis does not answer.
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// `connected` or `disconnected`.
    pub database: &'static str,
    /// `connected`, `disconnected`, or `not_configured` on the embedded queue.
    pub redis: &'static str,
    /// `running` when at least one worker's heartbeat is fresh, else `stopped`.
    pub worker: &'static str,
    /// How many workers are alive.
    pub workers: i64,
    /// When this answer was made (ISO 8601).
    pub timestamp: String,
}

/// Health of the gateway.
///
/// `200` with `healthy` or `degraded` (no worker alive); `503` with `unhealthy` when the
/// database or Redis does not answer, naming it. Also served on the dashboard and checkout
/// ports.
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "Health", responses(
    (status = 200, description = "Up (`healthy` or `degraded`)", body = HealthBody),
    (status = 503, description = "The database or Redis is down", body = HealthBody)))]
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
    let body = HealthBody {
        status,
        database: if database {
            "connected"
        } else {
            "disconnected"
        },
        redis: match redis {
            None => "not_configured",
            Some(true) => "connected",
            Some(false) => "disconnected",
        },
        worker: if workers > 0 { "running" } else { "stopped" },
        workers,
        timestamp: iso(now()),
    };
    let code = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// The seeded test merchant.
#[derive(Serialize, ToSchema)]
pub struct TestMerchantBody {
    /// Its id.
    pub id: &'static str,
    /// Its email (the dashboard login).
    pub email: &'static str,
    /// Its API key.
    pub api_key: &'static str,
    /// Always `true`.
    pub seeded: bool,
}

/// The seeded test merchant (test endpoints only).
///
/// Served only when `TEST_ENDPOINTS` is on (the default outside production).
#[utoipa::path(get, path = "/api/v1/test/merchant", operation_id = "getTestMerchant", tag = "Test", responses(
    (status = 200, description = "The test merchant", body = TestMerchantBody)))]
pub async fn test_merchant() -> Json<TestMerchantBody> {
    Json(TestMerchantBody {
        id: test_merchant::ID,
        email: test_merchant::EMAIL,
        api_key: test_merchant::API_KEY,
        seeded: true,
    })
}

/// Jobs of a queue (or of all), by state.
#[derive(Serialize, ToSchema)]
pub struct JobCounts {
    /// Waiting to run (due or delayed).
    pub pending: i64,
    /// Claimed by a worker.
    pub processing: i64,
    /// Finished.
    pub completed: i64,
    /// Gave up after their attempts.
    pub failed: i64,
}

async fn counts(app: &ApiState, queue: Option<&str>) -> Result<JobCounts, ApiError> {
    let c = app
        .queue
        .counts(queue)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(JobCounts {
        pending: c.queued,
        processing: c.active,
        completed: c.completed,
        failed: c.failed,
    })
}

async fn worker_status(app: &ApiState) -> Result<(&'static str, i64), ApiError> {
    let live = app
        .queue
        .live_workers()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok((if live > 0 { "running" } else { "stopped" }, live))
}

/// What `GET /api/v1/test/jobs/status` answers.
#[derive(Serialize, ToSchema)]
pub struct JobsStatusBody {
    #[serde(flatten)]
    pub counts: JobCounts,
    /// `running` or `stopped`.
    pub worker_status: &'static str,
    /// How many workers are alive.
    pub workers: i64,
}

/// Job counts of every queue (test endpoints only).
///
/// Counts from the queue, worker status from heartbeats; served only when `TEST_ENDPOINTS`
/// is on.
#[utoipa::path(get, path = "/api/v1/test/jobs/status", operation_id = "getJobsStatus", tag = "Test", responses(
    (status = 200, description = "Job counts and worker status", body = JobsStatusBody)))]
pub async fn jobs_status(State(app): State<ApiState>) -> Result<Json<JobsStatusBody>, ApiError> {
    let counts = counts(&app, None).await?;
    let (worker_status, workers) = worker_status(&app).await?;
    Ok(Json(JobsStatusBody {
        counts,
        worker_status,
        workers,
    }))
}

/// What `GET /api/v1/queue/status` answers.
#[derive(Serialize, ToSchema)]
pub struct QueueStatusBody {
    /// Job counts per queue: `payments`, `refunds`, `webhooks`.
    pub queues: BTreeMap<&'static str, JobCounts>,
    /// `running` or `stopped`.
    pub worker_status: &'static str,
    /// How many workers are alive.
    pub workers: i64,
}

/// Job counts per queue.
///
/// Platform-wide figures, for operators: `Authorization: Bearer <METRICS_TOKEN>`. In
/// development a merchant's API key is accepted too; in production only the token is.
#[utoipa::path(get, path = "/api/v1/queue/status", operation_id = "getQueueStatus", tag = "Queue", responses(
    (status = 200, description = "Job counts per queue and worker status", body = QueueStatusBody),
    (status = 401, description = "Neither the operator token nor (in development) an API key",
        body = crate::http::error::ErrorBody)))]
pub async fn queue_status(
    State(app): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<QueueStatusBody>, ApiError> {
    if !crate::http::metrics::operator_token(&app.settings, &headers) {
        if app.settings.production {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "AUTHENTICATION_ERROR",
                "the queue status is for operators: Authorization: Bearer with METRICS_TOKEN",
            ));
        }
        let (key, secret) =
            presented_credentials(&headers).ok_or_else(ApiError::unauthenticated)?;
        crate::merchants::authenticate(&app.store, &app.credentials, &key, &secret).await?;
    }
    let mut queues = BTreeMap::new();
    for q in QUEUES {
        queues.insert(*q, counts(&app, Some(q)).await?);
    }
    let (worker_status, workers) = worker_status(&app).await?;
    Ok(Json(QueueStatusBody {
        queues,
        worker_status,
        workers,
    }))
}
