//! `chaos`: a soak of sustained mixed load while the gateway's processes, Redis and
//! PostgreSQL fail at random (from a printed seed, so a run can be repeated), then an audit
//! that proves nothing was lost or done twice. See `bench/chaos.sh`.

mod audit;
mod cluster;
mod load;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Args;
use cluster::{Postgres, Proc, free_port, wait_http};
use load::{Load, Merchant};
use paygate::store::Store;
use rand::{RngExt as _, SeedableRng as _, rngs::StdRng};
use serde_json::{Value, json};

#[derive(Args)]
pub struct ChaosArgs {
    /// `sqlite` (one `paygate all`) or `postgres` (two `serve`, two `worker`, on a private
    /// PostgreSQL server and a private Redis).
    #[arg(long, default_value = "sqlite")]
    config: String,
    /// Seconds of load.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Requests per second (the mix's steps are paced to make this many on average).
    #[arg(long, default_value_t = 300)]
    rate: u64,
    /// The faults' seed (random when absent; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// The longest the gateway may take to finish everything after the load stops, seconds.
    #[arg(long, default_value_t = 60)]
    settle: u64,
    /// The `paygate` binary.
    #[arg(long, default_value = "target/release/paygate")]
    bin: PathBuf,
    /// The run's folder (logs, databases), kept; without it, a temporary one removed at the
    /// end unless `--keep`.
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    keep: bool,
}

/// A fault, as logged.
#[derive(Clone, Debug)]
struct Fault {
    kind: &'static str,
    at_ms: u64,
    /// When the system was whole again (the process back, the server up).
    until_ms: u64,
}

/// The run's processes.
struct Gateway {
    serves: Vec<Proc>,
    workers: Vec<Proc>,
    redis: Option<Proc>,
    postgres: Option<Postgres>,
}

pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(rand::random);
    eprintln!(
        "chaos: config {}, seed {seed}, {} s of load",
        args.config, args.duration
    );
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("paygate-chaos-{}", uuid::Uuid::new_v4().simple()))
    });
    std::fs::create_dir_all(&dir)?;
    // The private PostgreSQL server runs as its own user: it must reach its folder.
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&dir)
        .status()?;
    // On SIGTERM or SIGINT the soak is dropped, and with it every process it started.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let result = tokio::select! {
        r = soak(&args, seed, &dir) => r,
        _ = term.recv() => Err(anyhow::anyhow!("terminated")),
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if args.dir.is_none() && !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("chaos: the run's files are in {}", dir.display());
    }
    let (report, clean) = result?;
    println!("{report}");
    anyhow::ensure!(clean, "an invariant failed (see the report)");
    Ok(())
}

/// The gateway's settings for the soak: test mode (the bank answers in 200 ms), short leases
/// and a short webhook schedule, so the settle time covers every retry.
fn gateway_env(db_url: &str, redis: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("DATABASE_URL", db_url),
        ("TEST_MODE", "true"),
        ("TEST_PROCESSING_DELAY", "200"),
        ("JOB_LEASE_MS", "5000"),
        ("PROCESS_DEAD_AFTER_MS", "3000"),
        ("WEBHOOK_RETRY_SCHEDULE", "0,500,1000,2000,4000"),
        ("RUST_LOG", "warn"),
        ("CHECKOUT_PORT", "0"),
        ("DASHBOARD_PORT", "0"),
        ("HOST", "127.0.0.1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    if let Some(r) = redis {
        env.push(("REDIS_URL".into(), r.to_owned()));
    }
    env
}

fn paygate(
    bin: &Path,
    dir: &Path,
    name: &str,
    command: &str,
    env: &[(String, String)],
) -> anyhow::Result<Proc> {
    let port = free_port()?;
    let mut env = env.to_vec();
    env.push(("PORT".into(), port.to_string()));
    Proc::spawn(
        name,
        vec![bin.to_string_lossy().into_owned(), command.to_owned()],
        env,
        port,
        dir.join(format!("{name}.log")),
    )
}

/// Runs a `paygate` command to completion; its standard output.
fn paygate_cli(bin: &Path, env: &[(String, String)], args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "paygate {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A merchant's webhook set-up: its index, its default URL, its endpoints (URL, events).
type Setup<'a> = (usize, Option<String>, Vec<(String, Vec<&'a str>)>);

