//! Tests of the `paygate` binary as a process: the README quick-start, restarts after
//! kill -9, graceful SIGTERM, what reaches the logs, the CLI and configuration errors.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use paygate::store::{Store, events};
use serde_json::{Value, json};

use crate::helpers::{Backend, KEY, SECRET, TestDb, every_backend, into_json};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_paygate");

/// A `PAYGATE_SECRET_KEY` for gateways started in production.
pub(crate) const SECRET_KEY: (&str, &str) = (
    "PAYGATE_SECRET_KEY",
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
);

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Numbers the gateways' log files (their ports are not known before they start).
static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A `paygate` process with its output captured to a file.
pub(crate) struct Gateway {
    pub(crate) child: Child,
    pub(crate) port: u16,
    log: PathBuf,
}

impl Gateway {
    pub(crate) async fn start(db: &TestDb, cwd: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_command(db, cwd, env, &[]).await
    }

    /// Starts `paygate ARGS`; a `worker` has no API, so it is not waited for. Its listeners
    /// take free ports (port 0) unless `env` names them, and the ports are read from its log:
    /// a port picked here and bound later could be taken meanwhile by another test.
    pub(crate) async fn start_command(
        db: &TestDb,
        cwd: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = cwd.join(format!("gateway-{n}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(args)
            .env_clear()
            .envs(db.env())
            .env("PORT", "0")
            .env("CHECKOUT_PORT", "0")
            .env("DASHBOARD_PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("DATABASE_MAX_CONNECTIONS", "5")
            .envs(env.iter().copied())
            .current_dir(cwd)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn paygate");
        let mut g = Self {
            child,
            port: 0,
            log,
        };
        if args.first() != Some(&"worker") {
            g.port = g.listening("API").await;
            g.wait_healthy().await;
        }
        g
    }

    /// The port the listener `name` (API, checkout, dashboard, worker) bound, from the log
    /// line it writes once bound.
    pub(crate) async fn listening(&mut self, name: &str) -> u16 {
        let line = format!("{name} listening");
        for _ in 0..400 {
            let logs = self.logs();
            if let Some(port) = logs.lines().filter(|l| l.contains(&line)).find_map(|l| {
                // `addr=127.0.0.1:N` for people, `"addr":"127.0.0.1:N"` as JSON.
                let rest = l
                    .split_once("addr=")
                    .or_else(|| l.split_once("\"addr\":\""))?
                    .1;
                let addr = rest.split(|c: char| c.is_whitespace() || c == '"').next()?;
                addr.rsplit_once(':')?.1.parse().ok()
            }) {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("paygate exited ({status}) before {line}:\n{logs}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no {line} in the log:\n{}", self.logs());
    }

    pub(crate) async fn wait_healthy(&self) {
        let client = crate::helpers::http();
        for _ in 0..200 {
            if let Ok(res) = client.get(self.url("/health")).send().await
                && res.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway did not become healthy:\n{}", self.logs());
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub(crate) fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> (reqwest::StatusCode, Value) {
        let res = crate::helpers::http()
            .post(self.url(path))
            .header("X-Api-Key", KEY)
            .header("X-Api-Secret", SECRET)
            .json(body)
            .send()
            .await
            .unwrap();
        into_json(res).await
    }

    pub(crate) async fn upi_payment(&self) -> String {
        let (status, order) = self.post("/api/v1/orders", &json!({"amount": 1000})).await;
        assert_eq!(status, 201, "{order}");
        let body = json!({"order_id": order["id"], "method": "upi", "vpa": "someone@okaxis"});
        let (status, payment) = self.post("/api/v1/payments", &body).await;
        assert_eq!(status, 201, "{payment}");
        payment["id"].as_str().unwrap().to_owned()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("paygate-proc-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn uuid_like() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 12)
}

/// Waits until every payment is final in the database; returns their statuses.
pub(crate) async fn wait_all_final(db_url: &str, ids: &[String]) -> Vec<String> {
    let store = Store::connect(db_url, 2).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..400 {
        statuses.clear();
        for id in ids {
            let p = paygate::store::payments::get(&store, id)
                .await
                .unwrap()
                .unwrap();
            statuses.push(p.status.to_string());
        }
        if statuses.iter().all(|s| s != "pending") {
            for id in ids {
                let types: Vec<_> = events::for_resource(&store, id)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| e.event_type)
                    .collect();
                assert_eq!(
                    types,
                    ["payment.created", "payment.pending", "payment.success"],
                    "{id}"
                );
            }
            store.close().await;
            return statuses;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("payments still pending after 20 s: {ids:?} are {statuses:?}");
}

/// Waits until at least `n` of the payments are in a processor call (a worker claimed their
/// job and is waiting on the bank: pending, with a live processor lease); returns those.
pub(crate) async fn wait_in_flight(db_url: &str, ids: &[String], n: usize) -> Vec<String> {
    let store = Store::connect(db_url, 2).await.unwrap();
    for _ in 0..500 {
        let mut in_flight = Vec::new();
        for id in ids {
            let p = paygate::store::payments::get(&store, id)
                .await
                .unwrap()
                .unwrap();
            if p.status == "pending" && p.processor_lease_until.is_some() {
                in_flight.push(id.clone());
            }
        }
        if in_flight.len() >= n {
            store.close().await;
            return in_flight;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} payments reached the bank");
}

/// Checks that the bank charged each payment exactly once (one remembered operation per
/// charge key) and that each payment's final status is the bank's answer; returns how many
/// calls the bank got in all.
pub(crate) async fn assert_charged_once(db_url: &str, ids: &[String]) -> i64 {
    let store = Store::connect(db_url, 2).await.unwrap();
    let mut calls = 0;
    for id in ids {
        let key = paygate::processor::charge_key(id);
        let op = paygate::store::processor::get(&store, &key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} was never charged"));
        let p = paygate::store::payments::get(&store, id)
            .await
            .unwrap()
            .unwrap();
        let want = if op.succeeded { "success" } else { "failed" };
        assert_eq!(p.status, want, "{id} ends as the bank answered");
        calls += i64::from(op.calls);
    }
    store.close().await;
    calls
}

fn quickstart_script() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("<!-- quickstart:start -->")
        .expect("quickstart start marker");
    let end = readme
        .find("<!-- quickstart:end -->")
        .expect("quickstart end marker");
    let block = &readme[start..end];
    let code_start = block.find("```bash\n").expect("bash block") + "```bash\n".len();
    let code_end = block[code_start..].find("```").expect("block end") + code_start;
    block[code_start..code_end].to_owned()
}

async fn readme_quickstart_takes_a_payment_to_success(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let g = Gateway::start(&db, &dir, &[("TEST_MODE", "true")]).await;
    let script = quickstart_script().replace("http://localhost:8000", &g.url(""));
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("bash and curl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("order: order_"), "{stdout}");
    assert!(stdout.contains("payment: pay_"), "{stdout}");
    assert!(
        stdout.contains("status: pending"),
        "the payment starts pending: {stdout}"
    );
    assert!(stdout.trim_end().ends_with("status: success"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

async fn a_killed_gateway_finishes_pending_payments_after_restart(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let env = [
        ("TEST_MODE", "true"),
        ("TEST_PROCESSING_DELAY", "3000"),
        ("JOB_LEASE_MS", "1000"),
    ];
    let mut g = Gateway::start(&db, &dir, &env).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(g.upi_payment().await);
    }
    // Kill it while it waits on the bank for every one of them.
    let in_flight = wait_in_flight(&db.url(), &ids, 5).await;
    g.kill9();
    assert_eq!(in_flight.len(), 5, "the kill hit five payments in flight");
    let g2 = Gateway::start(
        &db,
        &dir,
        &[("TEST_MODE", "true"), ("TEST_PROCESSING_DELAY", "100")],
    )
    .await;
    let statuses = wait_all_final(&db.url(), &ids).await;
    assert!(statuses.iter().all(|s| s == "success"), "{statuses:?}");
    // Asked again after the crash (the answer was not known), charged once.
    let calls = assert_charged_once(&db.url(), &ids).await;
    assert!(calls >= 5, "{calls} calls");
    drop(g2);
    let _ = std::fs::remove_dir_all(dir);
}

async fn sigterm_finishes_in_flight_payments_and_exits_zero(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let env = [("TEST_MODE", "true"), ("TEST_PROCESSING_DELAY", "1500")];
    let mut g = Gateway::start(&db, &dir, &env).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(g.upi_payment().await);
    }
    wait_in_flight(&db.url(), &ids, 3).await;
    g.sigterm();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = g.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status:?}\n{}", g.logs());
    // The in-flight payments were finished before the exit, not handed to a later process.
    let store = Store::connect(&db.url(), 1).await.unwrap();
    for id in &ids {
        let p = paygate::store::payments::get(&store, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.status, "success", "{id}");
    }
    store.close().await;
    assert_eq!(
        assert_charged_once(&db.url(), &ids).await,
        3,
        "one call each"
    );
    let _ = std::fs::remove_dir_all(dir);
}

async fn card_numbers_and_cvvs_are_never_stored_or_logged(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let env = [
        ("TEST_MODE", "true"),
        ("TEST_PROCESSING_DELAY", "0"),
        ("RUST_LOG", "debug"),
    ];
    let g = Gateway::start(&db, &dir, &env).await;
    let number = "5105105105105100";
    let (_, order) = g.post("/api/v1/orders", &json!({"amount": 1000})).await;
    let card = json!({"number": "5105 1051 0510 5100", "expiry_month": "12", "expiry_year": "2099", "cvv": "987", "holder_name": "Asha Rao"});
    let (status, payment) = g
        .post(
            "/api/v1/payments",
            &json!({"order_id": order["id"], "method": "card", "card": card}),
        )
        .await;
    assert_eq!(status, 201, "{payment}");
    // A rejected request with the same number, too.
    let expired = json!({"number": number, "expiry_month": "1", "expiry_year": "2001", "cvv": "987", "holder_name": "A"});
    let (status, _) = g
        .post(
            "/api/v1/payments",
            &json!({"order_id": order["id"], "method": "card", "card": expired}),
        )
        .await;
    assert_eq!(status, 400);
    wait_all_final(&db.url(), &[payment["id"].as_str().unwrap().to_owned()]).await;
    let logs = g.logs();
    assert!(
        logs.contains("payment processed"),
        "debug logs were captured:\n{logs}"
    );
    let stored = db.dump().await;
    assert!(
        stored.contains("5100"),
        "the dump holds the last four digits"
    );
    for haystack in [&logs, &stored] {
        assert!(!haystack.contains(number));
        assert!(!haystack.contains("5105 1051 0510 5100"));
        assert!(!haystack.to_lowercase().contains("cvv"));
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A log line written by a handler carries the request's id: the client's `X-Request-Id`, or
/// the one the gateway made up and answered with.
async fn log_lines_of_a_request_carry_its_request_id(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    // The fault hook makes the idempotency handler log a line while it holds each request.
    let env = [("RUST_LOG", "info"), ("TEST_FAULT_PAUSE", "after-claim:1")];
    let g = Gateway::start(&db, &dir, &env).await;
    let create = |key: &'static str, request_id: Option<&'static str>| {
        let mut req = crate::helpers::http()
            .post(g.url("/api/v1/orders"))
            .header("X-Api-Key", KEY)
            .header("X-Api-Secret", SECRET)
            .header("Idempotency-Key", key)
            .json(&json!({"amount": 1000}));
        if let Some(id) = request_id {
            req = req.header("X-Request-Id", id);
        }
        req.send()
    };
    let given = create("log-key-1", Some("req-from-the-client-7f3a"))
        .await
        .unwrap();
    assert_eq!(given.status(), 201);
    assert_eq!(given.headers()["x-request-id"], "req-from-the-client-7f3a");
    let made = create("log-key-2", None).await.unwrap();
    assert_eq!(made.status(), 201);
    let made_id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made_id.len(), 36, "a UUID: {made_id}");

    let logs = g.logs();
    for id in ["req-from-the-client-7f3a", made_id.as_str()] {
        let lines: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("holding the request"))
            .filter(|l| l.contains(&format!("request_id={id}")))
            .collect();
        assert_eq!(lines.len(), 1, "one held-request line names {id}:\n{logs}");
        assert!(lines[0].contains("path=/api/v1/orders"), "{}", lines[0]);
    }
    let _ = std::fs::remove_dir_all(dir);
}

every_backend!(
    log_lines_of_a_request_carry_its_request_id,
    readme_quickstart_takes_a_payment_to_success,
    a_killed_gateway_finishes_pending_payments_after_restart,
    sigterm_finishes_in_flight_payments_and_exits_zero,
    card_numbers_and_cvvs_are_never_stored_or_logged,
);

#[tokio::test]
async fn default_database_is_created_under_data_on_first_run() {
    let dir = temp_dir();
    let log = dir.join("gateway.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(BIN)
        .env_clear()
        .env("PORT", "0")
        .env("CHECKOUT_PORT", "0")
        .env("DASHBOARD_PORT", "0")
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut g = Gateway {
        child,
        port: 0,
        log,
    };
    g.port = g.listening("API").await;
    g.wait_healthy().await;
    let res = crate::helpers::http()
        .get(g.url("/health"))
        .send()
        .await
        .unwrap();
    let (_, body) = into_json(res).await;
    assert_eq!(body["database"], "connected");
    drop(g);
    assert!(dir.join("data/paygate.db").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn merchant_cli_creates_credentials_that_authenticate() {
    let dir = temp_dir();
    let db = TestDb::create(Backend::Sqlite).await;
    let url = db.url();
    let out = Command::new(BIN)
        .env_clear()
        .env("DATABASE_URL", &url)
        .args([
            "merchant",
            "create",
            "--name",
            "Chai Point",
            "--email",
            "chai@example.com",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        created["webhook_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    let again = Command::new(BIN)
        .env_clear()
        .env("DATABASE_URL", &url)
        .args([
            "merchant",
            "create",
            "--name",
            "Other",
            "--email",
            "chai@example.com",
        ])
        .output()
        .unwrap();
    assert!(!again.status.success(), "a duplicate email is refused");
    let list = Command::new(BIN)
        .env_clear()
        .env("DATABASE_URL", &url)
        .args(["merchant", "list", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    let emails: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap().to_owned())
        .collect();
    assert!(emails.contains(&"chai@example.com".to_owned()), "{listed}");
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(created["api_secret"].as_str().unwrap())
    );

    let g = Gateway::start(&db, &dir, &[]).await;
    let res = crate::helpers::http()
        .post(g.url("/api/v1/orders"))
        .header("X-Api-Key", created["api_key"].as_str().unwrap())
        .header("X-Api-Secret", created["api_secret"].as_str().unwrap())
        .json(&json!({"amount": 100}))
        .send()
        .await
        .unwrap();
    let (status, order) = into_json(res).await;
    assert_eq!(status, 201);
    assert_eq!(order["merchant_id"], created["id"]);
    drop(g);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_settings_stop_the_start_naming_the_setting() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("UPI_SUCCESS_RATE", "1.5")], "UPI_SUCCESS_RATE"),
        (&[("CARD_SUCCESS_RATE", "-0.1")], "CARD_SUCCESS_RATE"),
        (
            &[
                ("PROCESSING_DELAY_MIN", "9000"),
                ("PROCESSING_DELAY_MAX", "100"),
            ],
            "PROCESSING_DELAY_MIN",
        ),
        (&[("PORT", "eighty")], "PORT"),
        (&[("DATABASE_URL", "mysql://localhost/x")], "DATABASE_URL"),
        (&[("REDIS_URL", "http://localhost")], "REDIS_URL"),
        (&[("TEST_MODE", "maybe")], "TEST_MODE"),
        (&[("WORKER_CONCURRENCY", "0")], "WORKER_CONCURRENCY"),
    ];
    for (env, name) in cases {
        let out = Command::new(BIN)
            .env_clear()
            .envs(env.iter().copied())
            .arg("migrate")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{env:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name), "{env:?}: {stderr}");
    }
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["worker", "--help"],
        &["migrate", "--help"],
        &["merchant", "create", "--help"],
        &["merchant", "list", "--help"],
        &["all", "--help"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for setting in [
        "DATABASE_URL",
        "REDIS_URL",
        "PROCESSING_DELAY_MIN",
        "UPI_SUCCESS_RATE",
        "TEST_MODE",
        "WORKER_CONCURRENCY",
        "TEST_ENDPOINTS",
    ] {
        assert!(help.contains(setting), "--help does not document {setting}");
    }
}
