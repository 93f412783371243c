//! The Redis queue backend (`REDIS_URL`), built on the `redis` crate with Lua scripts for the
//! atomic moves. It runs on a single Redis server and on a Redis Cluster (`REDIS_CLUSTER`).
//!
//! Layout: every key of queue `q` carries the hash tag `{P:q}` (`P` = `REDIS_PREFIX`), so a
//! queue lives in one cluster slot and each script touches one slot; every key a script
//! touches is passed to it as a key. Per queue: `{P:q}:due` (sorted set, score = run-at ms:
//! queued and delayed jobs), `{P:q}:active` (sorted set, score = lease deadline ms),
//! `{P:q}:jobs` (hash: job id → resource id), `{P:q}:attempts`, `{P:q}:owner` (which worker
//! holds a job), `{P:q}:again` (run again at, for a job enqueued while it runs),
//! `{P:q}:errors`, `{P:q}:completed` and `{P:q}:failed` (counters), `{P:q}:wake` (a short list
//! the queue's workers block on), and `{P:q}:held:<worker>` (the jobs one worker holds,
//! expiring when the worker stops beating). `{P}:workers` is a sorted set of heartbeats.
//!
//! Guarantees and failure modes: Redis only carries work; the database is the source of truth.
//! Jobs are pushed after commit, from a background task, so the API answers even when Redis is
//! down; a push that is lost (Redis down, flushed, restarted without persistence) is redone by
//! the recovery sweep, which re-enqueues pending work the database knows about. Enqueuing is
//! idempotent per job id; a job enqueued again while it runs (`again`) runs again once it
//! finishes. A worker that dies leaves its jobs in `active`; when their lease runs out (the
//! heartbeat no longer extends it) the next claim takes them. Each queue is claimed on its
//! own, so a backlog in one never delays another.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{
    Client, Cmd, Pipeline, RedisFuture, Script, ScriptInvocation, Value,
    aio::{ConnectionLike, ConnectionManager},
    cluster::{ClusterClient, ClusterConfig},
    cluster_async::ClusterConnection,
};

use super::{ClaimedJob, Counts, Existing, JobEnd, JobSpec, QUEUES, Queue};
use crate::batch::Batcher;
use crate::store::{Tx, now};

/// KEYS: due, jobs, attempts, active, again, wake. ARGV: what to do with an existing job
/// (`again`: run again if running, and bring forward; `forward`: bring forward; `keep`:
/// nothing), then `id, resource, run_at` per job. Returns how many jobs were new.
const ENQUEUE: &str = r"
local again, keep = ARGV[1] == 'again', ARGV[1] == 'keep'
local queued = 0
for i = 2, #ARGV, 3 do
  local id, resource, run_at = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HEXISTS', KEYS[2], id) == 1 then
    if again and redis.call('ZSCORE', KEYS[4], id) then
      redis.call('HSET', KEYS[5], id, run_at)
    elseif not keep then
      -- A job waiting for a later time is brought forward (a manual retry).
      redis.call('ZADD', KEYS[1], 'XX', 'LT', run_at, id)
    end
  else
    redis.call('HSET', KEYS[2], id, resource)
    redis.call('HSET', KEYS[3], id, 0)
    redis.call('ZADD', KEYS[1], run_at, id)
    queued = queued + 1
  end
end
if queued > 0 then
  redis.call('LPUSH', KEYS[6], 1)
  redis.call('LTRIM', KEYS[6], 0, 99)
end
return queued
";

