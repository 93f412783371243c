//! `webhooks`: the worker end to end. Payments are created (at a steady `--rate`, or with
//! `--rate 0` as fast as 32 producers go), processed by the simulated bank (`--delay-ms`), and
//! each makes three deliveries (created, pending, success) to a receiver in this process.
//! Reported: payments per second end to end (all payments created, made final, and every
//! webhook received, over the wall time from the first creation to the last arrival),
//! deliveries per second, and the delay from a payment's state change (its `updated_at` when it
//! became `success`) to the arrival of its `payment.success` webhook, i.e. the first attempt.
//!
//! In process against the `paygate` library (the gateway's worker and the receiver share it).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use clap::Args;
use paygate::{
    app::{self, App, Mode},
    merchants::test_merchant,
    processor::SimulatedBank,
};
use serde_json::{Value, json};

use crate::queue::{payment_for, prepare};

#[derive(Args)]
pub struct WebhookArgs {
    /// Database (a fresh one).
    #[arg(long)]
    database_url: String,
    /// Redis URL for the Redis queue; without it, the embedded queue.
    #[arg(long)]
    redis_url: Option<String>,
    #[arg(long, default_value = "paygate-bench")]
    redis_prefix: String,
    /// Payments to make.
    #[arg(long, default_value_t = 1000)]
    payments: usize,
    /// Payments per second; 0: as fast as the producers go.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// The simulated bank's answer time, ms.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// The worker's slots per queue.
    #[arg(long, default_value_t = 256)]
    worker_concurrency: usize,
}

#[derive(Default)]
struct Arrivals {
    count: usize,
    /// Delay from the `success` state change to arrival, ms.
    success_delays: Vec<f64>,
    last: Option<Instant>,
}

async fn receive(State(arrivals): State<Arc<Mutex<Arrivals>>>, body: Bytes) -> &'static str {
    let now = chrono::Utc::now();
    let delay = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        if v["event"] != "payment.success" {
            return None;
        }
        let changed =
            chrono::DateTime::parse_from_rfc3339(v["data"]["payment"]["updated_at"].as_str()?)
                .ok()?;
        Some((now - changed.with_timezone(&chrono::Utc)).num_microseconds()? as f64 / 1000.0)
    });
    if let Ok(mut a) = arrivals.lock() {
        a.count += 1;
        a.last = Some(Instant::now());
        a.success_delays.extend(delay);
    }
    "ok"
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub async fn run(args: WebhookArgs) -> anyhow::Result<()> {
    let redis = args
        .redis_url
        .as_deref()
        .map(|u| (u, args.redis_prefix.as_str()));
    let (mut config, store, order_ids) = prepare(&args.database_url, redis, args.payments).await?;
    config.worker_concurrency = args.worker_concurrency;
    config.test_processing_delay = Duration::from_millis(args.delay_ms);

    let arrivals: Arc<Mutex<Arrivals>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let router = Router::new()
        .route("/hook", post(receive))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    paygate::store::merchants::set_webhook_url(
        &store,
        test_merchant::ID,
        Some(&url),
        paygate::store::now(),
    )
    .await?;

    let bank = Arc::new(SimulatedBank::fixed(
        Duration::from_millis(args.delay_ms),
        true,
    ));
    let app = App::new(config, store, bank)?;
    let worker = app::start(app.clone(), Mode::Worker).await?;
    let started = Instant::now();
    if args.rate == 0 {
        // 32 producers, each creating payments one after another.
        let queue = Arc::new(Mutex::new(order_ids));
        let mut producers = Vec::new();
        for _ in 0..32 {
            let (app, queue) = (app.clone(), queue.clone());
            producers.push(tokio::spawn(async move {
                loop {
                    let Some(order_id) = queue.lock().ok().and_then(|mut q| q.pop()) else {
                        return Ok::<_, anyhow::Error>(());
                    };
                    app.payments
                        .create(None, payment_for(order_id), None)
                        .await?;
                }
            }));
        }
        for p in producers {
            p.await??;
        }
    } else {
        let mut tick =
            tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
        let mut creates = Vec::new();
        for order_id in order_ids {
            tick.tick().await;
            let app = app.clone();
            creates.push(tokio::spawn(async move {
                app.payments.create(None, payment_for(order_id), None).await
            }));
        }
        for c in creates {
            c.await??;
        }
    }
    let expected = args.payments * 3;
    let deadline = Instant::now() + Duration::from_secs(300);
    while arrivals.lock().map(|a| a.count).unwrap_or(0) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    worker.stop();
    worker.wait().await?;
    let a = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let elapsed = a.last.map_or(started.elapsed(), |l| l - started);
    let mut delays = a.success_delays.clone();
    delays.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "backend": if args.redis_url.is_some() { "redis" } else { "embedded" },
            "database": app.store.backend(),
            "rate": args.rate,
            "delay_ms": args.delay_ms,
            "payments": args.payments,
            "deliveries": a.count,
            "complete": a.count >= expected,
            "payments_per_s": (args.payments as f64 / elapsed.as_secs_f64()).round(),
            "deliveries_per_s": (a.count as f64 / elapsed.as_secs_f64()).round(),
            "first_attempt_p50_ms": (percentile(&delays, 0.5) * 100.0).round() / 100.0,
            "first_attempt_p99_ms": (percentile(&delays, 0.99) * 100.0).round() / 100.0,
        })
    );
    Ok(())
}
