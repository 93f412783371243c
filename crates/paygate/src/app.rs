//! The composition root: the only module that knows every other. It builds the store, the
//! queue and the connector from the configuration, the services over one [`Ctx`], the worker
//! with a handler per queue, the API's and the pages' states, and starts the listeners and the
//! worker of a process (`all`, `serve`, `worker`).

use std::{net::SocketAddr, ops::Deref, sync::Arc};

use anyhow::Context as _;
use axum::Router;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::liveness::Liveness;
use crate::{
    clock::Clock,
    config::Config,
    context::Ctx,
    http::{self, ApiParts, ApiSettings, ApiState},
    merchants::{self, CredentialCache},
    orders::Orders,
    pages::{self, PageSettings, PagesParts, PagesState},
    payment_links::{self, PaymentLinks},
    payments::service::{Payments, UpiSettings},
    processor::{CallLimits, Connector, SimulatedBank},
    queue::{
        self, JobHandler, Queue,
        embedded::EmbeddedQueue,
        redis::RedisQueue,
        worker::{self, Handlers, Worker},
    },
    refunds::Refunds,
    settlements::{self, Settlements},
    store::Store,
    webhooks::{
        self, Webhooks,
        client::{NetPolicy, WebhookClient},
    },
};

/// A process's parts, wired; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Inner>);

/// What an [`App`] holds.
pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub queue: Arc<dyn Queue>,
    pub orders: Arc<Orders>,
    pub payments: Arc<Payments>,
    pub payment_links: Arc<PaymentLinks>,
    pub refunds: Arc<Refunds>,
    pub settlements: Arc<Settlements>,
    pub webhooks: Arc<Webhooks>,
    pub worker: Arc<Worker>,
    /// This process's id: the owner of what it holds (see `liveness`).
    pub owner: Arc<str>,
    /// What the API's handlers see.
    pub api: ApiState,
    /// What the pages' handlers see.
    pub pages: PagesState,
    embedded: Option<Arc<EmbeddedQueue>>,
}

impl Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Which parts a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// API and worker.
    All,
    /// API only.
    Serve,
    /// Worker only.
    Worker,
}