/// KEYS: due, active, jobs, attempts, owner, held. ARGV: worker, now, lease deadline, max.
/// Lease-expired jobs first, then due ones; each claim counts as an attempt.
const CLAIM: &str = r"
local worker, now, lease, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for _, src in ipairs({KEYS[2], KEYS[1]}) do
  if #out >= max then break end
  local ids = redis.call('ZRANGEBYSCORE', src, '-inf', now, 'LIMIT', 0, max - #out)
  for _, id in ipairs(ids) do
    if src == KEYS[1] then redis.call('ZREM', KEYS[1], id) end
    redis.call('ZADD', KEYS[2], lease, id)
    local attempts = redis.call('HINCRBY', KEYS[4], id, 1)
    redis.call('HSET', KEYS[5], id, worker)
    redis.call('SADD', KEYS[6], id)
    table.insert(out, {id, redis.call('HGET', KEYS[3], id) or '', attempts})
  end
end
return out
";

/// KEYS: due, active, jobs, attempts, owner, held, again, errors, completed, failed.
/// ARGV: worker, then `id, how, error` per job, where `how` is `done` (acknowledge), `fail`,
/// or a run-at in ms (reschedule). Only the job's current holder moves it; a job enqueued
/// again while it ran is queued again instead of finished.
const FINISH: &str = r"
local worker = ARGV[1]
local moved = 0
for i = 2, #ARGV, 3 do
  local id, how, err = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('SREM', KEYS[6], id)
  if redis.call('HGET', KEYS[5], id) == worker then
    moved = moved + 1
    redis.call('ZREM', KEYS[2], id)
    redis.call('HDEL', KEYS[5], id)
    local again = redis.call('HGET', KEYS[7], id)
    if again then
      redis.call('HDEL', KEYS[7], id)
      local at = tonumber(again)
      if how ~= 'done' and how ~= 'fail' and tonumber(how) < at then at = tonumber(how) end
      redis.call('HSET', KEYS[4], id, 0)
      redis.call('ZADD', KEYS[1], at, id)
    elseif how == 'done' or how == 'fail' then
      redis.call('HDEL', KEYS[3], id)
      redis.call('HDEL', KEYS[4], id)
      redis.call('HDEL', KEYS[8], id)
      redis.call('INCR', how == 'done' and KEYS[9] or KEYS[10])
    else
      redis.call('HSET', KEYS[8], id, err)
      redis.call('ZADD', KEYS[1], how, id)
    end
  end
end
return moved
";

/// KEYS: active, owner, held. ARGV: worker, lease deadline, held-set lifetime ms.
const HEARTBEAT: &str = r"
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('HGET', KEYS[2], id) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
  else
    redis.call('SREM', KEYS[3], id)
  end
end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
";

/// KEYS: due, active, owner, held. ARGV: worker, now.
const RELEASE: &str = r"
local released = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if redis.call('HGET', KEYS[3], id) == ARGV[1] then
    if redis.call('ZREM', KEYS[2], id) == 1 then
      redis.call('ZADD', KEYS[1], ARGV[2], id)
      released = released + 1
    end
    redis.call('HDEL', KEYS[3], id)
  end
end
redis.call('DEL', KEYS[4])
return released
";

/// A connection to a single server (reconnecting by itself) or to a cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Opens a connection lazily: the process starts even while Redis is down, and reconnects
/// by itself. A cluster is given by one or more comma-separated node URLs.
fn connect(url: &str, cluster: bool) -> anyhow::Result<Conn> {
    let (connect_timeout, response_timeout) = (Duration::from_secs(1), Duration::from_secs(2));
    if cluster {
        let nodes: Vec<&str> = url.split(',').map(str::trim).collect();
        let client = ClusterClient::builder(nodes)
            .connection_timeout(connect_timeout)
            .response_timeout(response_timeout)
            .retries(2)
            .build()
            .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        let config = ClusterConfig::new()
            .set_connection_timeout(connect_timeout)
            .set_response_timeout(response_timeout);
        Ok(Conn::Cluster(
            client.get_pending_async_connection_with_config(config),
        ))
    } else {
        let client = Client::open(url).map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        Ok(Conn::Single(ConnectionManager::new_lazy_with_config(
            client, config,
        )?))
    }
}

/// The keys of one queue.
struct Keys {
    tag: String,
}

impl Keys {
    fn new(prefix: &str, queue: &str) -> Self {
        Self {
            tag: format!("{{{prefix}:{queue}}}"),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.tag)
    }

    fn held(&self, worker: &str) -> String {
        format!("{}:held:{worker}", self.tag)
    }

    /// An invocation of `script` given the keys `names`, in order; `held` is the set of the jobs
    /// `worker` holds.
    fn invocation<'s>(
        &self,
        script: &'s Script,
        names: &[&str],
        worker: &str,
    ) -> ScriptInvocation<'s> {
        let mut invocation = script.prepare_invoke();
        for name in names {
            invocation.key(match *name {
                "held" => self.held(worker),
                name => self.key(name),
            });
        }
        invocation
    }
}

