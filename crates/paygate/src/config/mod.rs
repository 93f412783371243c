//! Configuration (SPEC A10): every setting has a default, is read from its environment
//! variable, and can be given as a command-line flag (flags win). `paygate --help` lists them
//! all; the README's table documents them. [`Config::from_settings`] rejects bad values with a
//! message that names the setting.

mod accounts;

pub use accounts::{AccountSettings, SecretKey};

use std::{net::IpAddr, time::Duration};

use clap::{ArgAction, Args, builder::BoolishValueParser};

/// The raw settings, as clap reads them from flags and the environment.
#[derive(Args, Clone, Debug)]
pub struct Settings {
    /// Database: `sqlite://PATH` (embedded, the default) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://./data/paygate.db",
        global = true
    )]
    pub database_url: String,
    /// Largest number of database connections this process opens.
    #[arg(
        long,
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub database_max_connections: u32,
    /// `redis://…` turns the Redis queues on; unset: the embedded queue.
    #[arg(long, env = "REDIS_URL", global = true)]
    pub redis_url: Option<String>,
    /// `REDIS_URL` names a Redis Cluster (one or more comma-separated node URLs).
    #[arg(long, env = "REDIS_CLUSTER", default_value = "false", value_parser = BoolishValueParser::new(), action = ArgAction::Set, global = true)]
    pub redis_cluster: bool,
    /// Prefix of every Redis key paygate writes.
    #[arg(long, env = "REDIS_PREFIX", default_value = "paygate", global = true)]
    pub redis_prefix: String,
    /// Log format: `text` (for people, the default) or `json` (one object per line, with each
    /// request's id, merchant, route and latency).
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"], global = true)]
    pub log_format: String,
    /// Address the listeners bind.
    #[arg(long, env = "HOST", default_value = "127.0.0.1", global = true)]
    pub host: IpAddr,
    /// API port.
    #[arg(long, env = "PORT", default_value_t = 8000, global = true)]
    pub port: u16,
    /// A `worker` process's port for `/health` and `/metrics` (a worker serves nothing else;
    /// unset: no listener).
    #[arg(long, env = "WORKER_PORT", global = true)]
    pub worker_port: Option<u16>,
    /// Merchant dashboard port.
    #[arg(long, env = "DASHBOARD_PORT", default_value_t = 3000, global = true)]
    pub dashboard_port: u16,
    /// Hosted checkout and checkout.js port.
    #[arg(long, env = "CHECKOUT_PORT", default_value_t = 3001, global = true)]
    pub checkout_port: u16,
    /// How browsers reach the API.
    #[arg(
        long,
        env = "PUBLIC_API_URL",
        default_value = "http://localhost:8000",
        global = true
    )]
    pub public_api_url: String,
    /// How browsers reach the checkout.
    #[arg(
        long,
        env = "PUBLIC_CHECKOUT_URL",
        default_value = "http://localhost:3001",
        global = true
    )]
    pub public_checkout_url: String,
    /// How browsers reach the dashboard (an `https:` URL makes the session cookie `Secure`).
    #[arg(
        long,
        env = "PUBLIC_DASHBOARD_URL",
        default_value = "http://localhost:3000",
        global = true
    )]
    pub public_dashboard_url: String,
    /// Addresses and networks of reverse proxies whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed (comma-separated; none by default).
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", global = true)]
    pub trusted_proxies: String,
    /// Shortest simulated payment processing delay, ms.
    #[arg(
        long,
        env = "PROCESSING_DELAY_MIN",
        default_value_t = 5000,
        global = true
    )]
    pub processing_delay_min: u64,
    /// Longest simulated payment processing delay, ms.
    #[arg(
        long,
        env = "PROCESSING_DELAY_MAX",
        default_value_t = 10000,
        global = true
    )]
    pub processing_delay_max: u64,
    /// Probability that a UPI payment succeeds (0..1).
    #[arg(long, env = "UPI_SUCCESS_RATE", default_value_t = 0.90, global = true)]
    pub upi_success_rate: f64,
    /// Probability that a card payment succeeds (0..1).
    #[arg(long, env = "CARD_SUCCESS_RATE", default_value_t = 0.95, global = true)]
    pub card_success_rate: f64,
    /// Shortest simulated refund delay, ms.
    #[arg(long, env = "REFUND_DELAY_MIN", default_value_t = 3000, global = true)]
    pub refund_delay_min: u64,
    /// Longest simulated refund delay, ms.
    #[arg(long, env = "REFUND_DELAY_MAX", default_value_t = 5000, global = true)]
    pub refund_delay_max: u64,
    /// `development` (the default: friendly local settings) or `production`: no test merchant,
    /// no `/api/v1/test/*`, no loopback or private webhook destinations, no default password,
    /// and `TEST_MODE` refused.
    #[arg(
        long = "env",
        env = "PAYGATE_ENV",
        default_value = "development",
        global = true
    )]
    pub paygate_env: String,
    /// The same as `PAYGATE_ENV=production`.
    #[arg(long, global = true)]
    pub production: bool,
    /// Deterministic test mode: fixed delay and outcome [default: false].
    #[arg(long, env = "TEST_MODE", value_parser = BoolishValueParser::new(), action = ArgAction::Set, global = true)]
    pub test_mode: Option<bool>,
    /// Outcome of payments in test mode: success unless "false".
    #[arg(
        long,
        env = "TEST_PAYMENT_SUCCESS",
        default_value = "true",
        global = true
    )]
    pub test_payment_success: String,
    /// Processing delay in test mode, ms.
    #[arg(
        long,
        env = "TEST_PROCESSING_DELAY",
        default_value_t = 1000,
        global = true
    )]
    pub test_processing_delay: u64,
    /// How long a UPI intent or QR payment waits for the customer's approval before it fails
    /// with `PAYMENT_EXPIRED`, seconds.
    #[arg(
        long,
        env = "UPI_INTENT_EXPIRY_SECONDS",
        default_value_t = 300,
        global = true
    )]
    pub upi_intent_expiry_seconds: u64,
    /// Use the short webhook retry schedule (5, 10, 15, 20 s).
    #[arg(long, env = "WEBHOOK_RETRY_INTERVALS_TEST", default_value = "false", value_parser = BoolishValueParser::new(), action = ArgAction::Set, global = true)]
    pub webhook_retry_intervals_test: bool,
    /// Delays before webhook attempts 1–5 in ms, comma-separated (overrides the schedule;
    /// for tests and experiments).
    #[arg(long, env = "WEBHOOK_RETRY_SCHEDULE", global = true)]
    pub webhook_retry_schedule: Option<String>,
    /// Allow webhook destinations on loopback addresses [default: true; false in production].
    #[arg(long, env = "WEBHOOK_ALLOW_LOOPBACK", value_parser = BoolishValueParser::new(), action = ArgAction::Set, global = true)]
    pub webhook_allow_loopback: Option<bool>,
    /// Allow webhook destinations on private networks (10/8, 172.16/12, 192.168/16, fc00::/7,
    /// 100.64/10) [default: false].
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE", value_parser = BoolishValueParser::new(), action = ArgAction::Set, global = true)]
    pub webhook_allow_private: Option<bool>,
    /// Jobs one worker process runs at once.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 256, global = true)]
    pub worker_concurrency: usize,
    /// How long a claimed job stays reserved for its worker without a heartbeat, ms; a job of
    /// a worker that died runs again after this.
    #[arg(long, env = "JOB_LEASE_MS", default_value_t = 15000, global = true)]
    pub job_lease_ms: u64,
    /// How long a stopping process waits for in-flight jobs and requests, ms.
    #[arg(
        long,
        env = "SHUTDOWN_TIMEOUT_MS",
        default_value_t = 30000,
        global = true
    )]
    pub shutdown_timeout_ms: u64,
    /// The test merchant's dashboard password (set when it has none).
    #[arg(
        long,
        env = "TEST_MERCHANT_PASSWORD",
        default_value = "password123",
        global = true
    )]
    pub test_merchant_password: String,
    /// Seed the test merchant at start [default: true; false in production].
    #[arg(long, env = "SEED_TEST_MERCHANT", value_parser = BoolishValueParser::new(), action = ArgAction::Set, global = true)]
    pub seed_test_merchant: Option<bool>,
    /// Serve `/api/v1/test/*` and the demo shop [default: true; false in production].
    #[arg(long, env = "TEST_ENDPOINTS", value_parser = BoolishValueParser::new(), action = ArgAction::Set, global = true)]
    pub test_endpoints: Option<bool>,
    /// A request whose `Idempotency-Key` has been `running` this long, ms, is taken to belong
    /// to a process that died, and the key is taken over.
    #[arg(
        long,
        env = "IDEMPOTENCY_TAKEOVER_MS",
        default_value_t = 60000,
        global = true
    )]
    pub idempotency_takeover_ms: u64,
    /// Test hook (refused in production): `after-claim:MS` holds every request with an
    /// `Idempotency-Key` that long after claiming the key, `before-response:MS` after its
    /// change committed and before it answers, so a test can kill the process there.
    #[arg(long, env = "TEST_FAULT_PAUSE", global = true, hide = true)]
    pub test_fault_pause: Option<String>,
    /// Requests per second each API key may make (a token bucket refilled at this rate); 0
    /// turns the limit off.
    #[arg(
        long,
        env = "RATE_LIMIT_PER_SECOND",
        default_value_t = 0,
        global = true
    )]
    pub rate_limit_per_second: u32,
    /// Requests an API key may make at once above its rate (the bucket's size; at least the
    /// rate when smaller).
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 0, global = true)]
    pub rate_limit_burst: u32,
    /// Requests per second each client address may make to the checkout's public endpoints
    /// (`/api/v1/orders/{id}/public`, `/api/v1/payments/public`, `/api/v1/payments/{id}/public`,
    /// on the API and checkout ports); 0 turns the limit off.
    #[arg(
        long,
        env = "CHECKOUT_RATE_LIMIT_PER_SECOND",
        default_value_t = 0,
        global = true
    )]
    pub checkout_rate_limit_per_second: u32,
    /// Requests a client address may make at once above its rate (at least the rate).
    #[arg(
        long,
        env = "CHECKOUT_RATE_LIMIT_BURST",
        default_value_t = 0,
        global = true
    )]
    pub checkout_rate_limit_burst: u32,
    /// The most webhook endpoints a merchant may have (besides its default webhook URL).
    #[arg(
        long,
        env = "WEBHOOK_ENDPOINTS_MAX",
        default_value_t = 16,
        global = true
    )]
    pub webhook_endpoints_max: u32,
    /// Seconds every attempt to a webhook endpoint may fail before the endpoint is disabled
    /// (default 5 days).
    #[arg(
        long,
        env = "WEBHOOK_ENDPOINT_DISABLE_AFTER",
        default_value_t = 432_000,
        global = true
    )]
    pub webhook_endpoint_disable_after: u64,
    /// Webhook attempts in flight at once per destination (an endpoint, or a merchant's
    /// webhook URL) in each worker process, to start with: the limit then adapts to the
    /// destination's answers; more wait their turn without holding a slot.
    #[arg(
        long,
        env = "WEBHOOK_ENDPOINT_CONCURRENCY",
        default_value_t = 16,
        global = true
    )]
    pub webhook_endpoint_concurrency: usize,
    /// The most webhook attempts in flight at once per destination in each worker process,
    /// however well it answers (raised to `WEBHOOK_ENDPOINT_CONCURRENCY` when below it).
    #[arg(
        long,
        env = "WEBHOOK_ENDPOINT_MAX_CONCURRENCY",
        default_value_t = 256,
        global = true
    )]
    pub webhook_endpoint_max_concurrency: usize,
    /// How often each process records that it is alive, ms.
    #[arg(
        long,
        env = "PROCESS_HEARTBEAT_MS",
        default_value_t = 1000,
        global = true
    )]
    pub process_heartbeat_ms: u64,
    /// How long a process may stay silent before it counts as dead and what it held (jobs,
    /// idempotency keys, processor leases) is freed, ms.
    #[arg(
        long,
        env = "PROCESS_DEAD_AFTER_MS",
        default_value_t = 5000,
        global = true
    )]
    pub process_dead_after_ms: u64,
    /// Deliveries waiting in a worker's memory for one destination's lanes; more stay in the
    /// store until it drains.
    #[arg(
        long,
        env = "WEBHOOK_ENDPOINT_QUEUE",
        default_value_t = 1000,
        global = true
    )]
    pub webhook_endpoint_queue: usize,
    /// Write batches of each kind (payments, orders) in flight at once, each on its own
    /// connection (more measured slower on two cores: docs/BENCHMARKS.md, "Write lanes").
    #[arg(long, env = "WRITE_LANES", default_value_t = 1, global = true)]
    pub write_lanes: usize,
    /// The most deliveries a merchant's webhook replays may queue in 24 hours.
    #[arg(
        long,
        env = "WEBHOOK_REPLAY_DAILY_MAX",
        default_value_t = 100_000,
        global = true
    )]
    pub webhook_replay_daily_max: u32,
    /// The dashboard's accounts: the secret key, mail.
    #[command(flatten)]
    pub accounts: AccountSettings,
    /// When set, `GET /metrics` and the queue status require `Authorization: Bearer <this token>`
    /// (without it they are open in development and closed in production).
    #[arg(long, env = "METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// How long a captured payment or a processed refund waits before it is settled: seconds,
    /// or a number with `s`, `m`, `h` or `d` [default: 2d; 5s in test mode].
    #[arg(long, env = "SETTLEMENT_DELAY", global = true)]
    pub settlement_delay: Option<String>,
    /// How often the worker settles what is due, in the same form; `0` turns the worker's
    /// settling off (settle with `paygate processor settle`) [default: 1h; 5s in test mode].
    #[arg(long, env = "SETTLEMENT_INTERVAL", global = true)]
    pub settlement_interval: Option<String>,
    /// Probability that the simulated bank refuses a settlement's transfer (0..1); a refused
    /// one is `failed` and retried at the next cycle.
    #[arg(
        long,
        env = "PAYOUT_FAILURE_RATE",
        default_value_t = 0.0,
        global = true
    )]
    pub payout_failure_rate: f64,
}