impl App {
    /// Connects to the database, applies migrations and seeds the test merchant.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = Store::connect(&config.database_url, config.database_max_connections).await?;
        store.migrate().await.context("applying migrations")?;
        tracing::info!("{}", config.posture());
        if config.seed_test_merchant {
            if merchants::seed_test_merchant(&store).await? {
                tracing::info!("seeded the test merchant");
            }
            merchants::seed_test_password(&store, &config.test_merchant_password).await?;
        }
        if config.environment == crate::config::Environment::Production {
            let disabled = merchants::disable_seeded(&store).await?;
            if !disabled.is_empty() {
                tracing::warn!(
                    merchants = ?disabled,
                    "production: disabled merchants holding the public test credentials; \
                     `paygate merchant rotate-keys` with a merchant's id gives it new ones and enables it"
                );
            }
        }
        let bank = Arc::new(SimulatedBank::from_config(&config, store.clone()));
        Self::new(config, store, bank)
    }

    /// An app over a migrated store with the given connector (tests swap the bank).
    pub fn new(
        config: Config,
        store: Store,
        connector: Arc<dyn Connector>,
    ) -> anyhow::Result<Self> {
        let (queue, embedded): (Arc<dyn Queue>, _) = match &config.redis_url {
            Some(url) => {
                let redis = RedisQueue::new(
                    url,
                    config.redis_cluster,
                    &config.redis_prefix,
                    config.job_lease,
                )?;
                (Arc::new(redis), None)
            }
            None => {
                let embedded = Arc::new(EmbeddedQueue::new(store.clone(), config.job_lease));
                (embedded.clone(), Some(embedded))
            }
        };
        let owner: Arc<str> = Arc::from(Liveness::new_id());
        let ctx = Ctx {
            store: store.clone(),
            queue: queue.clone(),
            connector,
            clock: Clock::system(),
            owner: owner.clone(),
            write_lanes: config.write_lanes,
        };
        let client = WebhookClient::new(NetPolicy {
            allow_loopback: config.webhook_allow_loopback,
            allow_private: config.webhook_allow_private,
        })?;
        let limits = CallLimits {
            lease: config.processor_call_lease(),
            timeout: config.processor_call_timeout(),
        };
        let orders = Arc::new(Orders::new(ctx.clone()));
        let upi = UpiSettings {
            expiry: chrono::Duration::from_std(config.upi_intent_expiry)
                .unwrap_or(chrono::Duration::MAX),
            base_url: config.public_checkout_url.clone(),
            awaits_customer: config.test_mode,
        };
        let payments = Arc::new(Payments::new(ctx.clone(), limits, upi));
        let refunds = Arc::new(Refunds::new(ctx.clone(), limits));
        let payment_links = Arc::new(PaymentLinks::new(
            ctx.clone(),
            orders.clone(),
            &config.public_checkout_url,
        ));
        let settlements = Arc::new(Settlements::new(
            ctx.clone(),
            config.settlement_delay,
            !config.settlement_interval.is_zero(),
        ));
        let webhooks = Arc::new(
            Webhooks::new(ctx, client, config.webhook_schedule.clone())
                .with_max_endpoints(config.webhook_endpoints_max)
                .with_disable_after(config.webhook_endpoint_disable_after)
                .with_replay_daily_max(config.webhook_replay_daily_max)
                .with_lanes(webhooks::lanes::Settings {
                    start: config.webhook_endpoint_concurrency,
                    max: config.webhook_endpoint_max_concurrency,
                    queue: config.webhook_endpoint_queue,
                    pace: config.worker_concurrency,
                }),
        );
        let handlers: Handlers = [
            (queue::PAYMENTS, payments.clone() as Arc<dyn JobHandler>),
            (queue::REFUNDS, refunds.clone() as Arc<dyn JobHandler>),
            (queue::WEBHOOKS, webhooks.clone() as Arc<dyn JobHandler>),
        ]
        .into_iter()
        .collect();
        let mut worker = Worker::new(
            queue.clone(),
            store.clone(),
            handlers,
            worker::Settings {
                concurrency: config.worker_concurrency,
                lease: config.job_lease,
                shutdown_timeout: config.shutdown_timeout,
                check_every: config.process_heartbeat,
            },
        )
        .with_chore(Arc::new(payment_links::Expiry(payment_links.clone())));
        if !config.settlement_interval.is_zero() {
            worker = worker.with_chore(Arc::new(settlements::Cycler::new(
                settlements.clone(),
                config.settlement_interval,
            )));
        }
        let worker = Arc::new(worker);
        let credentials = Arc::new(CredentialCache::default());
        let api = ApiState::new(ApiParts {
            store: store.clone(),
            owner: owner.clone(),
            queue: queue.clone(),
            credentials: credentials.clone(),
            orders: orders.clone(),
            payments: payments.clone(),
            payment_links: payment_links.clone(),
            refunds: refunds.clone(),
            settlements: settlements.clone(),
            webhooks: webhooks.clone(),
            settings: ApiSettings {
                test_endpoints: config.test_endpoints,
                idempotency_takeover: config.idempotency_takeover,
                fault_pause: config.fault_pause,
                metrics_token_digest: config.metrics_token_digest.clone(),
                production: config.environment == crate::config::Environment::Production,
                trusted_proxies: http::forwarded::TrustedProxies::new(
                    config.trusted_proxies.clone(),
                ),
                rate_limits: config.rate_limit.and_then(|(rate, burst)| {
                    http::ratelimit::Limits::new(
                        http::ratelimit::Scope::ApiKey,
                        rate,
                        burst,
                        http::forwarded::TrustedProxies::default(),
                    )
                }),
                public_rate_limits: config.checkout_rate_limit.and_then(|(rate, burst)| {
                    http::ratelimit::Limits::new(
                        http::ratelimit::Scope::Address,
                        rate,
                        burst,
                        http::forwarded::TrustedProxies::new(config.trusted_proxies.clone()),
                    )
                }),
            },
        });
        let mailer = match &config.smtp {
            Some((url, from)) => {
                Some(crate::mail::Mailer::new(url, from).map_err(anyhow::Error::msg)?)
            }
            None => None,
        };
        let pages = PagesState::new(PagesParts {
            store: store.clone(),
            credentials,
            orders: orders.clone(),
            payments: payments.clone(),
            payment_links: payment_links.clone(),
            refunds: refunds.clone(),
            settlements: settlements.clone(),
            webhooks: webhooks.clone(),
            login_throttle: pages::dashboard::LoginThrottle::default(),
            mailer,
            settings: PageSettings {
                public_api_url: config.public_api_url.clone(),
                public_checkout_url: config.public_checkout_url.clone(),
                public_dashboard_url: config.public_dashboard_url.clone(),
                trusted_proxies: http::forwarded::TrustedProxies::new(
                    config.trusted_proxies.clone(),
                ),
                test_endpoints: config.test_endpoints,
                test_mode: config.test_mode,
                secret_key: config.secret_key.clone(),
            },
        });
        Ok(Self(Arc::new(Inner {
            config,
            store,
            queue,
            orders,
            payments,
            payment_links,
            refunds,
            settlements,
            webhooks,
            worker,
            owner,
            api,
            pages,
            embedded,
        })))
    }

    /// The routers of the three listeners: API, checkout, dashboard.
    fn routers(&self) -> [Router; 3] {
        let checkout =
            pages::checkout::router(self.pages.clone(), http::public_router(self.api.clone()))
                .merge(http::health_router(self.api.clone()));
        let (api, document) = http::api_router(self.api.clone());
        let dashboard = pages::dashboard::router(self.pages.clone(), document)
            .merge(http::health_router(self.api.clone()));
        [
            api,
            http::layers::common(checkout),
            http::layers::common(dashboard),
        ]
    }
}

