//! paygate: a self-hostable payment gateway. `main.rs` holds the command line; everything
//! else lives here so the integration tests drive the same code.

pub mod app;
pub mod audit;
pub mod batch;
pub mod clock;
pub mod config;
pub mod context;
pub mod http;
pub mod idempotent;
pub mod liveness;
pub mod mail;
pub mod merchants;
pub mod orders;
pub mod pages;
pub mod payment_links;
pub mod payments;
pub mod processor;
pub mod queue;
pub mod refunds;
pub mod settlements;
pub mod store;
pub mod views;
pub mod webhooks;
