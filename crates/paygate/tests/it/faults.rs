//! Fault tests of the production setup (PostgreSQL + Redis, separate `serve` and `worker`
//! processes), each on a Redis server of its own on a free port: a worker killed mid-batch,
//! Redis flushed or restarted mid-batch, Redis down while the API takes payments, two workers
//! sharing a batch, and SIGTERM during a batch. Every payment must reach its final status
//! exactly once (`wait_all_final` checks each payment's events).

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    helpers::{Backend, TestDb, into_json},
    process::{Gateway, assert_charged_once, free_port, temp_dir, wait_all_final, wait_in_flight},
};

/// A `redis-server` of the test's own.
pub(crate) struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    pub(crate) async fn start() -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
        };
        server.launch().await;
        server
    }

    async fn launch(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        self.child = Some(child);
        for _ in 0..100 {
            if self.command(&["PING"]).await.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on {port} did not start");
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub(crate) async fn command(&self, args: &[&str]) -> Option<redis::Value> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut conn).await.ok()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The production setup of one test: a Redis of its own, a PostgreSQL database of its own,
/// and a `serve` process; workers are started by the test.
struct Production {
    redis: RedisServer,
    db: TestDb,
    dir: std::path::PathBuf,
    env: Vec<(String, String)>,
    api: Gateway,
}

impl Production {
    /// `delay`: the test-mode processing delay, ms; `extra`: more settings.
    async fn start(delay: &str, extra: &[(&str, &str)]) -> Self {
        let redis = RedisServer::start().await;
        let (db, dir) = (TestDb::create(Backend::Postgres).await, temp_dir());
        let env: Vec<(String, String)> = [
            ("REDIS_URL", redis.url().as_str()),
            ("TEST_MODE", "true"),
            ("TEST_PROCESSING_DELAY", delay),
            ("JOB_LEASE_MS", "1000"),
            ("SHUTDOWN_TIMEOUT_MS", "10000"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let api = Gateway::start_command(&db, &dir, &pairs(&env), &["serve"]).await;
        Self {
            redis,
            db,
            dir,
            env,
            api,
        }
    }

    /// Starts a `paygate worker`.
    async fn worker(&self) -> Gateway {
        Gateway::start_command(&self.db, &self.dir, &pairs(&self.env), &["worker"]).await
    }
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn health(api: &Gateway) -> (u16, Value) {
    let res = crate::helpers::http()
        .get(api.url("/health"))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    (status.as_u16(), body)
}

/// Waits until the API sees `n` live workers.
async fn wait_workers(api: &Gateway, n: i64) {
    for _ in 0..200 {
        if health(api).await.1["workers"].as_i64() == Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} workers did not come up");
}

async fn batch(api: &Gateway, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(api.upi_payment().await);
    }
    ids
}

fn processed_by(worker: &Gateway) -> usize {
    worker.logs().matches("payment processed").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_nothing_and_charges_once() {
    let p = Production::start("1000", &[]).await;
    let mut first = p.worker().await;
    wait_workers(&p.api, 1).await;
    let ids = batch(&p.api, 20).await;
    // Kill the worker while it waits on the bank for part of the batch.
    let in_flight = wait_in_flight(&p.db.url(), &ids, 5).await;
    first.kill9();
    let still_pending = pending_of(&p.db.url(), &in_flight).await;
    assert!(!still_pending.is_empty(), "the kill hit payments in flight");
    let mut second = p.worker().await;
    let statuses = wait_all_final(&p.db.url(), &ids).await;
    assert!(statuses.iter().all(|s| s == "success"), "{statuses:?}");
    // Every payment charged once, those in flight asked again (same key) by the next worker.
    let calls = assert_charged_once(&p.db.url(), &ids).await;
    assert!(calls >= 20, "{calls}");
    let finished = second.logs();
    assert!(
        still_pending
            .iter()
            .all(|id| finished.contains(id.as_str())),
        "the second worker finished what the first left in flight"
    );
    second.kill9();
}

/// Which of `ids` are still pending.
async fn pending_of(db_url: &str, ids: &[String]) -> Vec<String> {
    let store = paygate::store::Store::connect(db_url, 1).await.unwrap();
    let mut out = Vec::new();
    for id in ids {
        let p = paygate::store::payments::get(&store, id)
            .await
            .unwrap()
            .unwrap();
        if p.status == "pending" {
            out.push(id.clone());
        }
    }
    store.close().await;
    out
}

/// Waits until Redis holds at least `n` payment jobs, due or claimed; returns how many.
async fn wait_jobs_in_redis(redis: &RedisServer, n: i64) -> i64 {
    let mut held = 0;
    for _ in 0..250 {
        let count = |v: Option<redis::Value>| match v {
            Some(redis::Value::Int(n)) => n,
            _ => 0,
        };
        held = count(redis.command(&["ZCARD", "{paygate:payments}:due"]).await)
            + count(redis.command(&["ZCARD", "{paygate:payments}:active"]).await);
        if held >= n {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("only {held} of {n} jobs reached Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_flush_mid_batch_delays_but_loses_nothing() {
    let p = Production::start("300", &[("WORKER_CONCURRENCY", "2")]).await;
    // No worker yet: the whole first batch waits in Redis, and the flush loses all of it.
    let mut ids = batch(&p.api, 10).await;
    // (Jobs are pushed just after the API answers: wait for the last push.)
    let mut waiting = None;
    for _ in 0..100 {
        waiting = p.redis.command(&["ZCARD", "{paygate:payments}:due"]).await;
        if waiting == Some(redis::Value::Int(10)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        waiting,
        Some(redis::Value::Int(10)),
        "the batch waits in Redis"
    );
    assert!(p.redis.command(&["FLUSHALL"]).await.is_some());
    let _worker = p.worker().await;
    wait_workers(&p.api, 1).await;
    ids.extend(batch(&p.api, 10).await);
    // The second batch is in Redis (due or being worked on) when it is flushed.
    wait_jobs_in_redis(&p.redis, 1).await;
    assert!(p.redis.command(&["FLUSHALL"]).await.is_some());
    wait_all_final(&p.db.url(), &ids).await;
    assert_charged_once(&p.db.url(), &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_batch_delays_but_loses_nothing() {
    let mut p = Production::start("300", &[("WORKER_CONCURRENCY", "2")]).await;
    // The first batch waits in Redis when it restarts (it keeps nothing on disk).
    let mut ids = batch(&p.api, 10).await;
    assert_eq!(
        wait_jobs_in_redis(&p.redis, 10).await,
        10,
        "the batch waits in Redis"
    );
    p.redis.stop();
    p.redis.launch().await;
    let _worker = p.worker().await;
    wait_workers(&p.api, 1).await;
    let second = batch(&p.api, 10).await;
    ids.extend(second.iter().cloned());
    // Restart it while the worker has part of the second batch in flight.
    wait_in_flight(&p.db.url(), &second, 1).await;
    p.redis.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    p.redis.launch().await;
    wait_all_final(&p.db.url(), &ids).await;
    assert_charged_once(&p.db.url(), &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_takes_payments_while_redis_is_down_and_they_finish_after() {
    let mut p = Production::start("100", &[]).await;
    let _worker = p.worker().await;
    wait_workers(&p.api, 1).await;
    p.redis.stop();
    let started = Instant::now();
    let ids = batch(&p.api, 5).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the API waited on Redis"
    );
    let (status, body) = health(&p.api).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["redis"], "disconnected");
    assert_eq!(body["database"], "connected");
    p.redis.launch().await;
    let statuses = wait_all_final(&p.db.url(), &ids).await;
    assert!(statuses.iter().all(|s| s == "success"));
    let (status, body) = health(&p.api).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["redis"], "connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_worker_shares_the_load_without_double_processing() {
    let p = Production::start("300", &[("WORKER_CONCURRENCY", "8")]).await;
    let (one, two) = (p.worker().await, p.worker().await);
    wait_workers(&p.api, 2).await;
    let ids = batch(&p.api, 40).await;
    wait_all_final(&p.db.url(), &ids).await;
    // Each worker logs a payment just after committing it.
    let mut counts = (0, 0);
    for _ in 0..100 {
        counts = (processed_by(&one), processed_by(&two));
        if counts.0 + counts.1 >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (a, b) = counts;
    assert!(a > 0 && b > 0, "one worker did all the work: {a} and {b}");
    assert_eq!(a + b, 40, "{a} + {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_redis_worker_finish_its_batch_and_exit_zero() {
    let p = Production::start("1500", &[]).await;
    let mut worker = p.worker().await;
    wait_workers(&p.api, 1).await;
    let ids = batch(&p.api, 6).await;
    // SIGTERM while the worker waits on the bank for all six.
    wait_in_flight(&p.db.url(), &ids, 6).await;
    worker.sigterm();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit within the shutdown timeout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}\n{}", worker.logs());
    assert_eq!(processed_by(&worker), 6, "{}", worker.logs());
    let store = paygate::store::Store::connect(&p.db.url(), 1)
        .await
        .unwrap();
    for id in &ids {
        let payment = paygate::store::payments::get(&store, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(payment.status, "success", "{id} was left half-done");
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_resumes_from_next_retry_at_after_its_worker_is_killed() {
    let mut p =
        Production::start("0", &[("WEBHOOK_RETRY_SCHEDULE", "0,3000,3000,3000,3000")]).await;
    let receiver = crate::webhooks::Receiver::start("whsec_test_abc123").await;
    let mut first = p.worker().await;
    wait_workers(&p.api, 1).await;
    let client = crate::helpers::http();
    let authed = |req: reqwest::RequestBuilder| {
        req.header("X-Api-Key", crate::helpers::KEY)
            .header("X-Api-Secret", crate::helpers::SECRET)
    };
    let res = authed(client.put(p.api.url("/api/v1/webhooks/config")))
        .json(&serde_json::json!({"webhook_url": receiver.url("/fail")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = authed(client.post(p.api.url("/api/v1/webhooks/test")))
        .send()
        .await
        .unwrap();
    let (_, delivery) = into_json(res).await;
    assert_eq!(delivery["attempts"], 1, "{delivery}");
    // The worker makes the second attempt; then it dies and Redis loses its queue.
    receiver
        .wait_for("the second attempt", |r| r.len() >= 2)
        .await;
    first.kill9();
    p.redis.stop();
    p.redis.launch().await;
    let _second = p.worker().await;
    let got = receiver
        .wait_for("the third attempt", |r| r.len() >= 3)
        .await;
    let at = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(got[i]["received_at"].as_str().unwrap()).unwrap()
    };
    let gap = (at(2) - at(1)).num_milliseconds();
    assert!(
        (2900..8000).contains(&gap),
        "the third attempt came {gap} ms after the second"
    );
    let store = paygate::store::Store::connect(&p.db.url(), 1)
        .await
        .unwrap();
    // The third attempt is recorded as the third (the count continues, it does not restart).
    let id = delivery["id"].as_str().unwrap();
    let mut row = paygate::store::webhooks::get(&store, id)
        .await
        .unwrap()
        .unwrap();
    for _ in 0..100 {
        if row.attempts >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        row = paygate::store::webhooks::get(&store, id)
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(row.attempts, 3, "attempts continue, not restart");
    assert_eq!(row.status, "pending");
    store.close().await;
}
