//! Prometheus metrics: the `metrics` crate's macros record where things happen (this layer
//! for HTTP, the worker for jobs, the services for final statuses and webhook attempts), and
//! `metrics-exporter-prometheus` renders them at `GET /metrics` on the API port. Gauges that
//! describe the present (queue depth, database pool) are read when the document is scraped.

use std::{sync::OnceLock, time::Instant};

use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use subtle::ConstantTimeEq as _;

use super::{ApiState, error::ApiError};
use crate::{merchants::secret_digest, queue::QUEUES};

/// Latency buckets, seconds: from a cached read to a request held by a slow batch.
const BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Batch size buckets.
const SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The process's recorder, installed on first use (one per process: the `metrics` macros
/// write to a global recorder).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .expect("the buckets are not empty")
            .set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZES)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed already (an embedding program's): then paygate's
        // document stays empty rather than failing the start.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts and times every request by route template (not path: ids would make a series per
/// payment), method and status.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    let labels = [
        ("route", route),
        ("method", method),
        ("status", res.status().as_u16().to_string()),
    ];
    metrics::counter!("paygate_http_requests_total", &labels).increment(1);
    metrics::histogram!("paygate_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    res
}

/// Whether the request carries `Authorization: Bearer <METRICS_TOKEN>` (compared in constant
/// time); never when no token is set.
pub fn operator_token(settings: &super::ApiSettings, headers: &HeaderMap) -> bool {
    let Some(want) = &settings.metrics_token_digest else {
        return false;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(secret_digest)
        .unwrap_or_default();
    bool::from(given.as_bytes().ct_eq(want.as_bytes()))
}

/// Prometheus metrics.
///
/// The Prometheus text format. With `METRICS_TOKEN` set, only for
/// `Authorization: Bearer <token>` (compared in constant time); without it, open in
/// development and closed in production.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "Health", responses(
    (status = 200, description = "The metrics, Prometheus text format", body = String,
        content_type = "text/plain; version=0.0.4"),
    (status = 401, description = "`METRICS_TOKEN` is set and the bearer token is not it, or \
        in production no `METRICS_TOKEN` is set", body = crate::http::error::ErrorBody)))]
pub async fn scrape(State(app): State<ApiState>, req: Request<Body>) -> Response {
    let settings = &app.settings;
    let open = settings.metrics_token_digest.is_none() && !settings.production;
    if !open && !operator_token(settings, req.headers()) {
        let description = if settings.metrics_token_digest.is_some() {
            "GET /metrics requires Authorization: Bearer with METRICS_TOKEN"
        } else {
            "GET /metrics is closed in production until METRICS_TOKEN is set"
        };
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_ERROR",
            description,
        )
        .into_response();
    }
    for queue in QUEUES {
        // Bounded counts: a scrape costs the same whatever the jobs table holds.
        if let Ok((waiting, active)) = app.queue.depth(queue).await {
            let gauge = |state: &'static str, n: i64| {
                metrics::gauge!("paygate_queue_jobs", "queue" => *queue, "state" => state)
                    .set(n as f64);
            };
            gauge("waiting", waiting);
            gauge("active", active);
        }
        if let Ok(oldest) = app.queue.oldest_due(queue).await {
            let age = oldest.map_or(0.0, |at| {
                (crate::store::now() - at).num_milliseconds().max(0) as f64 / 1000.0
            });
            metrics::gauge!("paygate_queue_oldest_due_job_age_seconds", "queue" => *queue).set(age);
        }
    }
    let (size, idle) = app.store.pool_usage();
    metrics::gauge!("paygate_db_pool_connections", "state" => "open").set(f64::from(size));
    metrics::gauge!("paygate_db_pool_connections", "state" => "idle").set(idle as f64);
    let text = handle().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
