//! The embedded queue: jobs are rows of the `jobs` table in the application's own database,
//! written in the same transaction as the work they carry, so a committed payment always has
//! its job. Workers in this process are woken at once after commit; workers in other
//! processes by PostgreSQL `LISTEN/NOTIFY`, or on SQLite by a short poll.
//!
//! A claimed job is leased to its worker (`locked_until`); the worker's heartbeat extends the
//! lease, so the jobs of a worker that died are claimed again once the lease runs out.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::{ClaimedJob, Counts, JobSpec, Queue};
use crate::store::{Db, Store, Tx, jobs, now};

/// The PostgreSQL notification channel that announces new jobs.
const CHANNEL: &str = "paygate_jobs";

/// The embedded queue.
pub struct EmbeddedQueue {
    store: Store,
    wake: Arc<Notify>,
    lease: Duration,
}

impl EmbeddedQueue {
    /// A queue over `store`, leasing claimed jobs for `lease`.
    pub fn new(store: Store, lease: Duration) -> Self {
        Self {
            store,
            wake: Arc::new(Notify::new()),
            lease,
        }
    }

    /// Starts forwarding PostgreSQL notifications to this process's workers (no-op on
    /// SQLite). The listener reconnects by itself.
    pub fn listen_for_other_processes(&self) {
        let Db::Postgres(pool) = &self.store.db else {
            return;
        };
        let pool = pool.clone();
        let wake = self.wake.clone();
        tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if listener.listen(CHANNEL).await.is_ok() {
                            while listener.recv().await.is_ok() {
                                wake.notify_one();
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "job listener cannot connect"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    fn lease_until(&self) -> DateTime<Utc> {
        now() + self.lease
    }
}

fn row<'a>(id: &'a str, job: &'a JobSpec) -> jobs::JobRow<'a> {
    jobs::JobRow {
        id,
        queue: job.queue,
        resource_id: &job.resource_id,
        run_at: job.run_at,
        now: now(),
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn stage(&self, tx: &mut Tx, job: &JobSpec) -> Result<(), sqlx::Error> {
        let id = job.id();
        jobs::upsert(tx, &row(&id, job), Some(CHANNEL)).await?;
        Ok(())
    }

    async fn dispatch(&self, jobs: &[JobSpec]) {
        if !jobs.is_empty() {
            self.wake.notify_one();
        }
    }

    async fn enqueue(&self, job: &JobSpec) -> anyhow::Result<bool> {
        let mut tx = self.store.begin().await?;
        let id = job.id();
        let queued = jobs::upsert(&mut tx, &row(&id, job), Some(CHANNEL)).await?;
        tx.commit().await?;
        if queued {
            self.wake.notify_one();
        }
        Ok(queued)
    }

    async fn claim(&self, worker: &str, max: usize) -> anyhow::Result<Vec<ClaimedJob>> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        Ok(jobs::claim(&self.store, worker, limit, now(), self.lease_until()).await?)
    }

    async fn complete(&self, worker: &str, job: &ClaimedJob) -> anyhow::Result<()> {
        Ok(jobs::complete(&self.store, &job.id, worker, now()).await?)
    }

    async fn retry(
        &self,
        worker: &str,
        job: &ClaimedJob,
        run_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> anyhow::Result<()> {
        Ok(jobs::reschedule(&self.store, &job.id, worker, run_at, error, now()).await?)
    }

    async fn heartbeat(&self, worker: &str, concurrency: usize) -> anyhow::Result<()> {
        let at = now();
        jobs::heartbeat(&self.store, worker, i64::try_from(concurrency)?, at).await?;
        jobs::extend_leases(&self.store, worker, self.lease_until()).await?;
        Ok(())
    }

    async fn release(&self, worker: &str) -> anyhow::Result<()> {
        let released = jobs::release(&self.store, worker, now()).await?;
        jobs::remove_worker(&self.store, worker, now() - self.lease * 4).await?;
        if released > 0 {
            tracing::info!(released, "unfinished jobs handed back to the queue");
        }
        Ok(())
    }

    async fn wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.wake.notified()).await;
    }

    async fn counts(&self, queue: Option<&str>) -> anyhow::Result<Counts> {
        Ok(jobs::counts(&self.store, queue).await?)
    }

    async fn live_workers(&self) -> anyhow::Result<i64> {
        Ok(jobs::live_workers(&self.store, now() - self.lease).await?)
    }
}
