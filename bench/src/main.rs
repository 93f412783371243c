//! Load generators for paygate's benchmarks (see `bench/README.md`).

mod api;
mod queue;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Api(args) => api::run(args).await,
        Command::Queue(args) => queue::run(args).await,
    }
}
