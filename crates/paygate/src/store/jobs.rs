//! Rows of the embedded queue (`jobs`) and the worker registry (`workers`).
//!
//! A job is `queued` until a worker claims it (`active`, with a lease in `locked_until`), then
//! `completed`, or `queued` again with a later `run_at` for a retry, or `failed`. A lease that
//! runs out (its worker died) makes the job claimable again.

use chrono::{DateTime, Utc};

use super::{Db, Store, Tx, sql};

/// A claimed job.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: String,
    pub queue: String,
    pub resource_id: String,
    pub attempts: i32,
}

/// What enqueuing a job does when a job of the same work exists already (one job per queue
/// and resource).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Existing {
    /// Leaves it, but brings a job waiting for a later time forward to this one's.
    #[default]
    BringForward,
    /// Leaves it as it is, whatever its time: the recovery sweep only replaces lost jobs (a
    /// webhook delivery held back until its destination drains stays held back).
    Keep,
    /// As `BringForward`, and a job running now runs again once that run finishes: a manual
    /// retry must not be swallowed by an attempt that started before it.
    Again,
}

impl Existing {
    /// Every kind, for backends that enqueue each kind in a statement of its own.
    pub const ALL: [Self; 3] = [Self::BringForward, Self::Keep, Self::Again];
}

/// Job counts by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub queued: i64,
    pub active: i64,
    pub completed: i64,
    pub failed: i64,
}

