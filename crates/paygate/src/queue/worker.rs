//! The worker: claims the jobs of each queue, runs each on its own task (up to
//! `WORKER_CONCURRENCY` per queue at once) through the handler registered for its queue,
//! acknowledges or retries them, beats its heartbeat, and runs the recovery sweep.
//!
//! The worker knows no service: the composition root registers a [`JobHandler`] per queue (the
//! payments, refunds and webhooks services). A handler holds no database connection while it
//! waits on the processor. A running job holds one of its queue's slots ([`Slot`]) until it
//! ends, unless its handler gives the slot back to wait for something no other job needs (a
//! webhook destination's free lane); before each claim the worker asks the queue's handler
//! whether it wants more work now ([`JobHandler::ready`]), so a handler holding waiting jobs
//! paces the claims. On shutdown the worker stops claiming, waits for in-flight jobs up to
//! the shutdown timeout, and hands back whatever is still unfinished (handlers are idempotent,
//! so a re-run is harmless).

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::{
    sync::{Semaphore, watch},
    task::JoinSet,
};

use super::{ClaimedJob, JobSpec, PAYMENTS, QUEUES, Queue, REFUNDS, WEBHOOKS};
use crate::store::{Store, now, payments::Payment, refunds::Refund, table::pending_before};

/// Largest number of jobs claimed in one round trip.
const CLAIM_BATCH: usize = 64;
/// Poll interval when nothing wakes the worker (jobs due later, other processes on SQLite).
const POLL: Duration = Duration::from_millis(250);
/// Pending resources of each kind one sweep looks at.
const SWEEP_BATCH: i64 = 500;
/// Pending resources of each kind queued again at most when the queue lost its jobs.
const EVERYTHING: i64 = 100_000;
/// Jobs enqueued in one round trip by the sweep.
const ENQUEUE_BATCH: usize = 100;
/// A job that failed this many times is marked failed.
const MAX_ATTEMPTS: i32 = 25;

/// What runs the jobs of one queue. Jobs are at-least-once: a handler must be idempotent.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Does the work for `resource_id`. `Ok(None)`: done; `Ok(Some(at))`: run again at `at`
    /// (a webhook's next attempt, a payment another run is processing); `Err`: failed, retried
    /// with backoff.
    async fn run(&self, resource_id: &str) -> anyhow::Result<Option<DateTime<Utc>>>;

    /// [`run`](Self::run), holding `slot`: a handler may give the slot back while it waits
    /// for something the queue's other jobs do not need, and should stop waiting when the
    /// worker stops ([`Slot::stopping`]).
    async fn run_in(
        &self,
        resource_id: &str,
        _slot: &mut Slot,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        self.run(resource_id).await
    }

    /// Resolves when the handler wants more jobs claimed; the worker claims nothing for the
    /// queue until then.
    async fn ready(&self) {}
}

/// Periodic work of the worker beside its queues (the payment links' expiry): run at each
/// recovery sweep, by the one worker holding the sweep's lease. A chore must be safe to run by
/// several workers at once all the same (a conditional update), since a lease can lapse.
#[async_trait]
pub trait Chore: Send + Sync + 'static {
    /// Does what is due now; returns how much it did.
    async fn run(&self) -> anyhow::Result<usize>;
}

/// The slot a running job holds: one of its queue's `WORKER_CONCURRENCY`.
pub struct Slot {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    shutdown: Option<watch::Receiver<bool>>,
}

impl Slot {
    /// A slot of no worker's (a job run outside the claim loop: tests, tools, a request).
    pub fn detached() -> Self {
        Self {
            permit: None,
            shutdown: None,
        }
    }

    /// Gives the slot back: the worker claims another job while this one goes on.
    pub fn release(&mut self) {
        self.permit = None;
    }

    /// Resolves once the worker is stopping (never for a detached slot).
    pub async fn stopping(&mut self) {
        match &mut self.shutdown {
            Some(shutdown) => stopped(shutdown).await,
            None => std::future::pending().await,
        }
    }
}

/// The handler of each queue.
pub type Handlers = HashMap<&'static str, Arc<dyn JobHandler>>;

/// How a worker runs.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Jobs of each queue run at once.
    pub concurrency: usize,
    /// How long a claimed job stays reserved without a heartbeat.
    pub lease: Duration,
    /// How long a stopping worker waits for its jobs.
    pub shutdown_timeout: Duration,
    /// How often the worker asks the queue whether it lost its jobs (`PROCESS_HEARTBEAT_MS`).
    pub check_every: Duration,
}

