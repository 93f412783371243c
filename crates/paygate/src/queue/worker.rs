//! The worker: claims the jobs of each queue, runs each on its own task (up to
//! `WORKER_CONCURRENCY` per queue at once), acknowledges or retries them, beats its heartbeat,
//! and runs the recovery sweep.
//!
//! A job handler holds no database connection while it waits on the processor. On shutdown
//! the worker stops claiming, waits for in-flight jobs up to the shutdown timeout, and hands
//! back whatever is still unfinished (handlers are idempotent, so a re-run is harmless).

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{Semaphore, watch},
    task::JoinSet,
};

use super::{ClaimedJob, JobSpec, PAYMENTS, QUEUES, REFUNDS, WEBHOOKS};
use crate::{app::App, payments, refunds, store::now, webhooks};

/// Largest number of jobs claimed in one round trip.
const CLAIM_BATCH: usize = 64;
/// Poll interval when nothing wakes the worker (jobs due later, other processes on SQLite).
const POLL: Duration = Duration::from_millis(250);
/// Pending resources of each kind one sweep looks at.
const SWEEP_BATCH: i64 = 500;
/// Jobs enqueued in one round trip by the sweep.
const ENQUEUE_BATCH: usize = 100;
/// A job that failed this many times is marked failed.
const MAX_ATTEMPTS: i32 = 25;

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

/// Runs jobs until `shutdown` turns true: one claim loop per queue, each with its own
/// `WORKER_CONCURRENCY` slots, so a backlog in one queue (payments waiting seconds on the
/// bank) never keeps a refund or a webhook waiting for a free slot.
pub async fn run(app: App, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let id = format!("worker-{}", uuid::Uuid::new_v4());
    let concurrency = app.config.worker_concurrency;
    app.queue.heartbeat(&id, concurrency).await?;
    tracing::info!(worker = %id, concurrency, queues = ?QUEUES, "worker started");

    // Aborted with this future if the process is torn down without a graceful stop.
    let mut background = JoinSet::new();
    background.spawn(heartbeat(app.clone(), id.clone(), shutdown.clone()));
    background.spawn(sweep_loop(app.clone(), id.clone(), shutdown.clone()));
    let mut loops = JoinSet::new();
    for queue in QUEUES {
        loops.spawn(queue_loop(app.clone(), id.clone(), queue, shutdown.clone()));
    }
    while loops.join_next().await.is_some() {}
    background.abort_all();
    app.queue.release(&id).await?;
    tracing::info!(worker = %id, "worker stopped");
    Ok(())
}

/// Claims and runs the jobs of one queue until `shutdown`, then finishes its in-flight jobs
/// (up to the shutdown timeout) and aborts the rest (handed back by `release`).
async fn queue_loop(
    app: App,
    id: String,
    queue: &'static str,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(app.config.worker_concurrency));
    let mut running = JoinSet::new();
    while !*shutdown.borrow() && shutdown.has_changed().is_ok() {
        while running.try_join_next().is_some() {}
        let free = permits.available_permits().min(CLAIM_BATCH);
        if free == 0 {
            tokio::select! {
                _ = running.join_next() => {}
                _ = stopped(&mut shutdown) => {}
            }
            continue;
        }
        let jobs = match app.queue.claim(&id, queue, free).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(queue, error = %e, "claiming jobs failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if jobs.is_empty() {
            tokio::select! {
                _ = app.queue.wait(queue, POLL) => {}
                _ = stopped(&mut shutdown) => {}
            }
            continue;
        }
        for job in jobs {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let (app, id) = (app.clone(), id.clone());
            running.spawn(async move {
                handle(&app, &id, &job).await;
                drop(permit);
            });
        }
    }
    let timeout = app.config.shutdown_timeout;
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

/// Claims due jobs once (up to 10 000 per queue) and runs them one after another; for tests
/// and tools.
pub async fn run_once(app: &App) -> anyhow::Result<usize> {
    let id = format!("once-{}", uuid::Uuid::new_v4());
    let mut ran = 0;
    for queue in QUEUES {
        let jobs = app.queue.claim(&id, queue, 10_000).await?;
        for job in &jobs {
            handle(app, &id, job).await;
        }
        ran += jobs.len();
    }
    Ok(ran)
}

/// Runs one claimed job and acknowledges or reschedules it.
pub async fn handle(app: &App, worker: &str, job: &ClaimedJob) -> Outcome {
    // Ok(None): done; Ok(Some(at)): run again at `at` (a webhook's next attempt).
    let result = match job.queue.as_str() {
        PAYMENTS => payments::service::process(app, &job.resource_id)
            .await
            .map(|p| match p {
                payments::service::Processed::Busy(until) => Some(until),
                _ => None,
            }),
        REFUNDS => refunds::process(app, &job.resource_id)
            .await
            .map(|p| match p {
                refunds::Processed::Busy(until) => Some(until),
                _ => None,
            }),
        WEBHOOKS => webhooks::deliver(app, &job.resource_id).await,
        other => Err(anyhow::anyhow!("no handler for queue {other}")),
    };
    match result {
        Ok(None) => {
            if let Err(e) = app.queue.complete(worker, job).await {
                tracing::warn!(job = %job.id, error = %e, "acknowledging a job failed");
            }
            Outcome::Done
        }
        Ok(Some(at)) => {
            if let Err(e) = app
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
            if let Err(e) = app.queue.retry(worker, job, run_at, &e.to_string()).await {
                tracing::warn!(job = %job.id, error = %e, "rescheduling a job failed");
            }
            Outcome::Retry
        }
    }
}

/// Exponential backoff from 1 s, capped at 60 s.
pub fn backoff(attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 7) - 1).unwrap_or(0);
    Duration::from_secs(2u64.pow(exp).min(60))
}