/// A comma-separated list of addresses and networks (`10.0.0.0/8, 127.0.0.1`).
pub fn parse_networks(name: &str, list: &str) -> Result<Vec<ipnet::IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{name}: {item:?} is not an address or a network"))
        })
        .collect()
}

/// Which defaults and limits apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    /// Friendly local defaults: the test merchant, test endpoints, loopback webhooks.
    Development,
    /// The production posture (`PAYGATE_ENV=production`).
    Production,
}

/// Where a test may hold a request with an idempotency key (see `TEST_FAULT_PAUSE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// After the key is claimed, before the request runs.
    AfterClaim,
    /// After the request's change (and its stored response) committed, before it answers.
    BeforeResponse,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub environment: Environment,
    pub database_url: String,
    pub database_max_connections: u32,
    pub redis_url: Option<String>,
    pub redis_cluster: bool,
    pub redis_prefix: String,
    pub host: IpAddr,
    pub port: u16,
    pub dashboard_port: u16,
    pub worker_port: Option<u16>,
    pub checkout_port: u16,
    pub public_api_url: String,
    pub public_checkout_url: String,
    pub public_dashboard_url: String,
    /// Reverse proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub processing_delay: (Duration, Duration),
    pub upi_success_rate: f64,
    pub card_success_rate: f64,
    pub refund_delay: (Duration, Duration),
    pub test_mode: bool,
    pub test_payment_success: bool,
    pub test_processing_delay: Duration,
    pub upi_intent_expiry: Duration,
    pub webhook_retry_intervals_test: bool,
    /// Delays before webhook attempts 1–5.
    pub webhook_schedule: Vec<Duration>,
    pub webhook_allow_loopback: bool,
    pub webhook_allow_private: bool,
    pub worker_concurrency: usize,
    pub job_lease: Duration,
    pub shutdown_timeout: Duration,
    pub seed_test_merchant: bool,
    pub test_merchant_password: String,
    pub test_endpoints: bool,
    /// How long a `running` idempotency key is kept for its request.
    pub idempotency_takeover: Duration,
    /// The test hook of `TEST_FAULT_PAUSE`.
    pub fault_pause: Option<(FaultPoint, Duration)>,
    /// The SHA-256 (hex) of `METRICS_TOKEN`, when set (the token itself is not kept).
    pub metrics_token_digest: Option<String>,
    /// `PAYGATE_SECRET_KEY` (or the development key).
    pub secret_key: SecretKey,
    /// `SMTP_URL` and `SMTP_FROM`, when mail is configured.
    pub smtp: Option<(String, String)>,
    /// Per API key: requests per second and burst; `None` when off.
    pub rate_limit: Option<(u32, u32)>,
    /// Requests per second and burst per client address on the checkout's public endpoints.
    pub checkout_rate_limit: Option<(u32, u32)>,
    /// The most webhook endpoints a merchant may have.
    pub webhook_endpoints_max: u32,
    /// How long every attempt to an endpoint may fail before it is disabled.
    pub webhook_endpoint_disable_after: Duration,
    /// Webhook attempts in flight at once per destination, per worker process: the limit it
    /// starts at.
    pub webhook_endpoint_concurrency: usize,
    /// The most a destination's limit grows to.
    pub webhook_endpoint_max_concurrency: usize,
    /// Deliveries waiting in memory per destination.
    pub webhook_endpoint_queue: usize,
    /// The most deliveries a merchant's replays may queue in 24 hours.
    pub webhook_replay_daily_max: u32,
    /// Write batches of each kind in flight at once.
    pub write_lanes: usize,
    /// How often each process beats.
    pub process_heartbeat: Duration,
    /// How long a final transaction waits before it is settled.
    pub settlement_delay: Duration,
    /// How often the worker settles; zero: never (`paygate processor settle` does).
    pub settlement_interval: Duration,
    /// Probability that the simulated bank refuses a transfer.
    pub payout_failure_rate: f64,
    /// How long a process may stay silent before it counts as dead.
    pub process_dead_after: Duration,
}