/// What one job run came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Finished.
    Done,
    /// Runs again at a time the handler chose.
    Later,
    /// Failed; retried with backoff.
    Retry,
}

/// A worker over a queue and the database it recovers from.
pub struct Worker {
    queue: Arc<dyn Queue>,
    store: Store,
    handlers: Handlers,
    chores: Vec<Arc<dyn Chore>>,
    settings: Settings,
    /// Where the sweep's last page of overdue webhook deliveries ended.
    sweep_cursor: std::sync::Mutex<Option<(DateTime<Utc>, String)>>,
}

impl Worker {
    /// A worker running `handlers`' queues.
    pub fn new(
        queue: Arc<dyn Queue>,
        store: Store,
        handlers: Handlers,
        settings: Settings,
    ) -> Self {
        Self {
            queue,
            store,
            handlers,
            settings,
            sweep_cursor: std::sync::Mutex::default(),
            chores: Vec::new(),
        }
    }

    /// The worker, doing `chore` at each sweep too.
    pub fn with_chore(mut self, chore: Arc<dyn Chore>) -> Self {
        self.chores.push(chore);
        self
    }

    /// Runs jobs until `shutdown` turns true, holding them as `id` (the process's id, so they
    /// are freed at once if it dies): one claim loop per queue, each with its own
    /// `WORKER_CONCURRENCY` slots, so a backlog in one queue (payments waiting seconds on the
    /// bank) never keeps a refund or a webhook waiting for a free slot.
    pub async fn run(
        self: Arc<Self>,
        id: String,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let concurrency = self.settings.concurrency;
        self.queue.heartbeat(&id, concurrency).await?;
        tracing::info!(worker = %id, concurrency, queues = ?QUEUES, "worker started");

        // Aborted with this future if the process is torn down without a graceful stop.
        let mut background = JoinSet::new();
        background.spawn(self.clone().heartbeat(id.clone(), shutdown.clone()));
        background.spawn(self.clone().sweep_loop(id.clone(), shutdown.clone()));
        background.spawn(self.clone().watch_queue(shutdown.clone()));
        let mut loops = JoinSet::new();
        for queue in QUEUES {
            loops.spawn(self.clone().queue_loop(id.clone(), queue, shutdown.clone()));
        }
        while loops.join_next().await.is_some() {}
        background.abort_all();
        self.queue.release(&id).await?;
        tracing::info!(worker = %id, "worker stopped");
        Ok(())
    }

