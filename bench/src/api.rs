//! `api`: load on paygate's create-order and create-payment endpoints.
//!
//! Phase 1 creates orders for `--duration` seconds from `--concurrency` clients; phase 2 pays
//! those orders by UPI (one payment each, as the API allows) for at most as long. Each phase
//! reports requests per second and the p50/p99 latency; one JSON line is printed per run.
//!
//! With `--rate`, each phase is paced instead (open loop): a request is sent every 1/rate
//! seconds whatever the answers, and each latency counts from the moment the request was due,
//! so a slow answer cannot hide the requests queued behind it. With `--webhook-url`, the
//! merchant's webhook URL is set first (each payment then also writes its deliveries).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Args;
use serde_json::{Value, json};

#[derive(Args)]
pub struct ApiArgs {
    /// Base URL of a running gateway.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Requests per second, paced (open loop); 0: as fast as the clients go.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Set this webhook URL on the merchant first.
    #[arg(long)]
    webhook_url: Option<String>,
    #[arg(long, default_value = "key_test_abc123")]
    key: String,
    #[arg(long, default_value = "secret_test_xyz789")]
    secret: String,
    /// The gateway's process id: its peak resident memory is sampled during each phase.
    #[arg(long)]
    pid: Option<u32>,
}

struct Phase {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// What the machine and the gateway did during a phase: the machine's idle share (from
/// `/proc/stat`), the gateway's peak resident memory, and its write batches' breakdown from
/// its `/metrics` (mean time of each stage, mean batch size and wait), as a JSON object.
struct Watch {
    cpu: (u64, u64),
    metrics: String,
    peak_kib: Arc<AtomicUsize>,
    sampler: Option<tokio::task::JoinHandle<()>>,
}

/// `(idle, total)` jiffies of all CPUs since boot (idle counts iowait too).
fn cpu_times() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (idle, fields.iter().take(8).sum())
}

