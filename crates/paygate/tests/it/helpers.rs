//! Shared test helpers: a fresh database per test (a new SQLite file, or a new PostgreSQL
//! database with a random name, dropped afterwards), the app started on `127.0.0.1:0`, and
//! an HTTP client that asserts statuses.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, OnceLock},
    time::Duration,
};

use paygate::{
    app::{self, App, Mode, Running},
    config::Config,
    processor::{Connector, SimulatedBank},
    store::Store,
};
use rand::distr::{Alphanumeric, SampleString};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection as _;

pub const KEY: &str = "key_test_abc123";
pub const SECRET: &str = "secret_test_xyz789";

/// The backends every API test runs against: SQLite with the embedded queue, PostgreSQL with
/// the embedded queue, PostgreSQL with the Redis queue (the production setup), and PostgreSQL
/// with the Redis queue on a 3-node Redis Cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    PostgresRedis,
    PostgresRedisCluster,
}

impl Backend {
    /// Whether jobs travel through Redis.
    pub fn uses_redis(self) -> bool {
        matches!(self, Self::PostgresRedis | Self::PostgresRedisCluster)
    }
}

/// The Redis a test uses: its URL (several nodes for a cluster), its key prefix.
#[derive(Clone, Debug)]
pub struct RedisTarget {
    pub url: String,
    pub prefix: String,
    pub cluster: bool,
}

/// Generates one `#[tokio::test]` per backend for each named `async fn(Backend)`.
macro_rules! every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::PostgresRedis).await
                }
            )*
        }
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::PostgresRedisCluster).await
                }
            )*
        }
    };
}
pub(crate) use every_backend;

/// The Redis server tests use: `PAYGATE_TEST_REDIS_URL`, by default the local one. Tests write
/// only under a random key prefix and delete those keys afterwards; they never flush.
pub fn redis_url() -> String {
    std::env::var("PAYGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// How long the first connection to PostgreSQL or Redis may take before the suite gives up.
const REACH_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks once per test run that PostgreSQL answers; if it does not, prints one message that
/// names the URL tried and the variable that sets it, and ends the whole run at once (instead
/// of every test failing with its own connection error).
pub fn require_postgres() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let url = postgres_admin_url();
        let probe = url.clone();
        let outcome = on_own_runtime(async move {
            match tokio::time::timeout(REACH_TIMEOUT, sqlx::PgConnection::connect(&probe)).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", REACH_TIMEOUT.as_secs())),
            }
        });
        if let Err(why) = outcome {
            unreachable_service("PostgreSQL", &url, "PAYGATE_TEST_POSTGRES_URL", &why);
        }
    });
}

/// The same check for Redis (`PAYGATE_TEST_REDIS_URL`).
pub fn require_redis() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let url = redis_url();
        let probe = url.clone();
        let outcome = on_own_runtime(async move {
            let client = redis::Client::open(probe.as_str()).map_err(|e| e.to_string())?;
            let ping = async {
                let mut conn = client.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            match tokio::time::timeout(REACH_TIMEOUT, ping).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", REACH_TIMEOUT.as_secs())),
            }
        });
        if let Err(why) = outcome {
            unreachable_service("Redis", &url, "PAYGATE_TEST_REDIS_URL", &why);
        }
    });
}

/// The message of [`require_postgres`] and [`require_redis`], written past the test
/// harness's output capture, then the end of the run.
fn unreachable_service(what: &str, url: &str, variable: &str, why: &str) -> ! {
    use std::io::Write as _;
    let shown = redact_password(url);
    let message = format!(
        "\nerror: {what} is not reachable at {shown} ({why}).\n\
         The integration tests need it: start {what}, or set {variable} to a server that answers.\n"
    );
    let _ = std::io::stderr().write_all(message.as_bytes());
    std::process::exit(2);
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Runs `fut` to completion on a runtime of its own, on a thread of its own (so it works from
/// inside a test's runtime and from `Drop`).
fn on_own_runtime<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(fut)
    })
    .join()
    .expect("probe thread")
}

/// Deletes every key under the target's prefix (on every node of a cluster).
pub async fn delete_redis_prefix(target: &RedisTarget) {
    for url in target.url.split(',') {
        delete_prefix_on(url.trim(), &target.prefix).await;
    }
}

