//! `recovery`: the price of a crash in time. Runs the `paygate` binary as real processes
//! (SQLite: one `paygate all`; PostgreSQL + Redis: a `serve` and a `worker`) with the default
//! leases (15 s jobs, 60 s idempotency keys), so only liveness can make recovery fast:
//!
//! - `kill`: payments created, some of them at the bank (1 s test delay), then the process
//!   holding them (`all`, or the `worker`) is killed with SIGKILL and started again at once.
//!   Reported: when each payment pending at the kill became final, counted from the restart
//!   (p50, p99, max), and how many charges the bank got more than once.
//! - `retry`: a `serve` holds a payment request with an `Idempotency-Key` (the test fault
//!   pause) and is killed; the client retries on another `serve`. Reported: the time from the
//!   death to the first answer that is not 409.
//! - `flush` (Redis only): Redis flushed while payments wait; reported: when the last became
//!   final, counted from the flush, less the bank's delay.
//!
//! One JSON line per scenario.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use clap::Args;
use paygate::store::Store;
use serde_json::{Value, json};

#[derive(Args)]
pub struct RecoveryArgs {
    /// The `paygate` binary.
    #[arg(long, default_value = "target/release/paygate")]
    bin: PathBuf,
    /// Database (a fresh one).
    #[arg(long)]
    database_url: String,
    /// Redis URL: the production setup (`serve` + `worker`); without it, SQLite's `all`.
    #[arg(long)]
    redis_url: Option<String>,
    #[arg(long, default_value = "paygate-bench")]
    redis_prefix: String,
    /// Payments per scenario.
    #[arg(long, default_value_t = 100)]
    payments: usize,
    /// A folder for the processes' logs (discarded when absent).
    #[arg(long)]
    logs: Option<PathBuf>,
}

const KEY: &str = "key_test_abc123";
const SECRET: &str = "secret_test_xyz789";
/// The bank's delay in the scenarios, ms.
const BANK_MS: u64 = 1000;

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A `paygate` process.
struct Proc {
    child: Child,
    port: u16,
}

impl Proc {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup<'a> {
    args: &'a RecoveryArgs,
}