/// Inserts queued jobs unless jobs with the same ids exist; an existing completed or failed
/// job with such an id is queued again. `existing` says what happens to a queued or running
/// one: a queued one due later is brought forward (unless [`Existing::Keep`]), and with
/// [`Existing::Again`] a job that is running now is marked to run again once it finishes.
/// Returns how many jobs this call queued (or marked). On PostgreSQL each queued job is
/// announced on `notify` with its queue's name (in the same statement), so listening workers
/// in other processes wake at commit.
pub async fn upsert(
    tx: &mut Tx,
    jobs: &[JobRow<'_>],
    existing: Existing,
    notify: Option<&'static str>,
) -> Result<usize, sqlx::Error> {
    let input = super::rows::Rows::new(jobs.len())
        .text("id", jobs.iter().map(|j| j.id.to_owned()))
        .text("queue", jobs.iter().map(|j| j.queue.to_owned()))
        .text("resource_id", jobs.iter().map(|j| j.resource_id.to_owned()))
        .time("run_at", jobs.iter().map(|j| j.run_at))
        .time("now", jobs.iter().map(|j| j.now));
    // (`WHERE true` keeps SQLite from reading the upsert's ON as the SELECT's join.)
    let insert = "INSERT INTO jobs (id, queue, resource_id, status, attempts, run_at, created_at, updated_at) \
                  SELECT id, queue, resource_id, 'queued', 0, run_at, now, now FROM v WHERE true";
    let on_conflict = match existing {
        Existing::Again => {
            " ON CONFLICT (id) DO UPDATE SET \
         status = CASE WHEN jobs.status = 'active' THEN 'active' ELSE 'queued' END, \
         attempts = CASE WHEN jobs.status = 'active' THEN jobs.attempts ELSE 0 END, \
         run_at = CASE WHEN jobs.status = 'active' THEN jobs.run_at ELSE excluded.run_at END, \
         requeue_at = CASE WHEN jobs.status = 'active' THEN excluded.run_at ELSE NULL END, \
         locked_by = CASE WHEN jobs.status = 'active' THEN jobs.locked_by ELSE NULL END, \
         locked_until = CASE WHEN jobs.status = 'active' THEN jobs.locked_until ELSE NULL END, \
         updated_at = excluded.updated_at \
         WHERE jobs.status IN ('completed', 'failed', 'active') \
         OR (jobs.status = 'queued' AND jobs.run_at > excluded.run_at) RETURNING queue"
        }
        Existing::BringForward => {
            " ON CONFLICT (id) DO UPDATE SET status = 'queued', attempts = 0, run_at = excluded.run_at, \
         locked_by = NULL, locked_until = NULL, requeue_at = NULL, updated_at = excluded.updated_at \
         WHERE jobs.status IN ('completed', 'failed') \
         OR (jobs.status = 'queued' AND jobs.run_at > excluded.run_at) RETURNING queue"
        }
        Existing::Keep => {
            " ON CONFLICT (id) DO UPDATE SET status = 'queued', attempts = 0, run_at = excluded.run_at, \
         locked_by = NULL, locked_until = NULL, requeue_at = NULL, updated_at = excluded.updated_at \
         WHERE jobs.status IN ('completed', 'failed') RETURNING queue"
        }
    };
    let statement = match (&*tx, notify) {
        // Listening workers in other processes wake at commit (one notification per queue:
        // PostgreSQL folds identical ones).
        (Tx::Postgres(_), Some(channel)) => format!(
            ", queued AS ({insert}{on_conflict}) SELECT pg_notify('{channel}', queue) AS queue FROM queued"
        ),
        _ => format!("{insert}{on_conflict}"),
    };
    // Counted, not read: the PostgreSQL form returns what `pg_notify` returns (void).
    let queued: Vec<()> = super::rows::fetch(tx, input, &statement).await?;
    Ok(queued.len())
}

/// A job to insert.
pub struct JobRow<'a> {
    pub id: &'a str,
    pub queue: &'a str,
    pub resource_id: &'a str,
    pub run_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// The claim statement of each backend (see [`claim`]): `$1` worker, `$2` lease end, `$3`
/// now, `$4` limit, `$5` queue. Each branch reads one part of the due set through
/// `jobs_queue_due_idx` (queue, status, run_at): the queue's queued jobs that are due, oldest
/// first, and its active jobs (those in flight, whose lease may have run out); the jobs done
/// are never read, however many there are.
pub const CLAIM_SQLITE: &str = "WITH queued AS (SELECT id, run_at FROM jobs WHERE queue = $5 \
     AND status = 'queued' AND run_at <= $3 ORDER BY run_at LIMIT $4), \
     expired AS (SELECT id, run_at FROM jobs WHERE queue = $5 AND status = 'active' \
     AND locked_until < $3 ORDER BY run_at LIMIT $4), \
     picked AS (SELECT id FROM (SELECT id, run_at FROM queued UNION ALL SELECT id, run_at FROM expired) \
     AS due ORDER BY run_at LIMIT $4) \
     UPDATE jobs SET status = 'active', attempts = attempts + 1, locked_by = $1, \
     locked_until = $2, updated_at = $3 WHERE id IN (SELECT id FROM picked) \
     RETURNING id, queue, resource_id, attempts";

/// [`CLAIM_SQLITE`] for PostgreSQL: the row locks and SKIP LOCKED let concurrent workers take
/// disjoint jobs. (Rows a branch locks but the final pick leaves are free at commit, the end
/// of this statement.)
pub const CLAIM_POSTGRES: &str = "WITH queued AS (SELECT id, run_at FROM jobs WHERE queue = $5 \
     AND status = 'queued' AND run_at <= $3 ORDER BY run_at LIMIT $4 FOR UPDATE SKIP LOCKED), \
     expired AS (SELECT id, run_at FROM jobs WHERE queue = $5 AND status = 'active' \
     AND locked_until < $3 ORDER BY run_at LIMIT $4 FOR UPDATE SKIP LOCKED), \
     picked AS (SELECT id FROM (SELECT id, run_at FROM queued UNION ALL SELECT id, run_at FROM expired) \
     AS due ORDER BY run_at LIMIT $4) \
     UPDATE jobs SET status = 'active', attempts = attempts + 1, locked_by = $1, \
     locked_until = $2, updated_at = $3 WHERE id IN (SELECT id FROM picked) \
     RETURNING id, queue, resource_id, attempts";

/// Claims up to `limit` due jobs of `queue` for `worker`: queued jobs whose `run_at` has come
/// and active jobs whose lease ran out. Each claim counts as an attempt.
pub async fn claim(
    store: &Store,
    worker: &str,
    queue: &str,
    limit: i64,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<ClaimedJob>, sqlx::Error> {
    // On SQLite the statement is atomic (one writer at a time).
    let sql = match store.db {
        Db::Sqlite(_) => CLAIM_SQLITE,
        Db::Postgres(_) => CLAIM_POSTGRES,
    };
    sql!(on_write(store) => fetch_all(sql, worker, lease_until, now, limit, queue))
}

/// How a job held by a worker ends, as the batched update takes it.
pub struct Ending {
    pub id: String,
    pub worker: String,
    /// `None`: completed. `Some(Some(at))`: queued again at `at`. `Some(None)`: failed.
    pub again_at: Option<Option<DateTime<Utc>>>,
    pub error: Option<String>,
}

/// Ends jobs held by their workers, in one statement (each only if its worker still holds it):
/// `completed`, queued again at `again_at`, or `failed`. Returns the queues of the jobs now
/// queued (again), so their workers can be woken.
pub async fn end_all(
    store: &Store,
    rows: &[Ending],
    now: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    let input = super::rows::Rows::new(rows.len())
        .text("id", rows.iter().map(|r| r.id.clone()))
        .text("worker", rows.iter().map(|r| r.worker.clone()))
        .bool("done", rows.iter().map(|r| r.again_at.is_none()))
        .opt_time("run_at", rows.iter().map(|r| r.again_at.flatten()))
        .opt_text("error", rows.iter().map(|r| r.error.clone()))
        .time("at", rows.iter().map(|_| now));
    // A job enqueued again while it ran (`requeue_at`) is queued for the earlier of its two times.
    let queued: Vec<(String, String)> = super::rows::fetch_write(
        store,
        input,
        "UPDATE jobs SET \
         status = CASE WHEN jobs.requeue_at IS NOT NULL OR v.run_at IS NOT NULL THEN 'queued' \
                       WHEN v.done THEN 'completed' ELSE 'failed' END, \
         run_at = CASE WHEN jobs.requeue_at IS NOT NULL AND (v.run_at IS NULL OR jobs.requeue_at < v.run_at) \
                       THEN jobs.requeue_at ELSE COALESCE(v.run_at, jobs.run_at) END, \
         attempts = CASE WHEN jobs.requeue_at IS NULL THEN jobs.attempts ELSE 0 END, \
         requeue_at = NULL, locked_by = NULL, locked_until = NULL, last_error = v.error, updated_at = v.at \
         FROM v WHERE jobs.id = v.id AND jobs.locked_by = v.worker AND jobs.status = 'active' \
         RETURNING jobs.queue, jobs.status",
    )
    .await?;
    Ok(queued
        .into_iter()
        .filter(|(_, status)| status == "queued")
        .map(|(queue, _)| queue)
        .collect())
}

/// Extends the leases of the jobs `worker` holds.
pub async fn extend_leases(
    store: &Store,
    worker: &str,
    until: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE jobs SET locked_until = $2 WHERE locked_by = $1 AND status = 'active'";
    sql!(on_write(store) => execute(sql, worker, until))?;
    Ok(())
}

/// Returns the jobs `worker` still holds to the queue, to run now.
pub async fn release(store: &Store, worker: &str, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let sql = "UPDATE jobs SET status = 'queued', run_at = $2, locked_by = NULL, \
               locked_until = NULL, updated_at = $2 WHERE locked_by = $1 AND status = 'active'";
    sql!(on_write(store) => execute(sql, worker, now))
}

/// Job counts by status, for one queue or all.
pub async fn counts(store: &Store, queue: Option<&str>) -> Result<Counts, sqlx::Error> {
    let sql =
        "SELECT status, COUNT(*) AS n FROM jobs WHERE ($1 IS NULL OR queue = $1) GROUP BY status";
    let rows: Vec<(String, i64)> = sql!(on_pool(store) => fetch_all(sql, queue))?;
    let mut c = Counts::default();
    for (status, n) in rows {
        match status.as_str() {
            "queued" => c.queued = n,
            "active" => c.active = n,
            "completed" => c.completed = n,
            _ => c.failed += n,
        }
    }
    Ok(c)
}

/// The statement of [`depth`]: `$1` queue, `$2` status, `$3` cap; it reads at most `$3`
/// entries of `jobs_queue_due_idx`, never the jobs done.
pub const DEPTH: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE queue = $1 \
     AND status = $2 LIMIT $3) AS capped";

/// Jobs of `queue` queued and active, each counted up to `cap`.
pub async fn depth(store: &Store, queue: &str, cap: i64) -> Result<(i64, i64), sqlx::Error> {
    let queued: i64 = sql!(on_pool(store) => scalar::fetch_one(DEPTH, queue, "queued", cap))?;
    let active: i64 = sql!(on_pool(store) => scalar::fetch_one(DEPTH, queue, "active", cap))?;
    Ok((queued, active))
}

/// When the longest-waiting due job of `queue` became due (a queued job with `run_at` at or
/// before `now`), read through `jobs_queue_due_idx`; `None` when nothing is due.
pub async fn oldest_due(
    store: &Store,
    queue: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let sql = "SELECT run_at FROM jobs WHERE queue = $1 AND status = 'queued' AND run_at <= $2 \
               ORDER BY run_at LIMIT 1";
    let row: Option<(DateTime<Utc>,)> = sql!(on_pool(store) => fetch_optional(sql, queue, now))?;
    Ok(row.map(|(t,)| t))
}

/// The statement of [`purge_completed`]: `$1` before; it reads only the completed jobs older
/// than that (`jobs_status_idx`).
pub const PURGE_COMPLETED: &str = "DELETE FROM jobs WHERE status = 'completed' AND updated_at < $1";

/// Deletes completed jobs last touched before `before`.
pub async fn purge_completed(store: &Store, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    sql!(on_write(store) => execute(PURGE_COMPLETED, before))
}

/// Records a worker's heartbeat (inserting it on the first beat).
pub async fn heartbeat(
    store: &Store,
    worker: &str,
    concurrency: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO workers (id, concurrency, started_at, heartbeat_at) \
               VALUES ($1, $2, $3, $3) \
               ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at";
    sql!(on_write(store) => execute(sql, worker, concurrency, now))?;
    Ok(())
}

/// Removes a worker from the registry, and workers silent since `stale_before`.
pub async fn remove_worker(
    store: &Store,
    worker: &str,
    stale_before: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM workers WHERE id = $1 OR heartbeat_at < $2";
    sql!(on_write(store) => execute(sql, worker, stale_before))?;
    Ok(())
}

/// How many workers have beaten since `since`.
pub async fn live_workers(store: &Store, since: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM workers WHERE heartbeat_at >= $1";
    sql!(on_pool(store) => scalar::fetch_one(sql, since))
}
