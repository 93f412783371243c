//! Lanes per webhook destination: attempts in flight stay within the destination's adaptive
//! limit, which grows for a destination answering quickly and shrinks for one that struggles;
//! connections are reused; deliveries past the in-memory queue wait in the store and still
//! arrive once each; and a worker killed with deliveries waiting for a lane loses none.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use paygate::app::Mode;
use serde_json::json;

use crate::{
    fairness::backlog,
    helpers::{Backend, KEY, SECRET, TestApp, TestDb, every_backend, http, into_json},
    process::{Gateway, temp_dir},
};

/// What a test destination saw.
#[derive(Default)]
struct Seen {
    in_flight: usize,
    max_in_flight: usize,
    /// `webhook-id`s being answered now.
    answering: HashSet<String>,
    /// The same `webhook-id` arriving while an attempt of it was being answered.
    overlaps: usize,
    /// Every arrival's `webhook-id`, in order.
    arrivals: Vec<String>,
    /// Client addresses (one per connection).
    peers: HashSet<SocketAddr>,
}

/// A webhook destination in this process answering `status` after `delay`.
struct Destination {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Clone)]
struct Behaviour {
    seen: Arc<Mutex<Seen>>,
    delay: Duration,
    status: StatusCode,
}

async fn answer(
    State(b): State<Behaviour>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    {
        let mut s = b.seen.lock().unwrap();
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        if !s.answering.insert(id.clone()) {
            s.overlaps += 1;
        }
        s.arrivals.push(id.clone());
        s.peers.insert(peer);
    }
    tokio::time::sleep(b.delay).await;
    let mut s = b.seen.lock().unwrap();
    s.in_flight -= 1;
    s.answering.remove(&id);
    b.status
}