struct Scripts {
    claim: Script,
    enqueue: Script,
    finish: Script,
    heartbeat: Script,
    release: Script,
}

/// One acknowledgement or reschedule, waiting for its batch.
struct Finish {
    queue: String,
    worker: String,
    id: String,
    how: String,
    error: String,
}

/// The Redis queue.
pub struct RedisQueue {
    conn: Conn,
    /// A connection per queue for the blocking wait, so it never delays other commands.
    waiters: HashMap<&'static str, Conn>,
    prefix: String,
    lease: Duration,
    scripts: std::sync::Arc<Scripts>,
    /// Acknowledgements and reschedules, batched: one script call per queue and worker.
    finishes: Batcher<Finish, Result<(), String>>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl RedisQueue {
    /// A queue on the server (or cluster) at `url`, under `prefix`, leasing jobs for `lease`.
    pub fn new(url: &str, cluster: bool, prefix: &str, lease: Duration) -> anyhow::Result<Self> {
        let conn = connect(url, cluster)?;
        let mut waiters = HashMap::new();
        for q in QUEUES {
            waiters.insert(*q, connect(url, cluster)?);
        }
        let scripts = std::sync::Arc::new(Scripts {
            claim: Script::new(CLAIM),
            enqueue: Script::new(ENQUEUE),
            finish: Script::new(FINISH),
            heartbeat: Script::new(HEARTBEAT),
            release: Script::new(RELEASE),
        });
        let (c, sc, p) = (conn.clone(), scripts.clone(), prefix.to_owned());
        let finishes = Batcher::new("job_finish", 256, 2, move |batch: Vec<Finish>| {
            let (mut c, sc, p) = (c.clone(), sc.clone(), p.clone());
            async move {
                let outcome = finish_all(&mut c, &sc, &p, &batch).await;
                batch.iter().map(|_| outcome.clone()).collect()
            }
        });
        Ok(Self {
            conn,
            waiters,
            prefix: prefix.to_owned(),
            lease,
            scripts,
            finishes,
        })
    }

    fn keys(&self, queue: &str) -> Keys {
        Keys::new(&self.prefix, queue)
    }

    fn workers_key(&self) -> String {
        format!("{{{}}}:workers", self.prefix)
    }

    /// Whether Redis answers a PING.
    pub async fn ping(&self) -> bool {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        matches!(
            tokio::time::timeout(Duration::from_secs(1), ping).await,
            Ok(Ok(_))
        )
    }

    /// Pushes `jobs` (grouped by queue, one script call per queue); returns how many were new.
    async fn push(
        conn: &mut Conn,
        scripts: &Scripts,
        prefix: &str,
        jobs: &[JobSpec],
    ) -> redis::RedisResult<usize> {
        let mut queued = 0;
        for q in QUEUES {
            for existing in Existing::ALL {
                let batch: Vec<&JobSpec> = jobs
                    .iter()
                    .filter(|j| j.queue == *q && j.existing == existing)
                    .collect();
                if batch.is_empty() {
                    continue;
                }
                let k = Keys::new(prefix, q);
                let keys = ["due", "jobs", "attempts", "active", "again", "wake"];
                let mut invocation = k.invocation(&scripts.enqueue, &keys, "");
                invocation.arg(match existing {
                    Existing::Again => "again",
                    Existing::BringForward => "forward",
                    Existing::Keep => "keep",
                });
                for job in batch {
                    invocation
                        .arg(job.id())
                        .arg(&job.resource_id)
                        .arg(ms(job.run_at));
                }
                let n: i64 = invocation.invoke_async(conn).await?;
                queued += usize::try_from(n).unwrap_or(0);
            }
        }
        Ok(queued)
    }

    async fn finish(
        &self,
        worker: &str,
        job: &ClaimedJob,
        how: &str,
        error: &str,
    ) -> anyhow::Result<()> {
        let finish = Finish {
            queue: job.queue.clone(),
            worker: worker.to_owned(),
            id: job.id.clone(),
            how: how.to_owned(),
            error: error.to_owned(),
        };
        self.finishes
            .submit(finish)
            .await
            .unwrap_or_else(|| Err("the queue stopped".into()))
            .map_err(anyhow::Error::msg)
    }
}

/// Runs a batch of finishes: one FINISH call per (queue, worker), each moving many jobs.
async fn finish_all(
    conn: &mut Conn,
    scripts: &Scripts,
    prefix: &str,
    batch: &[Finish],
) -> Result<(), String> {
    let mut groups: Vec<(&str, &str)> = batch
        .iter()
        .map(|f| (f.queue.as_str(), f.worker.as_str()))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    for (queue, worker) in groups {
        let k = Keys::new(prefix, queue);
        let keys = [
            "due",
            "active",
            "jobs",
            "attempts",
            "owner",
            "held",
            "again",
            "errors",
            "completed",
            "failed",
        ];
        let mut invocation = k.invocation(&scripts.finish, &keys, worker);
        invocation.arg(worker);
        for f in batch
            .iter()
            .filter(|f| f.queue == queue && f.worker == worker)
        {
            invocation.arg(&f.id).arg(&f.how).arg(&f.error);
        }
        let _: i64 = invocation
            .invoke_async(conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[async_trait]
impl Queue for RedisQueue {
    async fn stage(&self, _tx: &mut Tx, _jobs: &[JobSpec]) -> Result<(), sqlx::Error> {
        // Redis is not part of the database transaction: jobs are pushed after commit.
        Ok(())
    }

    async fn dispatch(&self, jobs: &[JobSpec]) {
        if jobs.is_empty() {
            return;
        }
        let (mut conn, scripts, prefix) =
            (self.conn.clone(), self.scripts.clone(), self.prefix.clone());
        let jobs = jobs.to_vec();
        tokio::spawn(async move {
            if let Err(e) = Self::push(&mut conn, &scripts, &prefix, &jobs).await {
                tracing::warn!(jobs = jobs.len(), error = %e, "jobs not pushed to Redis; the recovery sweep will redo them");
            }
        });
    }

    async fn enqueue(&self, jobs: &[JobSpec]) -> anyhow::Result<usize> {
        let mut conn = self.conn.clone();
        Ok(Self::push(&mut conn, &self.scripts, &self.prefix, jobs).await?)
    }

    async fn claim(
        &self,
        worker: &str,
        queue: &'static str,
        max: usize,
    ) -> anyhow::Result<Vec<ClaimedJob>> {
        let mut conn = self.conn.clone();
        let k = self.keys(queue);
        let keys = ["due", "active", "jobs", "attempts", "owner", "held"];
        let mut invocation = k.invocation(&self.scripts.claim, &keys, worker);
        invocation
            .arg(worker)
            .arg(ms(now()))
            .arg(ms(now() + self.lease))
            .arg(max);
        let rows: Vec<(String, String, i32)> = invocation.invoke_async(&mut conn).await?;
        Ok(rows
            .into_iter()
            .map(|(id, resource_id, attempts)| ClaimedJob {
                id,
                queue: queue.to_owned(),
                resource_id,
                attempts,
            })
            .collect())
    }

    async fn end(&self, worker: &str, job: &ClaimedJob, end: JobEnd<'_>) -> anyhow::Result<()> {
        match end {
            JobEnd::Done => self.finish(worker, job, "done", "").await,
            JobEnd::Retry {
                run_at: Some(at),
                error,
            } => self.finish(worker, job, &ms(at).to_string(), error).await,
            JobEnd::Retry {
                run_at: None,
                error,
            } => self.finish(worker, job, "fail", error).await,
        }
    }

    async fn heartbeat(&self, worker: &str, _concurrency: usize) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let at = now();
        let _: i64 = redis::cmd("ZADD")
            .arg(self.workers_key())
            .arg(ms(at))
            .arg(worker)
            .query_async(&mut conn)
            .await?;
        let _: i64 = redis::cmd("ZREMRANGEBYSCORE")
            .arg(self.workers_key())
            .arg("-inf")
            .arg(ms(at - self.lease * 10))
            .query_async(&mut conn)
            .await?;
        let keep = i64::try_from((self.lease * 10).as_millis()).unwrap_or(i64::MAX);
        for q in QUEUES {
            let k = self.keys(q);
            let keys = ["active", "owner", "held"];
            let _: i64 = k
                .invocation(&self.scripts.heartbeat, &keys, worker)
                .arg(worker)
                .arg(ms(at + self.lease))
                .arg(keep)
                .invoke_async(&mut conn)
                .await?;
        }
        Ok(())
    }

    async fn release(&self, worker: &str) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let mut released = 0;
        for q in QUEUES {
            let k = self.keys(q);
            let keys = ["due", "active", "owner", "held"];
            let n: i64 = k
                .invocation(&self.scripts.release, &keys, worker)
                .arg(worker)
                .arg(ms(now()))
                .invoke_async(&mut conn)
                .await?;
            released += n;
        }
        let _: i64 = redis::cmd("ZREM")
            .arg(self.workers_key())
            .arg(worker)
            .query_async(&mut conn)
            .await?;
        if released > 0 {
            tracing::info!(released, "unfinished jobs handed back to the queue");
        }
        Ok(())
    }

    async fn lost_jobs(&self) -> anyhow::Result<bool> {
        // A marker in each queue's slot: gone after a flush or a restart without persistence
        // (of the whole server, or of the cluster node holding that queue). Set again by the
        // one caller that finds it missing.
        let mut conn = self.conn.clone();
        let mut lost = false;
        for q in QUEUES {
            let set: Option<String> = redis::cmd("SET")
                .arg(self.keys(q).key("marker"))
                .arg(1)
                .arg("NX")
                .query_async(&mut conn)
                .await?;
            lost |= set.is_some();
        }
        Ok(lost)
    }

    async fn wait(&self, queue: &'static str, timeout: Duration) {
        let Some(mut conn) = self.waiters.get(queue).cloned() else {
            tokio::time::sleep(timeout).await;
            return;
        };
        let mut cmd = redis::cmd("BLPOP");
        cmd.arg(self.keys(queue).key("wake"))
            .arg(timeout.as_secs_f64());
        let blpop = cmd.query_async::<Option<(String, String)>>(&mut conn);
        match tokio::time::timeout(timeout + Duration::from_secs(1), blpop).await {
            Ok(Ok(_)) => {}
            // Redis is unreachable: wait out the interval instead of spinning.
            _ => tokio::time::sleep(timeout).await,
        }
    }

    async fn counts(&self, queue: Option<&str>) -> anyhow::Result<Counts> {
        let mut conn = self.conn.clone();
        let queues: Vec<&str> = match queue {
            Some(q) => vec![q],
            None => QUEUES.to_vec(),
        };
        let mut c = Counts::default();
        // One pipeline per queue: its keys share a slot, so it also runs on a cluster.
        for q in queues {
            let k = self.keys(q);
            let mut pipe = redis::pipe();
            pipe.zcard(k.key("due"))
                .zcard(k.key("active"))
                .get(k.key("completed"))
                .get(k.key("failed"));
            let v: (i64, i64, Option<i64>, Option<i64>) = pipe.query_async(&mut conn).await?;
            c.queued += v.0;
            c.active += v.1;
            c.completed += v.2.unwrap_or(0);
            c.failed += v.3.unwrap_or(0);
        }
        Ok(c)
    }

    async fn oldest_due(&self, queue: &'static str) -> anyhow::Result<Option<DateTime<Utc>>> {
        let mut conn = self.conn.clone();
        // `due` is scored by run time in ms: the lowest score at or before now.
        let first: Vec<(String, i64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys(queue).key("due"))
            .arg("-inf")
            .arg(ms(now()))
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(1)
            .query_async(&mut conn)
            .await?;
        Ok(first
            .first()
            .and_then(|(_, at)| DateTime::from_timestamp_millis(*at)))
    }

    async fn live_workers(&self) -> anyhow::Result<i64> {
        let mut conn = self.conn.clone();
        let since = ms(now() - self.lease);
        Ok(redis::cmd("ZCOUNT")
            .arg(self.workers_key())
            .arg(since)
            .arg("+inf")
            .query_async(&mut conn)
            .await?)
    }

    async fn backend_healthy(&self) -> Option<bool> {
        Some(self.ping().await)
    }
}