/// The merchants and where their webhooks go: the test merchant's URL to the healthy receiver;
/// the second's URL to the flaky one, with an endpoint for refunds on the slow one and one for
/// everything on the healthy one; the third with no URL, an endpoint for payments on the flaky
/// one and one for payment.success and refund.processed on the slow one.
async fn merchants(
    bin: &Path,
    env: &[(String, String)],
    api: &str,
    receivers: [u16; 3],
) -> anyhow::Result<Vec<Merchant>> {
    let [healthy, flaky, slow] = receivers;
    let mut all = vec![Merchant {
        key: paygate::merchants::test_merchant::API_KEY.to_owned(),
        secret: paygate::merchants::test_merchant::API_SECRET.to_owned(),
    }];
    for n in [2, 3] {
        let out = paygate_cli(
            bin,
            env,
            &[
                "merchant",
                "create",
                "--name",
                &format!("Chaos {n}"),
                "--email",
                &format!("chaos{n}@example.com"),
                "--json",
            ],
        )?;
        let m: Value = serde_json::from_str(out.trim())?;
        all.push(Merchant {
            key: m["api_key"].as_str().unwrap_or_default().to_owned(),
            secret: m["api_secret"].as_str().unwrap_or_default().to_owned(),
        });
    }
    let client = reqwest::Client::new();
    let url = |port: u16, path: &str| format!("http://127.0.0.1:{port}/{path}");
    let setups: [Setup; 3] = [
        (0, Some(url(healthy, "m1")), vec![]),
        (
            1,
            Some(url(flaky, "m2")),
            vec![
                (url(slow, "m2-refunds"), vec!["refund.*"]),
                (url(healthy, "m2-all"), vec![]),
            ],
        ),
        (
            2,
            None,
            vec![
                (url(flaky, "m3-payments"), vec!["payment.*"]),
                (
                    url(slow, "m3-final"),
                    vec!["payment.success", "refund.processed"],
                ),
            ],
        ),
    ];
    for (i, default, endpoints) in setups {
        let m = &all[i];
        let call = |method: reqwest::Method, path: &str, body: Value| {
            client
                .request(method, format!("{api}{path}"))
                .header("X-Api-Key", &m.key)
                .header("X-Api-Secret", &m.secret)
                .json(&body)
                .send()
        };
        if let Some(u) = default {
            let res = call(
                reqwest::Method::PUT,
                "/api/v1/webhooks/config",
                json!({"webhook_url": u}),
            )
            .await?;
            anyhow::ensure!(res.status().is_success(), "webhook URL: {}", res.status());
        }
        for (u, events) in endpoints {
            let mut body = json!({"url": u});
            if !events.is_empty() {
                body["events"] = json!(events);
            }
            let res = call(reqwest::Method::POST, "/api/v1/webhooks/endpoints", body).await?;
            anyhow::ensure!(res.status().is_success(), "endpoint: {}", res.status());
        }
    }
    Ok(all)
}

