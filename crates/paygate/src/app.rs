//! The application: configuration, store, queue and connector, and the processes built from
//! them (`all`, `serve`, `worker`).

use std::{net::SocketAddr, ops::Deref, sync::Arc};

use anyhow::Context as _;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::{
    config::Config,
    merchants,
    processor::{Connector, SimulatedBank},
    queue::{Queue, embedded::EmbeddedQueue, redis::RedisQueue, worker},
    store::Store,
    webhooks::client::{NetPolicy, WebhookClient},
};

/// Shared state of a running process; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Inner>);

/// What an [`App`] holds.
pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub queue: Arc<dyn Queue>,
    pub connector: Arc<dyn Connector>,
    pub credentials: merchants::CredentialCache,
    pub webhook_client: WebhookClient,
    pub login_throttle: crate::dashboard::LoginThrottle,
    /// The payments' group-committing writer.
    pub payment_writer: crate::payments::writes::Writer,
    /// The orders' group-committing writer.
    pub order_writer: crate::orders::Writer,
    /// The refunds' group-committing writer.
    pub refund_writer: crate::refunds::Writer,
    /// The webhook deliveries' group-committed reads and attempt records.
    pub delivery_writer: crate::webhooks::Writer,
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
            Some(url) => (
                Arc::new(RedisQueue::new(
                    url,
                    config.redis_cluster,
                    &config.redis_prefix,
                    config.job_lease,
                )?),
                None,
            ),
            None => {
                let embedded = Arc::new(EmbeddedQueue::new(store.clone(), config.job_lease));
                (embedded.clone(), Some(embedded))
            }
        };
        let webhook_client = WebhookClient::new(NetPolicy {
            allow_loopback: config.webhook_allow_loopback,
            allow_private: config.webhook_allow_private,
        })?;
        // One batch of each kind at a time: the next batch collects while one commits, so
        // batches grow with the load (measured: more lanes made smaller batches and less
        // throughput on both backends; SQLite has one writer anyway).
        let lanes = 1;
        let payment_writer =
            crate::payments::writes::Writer::new(store.clone(), queue.clone(), lanes);
        let order_writer = crate::orders::Writer::new(store.clone(), lanes);
        let refund_writer = crate::refunds::Writer::new(store.clone(), queue.clone(), lanes);
        let delivery_writer = crate::webhooks::Writer::new(store.clone(), lanes);
        Ok(Self(Arc::new(Inner {
            payment_writer,
            order_writer,
            refund_writer,
            delivery_writer,
            config,
            store,
            queue,
            connector,
            credentials: merchants::CredentialCache::default(),
            webhook_client,
            login_throttle: crate::dashboard::LoginThrottle::default(),
            embedded,
        })))
    }
}

/// A started process: its API address, and the means to stop it.
pub struct Running {
    pub api_addr: Option<SocketAddr>,
    pub checkout_addr: Option<SocketAddr>,
    pub dashboard_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
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
        result
    }
}

/// Starts the parts of `mode`. The API listens on `HOST:PORT` (port 0 picks a free one).
pub async fn start(app: App, mode: Mode) -> anyhow::Result<Running> {
    let (shutdown, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let (mut api_addr, mut checkout_addr, mut dashboard_addr) = (None, None, None);
    if mode != Mode::Worker {
        let listeners = [
            (
                "API",
                "PORT",
                app.config.port,
                crate::http::api_router(app.clone()),
            ),
            (
                "checkout",
                "CHECKOUT_PORT",
                app.config.checkout_port,
                crate::checkout::router(app.clone()),
            ),
            (
                "dashboard",
                "DASHBOARD_PORT",
                app.config.dashboard_port,
                crate::dashboard::router(app.clone()),
            ),
        ];
        for (name, setting, port, router) in listeners {
            let addr = SocketAddr::new(app.config.host, port);
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (HOST, {setting})"))?;
            let bound = listener.local_addr()?;
            tracing::info!(addr = %bound, "{name} listening");
            match name {
                "API" => api_addr = Some(bound),
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
    if mode != Mode::Serve {
        if let Some(embedded) = &app.embedded {
            embedded.listen_for_other_processes();
        }
        tasks.spawn(worker::run(app.clone(), stop_rx));
    }
    Ok(Running {
        api_addr,
        checkout_addr,
        dashboard_addr,
        shutdown,
        tasks,
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
