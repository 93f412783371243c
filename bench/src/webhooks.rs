//! `webhooks`: the worker end to end, delivering to a receiver in another process
//! (`paygate-bench receiver`). Each payment makes three deliveries (created, pending, success)
//! to its merchant's webhook URL; `--destinations` merchants take the payments in turn, each
//! with a URL of its own on the receiver (one destination: the common case of one merchant,
//! one URL). Two kinds of runs:
//!
//! - drain (`--rate 0`): the payments are created first with no worker running (a backlog),
//!   then the worker starts; reported: payments per second fully notified (every webhook
//!   received), from the worker's start to the last new webhook's arrival.
//! - paced (`--rate R`): the worker runs while payments are created at R per second;
//!   reported: the delay from each payment's state change (its `updated_at` when it became
//!   `success`) to the arrival of its `payment.success` webhook (the first attempt), p50/p99.
//!
//! The gateway's worker runs in this process against the `paygate` library, with its default
//! settings unless `--endpoint-concurrency` (the per-destination limit it starts at; the
//! maximum is raised to it) is given.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::Args;
use paygate::{
    app::{self, App, Mode},
    merchants::test_merchant,
    processor::SimulatedBank,
};
use serde_json::{Value, json};

use crate::queue::{orders_of, payment_for, setup};

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
    /// The receiver's base URL (`paygate-bench receiver`, another process).
    #[arg(long)]
    receiver: String,
    /// Merchants, each with a webhook URL of its own.
    #[arg(long, default_value_t = 1)]
    destinations: usize,
    /// Payments to make.
    #[arg(long, default_value_t = 1000)]
    payments: usize,
    /// Payments per second; 0: a backlog made first, then drained.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// `WEBHOOK_ENDPOINT_CONCURRENCY` (and its maximum, when above it); the default when
    /// not given.
    #[arg(long)]
    endpoint_concurrency: Option<usize>,
}

async fn receiver_stats(client: &reqwest::Client, base: &str) -> anyhow::Result<Value> {
    Ok(client
        .get(format!("{base}/stats"))
        .send()
        .await?
        .json()
        .await?)
}

pub async fn run(args: WebhookArgs) -> anyhow::Result<()> {
    let redis = args
        .redis_url
        .as_deref()
        .map(|u| (u, args.redis_prefix.as_str()));
    let (mut config, store) = setup(&args.database_url, redis).await?;
    if let Some(start) = args.endpoint_concurrency {
        config.webhook_endpoint_concurrency = start;
        config.webhook_endpoint_max_concurrency =
            config.webhook_endpoint_max_concurrency.max(start);
    }
    let client = reqwest::Client::new();
    let base = args.receiver.trim_end_matches('/').to_owned();
    client.post(format!("{base}/reset")).send().await?;

    // The merchants and their URLs: the test merchant, then more.
    let now = paygate::store::now();
    let mut merchants = vec![test_merchant::ID.to_owned()];
    for i in 1..args.destinations {
        let created =
            paygate::merchants::create(&store, &format!("Shop {i}"), &format!("shop{i}@bench"))
                .await?;
        merchants.push(created.merchant.id);
    }
    for (i, merchant) in merchants.iter().enumerate() {
        let url = format!("{base}/hook/{i}");
        let mut tx = store.begin().await?;
        paygate::store::merchants::set_webhook_url(&mut tx, merchant, Some(&url), now).await?;
        tx.commit().await?;
    }
    let order_ids = orders_of(&config, &store, &merchants, args.payments).await?;

    let bank = Arc::new(SimulatedBank::fixed(Duration::ZERO, true));
    let app = App::new(config, store, bank)?;
    let mut worker = None;
    if args.rate > 0 {
        worker = Some(app::start(app.clone(), Mode::Worker).await?);
    }
    let created = Instant::now();
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
    let backlog_s = created.elapsed().as_secs_f64();
    let started_ms = chrono::Utc::now().timestamp_millis();
    if worker.is_none() {
        worker = Some(app::start(app.clone(), Mode::Worker).await?);
    }
    let expected = u64::try_from(args.payments * 3)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut stats = receiver_stats(&client, &base).await?;
    while stats["events"].as_u64().unwrap_or(0) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = receiver_stats(&client, &base).await?;
    }
    if let Some(w) = worker {
        w.stop();
        w.wait().await?;
    }
    let events = stats["events"].as_u64().unwrap_or(0);
    // Where the first destination's adaptive limit ended.
    let limit = app
        .webhooks
        .destination(&format!("merchant:{}", test_merchant::ID))
        .map(|s| s.limit);
    let drain_s = (stats["last_new_ms"].as_i64().unwrap_or(0) - started_ms).max(1) as f64 / 1000.0;
    let round = |x: f64| (x * 100.0).round() / 100.0;
    println!(
        "{}",
        json!({
            "backend": if args.redis_url.is_some() { "redis" } else { "embedded" },
            "database": app.store.backend(),
            "destinations": args.destinations,
            "endpoint_concurrency": app.config.webhook_endpoint_concurrency,
            "final_limit": limit,
            "rate": args.rate,
            "payments": args.payments,
            "backlog_s": round(backlog_s),
            "events": events,
            "duplicates": stats["arrivals"].as_u64().unwrap_or(0).saturating_sub(events),
            "complete": events >= expected,
            "payments_per_s": (args.rate == 0).then(|| (args.payments as f64 / drain_s).round()),
            "first_attempt_p50_ms": round(stats["first_attempt_p50_ms"].as_f64().unwrap_or(0.0)),
            "first_attempt_p99_ms": round(stats["first_attempt_p99_ms"].as_f64().unwrap_or(0.0)),
        })
    );
    Ok(())
}