async fn delete_prefix_on(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    // Keys are `{prefix:queue}:…` or `{prefix}:…` (hash tags keep a queue in one slot).
    for pattern in [format!("{{{prefix}:*"), format!("{{{prefix}}}:*")] {
        let mut cursor: u64 = 0;
        loop {
            let reply: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await;
            let Ok((next, keys)) = reply else { break };
            for key in keys {
                // One key at a time: keys of different slots cannot share a DEL on a cluster.
                let _: redis::RedisResult<i64> =
                    redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

/// The PostgreSQL server tests use: `PAYGATE_TEST_POSTGRES_URL`, by default the local one.
/// A server that does not answer fails the test; it never skips it.
pub fn postgres_admin_url() -> String {
    std::env::var("PAYGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn random_suffix() -> String {
    Alphanumeric
        .sample_string(&mut rand::rng(), 12)
        .to_lowercase()
}

/// A database (and Redis key prefix) of its own for one test; removed when dropped.
pub enum TestDb {
    Sqlite {
        dir: PathBuf,
    },
    Postgres {
        name: String,
        redis: Option<RedisTarget>,
    },
}

impl TestDb {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("paygate-test-{}", random_suffix()));
                std::fs::create_dir_all(&dir).expect("temp dir");
                Self::Sqlite { dir }
            }
            Backend::Postgres | Backend::PostgresRedis | Backend::PostgresRedisCluster => {
                require_postgres();
                if backend == Backend::PostgresRedis {
                    require_redis();
                }
                let name = format!("paygate_test_{}", random_suffix());
                let mut admin = sqlx::PgConnection::connect(&postgres_admin_url())
                    .await
                    .expect("PostgreSQL must be reachable (PAYGATE_TEST_POSTGRES_URL)");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                let prefix = format!("paygate-test-{}", random_suffix());
                let redis = match backend {
                    Backend::PostgresRedis => Some(RedisTarget {
                        url: redis_url(),
                        prefix,
                        cluster: false,
                    }),
                    Backend::PostgresRedisCluster => Some(RedisTarget {
                        url: crate::cluster::cluster().url.clone(),
                        prefix,
                        cluster: true,
                    }),
                    _ => None,
                };
                Self::Postgres { name, redis }
            }
        }
    }

    /// The `DATABASE_URL` of this database.
    pub fn url(&self) -> String {
        match self {
            Self::Sqlite { dir } => format!("sqlite://{}", dir.join("paygate.db").display()),
            Self::Postgres { name, .. } => {
                let admin = postgres_admin_url();
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                format!("{base}/{name}")
            }
        }
    }

    /// The Redis this test uses for its queue, if any.
    pub fn redis(&self) -> Option<RedisTarget> {
        match self {
            Self::Postgres { redis, .. } => redis.clone(),
            Self::Sqlite { .. } => None,
        }
    }

    /// The environment a `paygate` process needs to use this database (and Redis).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("DATABASE_URL".to_owned(), self.url())];
        if let Some(r) = self.redis() {
            env.push(("REDIS_URL".into(), r.url));
            env.push(("REDIS_PREFIX".into(), r.prefix));
            env.push(("REDIS_CLUSTER".into(), r.cluster.to_string()));
        }
        env
    }

    /// Every stored byte, for searching: the SQLite files, or every PostgreSQL row as text.
    pub async fn dump(&self) -> String {
        match self {
            Self::Sqlite { dir } => {
                let mut out = String::new();
                for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
                    let bytes = std::fs::read(entry.path()).unwrap_or_default();
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
                out
            }
            Self::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url())
                    .await
                    .expect("connect");
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                )
                .fetch_all(&mut conn)
                .await
                .expect("tables");
                let mut out = String::new();
                for t in tables {
                    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "SELECT row_to_json(t)::text FROM {t} t"
                    )))
                    .fetch_all(&mut conn)
                    .await
                    .expect("rows");
                    out.push_str(&rows.join("\n"));
                }
                out
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            Self::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Self::Postgres { name, redis } => {
                let name = name.clone();
                let redis = redis.clone();
                // Drop runs outside async; a short-lived runtime on its own thread does it.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    if let Ok(rt) = rt {
                        rt.block_on(async {
                            if let Some(target) = redis {
                                // Let the pushes of the app's last requests land first.
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                delete_redis_prefix(&target).await;
                            }
                            if let Ok(mut admin) =
                                sqlx::PgConnection::connect(&postgres_admin_url()).await
                            {
                                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                )))
                                .execute(&mut admin)
                                .await;
                            }
                        });
                    }
                })
                .join();
            }
        }
    }
}