/// A started process: its API address, and the means to stop it.
pub struct Running {
    pub api_addr: Option<SocketAddr>,
    pub checkout_addr: Option<SocketAddr>,
    pub dashboard_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
    liveness: Option<(Arc<Liveness>, tokio::task::JoinHandle<()>)>,
}

impl Running {
    /// Asks every part to stop (the same as SIGTERM).
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Waits for every part to finish; the first error wins.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        while let Some(joined) = self.tasks.join_next().await {
            let outcome = joined.map_err(anyhow::Error::from).and_then(|r| r);
            if result.is_ok() {
                result = outcome;
            }
        }
        // Every part stopped (the worker handed back its jobs): the process leaves.
        if let Some((liveness, beating)) = self.liveness.take() {
            let _ = beating.await;
            liveness.stop().await;
        }
        result
    }
}

/// Starts the parts of `mode`. The API listens on `HOST:PORT` (port 0 picks a free one).
pub async fn start(app: App, mode: Mode) -> anyhow::Result<Running> {
    let (shutdown, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let (mut api_addr, mut checkout_addr, mut dashboard_addr) = (None, None, None);
    // Every process records metrics (a worker's jobs too), whether or not it serves them.
    http::metrics::handle();
    let listeners = if mode == Mode::Worker {
        app.config
            .worker_port
            .map(|port| {
                let router = http::worker_router(app.api.clone());
                vec![("worker", "WORKER_PORT", port, router)]
            })
            .unwrap_or_default()
    } else {
        let [api, checkout, dashboard] = app.routers();
        vec![
            ("API", "PORT", app.config.port, api),
            (
                "checkout",
                "CHECKOUT_PORT",
                app.config.checkout_port,
                checkout,
            ),
            (
                "dashboard",
                "DASHBOARD_PORT",
                app.config.dashboard_port,
                dashboard,
            ),
        ]
    };
    {
        for (name, setting, port, router) in listeners {
            let addr = SocketAddr::new(app.config.host, port);
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (HOST, {setting})"))?;
            let bound = listener.local_addr()?;
            tracing::info!(addr = %bound, "{name} listening");
            match name {
                "API" | "worker" => api_addr = Some(bound),
                "checkout" => checkout_addr = Some(bound),
                _ => dashboard_addr = Some(bound),
            }
            let mut stop = stop_rx.clone();
            tasks.spawn(async move {
                // Handlers may read the client's address (the login throttle).
                let service = router.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, service)
                    .with_graceful_shutdown(async move { worker::stopped(&mut stop).await })
                    .await
                    .with_context(|| format!("{name} server failed"))
            });
        }
    }
    // The process beats, and frees at once what dead processes held (a previous incarnation
    // of this one first); it is forgotten once every other part has stopped.
    let kind = match mode {
        Mode::All => "all",
        Mode::Serve => "serve",
        Mode::Worker => "worker",
    };
    let liveness = Arc::new(Liveness::new(
        app.store.clone(),
        app.queue.clone(),
        (&app.owner, kind),
        app.config.process_heartbeat,
        app.config.process_dead_after,
    ));
    liveness.register().await?;
    let beating = tokio::spawn(liveness.clone().run(stop_rx.clone()));
    if mode != Mode::Serve {
        if let Some(embedded) = &app.embedded {
            embedded.listen_for_other_processes();
        }
        tasks.spawn(
            app.worker
                .clone()
                .run(app.owner.to_string(), stop_rx.clone()),
        );
    }
    Ok(Running {
        api_addr,
        checkout_addr,
        dashboard_addr,
        shutdown,
        tasks,
        liveness: Some((liveness, beating)),
    })
}

/// Runs `mode` until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run_until_signal(app: App, mode: Mode) -> anyhow::Result<()> {
    let running = start(app.clone(), mode).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop();
    let result = running.wait().await;
    app.store.close().await;
    result
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