/// The settings alone, for [`Config::from_args`].
#[derive(clap::Parser)]
struct SettingsOnly {
    #[command(flatten)]
    settings: Settings,
}

impl Config {
    /// Parses flags (and the environment, for flags not given) as the binary does; the first
    /// item is the program name. For tests and embedding.
    pub fn from_args<I, T>(args: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser as _;
        let parsed = SettingsOnly::try_parse_from(args).map_err(|e| e.to_string())?;
        Self::from_settings(parsed.settings)
    }

    /// Validates the settings; the error names the setting at fault.
    pub fn from_settings(s: Settings) -> Result<Self, String> {
        let environment = match (s.production, s.paygate_env.trim()) {
            (true, _) | (false, "production") => Environment::Production,
            (false, "development") => Environment::Development,
            (false, other) => {
                return Err(format!(
                    "PAYGATE_ENV must be development or production, got {other:?}"
                ));
            }
        };
        let production = environment == Environment::Production;
        // In production these must stay off: an explicit `true` is refused, not ignored.
        let off_in_production =
            |name: &str, value: Option<bool>, default: bool| match (production, value) {
                (true, Some(true)) => Err(format!(
                    "{name}=true is refused with PAYGATE_ENV=production"
                )),
                (true, _) => Ok(false),
                (false, v) => Ok(v.unwrap_or(default)),
            };
        let test_mode = off_in_production("TEST_MODE", s.test_mode, false)?;
        let seed_test_merchant =
            off_in_production("SEED_TEST_MERCHANT", s.seed_test_merchant, true)?;
        let test_endpoints = off_in_production("TEST_ENDPOINTS", s.test_endpoints, true)?;
        let webhook_allow_loopback =
            off_in_production("WEBHOOK_ALLOW_LOOPBACK", s.webhook_allow_loopback, true)?;
        // Private networks: allowed in development (a receiver on the compose network, say);
        // in production only when the operator sets it (receivers inside their own network).
        let webhook_allow_private = s.webhook_allow_private.unwrap_or(!production);
        let fault_pause = match &s.test_fault_pause {
            None => None,
            Some(_) if production => {
                return Err("TEST_FAULT_PAUSE is refused with PAYGATE_ENV=production".into());
            }
            Some(spec) => Some(parse_fault_pause(spec)?),
        };
        check_scheme(
            "DATABASE_URL",
            &s.database_url,
            &["sqlite:", "postgres:", "postgresql:"],
        )?;
        if let Some(urls) = &s.redis_url {
            for url in urls.split(',') {
                check_scheme("REDIS_URL", url.trim(), &["redis:", "rediss:"])?;
            }
            if !s.redis_cluster && urls.contains(',') {
                return Err("REDIS_URL lists several servers: set REDIS_CLUSTER=true".into());
            }
        }
        check_scheme("PUBLIC_API_URL", &s.public_api_url, &["http:", "https:"])?;
        check_scheme(
            "PUBLIC_CHECKOUT_URL",
            &s.public_checkout_url,
            &["http:", "https:"],
        )?;
        check_scheme(
            "PUBLIC_DASHBOARD_URL",
            &s.public_dashboard_url,
            &["http:", "https:"],
        )?;
        let trusted_proxies = parse_networks("TRUSTED_PROXIES", &s.trusted_proxies)?;
        let processing_delay = range(
            "PROCESSING_DELAY_MIN",
            "PROCESSING_DELAY_MAX",
            s.processing_delay_min,
            s.processing_delay_max,
        )?;
        let refund_delay = range(
            "REFUND_DELAY_MIN",
            "REFUND_DELAY_MAX",
            s.refund_delay_min,
            s.refund_delay_max,
        )?;
        rate("UPI_SUCCESS_RATE", s.upi_success_rate)?;
        rate("CARD_SUCCESS_RATE", s.card_success_rate)?;
        rate("PAYOUT_FAILURE_RATE", s.payout_failure_rate)?;
        let period = |name: &str, value: &Option<String>, default: &str, test: &str| {
            let value = value
                .as_deref()
                .unwrap_or(if test_mode { test } else { default });
            parse_period(value).ok_or_else(|| {
                format!("{name} must be seconds, or a number with s, m, h or d, got {value:?}")
            })
        };
        let settlement_delay = period("SETTLEMENT_DELAY", &s.settlement_delay, "2d", "5s")?;
        let settlement_interval =
            period("SETTLEMENT_INTERVAL", &s.settlement_interval, "1h", "5s")?;
        if !(1..=86_400).contains(&s.upi_intent_expiry_seconds) {
            return Err("UPI_INTENT_EXPIRY_SECONDS must be between 1 and 86400".into());
        }
        if s.redis_prefix.is_empty() || s.redis_prefix.contains(char::is_whitespace) {
            return Err("REDIS_PREFIX must be a non-empty word".into());
        }
        let webhook_schedule = match &s.webhook_retry_schedule {
            Some(list) => parse_schedule(list)?,
            None if s.webhook_retry_intervals_test => paygate_core::webhook::TEST_SCHEDULE.to_vec(),
            None => paygate_core::webhook::SCHEDULE.to_vec(),
        };
        if s.worker_concurrency == 0 {
            return Err("WORKER_CONCURRENCY must be at least 1".into());
        }
        if s.webhook_endpoint_concurrency == 0 {
            return Err("WEBHOOK_ENDPOINT_CONCURRENCY must be at least 1".into());
        }
        if s.process_heartbeat_ms < 50 || s.process_dead_after_ms < 2 * s.process_heartbeat_ms {
            return Err(
                "PROCESS_HEARTBEAT_MS must be at least 50 and PROCESS_DEAD_AFTER_MS at least twice it"
                    .into(),
            );
        }
        if s.webhook_endpoint_queue == 0 {
            return Err("WEBHOOK_ENDPOINT_QUEUE must be at least 1".into());
        }
        if s.write_lanes == 0 {
            return Err("WRITE_LANES must be at least 1".into());
        }
        if s.database_max_connections == 0 {
            return Err("DATABASE_MAX_CONNECTIONS must be at least 1".into());
        }
        if s.job_lease_ms < 300 {
            return Err("JOB_LEASE_MS must be at least 300".into());
        }
        Ok(Self {
            environment,
            database_url: s.database_url,
            database_max_connections: s.database_max_connections,
            redis_url: s.redis_url,
            redis_cluster: s.redis_cluster,
            redis_prefix: s.redis_prefix,
            host: s.host,
            port: s.port,
            worker_port: s.worker_port,
            dashboard_port: s.dashboard_port,
            checkout_port: s.checkout_port,
            public_api_url: s.public_api_url.trim_end_matches('/').to_owned(),
            public_checkout_url: s.public_checkout_url.trim_end_matches('/').to_owned(),
            public_dashboard_url: s.public_dashboard_url.trim_end_matches('/').to_owned(),
            trusted_proxies,
            processing_delay,
            upi_success_rate: s.upi_success_rate,
            card_success_rate: s.card_success_rate,
            refund_delay,
            test_mode,
            test_payment_success: s.test_payment_success.trim() != "false",
            test_processing_delay: Duration::from_millis(s.test_processing_delay),
            upi_intent_expiry: Duration::from_secs(s.upi_intent_expiry_seconds),
            webhook_retry_intervals_test: s.webhook_retry_intervals_test,
            webhook_schedule,
            webhook_allow_loopback,
            webhook_allow_private,
            worker_concurrency: s.worker_concurrency,
            job_lease: Duration::from_millis(s.job_lease_ms),
            shutdown_timeout: Duration::from_millis(s.shutdown_timeout_ms),
            seed_test_merchant,
            test_merchant_password: s.test_merchant_password,
            test_endpoints,
            idempotency_takeover: Duration::from_millis(s.idempotency_takeover_ms),
            fault_pause,
            rate_limit: (s.rate_limit_per_second > 0).then(|| {
                let rate = s.rate_limit_per_second;
                (rate, s.rate_limit_burst.max(rate))
            }),
            webhook_endpoints_max: s.webhook_endpoints_max,
            webhook_endpoint_concurrency: s.webhook_endpoint_concurrency,
            webhook_endpoint_max_concurrency: s
                .webhook_endpoint_max_concurrency
                .max(s.webhook_endpoint_concurrency),
            webhook_endpoint_queue: s.webhook_endpoint_queue,
            webhook_replay_daily_max: s.webhook_replay_daily_max,
            write_lanes: s.write_lanes,
            process_heartbeat: Duration::from_millis(s.process_heartbeat_ms),
            settlement_delay,
            settlement_interval,
            payout_failure_rate: s.payout_failure_rate,
            process_dead_after: Duration::from_millis(s.process_dead_after_ms),
            webhook_endpoint_disable_after: Duration::from_secs(s.webhook_endpoint_disable_after),
            checkout_rate_limit: (s.checkout_rate_limit_per_second > 0).then(|| {
                let rate = s.checkout_rate_limit_per_second;
                (rate, s.checkout_rate_limit_burst.max(rate))
            }),
            secret_key: SecretKey::from_setting(s.accounts.secret_key.as_deref(), production)?,
            smtp: s.accounts.smtp(),
            metrics_token_digest: s
                .metrics_token
                .filter(|t| !t.is_empty())
                .map(|t| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t.as_bytes()))),
        })
    }

    /// How long a run may take to ask the processor about one payment or refund: the slowest
    /// simulated answer plus a job lease. A second run waits this long before asking again.
    pub fn processor_call_lease(&self) -> Duration {
        self.slowest_answer() + self.job_lease
    }

    /// How long a run waits for the processor's answer before giving up on the call (it is
    /// asked again, with the same idempotency key): within the call's lease.
    pub fn processor_call_timeout(&self) -> Duration {
        self.slowest_answer() + self.job_lease / 2
    }

    fn slowest_answer(&self) -> Duration {
        if self.test_mode {
            self.test_processing_delay
        } else {
            self.processing_delay.1.max(self.refund_delay.1)
        }
    }

    /// The effective posture in one line, for the start-up log.
    pub fn posture(&self) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        let destinations = match (self.webhook_allow_loopback, self.webhook_allow_private) {
            (false, false) => "public only",
            (true, false) => "public and loopback",
            (false, true) => "public and private",
            (true, true) => "public, loopback and private",
        };
        format!(
            "{} posture: test merchant {}, /api/v1/test/* {}, test mode {}, webhook destinations {}, database {}, queue {}",
            match self.environment {
                Environment::Production => "production",
                Environment::Development => "development",
            },
            on(self.seed_test_merchant),
            on(self.test_endpoints),
            on(self.test_mode),
            destinations,
            self.database_url.split(':').next().unwrap_or_default(),
            if self.redis_url.is_some() {
                "redis"
            } else {
                "embedded"
            },
        )
    }
}