async fn soak(args: &ChaosArgs, seed: u64, dir: &Path) -> anyhow::Result<(Value, bool)> {
    let bin = std::fs::canonicalize(&args.bin)?;
    let me = std::env::current_exe()?;
    // The receivers.
    let mut receivers = Vec::new();
    let mut logs = Vec::new();
    for mode in ["healthy", "flaky", "slow"] {
        let port = free_port()?;
        let log = dir.join(format!("receiver-{mode}.jsonl"));
        logs.push(log.clone());
        let argv = vec![
            me.to_string_lossy().into_owned(),
            "receiver".into(),
            "--port".into(),
            port.to_string(),
            "--mode".into(),
            mode.into(),
            "--log".into(),
            log.to_string_lossy().into_owned(),
        ];
        let p = Proc::spawn(mode, argv, vec![], port, dir.join(format!("{mode}.log")))?;
        wait_http(
            &format!("http://127.0.0.1:{port}/stats"),
            Duration::from_secs(10),
        )
        .await?;
        receivers.push(p);
    }
    let receiver_ports = [receivers[0].port, receivers[1].port, receivers[2].port];

    // The gateway.
    let postgres = args.config == "postgres";
    let (db_url, pg, redis) = if postgres {
        let pg = Postgres::start(dir)?;
        let port = free_port()?;
        let argv = [
            "redis-server",
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let redis = Proc::spawn("redis", argv, vec![], port, dir.join("redis.log"))?;
        (pg.url("postgres"), Some(pg), Some(redis))
    } else {
        (
            format!("sqlite://{}", dir.join("chaos.db").display()),
            None,
            None,
        )
    };
    let redis_url = redis
        .as_ref()
        .map(|r| format!("redis://127.0.0.1:{}", r.port));
    let env = gateway_env(&db_url, redis_url.as_deref());
    paygate_cli(&bin, &env, &["migrate"])?;
    let mut g = Gateway {
        serves: Vec::new(),
        workers: Vec::new(),
        redis,
        postgres: pg,
    };
    if postgres {
        for i in 0..2 {
            g.serves
                .push(paygate(&bin, dir, &format!("serve-{i}"), "serve", &env)?);
            g.workers
                .push(paygate(&bin, dir, &format!("worker-{i}"), "worker", &env)?);
        }
    } else {
        g.serves.push(paygate(&bin, dir, "all", "all", &env)?);
    }
    for s in &g.serves {
        wait_http(
            &format!("http://127.0.0.1:{}/health", s.port),
            Duration::from_secs(30),
        )
        .await?;
    }
    let bases: Vec<String> = g
        .serves
        .iter()
        .map(|s| format!("http://127.0.0.1:{}", s.port))
        .collect();
    let merchants = merchants(&bin, &env, &bases[0], receiver_ports).await?;
    let store = Store::connect(&db_url, 2).await?;

    // The load, and the faults.
    let load = Arc::new(Load::new(bases, merchants)?);
    let duration = Duration::from_secs(args.duration);
    let loader = {
        // A step of the mix makes 1.44 requests on average (see `Load::step`).
        let (load, steps) = (load.clone(), (args.rate as f64 / 1.44).max(1.0));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / steps));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut steps = tokio::task::JoinSet::new();
            while load.started.elapsed() < duration {
                tick.tick().await;
                steps.spawn(load.clone().step());
                while steps.try_join_next().is_some() {}
            }
            while steps.join_next().await.is_some() {}
        })
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut faults: Vec<Fault> = Vec::new();
    let started = load.started;
    let ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    while started.elapsed() + Duration::from_secs(8) < duration {
        tokio::time::sleep(Duration::from_millis(rng.random_range(4_000..12_000))).await;
        if started.elapsed() + Duration::from_secs(5) >= duration {
            break;
        }
        let at_ms = ms();
        let kind = inject(&mut g, &mut rng, postgres).await?;
        faults.push(Fault {
            kind,
            at_ms,
            until_ms: ms(),
        });
        eprintln!("chaos: {:>7.1} s  {kind}", at_ms as f64 / 1000.0);
    }
    loader.await?;
    let load_ended = Instant::now();

    // Settle: everything final, every receiver served (at most `settle` seconds).
    let deadline = Instant::now() + Duration::from_secs(args.settle);
    loop {
        let (p, r, d) = paygate::store::audit::pending(&store)
            .await
            .unwrap_or((1, 0, 0));
        if p + r + d == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let settled_s = load_ended.elapsed().as_secs_f64();
    let answers = load.answers.lock().map(|a| a.clone()).unwrap_or_default();
    let findings = audit::audit(&store, &answers, &logs).await?;

    // 5xx only inside a PostgreSQL restart's window, and how long each fault took to recover.
    let pg_windows: Vec<(u64, u64)> = faults
        .iter()
        .filter(|f| f.kind == "restart postgres")
        .map(|f| (f.at_ms, f.until_ms + 5_000))
        .collect();
    let server_errors = answers.iter().filter(|a| a.status >= 500).count();
    let mut server_errors_by_request: BTreeMap<&str, u64> = BTreeMap::new();
    for a in answers.iter().filter(|a| a.status >= 500) {
        *server_errors_by_request.entry(a.what.as_str()).or_default() += 1;
    }
    let outside = answers
        .iter()
        .filter(|a| a.status >= 500)
        .filter(|a| !pg_windows.iter().any(|(s, e)| (*s..=*e).contains(&a.at_ms)))
        .count();
    // Per kind of fault: how many, the longest until the system was whole again (the process
    // back and answering, the server up), and the longest recovery as the load saw it: from
    // the fault to the first 2xx to a request sent after the last one that failed (no answer
    // but not dropped on purpose, or a 5xx) before the next fault began; zero when none failed.
    let mut by_kind: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for (i, f) in faults.iter().enumerate() {
        let next = faults.get(i + 1).map_or(u64::MAX, |n| n.at_ms);
        let last_failed = answers
            .iter()
            // Failed before the next fault: that one's failures are its own.
            .filter(|a| (f.at_ms..next).contains(&a.sent_ms) && a.at_ms < next)
            .filter(|a| (a.status == 0 && !a.dropped) || a.status >= 500)
            .map(|a| a.sent_ms)
            .max();
        let recovery = last_failed.map_or(0, |failed| {
            answers
                .iter()
                .filter(|a| a.sent_ms > failed && (200..300).contains(&a.status))
                .map(|a| a.at_ms - f.at_ms)
                .min()
                .unwrap_or(u64::MAX)
        });
        let k = by_kind.entry(f.kind).or_default();
        k.0 += 1;
        k.1 = k.1.max(f.until_ms - f.at_ms);
        k.2 = k.2.max(recovery);
    }
    let seconds = |ms: u64| (ms as f64 / 100.0).round() / 10.0;
    let max_recovery_s = seconds(by_kind.values().map(|k| k.2).max().unwrap_or(0));
    let by_kind: BTreeMap<&str, Value> = by_kind
        .into_iter()
        .map(|(kind, (n, whole, first))| {
            (
                kind,
                json!({"count": n, "whole_again_s": seconds(whole), "recovery_s": seconds(first)}),
            )
        })
        .collect();
    let clean = findings.clean() && outside == 0;
    let report = json!({
        "config": args.config,
        "seed": seed,
        "duration_s": args.duration,
        "requests": answers.len(),
        "answered_201": answers.iter().filter(|a| a.status == 201).count(),
        "no_answer": answers.iter().filter(|a| a.status == 0).count(),
        "server_errors": server_errors,
        "server_errors_by_request": server_errors_by_request,
        "server_errors_outside_windows": outside,
        "faults": by_kind,
        "lost": findings.lost,
        "order_mismatches": findings.order_mismatches,
        "duplicate_charges": findings.duplicate_charges,
        "duplicate_refunds": findings.duplicate_refunds,
        "refund_over_limit": findings.refund_over_limit,
        "idempotency_mismatches": findings.idempotency_mismatches,
        "webhooks_expected": findings.webhooks_expected,
        "webhooks_missing": findings.webhooks_missing,
        "webhooks_duplicated": findings.webhooks_duplicated,
        "bad_signatures": findings.bad_signatures,
        "sequence_regressions": findings.sequence_regressions,
        "still_pending": findings.still_pending,
        "settled_s": (settled_s * 10.0).round() / 10.0,
        "max_recovery_s": max_recovery_s,
        "ok": clean,
    });
    store.close().await;
    drop(g);
    drop(receivers);
    Ok((report, clean))
}

