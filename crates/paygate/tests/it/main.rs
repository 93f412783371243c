//! paygate's integration tests: one binary, a module per resource. API tests run against
//! both database backends (see `helpers::every_backend!`).

mod helpers;

mod auth;
mod faults;
mod orders;
mod payments;
mod process;
mod processing;
mod validation;