fn parse_fault_pause(spec: &str) -> Result<(FaultPoint, Duration), String> {
    let parsed = spec.split_once(':').and_then(|(point, ms)| {
        let point = match point {
            "after-claim" => FaultPoint::AfterClaim,
            "before-response" => FaultPoint::BeforeResponse,
            _ => return None,
        };
        Some((point, Duration::from_millis(ms.parse().ok()?)))
    });
    parsed.ok_or_else(|| {
        format!("TEST_FAULT_PAUSE must be after-claim:MS or before-response:MS, got {spec:?}")
    })
}

fn check_scheme(name: &str, value: &str, schemes: &[&str]) -> Result<(), String> {
    if schemes.iter().any(|s| value.starts_with(s)) {
        Ok(())
    } else {
        Err(format!(
            "{name} must start with one of {}, got {:?}",
            schemes.join(" "),
            value.split(':').next().unwrap_or_default()
        ))
    }
}

fn range(
    min_name: &str,
    max_name: &str,
    min: u64,
    max: u64,
) -> Result<(Duration, Duration), String> {
    if min > max {
        return Err(format!(
            "{min_name} ({min}) must not exceed {max_name} ({max})"
        ));
    }
    Ok((Duration::from_millis(min), Duration::from_millis(max)))
}

fn parse_schedule(list: &str) -> Result<Vec<Duration>, String> {
    let delays: Result<Vec<Duration>, _> = list
        .split(',')
        .map(|ms| ms.trim().parse::<u64>().map(Duration::from_millis))
        .collect();
    match delays {
        Ok(d) if d.len() == paygate_core::webhook::MAX_ATTEMPTS as usize => Ok(d),
        _ => Err(format!(
            "WEBHOOK_RETRY_SCHEDULE must be {} comma-separated millisecond delays, got {list:?}",
            paygate_core::webhook::MAX_ATTEMPTS
        )),
    }
}

/// `90`, `90s`, `15m`, `1h` or `2d` (at most 3,650 days).
fn parse_period(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (digits, unit) = match value.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&value[..i], c),
        _ => (value, 's'),
    };
    let n: u64 = digits.parse().ok()?;
    let seconds = n.checked_mul(match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    })?;
    (seconds <= 3650 * 86_400).then(|| Duration::from_secs(seconds))
}

fn rate(name: &str, value: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(format!("{name} must be between 0 and 1, got {value}"))
    }
}

#[cfg(test)]
mod tests;
