//! Job queues: the [`Queue`] trait, the embedded implementation, and the worker.
//!
//! Guarantees: the database is the source of truth and a queue only carries work the database
//! can re-derive. Jobs are at-least-once: a job may run twice (a worker dies after the state
//! change but before acknowledging), so every job handler is idempotent: it applies its state
//! change with a conditional update and does nothing when the change already happened.
//! Queues are named `payments`, `refunds` and `webhooks`; a job's id is `<queue>-<resource>`,
//! so enqueuing the same work twice yields one job.

pub mod embedded;
pub mod redis;
pub mod worker;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::store::Tx;
pub use crate::store::jobs::{ClaimedJob, Counts};

/// The payments queue.
pub const PAYMENTS: &str = "payments";
/// The refunds queue.
pub const REFUNDS: &str = "refunds";
/// The webhooks queue.
pub const WEBHOOKS: &str = "webhooks";
/// Every queue, in display order.
pub const QUEUES: &[&str] = &[PAYMENTS, REFUNDS, WEBHOOKS];

/// Work to be done on one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    pub queue: &'static str,
    pub resource_id: String,
    pub run_at: DateTime<Utc>,
}

impl JobSpec {
    /// Work to do now.
    pub fn now(queue: &'static str, resource_id: impl Into<String>) -> Self {
        Self {
            queue,
            resource_id: resource_id.into(),
            run_at: crate::store::now(),
        }
    }

    /// The job id: one job per queue and resource.
    pub fn id(&self) -> String {
        format!("{}-{}", self.queue, self.resource_id)
    }
}

/// A job queue backend.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Makes the job part of the transaction that creates its work, where the backend can
    /// (the embedded queue writes the job row); otherwise does nothing.
    async fn stage(&self, tx: &mut Tx, job: &JobSpec) -> Result<(), sqlx::Error>;
    /// After commit: hands staged jobs to the workers (wakes them, or pushes the jobs).
    async fn dispatch(&self, jobs: &[JobSpec]);
    /// Enqueues work outside any transaction (the recovery sweep); a no-op when a live job
    /// for the same work exists. Returns whether a job was queued.
    async fn enqueue(&self, job: &JobSpec) -> anyhow::Result<bool>;
    /// Claims up to `max` due jobs for `worker`, holding each for one lease.
    async fn claim(&self, worker: &str, max: usize) -> anyhow::Result<Vec<ClaimedJob>>;
    /// Acknowledges a finished job.
    async fn complete(&self, worker: &str, job: &ClaimedJob) -> anyhow::Result<()>;
    /// Returns a job for another attempt at `run_at`, or marks it failed when `None`.
    async fn retry(
        &self,
        worker: &str,
        job: &ClaimedJob,
        run_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> anyhow::Result<()>;
    /// Records that `worker` is alive and extends the leases of the jobs it holds.
    async fn heartbeat(&self, worker: &str, concurrency: usize) -> anyhow::Result<()>;
    /// A stopping worker hands back the jobs it still holds and leaves the registry.
    async fn release(&self, worker: &str) -> anyhow::Result<()>;
    /// Waits until new work may be due, at most `timeout`.
    async fn wait(&self, timeout: Duration);
    /// Job counts, for one queue or for all.
    async fn counts(&self, queue: Option<&str>) -> anyhow::Result<Counts>;
    /// How many workers sent a heartbeat recently.
    async fn live_workers(&self) -> anyhow::Result<i64>;
    /// Whether a queue server outside the database answers; `None` when there is none.
    async fn backend_healthy(&self) -> Option<bool> {
        None
    }
}
