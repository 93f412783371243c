//! The `paygate` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use paygate::{
    app::{App, Mode},
    config::{Config, Settings},
    merchants,
    store::{Store, merchants as merchant_rows},
};
use serde_json::json;

/// paygate: a self-hostable payment gateway.
///
/// Every setting is read from its environment variable and can be given as a flag.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// API, pages and worker in one process (the default).
    All,
    /// API and pages only; no job processing.
    Serve,
    /// Job processing only.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage merchants.
    #[command(subcommand)]
    Merchant(MerchantCommand),
    /// The simulated bank: its daily report, and settling now.
    #[command(subcommand)]
    Processor(ProcessorCommand),
    /// Exit 0 when this host's API answers `GET /health` with 200 (for container health
    /// checks: the image has no curl).
    Healthcheck,
    /// The test merchant: receives webhooks, verifies both signatures, shows what it got.
    WebhookReceiver {
        /// Address to listen on.
        #[arg(long, env = "RECEIVER_LISTEN", default_value = "127.0.0.1:4000")]
        listen: std::net::SocketAddr,
        /// The merchant's webhook secret.
        #[arg(long, env = "RECEIVER_SECRET", default_value = "whsec_test_abc123")]
        secret: String,
    },
}

#[derive(Subcommand)]
enum ProcessorCommand {
    /// Print the simulated bank's report of a day as CSV (`reference,type,amount,fee,utr`):
    /// every captured payment and processed refund final that day (UTC), the fee with its tax,
    /// the UTR of the transfer that settled it (empty before). Upload it to
    /// `POST /api/v1/reconciliation` or the dashboard's Settlements page.
    Report {
        /// The day, `YYYY-MM-DD`.
        #[arg(long)]
        date: String,
        /// Only this merchant's transactions (its id or email); every merchant's without it.
        #[arg(long)]
        merchant: Option<String>,
    },
    /// Run one settlement cycle now (what the worker does every `SETTLEMENT_INTERVAL`):
    /// settle every transaction final for `SETTLEMENT_DELAY`, then transfer every settlement
    /// not yet processed. Prints what it did.
    Settle {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum MerchantCommand {
    /// Create a merchant; prints its id, API key, API secret and webhook secret (the secrets
    /// only this once).
    Create {
        /// The merchant's name.
        #[arg(long)]
        name: String,
        /// The merchant's email (unique); the dashboard login.
        #[arg(long)]
        email: String,
        /// The dashboard password of the merchant's first owner (at least 8 characters).
        #[arg(long)]
        password: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace a merchant's API secret (enabling a merchant disabled for holding the test
    /// credentials); prints the new one (only this once). Running gateways stop accepting the
    /// old secret within a second (their credential cache).
    RotateKeys {
        /// The merchant's id or email.
        merchant: String,
        /// A new dashboard password for the merchant's first owner (at least 8 characters),
        /// ending their sessions. Without it, a dashboard password
        /// that is still the test merchant's public one is removed (sign-in refused until one
        /// is set).
        #[arg(long)]
        password: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List merchants.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a merchant's pricing (the fee on each successful payment and the tax on the fee,
    /// per method), or change it for the payments that succeed from now on.
    Pricing {
        /// The merchant's id or email.
        merchant: String,
        /// The method to change: `upi`, `card`, or `all`.
        #[arg(long, default_value = "all")]
        method: String,
        /// The fee, a percentage of the amount with at most two decimals (`2`, `2.5`).
        #[arg(long)]
        fee: Option<String>,
        /// The tax on the fee, a percentage (`18`).
        #[arg(long)]
        tax: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The merchant with this id or email.
async fn find_merchant(store: &Store, merchant: &str) -> anyhow::Result<merchant_rows::Merchant> {
    let all = merchant_rows::list(store).await?;
    all.into_iter()
        .find(|m| m.id == merchant || m.email.eq_ignore_ascii_case(merchant))
        .ok_or_else(|| anyhow::anyhow!("no merchant has the id or email {merchant:?}"))
}

/// `paygate merchant pricing`.
async fn pricing(
    store: &Store,
    merchant: &str,
    method: &str,
    fee: Option<String>,
    tax: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    use paygate::store::pricing;
    use paygate_core::{Method, fees};
    let m = find_merchant(store, merchant).await?;
    let methods = match method {
        "all" => vec![Method::Upi, Method::Card],
        "upi" => vec![Method::Upi],
        "card" => vec![Method::Card],
        other => anyhow::bail!("--method must be upi, card or all, not {other:?}"),
    };
    let rate = |name: &str, text: Option<String>| -> anyhow::Result<Option<i64>> {
        text.map(|t| {
            fees::parse_percent(&t).ok_or_else(|| {
                anyhow::anyhow!("--{name} must be a percentage from 0 to 100 with at most two decimals, not {t:?}")
            })
        })
        .transpose()
    };
    let (fee, tax) = (rate("fee", fee)?, rate("tax", tax)?);
    if fee.is_some() || tax.is_some() {
        for price in pricing::of(store, &m.id).await? {
            if methods.contains(&price.method) {
                let (f, t) = (fee.unwrap_or(price.fee_bps), tax.unwrap_or(price.tax_bps));
                pricing::set(store, &m.id, price.method, f, t, paygate::store::now()).await?;
            }
        }
    }
    let now = pricing::of(store, &m.id).await?;
    if json {
        let rows: Vec<_> = now
            .iter()
            .map(|p| {
                json!({"method": p.method.as_str(), "fee_bps": p.fee_bps, "tax_bps": p.tax_bps,
                    "default": p.default})
            })
            .collect();
        println!("{}", json!({"merchant_id": m.id, "pricing": rows}));
    } else {
        for p in now {
            println!(
                "{:<5} fee {} of the amount, tax {} of the fee{}",
                p.method.as_str(),
                fees::show_percent(p.fee_bps),
                fees::show_percent(p.tax_bps),
                if p.default { " (default)" } else { "" }
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli.settings.log_format);
    let config = match Config::from_settings(cli.settings) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::All), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard error: for people by default, or one JSON object per line (`json`) with
/// the fields of the current request's span (request id, route, merchant) on each. `RUST_LOG`
/// overrides the filter; by default the per-request access line is logged only as JSON.
fn init_logs(format: &str) {
    use paygate::http::layers::ACCESS_LOG;
    let filter = |default: String| {
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into())
    };
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    if format == "json" {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter("info,sqlx=warn".into()))
            .init();
    } else {
        builder
            .with_env_filter(filter(format!("info,sqlx=warn,{ACCESS_LOG}=warn")))
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}

/// `GET /health` of the API on this host over plain HTTP/1.0 (all a container probe needs;
/// no HTTP client stack for one request).
async fn healthcheck(port: u16) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let probe = async {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        conn.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        conn.read_exact(&mut head).await?;
        anyhow::Ok(head)
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(5), probe).await??;
    anyhow::ensure!(
        head.starts_with(b"HTTP/1.") && &head[9..12] == b"200",
        "the API answered {:?}",
        String::from_utf8_lossy(&head)
    );
    println!("healthy");
    Ok(())
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::All => paygate::app::run_until_signal(App::build(config).await?, Mode::All).await,
        Command::Serve => {
            paygate::app::run_until_signal(App::build(config).await?, Mode::Serve).await
        }
        Command::Worker => {
            paygate::app::run_until_signal(App::build(config).await?, Mode::Worker).await
        }
        Command::Migrate => {
            let store = Store::connect(&config.database_url, 1).await?;
            store.migrate().await?;
            if config.seed_test_merchant {
                merchants::seed_test_merchant(&store).await?;
            }
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Healthcheck => healthcheck(config.port).await,
        Command::WebhookReceiver { listen, secret } => {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let server = tokio::spawn(async move {
                paygate::http::receiver::serve(listen, &secret, stopped).await
            });
            paygate::app::shutdown_signal().await;
            let _ = stop.send(true);
            server.await?
        }
        Command::Merchant(cmd) => {
            let store = Store::connect(&config.database_url, 1).await?;
            store.migrate().await?;
            merchant(cmd, &store).await
        }
        Command::Processor(cmd) => processor(cmd, config).await,
    }
}

async fn processor(cmd: ProcessorCommand, config: Config) -> anyhow::Result<()> {
    match cmd {
        ProcessorCommand::Report { date, merchant } => {
            let store = Store::connect(&config.database_url, 1).await?;
            store.migrate().await?;
            let date = paygate::http::api::settlements::report_date(&date)
                .map_err(|_| anyhow::anyhow!("--date must be a date like 2026-12-07"))?;
            let merchants = match merchant {
                Some(m) => vec![find_merchant(&store, &m).await?],
                None => merchant_rows::list(&store).await?,
            };
            let mut out = format!("{}\n", paygate::settlements::REPORT_HEADER);
            for m in merchants {
                let report = paygate::settlements::bank_report(&store, &m.id, date).await?;
                out.extend(report.lines().skip(1).map(|l| format!("{l}\n")));
            }
            print!("{out}");
            Ok(())
        }
        ProcessorCommand::Settle { json } => {
            let app = App::build(config).await?;
            let started = std::time::Instant::now();
            let cycle = app.settlements.run().await?;
            let seconds = started.elapsed().as_secs_f64();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "created": cycle.created,
                        "processed": cycle.processed,
                        "failed": cycle.failed,
                        "seconds": seconds,
                    })
                );
            } else {
                println!(
                    "settlements created {}, transferred {}, refused {} in {seconds:.3} s",
                    cycle.created, cycle.processed, cycle.failed
                );
            }
            Ok(())
        }
    }
}

async fn merchant(cmd: MerchantCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        MerchantCommand::Create {
            name,
            email,
            password,
            json,
        } => {
            if password
                .as_ref()
                .is_some_and(|p| p.chars().count() < merchants::MIN_PASSWORD)
            {
                anyhow::bail!(
                    "the password must have at least {} characters",
                    merchants::MIN_PASSWORD
                );
            }
            let created = merchants::create(store, &name, &email).await?;
            if let Some(p) = password {
                merchants::set_password(store, &created.merchant.id, &p, (None, None)).await?;
            }
            let m = &created.merchant;
            if json {
                let body = json!({
                    "id": m.id, "name": m.name, "email": m.email, "api_key": m.api_key,
                    "api_secret": created.api_secret, "webhook_secret": m.webhook_secret,
                });
                println!("{body}");
            } else {
                println!("id:             {}", m.id);
                println!("name:           {}", m.name);
                println!("email:          {}", m.email);
                println!("api key:        {}", m.api_key);
                println!("api secret:     {}", created.api_secret);
                println!("webhook secret: {}", m.webhook_secret);
                println!("(the API secret is shown only now: store it safely)");
            }
        }
        MerchantCommand::RotateKeys {
            merchant,
            password,
            json,
        } => {
            let m = find_merchant(store, &merchant).await?;
            // The dashboard password first: a merchant disabled for the public test credentials
            // is enabled by the new API secret, and must not be left with the public password.
            let password_removed = match &password {
                Some(p) => {
                    merchants::set_password(store, &m.id, p, (None, None)).await?;
                    false
                }
                None if merchants::has_seeded_password(store, &m.id).await? => {
                    let at = paygate::store::now();
                    paygate::store::users::set_password_hash(
                        store, &m.id, "", false, None, at, None,
                    )
                    .await?;
                    true
                }
                None => false,
            };
            let cache = merchants::CredentialCache::default();
            let (secret, _) = merchants::rotate_api_secret(store, &cache, &m, None, None).await?;
            if json {
                println!(
                    "{}",
                    json!({"id": m.id, "api_key": m.api_key, "api_secret": secret,
                        "dashboard_password_removed": password_removed})
                );
            } else {
                println!("id:         {}", m.id);
                println!("api key:    {}", m.api_key);
                println!("api secret: {secret}");
                println!("(the API secret is shown only now: store it safely)");
                if password_removed {
                    println!(
                        "the dashboard password was the public test password and is removed: \
                         set one with `paygate merchant rotate-keys {} --password …`",
                        m.id
                    );
                }
            }
        }
        MerchantCommand::List { json } => {
            let all = merchant_rows::list(store).await?;
            if json {
                let rows: Vec<_> = all
                    .iter()
                    .map(|m| {
                        json!({"id": m.id, "name": m.name, "email": m.email, "api_key": m.api_key,
                        "created_at": paygate::views::iso(m.created_at)})
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for m in all {
                    println!("{}  {}  {}  {}", m.id, m.api_key, m.email, m.name);
                }
            }
        }
        MerchantCommand::Pricing {
            merchant,
            method,
            fee,
            tax,
            json,
        } => pricing(store, &merchant, &method, fee, tax, json).await?,
    }
    Ok(())
}
