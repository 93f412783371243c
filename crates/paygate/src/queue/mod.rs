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

pub use worker::JobHandler;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::store::Tx;
pub use crate::store::jobs::{ClaimedJob, Counts, Existing};

/// The payments queue.
pub const PAYMENTS: &str = "payments";
/// The refunds queue.
pub const REFUNDS: &str = "refunds";
/// The webhooks queue.
pub const WEBHOOKS: &str = "webhooks";
/// The most jobs [`Queue::depth`] counts in each state.
pub const DEPTH_CAP: i64 = 100_000;
/// Every queue, in display order.
pub const QUEUES: &[&str] = &[PAYMENTS, REFUNDS, WEBHOOKS];

/// Work to be done on one resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    pub queue: &'static str,
    pub resource_id: String,
    pub run_at: DateTime<Utc>,
    /// What enqueuing it does to a job of the same work that exists already.
    pub existing: Existing,
}

impl JobSpec {
    /// Work to do now.
    pub fn now(queue: &'static str, resource_id: impl Into<String>) -> Self {
        Self::at(queue, resource_id, crate::store::now())
    }

    /// Work to do at `run_at`.
    pub fn at(queue: &'static str, resource_id: impl Into<String>, run_at: DateTime<Utc>) -> Self {
        Self {
            queue,
            resource_id: resource_id.into(),
            run_at,
            existing: Existing::BringForward,
        }
    }

    /// The job id: one job per queue and resource.
    pub fn id(&self) -> String {
        format!("{}-{}", self.queue, self.resource_id)
    }
}

/// How a claimed job ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEnd<'a> {
    /// Finished: acknowledged.
    Done,
    /// Another attempt at `run_at`, or failed when `None`, with the error of this one.
    Retry {
        run_at: Option<DateTime<Utc>>,
        error: &'a str,
    },
}

/// A job queue backend. Each queue (`payments`, `refunds`, `webhooks`) is claimed on its own,
/// so the worker gives every queue its own slots and no backlog delays another queue.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Makes the jobs part of the transaction that creates their work, where the backend can
    /// (the embedded queue writes the job rows); otherwise does nothing.
    async fn stage(&self, tx: &mut Tx, jobs: &[JobSpec]) -> Result<(), sqlx::Error>;
    /// After commit: hands staged jobs to the workers (wakes them, or pushes the jobs).
    async fn dispatch(&self, jobs: &[JobSpec]);
    /// Enqueues work outside any transaction (the recovery sweep, in batches); a no-op for a
    /// job whose work already has a live job. Returns how many jobs were queued.
    async fn enqueue(&self, jobs: &[JobSpec]) -> anyhow::Result<usize>;
    /// Claims up to `max` due jobs of `queue` for `worker`, holding each for one lease.
    async fn claim(
        &self,
        worker: &str,
        queue: &'static str,
        max: usize,
    ) -> anyhow::Result<Vec<ClaimedJob>>;
    /// Ends a job `worker` claimed (only while it still holds it).
    async fn end(&self, worker: &str, job: &ClaimedJob, end: JobEnd<'_>) -> anyhow::Result<()>;
    /// Acknowledges a finished job.
    async fn complete(&self, worker: &str, job: &ClaimedJob) -> anyhow::Result<()> {
        self.end(worker, job, JobEnd::Done).await
    }
    /// Returns a job for another attempt at `run_at`, or marks it failed when `None`.
    async fn retry(
        &self,
        worker: &str,
        job: &ClaimedJob,
        run_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> anyhow::Result<()> {
        self.end(worker, job, JobEnd::Retry { run_at, error }).await
    }
    /// Records that `worker` is alive and extends the leases of the jobs it holds.
    async fn heartbeat(&self, worker: &str, concurrency: usize) -> anyhow::Result<()>;
    /// A stopping worker hands back the jobs it still holds and leaves the registry.
    async fn release(&self, worker: &str) -> anyhow::Result<()>;
    /// Waits until new work of `queue` may be due, at most `timeout`.
    async fn wait(&self, queue: &'static str, timeout: Duration);
    /// Job counts, for one queue or for all.
    async fn counts(&self, queue: Option<&str>) -> anyhow::Result<Counts>;
    /// Jobs of `queue` waiting (queued, due or not) and active, each counted up to
    /// [`DEPTH_CAP`]: what a metrics scrape reads, at a bounded cost whatever the history.
    async fn depth(&self, queue: &'static str) -> anyhow::Result<(i64, i64)> {
        let c = self.counts(Some(queue)).await?;
        Ok((c.queued.min(DEPTH_CAP), c.active.min(DEPTH_CAP)))
    }
    /// When the longest-waiting due job of `queue` became due; `None` when nothing is due.
    async fn oldest_due(&self, queue: &'static str) -> anyhow::Result<Option<DateTime<Utc>>>;
    /// How many workers sent a heartbeat recently.
    async fn live_workers(&self) -> anyhow::Result<i64>;
    /// Whether the queue lost its jobs since this was last asked (a queue server restarted
    /// without its data, or flushed): the database's pending work must be queued again now.
    /// Answers `true` to one caller per loss (and once at the first start of an empty server).
    async fn lost_jobs(&self) -> anyhow::Result<bool> {
        Ok(false)
    }
    /// Whether a queue server outside the database answers; `None` when there is none.
    async fn backend_healthy(&self) -> Option<bool> {
        None
    }
}
