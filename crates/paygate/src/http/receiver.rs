//! `paygate webhook-receiver`: the test merchant. It verifies both signature schemes with the
//! given secret and answers 200 (401 when a signature is wrong), keeps what it received in
//! memory, and shows it as a page (`GET /`) and as JSON (`GET /received`).
//!
//! To exercise retries: `POST /fail` always answers 500; `POST /redirect` answers 302 to
//! `/webhook`; `PUT /mode` with `{"status": 500}` makes `/webhook` answer that status (after
//! verifying) until set back to 200.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header::LOCATION},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use paygate_core::webhook;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;

/// Requests kept.
const KEEP: usize = 500;

/// One received request.
#[derive(Clone, Serialize)]
pub struct Received {
    pub received_at: String,
    pub path: String,
    pub webhook_id: Option<String>,
    pub webhook_timestamp: Option<String>,
    pub x_webhook_signature: Option<String>,
    pub webhook_signature: Option<String>,
    pub body: String,
    pub hex_signature_valid: bool,
    pub standard_signature_valid: bool,
    pub answered: u16,
}

struct State_ {
    secret: String,
    answer: AtomicU16,
    received: Mutex<VecDeque<Received>>,
}

type Shared = Arc<State_>;

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn record(
    state: &Shared,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
    answer: u16,
) -> (bool, bool) {
    let hex = header(headers, "x-webhook-signature");
    let (id, ts, sig) = (
        header(headers, "webhook-id"),
        header(headers, "webhook-timestamp"),
        header(headers, "webhook-signature"),
    );
    let hex_ok = hex
        .as_deref()
        .is_some_and(|s| webhook::verify_hex(&state.secret, body, s));
    let std_ok = match (&id, ts.as_deref().and_then(|t| t.parse::<i64>().ok()), &sig) {
        (Some(id), Some(ts), Some(sig)) => webhook::verify_standard(
            &state.secret,
            id,
            ts,
            body,
            sig,
            chrono::Utc::now().timestamp(),
            Duration::from_secs(300),
        ),
        _ => false,
    };
    let answered = if hex_ok && std_ok { answer } else { 401 };
    let entry = Received {
        received_at: crate::views::iso(crate::store::now()),
        path: path.to_owned(),
        webhook_id: id,
        webhook_timestamp: ts,
        x_webhook_signature: hex,
        webhook_signature: sig,
        body: String::from_utf8_lossy(body).into_owned(),
        hex_signature_valid: hex_ok,
        standard_signature_valid: std_ok,
        answered,
    };
    if let Ok(mut list) = state.received.lock() {
        if list.len() >= KEEP {
            list.pop_front();
        }
        list.push_back(entry);
    }
    (hex_ok, std_ok)
}

async fn webhook(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = state.answer.load(Ordering::Relaxed);
    let (hex_ok, std_ok) = record(&state, "/webhook", &headers, &body, answer);
    if !(hex_ok && std_ok) {
        let msg =
            json!({"verified": false, "x_webhook_signature": hex_ok, "webhook_signature": std_ok});
        return (StatusCode::UNAUTHORIZED, Json(msg)).into_response();
    }
    let status = StatusCode::from_u16(answer).unwrap_or(StatusCode::OK);
    (status, Json(json!({"verified": true}))).into_response()
}

async fn fail(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    record(&state, "/fail", &headers, &body, 500);
    (StatusCode::INTERNAL_SERVER_ERROR, "failing on purpose").into_response()
}

async fn redirect(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    record(&state, "/redirect", &headers, &body, 302);
    (StatusCode::FOUND, [(LOCATION, "/webhook")]).into_response()
}

async fn set_mode(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    match body["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (200..600).contains(s))
    {
        Some(s) => {
            state.answer.store(s, Ordering::Relaxed);
            Json(json!({"status": s})).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "status must be 200..599"})),
        )
            .into_response(),
    }
}

async fn received(State(state): State<Shared>) -> Json<Vec<Received>> {
    Json(
        state
            .received
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default(),
    )
}

/// The receiver's page: what it received, newest first.
#[derive(askama::Template)]
#[template(path = "receiver.html")]
struct Page {
    received: Vec<Received>,
}

impl Received {
    /// The event name in the body, if it is a paygate webhook.
    fn event(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["event"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

async fn page(State(state): State<Shared>) -> Response {
    let received = state
        .received
        .lock()
        .map(|l| l.iter().rev().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    crate::http::html(&Page { received })
}

/// The receiver's router.
pub fn router(secret: &str) -> Router {
    let state = Arc::new(State_ {
        secret: secret.to_owned(),
        answer: AtomicU16::new(200),
        received: Mutex::new(VecDeque::new()),
    });
    Router::new()
        .route("/", get(page))
        .route("/received", get(received))
        .route("/webhook", post(webhook))
        .route("/fail", post(fail))
        .route("/redirect", post(redirect))
        .route("/mode", put(set_mode))
        .with_state(state)
}

/// Serves the receiver on `addr` until `shutdown` turns true.
pub async fn serve(
    addr: SocketAddr,
    secret: &str,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "webhook receiver listening");
    axum::serve(listener, router(secret))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await?;
    Ok(())
}
