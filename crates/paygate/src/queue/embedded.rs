//! The embedded queue: jobs are rows of the `jobs` table in the application's own database,
//! written in the same transaction as the work they carry, so a committed payment always has
//! its job. Workers in this process are woken at once after commit; workers in other
//! processes by PostgreSQL `LISTEN/NOTIFY`, or on SQLite by a short poll.
//!
//! A claimed job is leased to its worker (`locked_until`); the worker's heartbeat extends the
//! lease, so the jobs of a worker that died are claimed again once the lease runs out.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::{ClaimedJob, Counts, Existing, JobEnd, JobSpec, QUEUES, Queue};
use crate::batch::Batcher;
use crate::store::{Db, Store, Tx, jobs, now};

/// The PostgreSQL notification channel that announces new jobs (the payload names the queue).
const CHANNEL: &str = "paygate_jobs";

/// The embedded queue.
pub struct EmbeddedQueue {
    store: Store,
    /// One wake-up per queue, so each queue's workers wake only for their own work.
    wake: Arc<HashMap<&'static str, Notify>>,
    lease: Duration,
    /// Acknowledgements and reschedules, group-committed: one statement per batch.
    endings: Batcher<jobs::Ending, Result<(), String>>,
}

impl EmbeddedQueue {
    /// A queue over `store`, leasing claimed jobs for `lease`.
    pub fn new(store: Store, lease: Duration) -> Self {
        let wake: Arc<HashMap<&'static str, Notify>> =
            Arc::new(QUEUES.iter().map(|q| (*q, Notify::new())).collect());
        let (s, w) = (store.clone(), wake.clone());
        let endings = Batcher::new("job_end", 256, 1, move |rows: Vec<jobs::Ending>| {
            let (s, w) = (s.clone(), w.clone());
            async move {
                match jobs::end_all(&s, &rows, now()).await {
                    Ok(requeued) => {
                        // Enqueued again while they ran (a manual retry): due now.
                        for q in requeued {
                            if let Some(n) = w.get(q.as_str()) {
                                n.notify_one();
                            }
                        }
                        rows.iter().map(|_| Ok(())).collect()
                    }
                    Err(e) => rows.iter().map(|_| Err(e.to_string())).collect(),
                }
            }
        });
        Self {
            store,
            wake,
            lease,
            endings,
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
                            while let Ok(n) = listener.recv().await {
                                if let Some(w) = wake.get(n.payload()) {
                                    w.notify_one();
                                }
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

    fn notify(&self, jobs: &[JobSpec]) {
        for q in QUEUES {
            if jobs.iter().any(|j| j.queue == *q)
                && let Some(w) = self.wake.get(q)
            {
                w.notify_one();
            }
        }
    }
}

/// Stages `jobs` in `tx`: one statement for each way of treating an existing job.
async fn upsert_all(tx: &mut Tx, jobs: &[JobSpec]) -> Result<usize, sqlx::Error> {
    let at = now();
    let ids: Vec<String> = jobs.iter().map(JobSpec::id).collect();
    let mut queued = 0;
    for existing in Existing::ALL {
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<jobs::JobRow<'_>> = jobs
            .iter()
            .zip(&ids)
            .filter(|(j, id)| j.existing == existing && seen.insert(id.as_str()))
            .map(|(j, id)| jobs::JobRow {
                id,
                queue: j.queue,
                resource_id: &j.resource_id,
                run_at: j.run_at,
                now: at,
            })
            .collect();
        if !rows.is_empty() {
            queued += jobs::upsert(tx, &rows, existing, Some(CHANNEL)).await?;
        }
    }
    Ok(queued)
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn stage(&self, tx: &mut Tx, jobs: &[JobSpec]) -> Result<(), sqlx::Error> {
        upsert_all(tx, jobs).await?;
        Ok(())
    }

    async fn dispatch(&self, jobs: &[JobSpec]) {
        self.notify(jobs);
    }

    async fn enqueue(&self, jobs: &[JobSpec]) -> anyhow::Result<usize> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin().await?;
        let queued = upsert_all(&mut tx, jobs).await?;
        tx.commit().await?;
        if queued > 0 {
            self.notify(jobs);
        }
        Ok(queued)
    }

    async fn claim(
        &self,
        worker: &str,
        queue: &'static str,
        max: usize,
    ) -> anyhow::Result<Vec<ClaimedJob>> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        Ok(jobs::claim(&self.store, worker, queue, limit, now(), self.lease_until()).await?)
    }

    async fn end(&self, worker: &str, job: &ClaimedJob, end: JobEnd<'_>) -> anyhow::Result<()> {
        let (again_at, error) = match end {
            JobEnd::Done => (None, None),
            JobEnd::Retry { run_at, error } => (Some(run_at), Some(error.to_owned())),
        };
        let ending = jobs::Ending {
            id: job.id.clone(),
            worker: worker.to_owned(),
            again_at,
            error,
        };
        self.endings
            .submit(ending)
            .await
            .unwrap_or_else(|| Err("the queue stopped".into()))
            .map_err(anyhow::Error::msg)
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

    async fn wait(&self, queue: &'static str, timeout: Duration) {
        match self.wake.get(queue) {
            Some(w) => {
                let _ = tokio::time::timeout(timeout, w.notified()).await;
            }
            None => tokio::time::sleep(timeout).await,
        }
    }

    async fn counts(&self, queue: Option<&str>) -> anyhow::Result<Counts> {
        Ok(jobs::counts(&self.store, queue).await?)
    }

    async fn depth(&self, queue: &'static str) -> anyhow::Result<(i64, i64)> {
        Ok(jobs::depth(&self.store, queue, super::DEPTH_CAP).await?)
    }

    async fn oldest_due(&self, queue: &'static str) -> anyhow::Result<Option<DateTime<Utc>>> {
        Ok(jobs::oldest_due(&self.store, queue, now()).await?)
    }

    async fn live_workers(&self) -> anyhow::Result<i64> {
        Ok(jobs::live_workers(&self.store, now() - self.lease).await?)
    }
}
