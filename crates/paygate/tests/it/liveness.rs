//! Recovery in seconds: what a dead process held (job leases, idempotency keys, processor
//! leases) is free once it is known dead, not when its leases run out; a process alive but
//! stopped for less than the dead-owner time keeps its claims; a run taking over a dead run's
//! payment asks the bank before charging; a Redis that lost its jobs gets them back at once.
//! The leases stay at their defaults (15 s jobs, 60 s keys), so only liveness can be fast.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::{
    helpers::{Backend, KEY, SECRET, TestDb, every_backend, into_json},
    process::{Gateway, assert_charged_once, temp_dir, wait_all_final, wait_in_flight},
};

fn kill(pid: u32, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Stops process `pid` (SIGSTOP) at a moment it holds no SQLite write lock. A process stopped
/// inside a write transaction stops every writer of the file until it runs again: that is
/// SQLite's locking, not the claims this file tests, so on SQLite the stop is retried until
/// another connection can take the write lock while the process is stopped. On PostgreSQL
/// any moment will do.
async fn stop(pid: u32, db: &TestDb) {
    for _ in 0..200 {
        kill(pid, "-STOP");
        if !matches!(db, TestDb::Sqlite { .. }) || can_write(&db.url()).await {
            return;
        }
        kill(pid, "-CONT");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("process {pid} was inside a write transaction at each of 200 stops");
}

/// Whether a new connection to the SQLite file `url` takes the write lock within 250 ms.
async fn can_write(url: &str) -> bool {
    use sqlx::Connection;
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let mut conn =
        sqlx::SqliteConnection::connect_with(&options.busy_timeout(Duration::from_millis(250)))
            .await
            .unwrap();
    let free = sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .is_ok();
    if free {
        sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    free
}

/// Payments created through `api`: their ids.
async fn payments(api: &Gateway, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(api.upi_payment().await);
    }
    ids
}

/// Waits until every payment of `ids` is final; how long it took.
async fn time_to_final(db: &TestDb, ids: &[String]) -> Duration {
    let started = Instant::now();
    let statuses = wait_all_final(&db.url(), ids).await;
    assert!(statuses.iter().all(|s| s == "success"), "{statuses:?}");
    started.elapsed()
}

async fn a_gateway_killed_with_payments_at_the_bank_finishes_them_within_seconds(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let env = [("TEST_MODE", "true"), ("TEST_PROCESSING_DELAY", "1500")];
    let mut first = Gateway::start(&db, &dir, &env).await;
    let ids = payments(&first, 10).await;
    // Killed while the bank works on some of them.
    let in_flight = wait_in_flight(&db.url(), &ids, 3).await;
    first.kill9();
    let second = Gateway::start(&db, &dir, &env).await;
    let took = time_to_final(&db, &ids).await;
    assert!(
        took < Duration::from_secs(6),
        "final {took:?} after the restart (the job lease is 15 s)"
    );
    // The bank was asked about those in flight, not charged again.
    let calls = assert_charged_once(&db.url(), &ids).await;
    assert_eq!(
        calls,
        10,
        "{} were in flight: charged once each",
        in_flight.len()
    );
    assert!(
        second.logs().contains("a process died"),
        "{}",
        second.logs()
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A `serve` and two workers on one database (and Redis, when the backend has it), the
/// workers quick to declare each other dead.
struct Two {
    db: TestDb,
    dir: std::path::PathBuf,
    env: Vec<(&'static str, &'static str)>,
    api: Gateway,
}

impl Two {
    async fn start(backend: Backend) -> Self {
        let db = TestDb::create(backend).await;
        let dir = temp_dir();
        let env = vec![
            ("TEST_MODE", "true"),
            ("TEST_PROCESSING_DELAY", "2000"),
            ("PROCESS_DEAD_AFTER_MS", "3000"),
            // Beats often, so a stop of 1 s leaves a wide margin below the dead-owner time
            // even when a loaded machine delays a beat.
            ("PROCESS_HEARTBEAT_MS", "250"),
        ];
        let api = Gateway::start_command(&db, &dir, &env, &["serve"]).await;
        Self { db, dir, env, api }
    }

    async fn worker(&self) -> Gateway {
        Gateway::start_command(&self.db, &self.dir, &self.env, &["worker"]).await
    }
}

async fn a_worker_stopped_briefly_keeps_its_claims_and_one_stopped_longer_loses_them(
    backend: Backend,
) {
    let two = Two::start(backend).await;
    let first = two.worker().await;
    let ids = payments(&two.api, 6).await;
    let in_flight = wait_in_flight(&two.db.url(), &ids, 1).await;
    // Stopped for less than the dead-owner time (3 s), with a second worker ready to take
    // over: nothing is taken from the live owner.
    let mut second = two.worker().await;
    stop(first.child.id(), &two.db).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    kill(first.child.id(), "-CONT");
    wait_all_final(&two.db.url(), &ids).await;
    assert_eq!(assert_charged_once(&two.db.url(), &ids).await, 6);
    for id in &in_flight {
        assert!(
            !second.logs().contains(&format!("payment={id}")),
            "{id} was taken from its live owner:\n{}",
            second.logs()
        );
    }
    second.kill9();
    // Stopped for longer, its payments at the bank: a third worker finishes them meanwhile,
    // asking the bank rather than charging again.
    let more = payments(&two.api, 6).await;
    wait_in_flight(&two.db.url(), &more, 1).await;
    let third = two.worker().await;
    stop(first.child.id(), &two.db).await;
    let stopped = Instant::now();
    let statuses = wait_all_final(&two.db.url(), &more).await;
    let took = stopped.elapsed();
    kill(first.child.id(), "-CONT");
    assert!(statuses.iter().all(|s| s == "success"));
    assert!(
        took < Duration::from_secs(10),
        "finished {took:?} after the stop (dead after 3 s, job lease 15 s)"
    );
    assert!(
        third.logs().contains("payment processed"),
        "{}",
        third.logs()
    );
    assert_eq!(assert_charged_once(&two.db.url(), &more).await, 6);
    let _ = std::fs::remove_dir_all(&two.dir);
}

async fn a_retry_after_its_serve_died_is_answered_within_seconds(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    // The first `serve` holds a payment request after taking its key: it dies with it.
    let held = [
        ("TEST_MODE", "true"),
        ("TEST_FAULT_PAUSE", "after-claim:60000"),
    ];
    let mut first = Gateway::start_command(&db, &dir, &held, &["serve"]).await;
    let other = Gateway::start_command(&db, &dir, &[("TEST_MODE", "true")], &["serve"]).await;
    let (status, order) = other.post("/api/v1/orders", &json!({"amount": 1000})).await;
    assert_eq!(status, 201, "{order}");
    let body = json!({"order_id": order["id"], "method": "upi", "vpa": "someone@okaxis"});
    let send = |g: &Gateway| {
        crate::helpers::http()
            .post(g.url("/api/v1/payments"))
            .header("X-Api-Key", KEY)
            .header("X-Api-Secret", SECRET)
            .header("Idempotency-Key", "pay-once")
            .json(&body)
            .send()
    };
    let hanging = tokio::spawn(send(&first));
    // The key is held by the first process (claimed, its request paused).
    let store = paygate::store::Store::connect(&db.url(), 1).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let merchant = paygate::merchants::test_merchant::ID;
    while paygate::store::idempotency::status(&store, merchant, "pay-once")
        .await
        .unwrap()
        .as_deref()
        != Some("running")
    {
        assert!(Instant::now() < deadline, "the key was never held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, _) = into_json(send(&other).await.unwrap()).await;
    assert_eq!(status, 409, "held by a live process: in use");
    first.kill9();
    let _ = hanging.await;
    let died = Instant::now();
    let answer = loop {
        let (status, body) = into_json(send(&other).await.unwrap()).await;
        if status != 409 {
            break (status, body);
        }
        assert!(
            died.elapsed() < Duration::from_secs(6),
            "still 409 {:?} after the death",
            died.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answer.0, 201, "{}", answer.1);
    let _ = std::fs::remove_dir_all(dir);
}

every_backend!(
    a_gateway_killed_with_payments_at_the_bank_finishes_them_within_seconds,
    a_worker_stopped_briefly_keeps_its_claims_and_one_stopped_longer_loses_them,
    a_retry_after_its_serve_died_is_answered_within_seconds,
);

/// Redis flushed (and restarted without its data) while payments wait: their jobs are back
/// within seconds, not a lease later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_its_jobs_gets_them_back_within_seconds() {
    let db = TestDb::create(Backend::Postgres).await;
    let dir = temp_dir();
    let redis = crate::faults::RedisServer::start().await;
    let url = redis.url();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("TEST_MODE", "true"),
        ("TEST_PROCESSING_DELAY", "3000"),
    ];
    let api = Gateway::start_command(&db, &dir, &env, &["serve"]).await;
    let worker = Gateway::start_command(&db, &dir, &env, &["worker"]).await;
    let ids = payments(&api, 5).await;
    // Some at the bank, the rest queued; then every job is gone from Redis.
    wait_in_flight(&db.url(), &ids, 1).await;
    let more = payments(&api, 5).await;
    redis.command(&["FLUSHALL"]).await.expect("flushed");
    let flushed = Instant::now();
    let all: Vec<String> = ids.iter().chain(&more).cloned().collect();
    wait_all_final(&db.url(), &all).await;
    let took = flushed.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "final {took:?} after the flush (3 s at the bank; the sweep alone waits a 15 s lease)"
    );
    assert!(
        worker.logs().contains("the queue lost its jobs"),
        "{}",
        worker.logs()
    );
    let _ = std::fs::remove_dir_all(dir);
}