fn rss_kib(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

async fn scrape(client: &reqwest::Client, url: &str) -> String {
    match client.get(format!("{url}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// `name{labels} value` lines of a Prometheus text whose name is `name` and whose labels
/// contain `kind="…"`: labels → value.
fn samples(text: &str, name: &str, kind: &str) -> std::collections::BTreeMap<String, f64> {
    let want = format!("kind=\"{kind}\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            labels
                .contains(&want)
                .then(|| (labels.to_owned(), value.trim().parse().ok()))?
                .1
                .map(|v| (labels.to_owned(), v))
        })
        .collect()
}

impl Watch {
    async fn start(client: &reqwest::Client, url: &str, pid: Option<u32>) -> Self {
        let peak_kib = Arc::new(AtomicUsize::new(0));
        let sampler = pid.map(|pid| {
            let peak = peak_kib.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(kib) = rss_kib(pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        });
        Self {
            cpu: cpu_times(),
            metrics: scrape(client, url).await,
            peak_kib,
            sampler,
        }
    }

    /// Ends the watch: the figures of the writes of `kind` during it.
    async fn end(self, client: &reqwest::Client, url: &str, kind: &str) -> Value {
        let (idle, total) = cpu_times();
        if let Some(s) = &self.sampler {
            s.abort();
        }
        let after = scrape(client, url).await;
        let delta = |name: &str| {
            let (a, b) = (
                samples(&after, name, kind),
                samples(&self.metrics, name, kind),
            );
            a.into_iter()
                .map(|(k, v)| {
                    let before = b.get(&k).copied().unwrap_or(0.0);
                    (k, v - before)
                })
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let mean = |sum: &str, count: &str| {
            let (s, c) = (delta(sum), delta(count));
            let (s, c): (f64, f64) = (s.values().sum(), c.values().sum());
            if c > 0.0 { s / c } else { 0.0 }
        };
        let (sums, counts) = (
            delta("paygate_write_stage_seconds_sum"),
            delta("paygate_write_stage_seconds_count"),
        );
        let mut stages = serde_json::Map::new();
        for (labels, sum) in sums {
            let n = counts.get(&labels).copied().unwrap_or(0.0);
            let stage = labels
                .split("stage=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("?")
                .to_owned();
            if n > 0.0 {
                stages.insert(stage, json!((sum / n * 1e6).round()));
            }
        }
        let idle_share = (idle - self.cpu.0) as f64 / (total - self.cpu.1).max(1) as f64;
        json!({
            "idle": (idle_share * 1000.0).round() / 1000.0,
            "peak_rss_mib": (self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0 * 10.0).round() / 10.0,
            "batch_mean": (mean("paygate_write_batch_size_sum", "paygate_write_batch_size_count") * 10.0).round() / 10.0,
            "wait_us": (mean("paygate_write_batch_wait_seconds_sum", "paygate_write_batch_wait_seconds_count") * 1e6).round(),
            "batch_us": (mean("paygate_write_batch_seconds_sum", "paygate_write_batch_seconds_count") * 1e6).round(),
            "stages_us": stages,
        })
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Runs `concurrency` loops of `step` until `duration` passes or `step` says stop.
async fn phase<F, Fut>(concurrency: usize, duration: Duration, step: F) -> Phase
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Option<bool>> + Send,
{
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicUsize::new(0));
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (step, latencies, errors, counter) = (
            step.clone(),
            latencies.clone(),
            errors.clone(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            while started.elapsed() < duration {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                match step(n).await {
                    Some(true) => local.push(t.elapsed()),
                    Some(false) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    None => break,
                }
            }
            latencies.lock().unwrap().extend(local);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = std::mem::take(&mut *latencies.lock().unwrap());
    all.sort();
    Phase {
        rate: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        errors: errors.load(Ordering::Relaxed),
    }
}

/// Sends `step(n)` every 1/`rate` s for `duration` (or until `step` says stop), each on its own
/// task; latencies count from the moment each request was due.
async fn paced<F, Fut>(rate: u64, duration: Duration, step: F) -> Phase
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Option<bool>> + Send + 'static,
{
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut tasks = Vec::new();
    let mut n = 0usize;
    while started.elapsed() < duration {
        let due = started + interval * u32::try_from(n).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due.into()).await;
        let step = step.clone();
        tasks.push(tokio::spawn(async move {
            let outcome = step(n).await;
            (outcome, due.elapsed())
        }));
        n += 1;
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        match t.await {
            Ok((Some(true), took)) => latencies.push(took),
            Ok((Some(false), _)) => errors += 1,
            _ => {}
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Phase {
        rate: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        errors,
    }
}

/// Runs the two phases and prints one JSON line.
pub async fn run(args: ApiArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let auth = Arc::new((args.key.clone(), args.secret.clone(), args.url.clone()));
    let duration = Duration::from_secs(args.duration);
    if let Some(hook) = &args.webhook_url {
        let res = client
            .put(format!("{}/api/v1/webhooks/config", args.url))
            .header("X-Api-Key", &args.key)
            .header("X-Api-Secret", &args.secret)
            .json(&json!({ "webhook_url": hook }))
            .send()
            .await?;
        anyhow::ensure!(
            res.status() == 200,
            "setting the webhook URL: {}",
            res.status()
        );
    }
    let rate = args.rate;
    macro_rules! run_phase {
        ($step:expr) => {
            if rate > 0 {
                paced(rate, duration, $step).await
            } else {
                phase(args.concurrency, duration, $step).await
            }
        };
    }
    let orders: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));

    let watch = Watch::start(&client, &args.url, args.pid).await;
    let (c, a, o) = (client.clone(), auth.clone(), orders.clone());
    let order_phase = run_phase!(move |_| {
        let (c, a, o) = (c.clone(), a.clone(), o.clone());
        async move {
            let res = c
                .post(format!("{}/api/v1/orders", a.2))
                .header("X-Api-Key", &a.0)
                .header("X-Api-Secret", &a.1)
                .json(&json!({"amount": 50000, "receipt": "bench"}))
                .send()
                .await
                .ok()?;
            if res.status() != 201 {
                return Some(false);
            }
            let body: Value = res.json().await.ok()?;
            o.lock().unwrap().push(body["id"].as_str()?.to_owned());
            Some(true)
        }
    });

    let order_watch = watch.end(&client, &args.url, "order_create").await;
    let watch = Watch::start(&client, &args.url, args.pid).await;
    let ids = Arc::new(std::mem::take(&mut *orders.lock().unwrap()));
    let total_orders = ids.len();
    let (c, a) = (client.clone(), auth.clone());
    let payment_phase = run_phase!(move |n| {
        let (c, a, ids) = (c.clone(), a.clone(), ids.clone());
        async move {
            let order = ids.get(n)?;
            let res = c
                .post(format!("{}/api/v1/payments", a.2))
                .header("X-Api-Key", &a.0)
                .header("X-Api-Secret", &a.1)
                .json(&json!({"order_id": order, "method": "upi", "vpa": "success@bench"}))
                .send()
                .await
                .ok()?;
            Some(res.status() == 201)
        }
    });
    let payment_watch = watch.end(&client, &args.url, "payment_create").await;

    println!(
        "{}",
        json!({
            "concurrency": args.concurrency,
            "rate": args.rate,
            "webhooks": args.webhook_url.is_some(),
            "orders": total_orders,
            "create_order_per_s": order_phase.rate.round(),
            "create_order_p50_ms": (order_phase.p50_ms * 100.0).round() / 100.0,
            "create_order_p99_ms": (order_phase.p99_ms * 100.0).round() / 100.0,
            "create_order_errors": order_phase.errors,
            "create_payment_per_s": payment_phase.rate.round(),
            "create_payment_p50_ms": (payment_phase.p50_ms * 100.0).round() / 100.0,
            "create_payment_p99_ms": (payment_phase.p99_ms * 100.0).round() / 100.0,
            "create_payment_errors": payment_phase.errors,
            "create_order_watch": order_watch,
            "create_payment_watch": payment_watch,
        })
    );
    Ok(())
}
