//! Load generators for paygate's benchmarks (see `bench/README.md`).

mod api;
mod chaos;
mod queue;
mod receiver;
mod recovery;
mod webhooks;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create orders, then pay them, against a running gateway.
    Api(api::ApiArgs),
    /// Jobs end to end through a queue backend, in process.
    Queue(queue::QueueArgs),
    /// Webhook deliveries to a receiver in another process.
    Webhooks(webhooks::WebhookArgs),
    /// The webhook receiver the `webhooks` benchmark delivers to.
    Receiver(receiver::ReceiverArgs),
    /// Crashes and how long recovery takes, against `paygate` processes.
    Recovery(recovery::RecoveryArgs),
    /// A soak under faults, then an audit of the books and the webhook logs.
    Chaos(chaos::ChaosArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // reqwest is built without a TLS crypto provider; the process installs one (as paygate does).
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Api(args) => api::run(args).await,
        Command::Queue(args) => queue::run(args).await,
        Command::Webhooks(args) => webhooks::run(args).await,
        Command::Receiver(args) => receiver::run(args).await,
        Command::Recovery(args) => recovery::run(args).await,
        Command::Chaos(args) => chaos::run(args).await,
    }
}
