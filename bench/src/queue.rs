//! `queue`: jobs per second end to end (payment committed with its job → claimed by a worker →
//! processed → final status committed) with zero processing delay, and the latency from the
//! commit of a payment to the moment a worker picks its job up.
//!
//! Runs in process against the `paygate` library: N orders are created first; then M tasks
//! create N payments through the payments service (each commit stages and dispatches a job)
//! while a worker of the chosen backend processes them. A recording connector notes when each
//! job reaches the processor.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use clap::Args;
use paygate::{
    app::{self, App, Mode},
    clock::Clock,
    config::Config,
    context::Ctx,
    merchants::test_merchant,
    orders::{NewOrder, Orders},
    payments::{Instrument, NewPayment},
    processor::{ChargeOutcome, ChargeRequest, Connector, RefundRequest, SimulatedBank},
    queue::embedded::EmbeddedQueue,
    store::{Store, payments::Payment, table::pending_before},
};
use paygate_core::{Currency, OrderAmount, Vpa};
use serde_json::json;

#[derive(Args)]
pub struct QueueArgs {
    /// Database (a fresh one: the benchmark creates rows in it).
    #[arg(long)]
    database_url: String,
    /// Redis URL for the Redis queue; without it, the embedded queue.
    #[arg(long)]
    redis_url: Option<String>,
    /// Redis key prefix (deleted keys are not cleaned up: use a throwaway prefix).
    #[arg(long, default_value = "paygate-bench")]
    redis_prefix: String,
    /// Jobs to run.
    #[arg(long, default_value_t = 10_000)]
    jobs: usize,
    /// Concurrent producers (when `--rate` is 0).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Payments per second to create at a steady pace; 0: as fast as the producers can.
    #[arg(long, default_value_t = 0)]
    rate: u64,
}

/// A processor that answers at once and records when each job reached it.
#[derive(Default)]
struct Recorder {
    picked: Mutex<HashMap<String, Instant>>,
}

#[async_trait]
impl Connector for Recorder {
    async fn charge(&self, request: &ChargeRequest) -> anyhow::Result<ChargeOutcome> {
        if let Ok(mut picked) = self.picked.lock() {
            picked
                .entry(request.payment_id.clone())
                .or_insert_with(Instant::now);
        }
        Ok(ChargeOutcome::Succeeded)
    }