/// `kill -9` of `p`, started again after `down`; with `health`, once it answers `/health`.
async fn restart(p: &mut Proc, down: Duration, health: bool) -> anyhow::Result<()> {
    p.kill9();
    tokio::time::sleep(down).await;
    p.start()?;
    if health {
        let url = format!("http://127.0.0.1:{}/health", p.port);
        wait_http(&url, Duration::from_secs(30)).await?;
    }
    Ok(())
}

/// Injects one fault chosen at random among those of the configuration, and waits until the
/// system is whole again (a killed process restarted, a stopped one continued, a server up).
async fn inject(g: &mut Gateway, rng: &mut StdRng, postgres: bool) -> anyhow::Result<&'static str> {
    let pause =
        |rng: &mut StdRng, lo: u64, hi: u64| Duration::from_millis(rng.random_range(lo..hi));
    if !postgres {
        // SQLite: the one process, killed and started again.
        restart(&mut g.serves[0], pause(rng, 200, 1500), true).await?;
        return Ok("kill all");
    }
    let kind = match rng.random_range(0..7) {
        0 | 1 => {
            let i = rng.random_range(0..2);
            restart(&mut g.serves[i], pause(rng, 300, 2000), true).await?;
            "kill serve"
        }
        2 => {
            let i = rng.random_range(0..2);
            restart(&mut g.workers[i], pause(rng, 300, 2000), false).await?;
            "kill worker"
        }
        3 => {
            // Longer than the 5 s job lease (and the 3 s dead-owner time).
            let w = &g.workers[rng.random_range(0..2)];
            w.signal("-STOP");
            tokio::time::sleep(pause(rng, 6000, 8000)).await;
            w.signal("-CONT");
            "stop worker"
        }
        4 => {
            if let Some(r) = &mut g.redis {
                r.kill9();
                tokio::time::sleep(pause(rng, 200, 1500)).await;
                r.start()?;
            }
            "restart redis"
        }
        5 => {
            if let Some(r) = &g.redis {
                let client = redis::Client::open(format!("redis://127.0.0.1:{}", r.port))?;
                let mut conn = client.get_multiplexed_async_connection().await?;
                let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await?;
            }
            "flush redis"
        }
        _ => {
            if let Some(pg) = &g.postgres {
                pg.restart()?;
            }
            "restart postgres"
        }
    };
    Ok(kind)
}

#[cfg(test)]
mod tests;
