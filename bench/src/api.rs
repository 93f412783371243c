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
}

struct Phase {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
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
        })
    );
    Ok(())
}