    /// Claims and runs the jobs of one queue until `shutdown`, then finishes its in-flight
    /// jobs (up to the shutdown timeout) and aborts the rest (handed back by `release`).
    async fn queue_loop(
        self: Arc<Self>,
        id: String,
        queue: &'static str,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency));
        let handler = self.handlers.get(queue).cloned();
        let mut running = JoinSet::new();
        while !*shutdown.borrow() && shutdown.has_changed().is_ok() {
            while running.try_join_next().is_some() {}
            let free = permits.available_permits().min(CLAIM_BATCH);
            if free == 0 {
                // A slot frees when a job ends or its handler gives it back.
                tokio::select! {
                    _ = permits.acquire() => {}
                    _ = stopped(&mut shutdown) => {}
                }
                continue;
            }
            if let Some(handler) = &handler {
                tokio::select! {
                    () = handler.ready() => {}
                    _ = stopped(&mut shutdown) => continue,
                }
            }
            let jobs = match self.queue.claim(&id, queue, free).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(queue, error = %e, "claiming jobs failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if jobs.is_empty() {
                tokio::select! {
                    _ = self.queue.wait(queue, POLL) => {}
                    _ = stopped(&mut shutdown) => {}
                }
                continue;
            }
            for job in jobs {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let (worker, id) = (self.clone(), id.clone());
                let slot = Slot {
                    permit: Some(permit),
                    shutdown: Some(shutdown.clone()),
                };
                running.spawn(async move {
                    worker.handle_in(&id, &job, slot).await;
                });
            }
        }
        let timeout = self.settings.shutdown_timeout;
        let in_flight = running.len();
        if in_flight > 0 {
            tracing::info!(
                queue,
                in_flight,
                ?timeout,
                "worker stopping: finishing in-flight jobs"
            );
        }
        let drained = tokio::time::timeout(timeout, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                queue,
                left = running.len(),
                "shutdown timeout: handing unfinished jobs back"
            );
            running.abort_all();
        }
    }

    /// Claims due jobs once (up to 10 000 per queue) and runs them one after another; for
    /// tests and tools.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let id = format!("once-{}", uuid::Uuid::new_v4());
        let mut ran = 0;
        for queue in QUEUES {
            let jobs = self.queue.claim(&id, queue, 10_000).await?;
            for job in &jobs {
                self.handle(&id, job).await;
            }
            ran += jobs.len();
        }
        Ok(ran)
    }

    /// Runs one claimed job (held by `worker`) and acknowledges or reschedules it.
    pub async fn handle(&self, worker: &str, job: &ClaimedJob) -> Outcome {
        self.handle_in(worker, job, Slot::detached()).await
    }

    /// [`handle`](Self::handle) in `slot`, which is given back by the end at the latest.
    async fn handle_in(&self, worker: &str, job: &ClaimedJob, mut slot: Slot) -> Outcome {
        let started = std::time::Instant::now();
        let result = match self.handlers.get(job.queue.as_str()) {
            Some(handler) => handler.run_in(&job.resource_id, &mut slot).await,
            None => Err(anyhow::anyhow!("no handler for queue {}", job.queue)),
        };
        // The slot is free once the work is; acknowledging is batched and need not hold it.
        drop(slot);
        let outcome = match &result {
            Ok(None) => "done",
            Ok(Some(_)) => "later",
            Err(_) => "retry",
        };
        let labels = [
            ("queue", job.queue.clone()),
            ("outcome", outcome.to_owned()),
        ];
        metrics::counter!("paygate_jobs_total", &labels).increment(1);
        metrics::histogram!("paygate_job_duration_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(None) => {
                if let Err(e) = self.queue.complete(worker, job).await {
                    tracing::warn!(job = %job.id, error = %e, "acknowledging a job failed");
                }
                Outcome::Done
            }
            Ok(Some(at)) => {
                if let Err(e) = self
                    .queue
                    .retry(worker, job, Some(at), "next attempt scheduled")
                    .await
                {
                    tracing::warn!(job = %job.id, error = %e, "scheduling the next attempt failed");
                }
                Outcome::Later
            }
            Err(e) => {
                let run_at = (job.attempts < MAX_ATTEMPTS).then(|| now() + backoff(job.attempts));
                tracing::warn!(job = %job.id, attempts = job.attempts, error = %e, "job failed");
                if let Err(e) = self.queue.retry(worker, job, run_at, &e.to_string()).await {
                    tracing::warn!(job = %job.id, error = %e, "rescheduling a job failed");
                }
                Outcome::Retry
            }
        }
    }

    async fn heartbeat(self: Arc<Self>, id: String, mut shutdown: watch::Receiver<bool>) {
        let every = self.settings.lease / 3;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stopped(&mut shutdown) => return,
            }
            if let Err(e) = self.queue.heartbeat(&id, self.settings.concurrency).await {
                tracing::warn!(error = %e, "worker heartbeat failed");
            }
        }
    }

    /// Re-enqueues pending work that has no live job (a lost push, a flushed or restarted
    /// Redis). Every worker runs this loop, but a database lease lets one of them sweep per tick.
    async fn sweep_loop(self: Arc<Self>, worker: String, mut shutdown: watch::Receiver<bool>) {
        let every = sweep_interval(self.settings.lease);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stopped(&mut shutdown) => return,
            }
            let at = now();
            match crate::store::leases::acquire(
                &self.store,
                "recovery-sweep",
                &worker,
                at,
                at + every,
            )
            .await
            {
                Ok(true) => {
                    if let Err(e) = self.sweep().await {
                        tracing::warn!(error = %e, "recovery sweep failed");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "recovery sweep lease failed"),
            }
        }
    }

    /// Asks the queue every `check_every` whether it lost its jobs (a Redis flushed, or
    /// restarted without its data), and if so queues the database's pending work again at once
    /// rather than at the next sweep, a lease later.
    async fn watch_queue(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.queue.lost_jobs().await {
                Ok(false) => {}
                Ok(true) => match self.requeue_everything().await {
                    Ok(queued) => {
                        tracing::warn!(
                            queued,
                            "the queue lost its jobs: pending work queued again"
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, "queueing pending work again failed"),
                },
                // Not answering: asked again at the next tick.
                Err(_) => {}
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.check_every) => {}
                _ = stopped(&mut shutdown) => return,
            }
        }
    }

    /// Queues every pending payment, refund and due webhook delivery that has no live job,
    /// however recent. Returns how many jobs were queued.
    pub async fn requeue_everything(&self) -> anyhow::Result<usize> {
        let (store, at) = (&self.store, now());
        let mut due: Vec<JobSpec> = Vec::new();
        for id in pending_before::<Payment>(store, at, EVERYTHING).await? {
            due.push(JobSpec::now(PAYMENTS, id));
        }
        for id in pending_before::<Refund>(store, at, EVERYTHING).await? {
            due.push(JobSpec::now(REFUNDS, id));
        }
        let mut after = None;
        loop {
            let page =
                crate::store::webhooks::due_before(store, at, SWEEP_BATCH, after.as_ref()).await?;
            let full = page.len() == usize::try_from(SWEEP_BATCH).unwrap_or(usize::MAX);
            after = page.last().map(|(id, t)| (*t, id.clone()));
            due.extend(page.into_iter().map(|(id, t)| JobSpec::at(WEBHOOKS, id, t)));
            if !full || due.len() >= usize::try_from(EVERYTHING).unwrap_or(usize::MAX) {
                break;
            }
        }
        self.enqueue_kept(due).await
    }

    /// Enqueues `due` in batches, each only where no live job exists (held jobs keep their
    /// times). Returns how many were queued.
    async fn enqueue_kept(&self, mut due: Vec<JobSpec>) -> anyhow::Result<usize> {
        for job in &mut due {
            job.existing = super::Existing::Keep;
        }
        let mut queued = 0;
        for chunk in due.chunks(ENQUEUE_BATCH) {
            queued += self.queue.enqueue(chunk).await?;
        }
        Ok(queued)
    }

    /// One pass of the recovery sweep: does the chores first (a chore's failure is logged and
    /// stops nothing), then re-enqueues pending payments and refunds older than a lease, and
    /// webhook deliveries whose next attempt is more than a lease overdue, that have no live
    /// job, and purges expired idempotency keys and old completed jobs. Returns how many jobs it
    /// queued.
    pub async fn sweep(&self) -> anyhow::Result<usize> {
        // The chores first, each on its own: a failure elsewhere in the sweep delays none.
        for chore in &self.chores {
            if let Err(e) = chore.run().await {
                tracing::warn!(error = %e, "a worker chore failed");
            }
        }
        let at = now();
        let before = at - self.settings.lease;
        let store = &self.store;
        let mut due: Vec<JobSpec> = Vec::new();
        for id in pending_before::<Payment>(store, before, SWEEP_BATCH).await? {
            due.push(JobSpec::now(PAYMENTS, id));
        }
        for id in pending_before::<Refund>(store, before, SWEEP_BATCH).await? {
            due.push(JobSpec::now(REFUNDS, id));
        }
        // Overdue deliveries page by page, from where the last pass ended: ones that stay
        // overdue (a destination's backlog) do not hide the others.
        let after = self
            .sweep_cursor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let page =
            crate::store::webhooks::due_before(store, before, SWEEP_BATCH, after.as_ref()).await?;
        let next = (page.len() == usize::try_from(SWEEP_BATCH).unwrap_or(usize::MAX))
            .then(|| page.last().map(|(id, t)| (*t, id.clone())))
            .flatten();
        *self
            .sweep_cursor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        for (id, run_at) in page {
            due.push(JobSpec::at(WEBHOOKS, id, run_at));
        }
        // Only lost jobs are replaced: a job held back for later (a webhook delivery waiting
        // for its destination to drain) keeps its time. One round trip per batch.
        let queued = self.enqueue_kept(due).await?;
        if queued > 0 {
            tracing::info!(queued, "recovery sweep re-enqueued pending work");
        }
        crate::store::idempotency::purge_expired(store, at).await?;
        crate::store::jobs::purge_completed(store, at - chrono::Duration::days(1)).await?;
        Ok(queued)
    }
}

/// Exponential backoff from 1 s, capped at 60 s.
pub fn backoff(attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 7) - 1).unwrap_or(0);
    Duration::from_secs(2u64.pow(exp).min(60))
}

/// How often the recovery sweep runs: half a lease, between 0.5 s and 5 s.
pub fn sweep_interval(lease: Duration) -> Duration {
    (lease / 2).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

/// Resolves once `shutdown` is true or its sender is gone.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_and_caps_at_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