/// Test configuration: test mode with no processing delay, short leases, port 0. `extra`
/// holds flag/value pairs that replace the defaults.
pub fn config(db: &TestDb, extra: &[&str]) -> Config {
    let url = db.url();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("--host", "127.0.0.1"),
        ("--port", "0"),
        ("--checkout-port", "0"),
        ("--dashboard-port", "0"),
        ("--database-url", &url),
        ("--database-max-connections", "5"),
        ("--test-mode", "true"),
        ("--test-processing-delay", "0"),
        ("--test-payment-success", "true"),
        ("--job-lease-ms", "2000"),
        ("--worker-concurrency", "64"),
        ("--seed-test-merchant", "true"),
        ("--test-endpoints", "true"),
        ("--shutdown-timeout-ms", "5000"),
    ];
    let redis = db.redis();
    if let Some(r) = &redis {
        pairs.push(("--redis-url", &r.url));
        pairs.push(("--redis-prefix", &r.prefix));
        pairs.push(("--redis-cluster", if r.cluster { "true" } else { "false" }));
    }
    for kv in extra.chunks(2) {
        pairs.retain(|(k, _)| *k != kv[0]);
        pairs.push((kv[0], kv[1]));
    }
    let args = std::iter::once("paygate").chain(pairs.into_iter().flat_map(|(k, v)| [k, v]));
    Config::from_args(args).expect("test config")
}

/// A running app with its own database.
pub struct TestApp {
    pub app: App,
    pub addr: SocketAddr,
    /// The checkout listener.
    pub checkout: SocketAddr,
    /// The dashboard listener.
    pub dashboard: SocketAddr,
    pub client: reqwest::Client,
    pub running: Option<Running>,
    pub db: TestDb,
}

