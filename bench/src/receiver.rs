//! `receiver`: a webhook destination for `bench/webhooks.sh`, run as a process of its own (not
//! inside the gateway or the load generator). It answers 200 at once on any path and counts
//! what arrives: distinct events (by `webhook-id`), all arrivals, the time of the last new
//! event, and for each `payment.success` the delay from the payment's state change (its
//! `updated_at`) to the arrival, i.e. the first attempt's delay. `GET /stats` reports them;
//! `POST /reset` starts over.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::HeaderMap,
    routing::{get, post},
};
use clap::Args;
use serde_json::{Value, json};

#[derive(Args)]
pub struct ReceiverArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long)]
    port: u16,
}

#[derive(Default)]
struct Seen {
    events: HashSet<String>,
    arrivals: u64,
    /// Unix ms of the last arrival of an event not seen before.
    last_new_ms: i64,
    /// First-attempt delays of `payment.success`, ms.
    success_delays: Vec<f64>,
}

type Shared = Arc<Mutex<Seen>>;

async fn receive(State(seen): State<Shared>, headers: HeaderMap, body: Bytes) -> &'static str {
    let now = chrono::Utc::now();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let delay = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        if v["event"] != "payment.success" {
            return None;
        }
        let changed =
            chrono::DateTime::parse_from_rfc3339(v["data"]["payment"]["updated_at"].as_str()?)
                .ok()?;
        Some((now - changed.with_timezone(&chrono::Utc)).num_microseconds()? as f64 / 1000.0)
    });
    if let Ok(mut s) = seen.lock() {
        s.arrivals += 1;
        if s.events.insert(id) {
            s.last_new_ms = now.timestamp_millis();
            s.success_delays.extend(delay);
        }
    }
    "ok"
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn stats(State(seen): State<Shared>) -> Json<Value> {
    let Ok(s) = seen.lock() else {
        return Json(json!({}));
    };
    let mut delays = s.success_delays.clone();
    delays.sort_by(f64::total_cmp);
    Json(json!({
        "events": s.events.len(),
        "arrivals": s.arrivals,
        "last_new_ms": s.last_new_ms,
        "first_attempt_p50_ms": percentile(&delays, 0.5),
        "first_attempt_p99_ms": percentile(&delays, 0.99),
    }))
}

async fn reset(State(seen): State<Shared>) -> &'static str {
    if let Ok(mut s) = seen.lock() {
        *s = Seen::default();
    }
    "ok"
}

pub async fn run(args: ReceiverArgs) -> anyhow::Result<()> {
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route("/stats", get(stats))
        .route("/reset", post(reset))
        .fallback(post(receive))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
