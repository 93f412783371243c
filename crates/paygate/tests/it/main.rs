//! paygate's integration tests: one binary, a module per resource. API tests run on SQLite,
//! on PostgreSQL, and on PostgreSQL + Redis (see `helpers::every_backend!`).

mod cluster;
mod helpers;

mod audit_log;
mod auth;
mod batching;
mod checkout;
mod deliveries;
mod endpoints;
mod fairness;
mod faults;
mod fees;
mod hardening;
mod idempotency;
mod lanes;
mod links;
mod liveness;
mod openapi;
mod operations;
mod orders;
mod payments;
mod preflight;
mod process;
mod processing;
mod production;
mod refunds;
mod rotation;
mod scale;
mod security;
mod settings;
mod settlements;
mod team;
mod two_factor;
mod upi;
mod validation;
mod webhooks;