impl Setup<'_> {
    fn env(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("DATABASE_URL".to_owned(), self.args.database_url.clone()),
            ("TEST_MODE".into(), "true".into()),
            ("TEST_PROCESSING_DELAY".into(), BANK_MS.to_string()),
            ("CHECKOUT_PORT".into(), "0".into()),
            ("DASHBOARD_PORT".into(), "0".into()),
            (
                "RUST_LOG".into(),
                if self.args.logs.is_some() {
                    "info"
                } else {
                    "warn"
                }
                .into(),
            ),
        ];
        if let Some(r) = &self.args.redis_url {
            env.push(("REDIS_URL".into(), r.clone()));
            env.push(("REDIS_PREFIX".into(), self.args.redis_prefix.clone()));
        }
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        env
    }

    /// Starts `paygate ARGS` (waiting for its API unless it is a worker).
    async fn start(&self, args: &[&str], extra: &[(&str, String)]) -> anyhow::Result<Proc> {
        let port = free_port()?;
        let mut env = self.env(extra);
        env.push(("PORT".into(), port.to_string()));
        let log = match &self.args.logs {
            Some(dir) => Stdio::from(std::fs::File::create(
                dir.join(format!("{}-{port}.log", args.join("-"))),
            )?),
            None => Stdio::null(),
        };
        let child = Command::new(&self.args.bin)
            .args(args)
            .envs(env)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let proc = Proc { child, port };
        if args.first() != Some(&"worker") {
            let client = reqwest::Client::new();
            for _ in 0..400 {
                if let Ok(r) = client.get(proc.url("/health")).send().await
                    && r.status().is_success()
                {
                    return Ok(proc);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            anyhow::bail!("paygate did not start");
        }
        Ok(proc)
    }

    /// The process that runs jobs, and the one answering the API (the same on SQLite).
    async fn gateway(&self) -> anyhow::Result<(Proc, Option<Proc>)> {
        if self.args.redis_url.is_some() {
            let api = self.start(&["serve"], &[]).await?;
            let worker = self.start(&["worker"], &[]).await?;
            Ok((worker, Some(api)))
        } else {
            Ok((self.start(&["all"], &[]).await?, None))
        }
    }
}

async fn post(
    client: &reqwest::Client,
    url: String,
    body: &Value,
    key: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = client
        .post(url)
        .header("X-Api-Key", KEY)
        .header("X-Api-Secret", SECRET)
        .json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

async fn create_payments(
    client: &reqwest::Client,
    api: &Proc,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let (_, order) = post(
            client,
            api.url("/api/v1/orders"),
            &json!({"amount": 1000}),
            None,
        )
        .await?;
        let body = json!({"order_id": order["id"], "method": "upi", "vpa": "someone@okaxis"});
        let (status, p) = post(client, api.url("/api/v1/payments"), &body, None).await?;
        anyhow::ensure!(status == 201, "payment: {p}");
        ids.push(p["id"].as_str().unwrap_or_default().to_owned());
    }
    Ok(ids)
}

/// `(id, pending, at the bank)` of each payment.
async fn states(store: &Store, ids: &[String]) -> anyhow::Result<Vec<(String, bool, bool)>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(p) = paygate::store::payments::get(store, id).await? {
            let pending = p.status == paygate_core::PaymentStatus::Pending;
            out.push((
                id.clone(),
                pending,
                pending && p.processor_lease_until.is_some(),
            ));
        }
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Waits until `ids` are final (at most 60 s); each one's time to final from `since`, s.
async fn final_times(store: &Store, ids: &[String], since: Instant) -> anyhow::Result<Vec<f64>> {
    let mut left: Vec<String> = ids.to_vec();
    let mut times = Vec::new();
    while !left.is_empty() && since.elapsed() < Duration::from_secs(60) {
        let now = states(store, &left).await?;
        for (id, pending, _) in now {
            if !pending {
                times.push(since.elapsed().as_secs_f64());
                left.retain(|l| *l != id);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::ensure!(
        left.is_empty(),
        "{} payments never became final",
        left.len()
    );
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// Charges the bank got more than once for these payments.
async fn repeated_charges(store: &Store, ids: &[String]) -> anyhow::Result<i64> {
    let mut repeated = 0;
    for id in ids {
        let key = paygate::processor::charge_key(id);
        if let Some(op) = paygate::store::processor::get(store, &key).await? {
            repeated += i64::from(op.calls - 1);
        }
    }
    Ok(repeated)
}

async fn kill_scenario(setup: &Setup<'_>, store: &Store, n: usize) -> anyhow::Result<Value> {
    let client = reqwest::Client::new();
    let (mut holder, api) = setup.gateway().await?;
    let ids = create_payments(&client, api.as_ref().unwrap_or(&holder), n).await?;
    // Killed once a quarter of them are at the bank.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = loop {
        let now = states(store, &ids).await?;
        if now.iter().filter(|s| s.2).count() >= n / 4 || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    holder.child.kill()?;
    holder.child.wait()?;
    let restarted = Instant::now();
    let args: &[&str] = if setup.args.redis_url.is_some() {
        &["worker"]
    } else {
        &["all"]
    };
    let _again = setup.start(args, &[]).await?;
    let in_flight = pending.iter().filter(|s| s.2).count();
    let waiting: Vec<String> = pending.into_iter().filter(|s| s.1).map(|s| s.0).collect();
    let times = final_times(store, &waiting, restarted).await?;
    drop(api);
    Ok(json!({
        "scenario": "kill",
        "pending_at_kill": waiting.len(),
        "at_bank_at_kill": in_flight,
        "final_after_restart_p50_s": (percentile(&times, 0.5) * 100.0).round() / 100.0,
        "final_after_restart_p99_s": (percentile(&times, 0.99) * 100.0).round() / 100.0,
        "final_after_restart_max_s": (times.last().copied().unwrap_or(0.0) * 100.0).round() / 100.0,
        "repeated_charges": repeated_charges(store, &ids).await?,
    }))
}

async fn retry_scenario(setup: &Setup<'_>, store: &Store) -> anyhow::Result<Value> {
    let client = reqwest::Client::new();
    let pause = [("TEST_FAULT_PAUSE", "after-claim:60000".to_owned())];
    let mut held = setup.start(&["serve"], &pause).await?;
    let other = setup.start(&["serve"], &[]).await?;
    let (_, order) = post(
        &client,
        other.url("/api/v1/orders"),
        &json!({"amount": 1000}),
        None,
    )
    .await?;
    let body = json!({"order_id": order["id"], "method": "upi", "vpa": "someone@okaxis"});
    let key = "bench-retry";
    let hanging = {
        let (client, url, body) = (client.clone(), held.url("/api/v1/payments"), body.clone());
        tokio::spawn(async move { post(&client, url, &body, Some(key)).await })
    };
    // The key is held by the paused request.
    let deadline = Instant::now() + Duration::from_secs(10);
    let merchant = paygate::merchants::test_merchant::ID;
    while paygate::store::idempotency::status(store, merchant, key)
        .await?
        .as_deref()
        != Some("running")
    {
        anyhow::ensure!(Instant::now() < deadline, "the key was never held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    held.child.kill()?;
    held.child.wait()?;
    let _ = hanging.await;
    let died = Instant::now();
    let mut in_use = 0;
    let answered = loop {
        let (status, _) = post(&client, other.url("/api/v1/payments"), &body, Some(key)).await?;
        if status != 409 {
            break status;
        }
        in_use += 1;
        anyhow::ensure!(died.elapsed() < Duration::from_secs(90), "still 409");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Ok(json!({
        "scenario": "retry",
        "answered_after_death_s": (died.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        "status": answered,
        "answers_409_after_death": in_use,
    }))
}

async fn flush_scenario(setup: &Setup<'_>, store: &Store, n: usize) -> anyhow::Result<Value> {
    let Some(url) = &setup.args.redis_url else {
        anyhow::bail!("flush needs Redis");
    };
    let client = reqwest::Client::new();
    let (worker, api) = setup.gateway().await?;
    let ids = create_payments(&client, api.as_ref().unwrap_or(&worker), n).await?;
    // Only this run's keys (the Redis may be shared).
    let redis = redis::Client::open(url.as_str())?;
    let mut conn = redis.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{}*", setup.args.redis_prefix))
        .query_async(&mut conn)
        .await?;
    let flushed = Instant::now();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
    }
    let pending: Vec<String> = states(store, &ids)
        .await?
        .into_iter()
        .filter(|s| s.1)
        .map(|s| s.0)
        .collect();
    let times = final_times(store, &pending, flushed).await?;
    let bank = BANK_MS as f64 / 1000.0;
    let last = times.last().copied().unwrap_or(0.0);
    Ok(json!({
        "scenario": "flush",
        "pending_at_flush": pending.len(),
        "last_final_after_flush_s": (last * 100.0).round() / 100.0,
        "back_within_s": ((last - bank).max(0.0) * 100.0).round() / 100.0,
    }))
}

pub async fn run(args: RecoveryArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database_url, 2).await?;
    store.migrate().await?;
    paygate::merchants::seed_test_merchant(&store).await?;
    let setup = Setup { args: &args };
    let config = if args.redis_url.is_some() {
        "postgres+redis"
    } else {
        "sqlite"
    };
    let mut results = vec![
        kill_scenario(&setup, &store, args.payments).await?,
        retry_scenario(&setup, &store).await?,
    ];
    if args.redis_url.is_some() {
        results.push(flush_scenario(&setup, &store, args.payments).await?);
    }
    for mut r in results {
        r["config"] = json!(config);
        println!("{r}");
    }
    Ok(())
}