impl TestApp {
    /// API and worker (test mode, zero delay).
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Mode::All, &[]).await
    }

    /// The given mode and extra flags.
    pub async fn spawn_with(backend: Backend, mode: Mode, extra: &[&str]) -> Self {
        let db = TestDb::create(backend).await;
        let config = config(&db, extra);
        let app = App::build(config).await.expect("app");
        Self::start(app, db, mode).await
    }

    /// API only, with a connector of the test's choosing (for driving jobs by hand).
    pub async fn spawn_api_with_connector(backend: Backend, connector: Arc<dyn Connector>) -> Self {
        Self::spawn_with_connector(backend, connector, Mode::Serve, &[]).await
    }

    /// The given mode and extra flags, with a connector of the test's choosing.
    pub async fn spawn_with_connector(
        backend: Backend,
        connector: Arc<dyn Connector>,
        mode: Mode,
        extra: &[&str],
    ) -> Self {
        let db = TestDb::create(backend).await;
        let config = config(&db, extra);
        let store = Store::connect(&config.database_url, 5)
            .await
            .expect("store");
        store.migrate().await.expect("migrate");
        paygate::merchants::seed_test_merchant(&store)
            .await
            .expect("seed");
        let app = App::new(config, store, connector).expect("app");
        Self::start(app, db, mode).await
    }

    async fn start(app: App, db: TestDb, mode: Mode) -> Self {
        let running = app::start(app.clone(), mode).await.expect("start");
        let addr = running.api_addr.expect("api address");
        let checkout = running.checkout_addr.expect("checkout address");
        let dashboard = running.dashboard_addr.expect("dashboard address");
        Self {
            checkout,
            dashboard,
            app,
            addr,
            client: crate::helpers::http(),
            running: Some(running),
            db,
        }
    }

    /// Stops the app gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
            running.wait().await.expect("clean stop");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request as the test merchant; returns status and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        self.call_as(KEY, SECRET, method, path, body).await
    }

    pub async fn call_as(
        &self,
        key: &str,
        secret: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("X-Api-Key", key)
            .header("X-Api-Secret", secret);
        if let Some(b) = body {
            req = req.json(b);
        }
        into_json(req.send().await.expect("request")).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Creates an order and returns its id.
    pub async fn order(&self, amount: i64) -> String {
        let (status, body) = self
            .post("/api/v1/orders", &serde_json::json!({"amount": amount}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("order id").to_owned()
    }

    /// Creates a UPI payment for a new order and returns the payment body.
    pub async fn upi_payment(&self, vpa: &str) -> Value {
        let order = self.order(50_000).await;
        let (status, body) = self
            .post(
                "/api/v1/payments",
                &serde_json::json!({"order_id": order, "method": "upi", "vpa": vpa}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Polls the payment until it is final (at most 15 s) and returns it.
    pub async fn wait_final(&self, payment_id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = self.get(&format!("/api/v1/payments/{payment_id}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["status"] != "pending" {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "payment {payment_id} still pending"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs due jobs by hand until at least `n` ran (jobs reach Redis just after commit).
    pub async fn run_jobs(&self, n: usize) {
        let mut ran = 0;
        for _ in 0..250 {
            ran += self.app.worker.run_once().await.expect("run jobs");
            if ran >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("only {ran} of {n} jobs ran");
    }

    /// The worker holding a job now, as the queue records it (the `jobs` table, or Redis).
    pub async fn job_holder(&self, queue: &str, job_id: &str) -> Option<String> {
        match self.db.redis() {
            Some(r) => {
                let mut cmd = redis::cmd("HGET");
                cmd.arg(format!("{{{}:{queue}}}:owner", r.prefix))
                    .arg(job_id);
                if r.cluster {
                    let nodes: Vec<&str> = r.url.split(',').collect();
                    let client = redis::cluster::ClusterClient::new(nodes).unwrap();
                    let mut conn = client.get_async_connection().await.unwrap();
                    cmd.query_async(&mut conn).await.unwrap()
                } else {
                    let client = redis::Client::open(r.url).unwrap();
                    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
                    cmd.query_async(&mut conn).await.unwrap()
                }
            }
            None => {
                let url = self.db.url();
                let sql = "SELECT locked_by FROM jobs WHERE id = $1";
                if url.starts_with("sqlite") {
                    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                    sqlx::query_scalar(sql)
                        .bind(job_id)
                        .fetch_one(&mut c)
                        .await
                        .unwrap()
                } else {
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    sqlx::query_scalar(sql)
                        .bind(job_id)
                        .fetch_one(&mut c)
                        .await
                        .unwrap()
                }
            }
        }
    }

    /// Runs `sql` (one or more statements) on the test's database, as an operator would: the
    /// error's text when the database refuses it.
    pub async fn execute(&self, sql: &str) -> Result<(), String> {
        let url = self.db.url();
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let done = if url.starts_with("sqlite") {
            let mut c = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("connect");
            sqlx::raw_sql(sql).execute(&mut c).await.map(|_| ())
        } else {
            let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
            sqlx::raw_sql(sql).execute(&mut c).await.map(|_| ())
        };
        done.map_err(|e| e.to_string())
    }

    /// Number of rows in a table.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let url = self.db.url();
        if url.starts_with("sqlite") {
            let mut c = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("connect");
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut c)
                .await
                .expect("count")
        } else {
            let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut c)
                .await
                .expect("count")
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
    }
}

/// An HTTP client (with the process's TLS provider installed first, as the app does).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Reads a response as status and JSON (`Value::Null` for an empty body).
pub async fn into_json(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, body)
}

/// Asserts the API's error shape with the given status and code.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

/// A simulated bank in test mode with a fixed delay, for driving jobs by hand.
pub fn slow_bank(delay_ms: u64) -> Arc<dyn Connector> {
    Arc::new(SimulatedBank::fixed(Duration::from_millis(delay_ms), true))
}

/// A connector that counts every call it gets, by idempotency key, and passes it on.
pub struct Counting {
    inner: Arc<dyn Connector>,
    calls: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl Counting {
    pub fn new(inner: Arc<dyn Connector>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: Default::default(),
        })
    }

    /// Calls made with `key`.
    pub fn calls(&self, key: &str) -> usize {
        self.calls.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    /// Calls made, in all.
    pub fn total(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }

    fn count(&self, key: &str) {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default() += 1;
    }
}

#[async_trait::async_trait]
impl Connector for Counting {
    async fn charge(
        &self,
        request: &paygate::processor::ChargeRequest,
    ) -> anyhow::Result<paygate::processor::ChargeOutcome> {
        self.count(&request.idempotency_key);
        self.inner.charge(request).await
    }

    async fn refund(&self, request: &paygate::processor::RefundRequest) -> anyhow::Result<()> {
        self.count(&request.idempotency_key);
        self.inner.refund(request).await
    }

    async fn status(&self, key: &str) -> anyhow::Result<Option<paygate::processor::ChargeOutcome>> {
        self.inner.status(key).await
    }

    async fn payout(&self, request: &paygate::processor::PayoutRequest) -> anyhow::Result<String> {
        self.count(&request.idempotency_key);
        self.inner.payout(request).await
    }
}