async fn heartbeat(app: App, id: String, mut shutdown: watch::Receiver<bool>) {
    let every = app.config.job_lease / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut shutdown) => return,
        }
        if let Err(e) = app
            .queue
            .heartbeat(&id, app.config.worker_concurrency)
            .await
        {
            tracing::warn!(error = %e, "worker heartbeat failed");
        }
    }
}

/// How often the recovery sweep runs: half a lease, between 0.5 s and 5 s.
pub fn sweep_interval(lease: Duration) -> Duration {
    (lease / 2).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

/// Re-enqueues pending payments that have no live job (a lost push, a flushed or restarted
/// Redis). Every worker runs this loop, but a database lease lets one of them sweep per tick.
async fn sweep_loop(app: App, worker: String, mut shutdown: watch::Receiver<bool>) {
    let every = sweep_interval(app.config.job_lease);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut shutdown) => return,
        }
        let at = now();
        match crate::store::leases::acquire(&app.store, "recovery-sweep", &worker, at, at + every)
            .await
        {
            Ok(true) => {
                if let Err(e) = sweep(&app).await {
                    tracing::warn!(error = %e, "recovery sweep failed");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "recovery sweep lease failed"),
        }
    }
}

/// Resolves once `shutdown` is true or its sender is gone.
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// One pass of the recovery sweep: re-enqueues pending payments and refunds older than a
/// lease, and webhook deliveries whose next attempt is more than a lease overdue, that have no
/// live job, and purges expired idempotency keys and old completed jobs.
/// Returns how many jobs it queued.
pub async fn sweep(app: &App) -> anyhow::Result<usize> {
    let at = now();
    let before = at - app.config.job_lease;
    let mut due: Vec<JobSpec> = Vec::new();
    for id in crate::store::payments::pending_before(&app.store, before, SWEEP_BATCH).await? {
        due.push(JobSpec::now(PAYMENTS, id));
    }
    for id in crate::store::refunds::pending_before(&app.store, before, SWEEP_BATCH).await? {
        due.push(JobSpec::now(REFUNDS, id));
    }
    for (id, run_at) in crate::store::webhooks::due_before(&app.store, before, SWEEP_BATCH).await? {
        due.push(JobSpec::at(WEBHOOKS, id, run_at));
    }
    // One round trip per batch, not per job.
    let mut queued = 0;
    for chunk in due.chunks(ENQUEUE_BATCH) {
        queued += app.queue.enqueue(chunk).await?;
    }
    if queued > 0 {
        tracing::info!(queued, "recovery sweep re-enqueued pending work");
    }
    crate::store::idempotency::purge_expired(&app.store, at).await?;
    crate::store::jobs::purge_completed(&app.store, at - chrono::Duration::days(1)).await?;
    Ok(queued)
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