impl Destination {
    async fn start(delay: Duration, status: StatusCode) -> Self {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/hook", post(answer))
            .with_state(Behaviour {
                seen: seen.clone(),
                delay,
                status,
            });
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Self { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Waits until `n` distinct events have arrived (at most `within`).
    async fn wait_distinct(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let got = self.distinct();
            if got >= n {
                return;
            }
            assert!(Instant::now() < deadline, "{got} of {n} events arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn distinct(&self) -> usize {
        let s = self.seen.lock().unwrap();
        s.arrivals.iter().collect::<HashSet<_>>().len()
    }
}

/// The gateway with lanes starting at `start`, growing to `max`, `queue` waiting per
/// destination.
async fn with_lanes(backend: Backend, start: usize, max: usize, queue: usize) -> TestApp {
    let (start, max, queue) = (start.to_string(), max.to_string(), queue.to_string());
    let flags = [
        "--webhook-endpoint-concurrency",
        &start,
        "--webhook-endpoint-max-concurrency",
        &max,
        "--webhook-endpoint-queue",
        &queue,
    ];
    TestApp::spawn_with(backend, Mode::All, &flags).await
}

/// An endpoint of the test merchant pointing at `url`; its id.
async fn endpoint(t: &TestApp, url: &str) -> String {
    let (status, body) = t
        .post("/api/v1/webhooks/endpoints", &json!({"url": url}))
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn attempts_stay_within_a_limit_that_grows_for_a_quick_destination(backend: Backend) {
    let t = with_lanes(backend, 2, 5, 1000).await;
    // Answers after 200 ms: quick enough to earn more lanes, slow enough to fill them.
    let dest = Destination::start(Duration::from_millis(200), StatusCode::OK).await;
    let id = endpoint(&t, &dest.url()).await;
    backlog(&t, &id, 60).await;
    dest.wait_distinct(60, Duration::from_secs(30)).await;
    let s = dest.seen.lock().unwrap();
    assert!(
        s.max_in_flight <= 5,
        "{} at once, above the maximum",
        s.max_in_flight
    );
    assert!(
        s.max_in_flight > 2,
        "the limit never grew: {}",
        s.max_in_flight
    );
    assert_eq!(s.overlaps, 0, "a delivery was attempted twice at once");
    assert_eq!(s.arrivals.len(), 60, "each delivery attempted once");
    drop(s);
    assert_eq!(t.app.webhooks.destination(&id).unwrap().limit, 5);
}

async fn a_struggling_destination_gets_fewer_attempts_at_once(backend: Backend) {
    let t = with_lanes(backend, 8, 8, 1000).await;
    let dest =
        Destination::start(Duration::from_millis(100), StatusCode::SERVICE_UNAVAILABLE).await;
    let id = endpoint(&t, &dest.url()).await;
    backlog(&t, &id, 40).await;
    // The first round of 503s halves the limit once, the next rounds again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let limit = t.app.webhooks.destination(&id).map(|s| s.limit);
        if limit.is_some_and(|l| l <= 2) {
            break;
        }
        assert!(Instant::now() < deadline, "limit still {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = dest.seen.lock().unwrap();
    assert!(s.max_in_flight <= 8, "{} at once", s.max_in_flight);
    assert_eq!(s.overlaps, 0);
    assert!(s.arrivals.len() >= 8, "{}", s.arrivals.len());
}

async fn connections_to_a_destination_are_kept_alive_and_reused(backend: Backend) {
    let t = with_lanes(backend, 2, 2, 1000).await;
    let dest = Destination::start(Duration::ZERO, StatusCode::OK).await;
    let id = endpoint(&t, &dest.url()).await;
    backlog(&t, &id, 50).await;
    dest.wait_distinct(50, Duration::from_secs(20)).await;
    let peers = dest.seen.lock().unwrap().peers.len();
    assert!(peers <= 4, "50 deliveries over {peers} connections");
}

async fn deliveries_past_the_queue_wait_in_the_store_and_arrive_once(backend: Backend) {
    let t = with_lanes(backend, 1, 1, 5).await;
    let dest = Destination::start(Duration::from_millis(10), StatusCode::OK).await;
    let id = endpoint(&t, &dest.url()).await;
    backlog(&t, &id, 60).await;
    // One in flight, five waiting, the rest held back in the store.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut most_held = 0;
    while dest.distinct() < 60 {
        let s = t.app.webhooks.destination(&id);
        if let Some(s) = s {
            assert!(s.waiting <= 5 && s.in_flight <= 1, "{s:?}");
            most_held = most_held.max(s.held);
        }
        assert!(
            Instant::now() < deadline,
            "{} of 60 arrived",
            dest.distinct()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(most_held > 0, "nothing was held back in the store");
    {
        let s = dest.seen.lock().unwrap();
        assert_eq!(s.arrivals.len(), 60, "each delivery attempted once");
        assert_eq!(s.max_in_flight, 1);
    }
    // And recorded once: every delivery a success after one attempt.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = t.get("/api/v1/webhooks?limit=100").await;
        let rows: Vec<_> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["endpoint_id"] == id.as_str())
            .collect();
        assert_eq!(rows.len(), 60, "{list}");
        if rows.iter().all(|d| d["status"] == "success") {
            assert!(rows.iter().all(|d| d["attempts"] == 1), "{list}");
            break;
        }
        assert!(Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `paygate_webhook_deliveries_waiting` on a process's `/metrics`.
async fn waiting_on(port: u16) -> f64 {
    let Ok(res) = http()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
    else {
        return 0.0;
    };
    let text = res.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("paygate_webhook_deliveries_waiting "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn a_worker_killed_with_deliveries_waiting_for_a_lane_loses_none(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let env = [
        ("TEST_MODE", "true"),
        ("TEST_PROCESSING_DELAY", "0"),
        ("JOB_LEASE_MS", "1000"),
        ("WEBHOOK_ENDPOINT_CONCURRENCY", "1"),
        ("WEBHOOK_ENDPOINT_MAX_CONCURRENCY", "1"),
    ];
    let api = Gateway::start_command(&db, &dir, &env, &["serve"]).await;
    let dest = Destination::start(Duration::from_millis(300), StatusCode::OK).await;
    let res = http()
        .put(api.url("/api/v1/webhooks/config"))
        .header("X-Api-Key", KEY)
        .header("X-Api-Secret", SECRET)
        .json(&json!({"webhook_url": dest.url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Five payments: fifteen deliveries to one URL, one lane.
    for _ in 0..5 {
        api.upi_payment().await;
    }
    let worker_env: Vec<(&str, &str)> = env.iter().copied().chain([("WORKER_PORT", "0")]).collect();
    let mut worker = Gateway::start_command(&db, &dir, &worker_env, &["worker"]).await;
    let worker_port = worker.listening("worker").await;
    // Killed while deliveries wait in its memory for the lane.
    let deadline = Instant::now() + Duration::from_secs(20);
    while waiting_on(worker_port).await < 5.0 {
        assert!(
            Instant::now() < deadline,
            "no deliveries waited:\n{}",
            worker.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill9();
    let before = dest.distinct();
    assert!(before < 15, "the kill came too late: {before} arrived");
    let _second = Gateway::start_command(&db, &dir, &worker_env, &["worker"]).await;
    dest.wait_distinct(15, Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, list) = into_json(
            http()
                .get(api.url("/api/v1/webhooks?limit=100"))
                .header("X-Api-Key", KEY)
                .header("X-Api-Secret", SECRET)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        let rows = list["data"].as_array().unwrap();
        assert_eq!(rows.len(), 15, "{list}");
        if rows.iter().all(|d| d["status"] == "success") {
            break;
        }
        assert!(Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

every_backend!(
    attempts_stay_within_a_limit_that_grows_for_a_quick_destination,
    a_struggling_destination_gets_fewer_attempts_at_once,
    connections_to_a_destination_are_kept_alive_and_reused,
    deliveries_past_the_queue_wait_in_the_store_and_arrive_once,
    a_worker_killed_with_deliveries_waiting_for_a_lane_loses_none,
);
