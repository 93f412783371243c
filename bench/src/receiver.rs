//! `receiver`: a webhook destination for `bench/webhooks.sh` and `bench/chaos.sh`, run as a
//! process of its own (not inside the gateway or the load generator). It answers on any path
//! and counts what arrives: distinct events (by `webhook-id`), all arrivals, the time of the
//! last new event, and for each `payment.success` the delay from the payment's state change
//! (its `updated_at`) to the arrival, i.e. the first attempt's delay. `GET /stats` reports
//! them; `POST /reset` starts over.
//!
//! `--mode` picks how it answers: `healthy` (200 at once), `slow` (200 after 200 ms), `flaky`
//! (30 % of attempts fail, with a 500 or by answering only after the gateway's 5 s timeout; at
//! most twice per event, so every event gets through on the gateway's retries). With `--log`,
//! every request is appended to the file as a JSON line (time, path, the `webhook-*` headers,
//! the body and the answer), for the chaos auditor.

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
    /// `healthy`, `slow` or `flaky`.
    #[arg(long, default_value = "healthy")]
    mode: String,
    /// Append every request to this file as a JSON line.
    #[arg(long)]
    log: Option<std::path::PathBuf>,
}

#[derive(Default)]
struct Seen {
    mode: String,
    log: Option<std::fs::File>,
    /// Failures answered per event (`flaky`).
    failed: std::collections::HashMap<String, u32>,
    events: HashSet<String>,
    arrivals: u64,
    /// Unix ms of the last arrival of an event not seen before.
    last_new_ms: i64,
    /// First-attempt delays of `payment.success`, ms.
    success_delays: Vec<f64>,
}

type Shared = Arc<Mutex<Seen>>;

/// How the receiver answers this attempt of event `id`: a status, after a delay.
fn decide(s: &mut Seen, id: &str) -> (u16, std::time::Duration) {
    use rand::RngExt as _;
    match s.mode.as_str() {
        "slow" => (200, std::time::Duration::from_millis(200)),
        "flaky" => {
            let failed = s.failed.entry(id.to_owned()).or_default();
            if *failed < 2 && rand::rng().random_bool(0.3) {
                *failed += 1;
                if rand::rng().random_bool(0.5) {
                    (500, std::time::Duration::ZERO)
                } else {
                    // Past the gateway's 5 s timeout.
                    (200, std::time::Duration::from_millis(6000))
                }
            } else {
                (200, std::time::Duration::ZERO)
            }
        }
        _ => (200, std::time::Duration::ZERO),
    }
}

async fn receive(
    State(seen): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, &'static str) {
    let now = chrono::Utc::now();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, delay) = match seen.lock() {
        Ok(mut s) => decide(&mut s, &id),
        Err(_) => (200, std::time::Duration::ZERO),
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Ok(mut s) = seen.lock()
        && let Some(file) = &mut s.log
    {
        use std::io::Write as _;
        let line = json!({
            "at_ms": chrono::Utc::now().timestamp_millis(),
            "path": uri.path(),
            "id": id,
            "timestamp": header("webhook-timestamp"),
            "signature": header("webhook-signature"),
            "status": status,
            "body": String::from_utf8_lossy(&body),
        });
        let _ = writeln!(file, "{line}");
    }
    let code = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    if status != 200 {
        return (code, "failing on purpose");
    }
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
    (code, "ok")
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
        let (mode, log) = (std::mem::take(&mut s.mode), s.log.take());
        *s = Seen {
            mode,
            log,
            ..Seen::default()
        };
    }
    "ok"
}

pub async fn run(args: ReceiverArgs) -> anyhow::Result<()> {
    let log = match &args.log {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
        None => None,
    };
    let seen: Shared = Arc::new(Mutex::new(Seen {
        mode: args.mode.clone(),
        log,
        ..Seen::default()
    }));
    let app = Router::new()
        .route("/stats", get(stats))
        .route("/reset", post(reset))
        .fallback(post(receive))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