    async fn refund(&self, _request: &RefundRequest) -> anyhow::Result<()> {
        Ok(())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Test-mode configuration (zero processing delay) over a migrated, seeded store, and `n`
/// orders of the test merchant to pay.
pub async fn prepare(
    database_url: &str,
    redis: Option<(&str, &str)>,
    n: usize,
) -> anyhow::Result<(Config, Store, Vec<String>)> {
    let (config, store) = setup(database_url, redis).await?;
    let merchants = [test_merchant::ID.to_owned()];
    let order_ids = orders_of(&config, &store, &merchants, n).await?;
    Ok((config, store, order_ids))
}

/// Test-mode configuration (zero processing delay) over a migrated, seeded store.
pub async fn setup(
    database_url: &str,
    redis: Option<(&str, &str)>,
) -> anyhow::Result<(Config, Store)> {
    let mut flags = vec![
        "paygate".to_owned(),
        "--database-url".into(),
        database_url.to_owned(),
        "--test-mode".into(),
        "true".into(),
        "--test-processing-delay".into(),
        "0".into(),
    ];
    if let Some((url, prefix)) = redis {
        flags.extend([
            "--redis-url".into(),
            url.to_owned(),
            "--redis-prefix".into(),
            prefix.to_owned(),
        ]);
    }
    let config = Config::from_args(flags).map_err(anyhow::Error::msg)?;
    let store = Store::connect(&config.database_url, config.database_max_connections).await?;
    store.migrate().await?;
    paygate::merchants::seed_test_merchant(&store).await?;
    Ok((config, store))
}

/// `n` orders of ₹100.00, of the `merchants` in turn.
pub async fn orders_of(
    config: &Config,
    store: &Store,
    merchants: &[String],
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let mut order_ids = Vec::with_capacity(n);
    // Orders are written through the orders service (only its store and clock are used).
    let ctx = Ctx {
        store: store.clone(),
        queue: Arc::new(EmbeddedQueue::new(store.clone(), config.job_lease)),
        connector: Arc::new(SimulatedBank::from_config(config, store.clone())),
        clock: Clock::system(),
        owner: Arc::from("bench"),
        write_lanes: config.write_lanes,
    };
    let orders = Orders::new(ctx);
    for merchant in merchants.iter().cycle().take(n) {
        let new = NewOrder {
            amount: OrderAmount::parse(10_000).expect("valid amount"),
            currency: Currency::INR,
            receipt: None,
            notes: json!({}),
            callback_url: None,
        };
        order_ids.push(orders.create(merchant, None, new, None).await?.id);
    }
    Ok(order_ids)
}

/// A UPI payment that succeeds, for an order.
pub fn payment_for(order_id: String) -> NewPayment {
    NewPayment {
        order_id,
        instrument: Instrument::Upi(Vpa::parse("success@bench").expect("valid VPA")),
    }
}

pub async fn run(args: QueueArgs) -> anyhow::Result<()> {
    let redis = args
        .redis_url
        .as_deref()
        .map(|u| (u, args.redis_prefix.as_str()));
    let (config, store, order_ids) = prepare(&args.database_url, redis, args.jobs).await?;
    let recorder = Arc::new(Recorder::default());
    let app = App::new(config, store.clone(), recorder.clone())?;
    let worker = app::start(app.clone(), Mode::Worker).await?;

    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let queue: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(order_ids));
    let started = Instant::now();
    let mut producers = Vec::new();
    let create = |app: App, committed: Arc<Mutex<HashMap<String, Instant>>>, order_id: String| async move {
        let payment = app
            .payments
            .create(None, payment_for(order_id), None)
            .await?;
        if let Ok(mut c) = committed.lock() {
            c.insert(payment.id, Instant::now());
        }
        anyhow::Ok(())
    };
    if args.rate > 0 {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
        while let Some(order_id) = queue.lock().ok().and_then(|mut q| q.pop()) {
            tick.tick().await;
            producers.push(tokio::spawn(create(
                app.clone(),
                committed.clone(),
                order_id,
            )));
        }
    } else {
        for _ in 0..args.concurrency {
            let (app, queue, committed) = (app.clone(), queue.clone(), committed.clone());
            producers.push(tokio::spawn(async move {
                while let Some(order_id) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    create(app.clone(), committed.clone(), order_id).await?;
                }
                anyhow::Ok(())
            }));
        }
    }
    for p in producers {
        p.await??;
    }
    let produced = started.elapsed();
    // Wait until every payment's final status is committed.
    loop {
        let counts = app.queue.counts(Some("payments")).await?;
        let pending = pending_payments(&store).await?;
        if pending == 0 && counts.active == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = started.elapsed();
    worker.stop();
    worker.wait().await?;

    let committed = committed.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let picked = recorder
        .picked
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut latencies: Vec<f64> = committed
        .iter()
        .filter_map(|(id, at)| {
            picked
                .get(id)
                .map(|p| p.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "backend": if args.redis_url.is_some() { "redis" } else { "embedded" },
            "database": store.backend(),
            "jobs": args.jobs,
            "rate": args.rate,
            "jobs_per_s": (args.jobs as f64 / total.as_secs_f64()).round(),
            "enqueue_per_s": (args.jobs as f64 / produced.as_secs_f64()).round(),
            "pickup_p50_ms": (percentile(&latencies, 0.5) * 100.0).round() / 100.0,
            "pickup_p99_ms": (percentile(&latencies, 0.99) * 100.0).round() / 100.0,
        })
    );
    Ok(())
}

/// 0 when no payment is pending any more.
async fn pending_payments(store: &Store) -> anyhow::Result<usize> {
    let now = paygate::store::now() + chrono::Duration::seconds(1);
    let pending = pending_before::<Payment>(store, now, 1).await?;
    Ok(pending.len())
}
