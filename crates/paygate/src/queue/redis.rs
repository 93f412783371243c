//! The Redis queue backend (`REDIS_URL`), built on the `redis` crate with Lua scripts for the
//! atomic moves.
//!
//! Layout, under a key prefix (`REDIS_PREFIX`), per queue `q` (`payments`, `refunds`,
//! `webhooks`): `P:q:<q>:due` (sorted set, score = run-at ms: queued and delayed jobs),
//! `P:q:<q>:active` (sorted set, score = lease deadline ms), `P:q:<q>:completed` and
//! `P:q:<q>:failed` (counters); per job `P:job:<id>` (hash: queue, resource, attempts, worker);
//! per worker `P:worker:<id>:jobs` (set of held jobs); `P:workers` (sorted set of heartbeats);
//! `P:wake` (a short list workers block on). The scripts compute some key names themselves,
//! so this layout needs a single Redis server (not Redis Cluster).
//!
//! Guarantees and failure modes: Redis only carries work; the database is the source of truth.
//! Jobs are pushed after commit, from a background task, so the API answers even when Redis is
//! down; a push that is lost (Redis down, flushed, restarted without persistence) is redone by
//! the recovery sweep, which re-enqueues pending work the database knows about. Enqueuing is
//! idempotent per job id. A worker that dies leaves its jobs in `active`; when their lease runs
//! out (the heartbeat no longer extends it) the next claim takes them.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::{AsyncCommands as _, Client, Script, aio::ConnectionManager};

use super::{ClaimedJob, Counts, JobSpec, QUEUES, Queue};
use crate::store::{Tx, now};

const CLAIM: &str = r"
local prefix, worker = ARGV[1], ARGV[2]
local now, lease, max = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local held = prefix .. ':worker:' .. worker .. ':jobs'
local out = {}
for i = 6, #ARGV do
  local q = ARGV[i]
  local due = prefix .. ':q:' .. q .. ':due'
  local active = prefix .. ':q:' .. q .. ':active'
  for _, src in ipairs({active, due}) do
    if #out >= max then break end
    local ids = redis.call('ZRANGEBYSCORE', src, '-inf', now, 'LIMIT', 0, max - #out)
    for _, id in ipairs(ids) do
      local job = prefix .. ':job:' .. id
      if src == due then redis.call('ZREM', due, id) end
      redis.call('ZADD', active, lease, id)
      local prev = redis.call('HGET', job, 'worker')
      if prev then redis.call('SREM', prefix .. ':worker:' .. prev .. ':jobs', id) end
      local attempts = redis.call('HINCRBY', job, 'attempts', 1)
      redis.call('HSET', job, 'worker', worker)
      redis.call('SADD', held, id)
      local resource = redis.call('HGET', job, 'resource') or ''
      table.insert(out, {id, q, resource, attempts})
    end
  end
end
return out
";

const ENQUEUE: &str = r"
local prefix, q, id, resource, run_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local job = prefix .. ':job:' .. id
if redis.call('EXISTS', job) == 1 then
  -- A job waiting for a later time is brought forward (a manual retry).
  redis.call('ZADD', prefix .. ':q:' .. q .. ':due', 'XX', 'LT', run_at, id)
  return 0
end
redis.call('HSET', job, 'queue', q, 'resource', resource, 'attempts', 0)
redis.call('ZADD', prefix .. ':q:' .. q .. ':due', run_at, id)
redis.call('LPUSH', prefix .. ':wake', 1)
redis.call('LTRIM', prefix .. ':wake', 0, 99)
return 1
";

/// Acknowledges (`run_at` = `done`), reschedules (`run_at` = ms) or fails (`run_at` = `fail`)
/// a job, if `worker` still holds it.
const FINISH: &str = r"
local prefix, q, id, worker, run_at, err = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local job = prefix .. ':job:' .. id
redis.call('SREM', prefix .. ':worker:' .. worker .. ':jobs', id)
if redis.call('HGET', job, 'worker') ~= worker then return 0 end
redis.call('ZREM', prefix .. ':q:' .. q .. ':active', id)
if run_at == 'done' then
  redis.call('DEL', job)
  redis.call('INCR', prefix .. ':q:' .. q .. ':completed')
elseif run_at == 'fail' then
  redis.call('DEL', job)
  redis.call('INCR', prefix .. ':q:' .. q .. ':failed')
else
  redis.call('HDEL', job, 'worker')
  redis.call('HSET', job, 'last_error', err)
  redis.call('ZADD', prefix .. ':q:' .. q .. ':due', run_at, id)
end
return 1
";

const HEARTBEAT: &str = r"
local prefix, worker, now, lease, stale = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local held = prefix .. ':worker:' .. worker .. ':jobs'
redis.call('ZADD', prefix .. ':workers', now, worker)
redis.call('ZREMRANGEBYSCORE', prefix .. ':workers', '-inf', stale)
for _, id in ipairs(redis.call('SMEMBERS', held)) do
  local job = prefix .. ':job:' .. id
  local q = redis.call('HGET', job, 'queue')
  if q and redis.call('HGET', job, 'worker') == worker then
    redis.call('ZADD', prefix .. ':q:' .. q .. ':active', 'XX', lease, id)
  else
    redis.call('SREM', held, id)
  end
end
return 1
";

const RELEASE: &str = r"
local prefix, worker, now = ARGV[1], ARGV[2], ARGV[3]
local held = prefix .. ':worker:' .. worker .. ':jobs'
local released = 0
for _, id in ipairs(redis.call('SMEMBERS', held)) do
  local job = prefix .. ':job:' .. id
  local q = redis.call('HGET', job, 'queue')
  if q and redis.call('HGET', job, 'worker') == worker then
    if redis.call('ZREM', prefix .. ':q:' .. q .. ':active', id) == 1 then
      redis.call('ZADD', prefix .. ':q:' .. q .. ':due', now, id)
      released = released + 1
    end
    redis.call('HDEL', job, 'worker')
  end
end
redis.call('DEL', held)
redis.call('ZREM', prefix .. ':workers', worker)
return released
";

struct Scripts {
    claim: Script,
    enqueue: Script,
    finish: Script,
    heartbeat: Script,
    release: Script,
}

/// The Redis queue.
pub struct RedisQueue {
    conn: ConnectionManager,
    /// A second connection for the blocking wait, so it never delays other commands.
    waiter: ConnectionManager,
    prefix: String,
    lease: Duration,
    scripts: Arc<Scripts>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl RedisQueue {
    /// Connects lazily: the process starts even while Redis is down, and reconnects by itself.
    pub fn new(url: &str, prefix: &str, lease: Duration) -> anyhow::Result<Self> {
        let client = Client::open(url).map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
        let waiter = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            waiter,
            prefix: prefix.to_owned(),
            lease,
            scripts: Arc::new(Scripts {
                claim: Script::new(CLAIM),
                enqueue: Script::new(ENQUEUE),
                finish: Script::new(FINISH),
                heartbeat: Script::new(HEARTBEAT),
                release: Script::new(RELEASE),
            }),
        })
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

    async fn push(
        conn: &mut ConnectionManager,
        scripts: &Scripts,
        prefix: &str,
        job: &JobSpec,
    ) -> redis::RedisResult<bool> {
        let queued: i64 = scripts
            .enqueue
            .arg(prefix)
            .arg(job.queue)
            .arg(job.id())
            .arg(&job.resource_id)
            .arg(ms(job.run_at))
            .invoke_async(conn)
            .await?;
        Ok(queued == 1)
    }

    async fn finish(
        &self,
        worker: &str,
        job: &ClaimedJob,
        how: &str,
        error: &str,
    ) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .finish
            .arg(&self.prefix)
            .arg(&job.queue)
            .arg(&job.id)
            .arg(worker)
            .arg(how)
            .arg(error)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Queue for RedisQueue {
    async fn stage(&self, _tx: &mut Tx, _job: &JobSpec) -> Result<(), sqlx::Error> {
        // Redis is not part of the database transaction: jobs are pushed after commit.
        Ok(())
    }

    async fn dispatch(&self, jobs: &[JobSpec]) {
        let (mut conn, scripts, prefix) =
            (self.conn.clone(), self.scripts.clone(), self.prefix.clone());
        let jobs = jobs.to_vec();
        tokio::spawn(async move {
            for job in &jobs {
                if let Err(e) = Self::push(&mut conn, &scripts, &prefix, job).await {
                    tracing::warn!(job = %job.id(), error = %e, "job not pushed to Redis; the recovery sweep will redo it");
                }
            }
        });
    }

    async fn enqueue(&self, job: &JobSpec) -> anyhow::Result<bool> {
        let mut conn = self.conn.clone();
        Ok(Self::push(&mut conn, &self.scripts, &self.prefix, job).await?)
    }

    async fn claim(&self, worker: &str, max: usize) -> anyhow::Result<Vec<ClaimedJob>> {
        let mut conn = self.conn.clone();
        let mut invocation = self.scripts.claim.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(worker)
            .arg(ms(now()))
            .arg(ms(now() + self.lease))
            .arg(max);
        for q in QUEUES {
            invocation.arg(*q);
        }
        let rows: Vec<(String, String, String, i32)> = invocation.invoke_async(&mut conn).await?;
        Ok(rows
            .into_iter()
            .map(|(id, queue, resource_id, attempts)| ClaimedJob {
                id,
                queue,
                resource_id,
                attempts,
            })
            .collect())
    }

    async fn complete(&self, worker: &str, job: &ClaimedJob) -> anyhow::Result<()> {
        self.finish(worker, job, "done", "").await
    }

    async fn retry(
        &self,
        worker: &str,
        job: &ClaimedJob,
        run_at: Option<DateTime<Utc>>,
        error: &str,
    ) -> anyhow::Result<()> {
        match run_at {
            Some(at) => self.finish(worker, job, &ms(at).to_string(), error).await,
            None => self.finish(worker, job, "fail", error).await,
        }
    }

    async fn heartbeat(&self, worker: &str, _concurrency: usize) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let at = now();
        let _: i64 = self
            .scripts
            .heartbeat
            .arg(&self.prefix)
            .arg(worker)
            .arg(ms(at))
            .arg(ms(at + self.lease))
            .arg(ms(at - self.lease * 10))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn release(&self, worker: &str) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        let released: i64 = self
            .scripts
            .release
            .arg(&self.prefix)
            .arg(worker)
            .arg(ms(now()))
            .invoke_async(&mut conn)
            .await?;
        if released > 0 {
            tracing::info!(released, "unfinished jobs handed back to the queue");
        }
        Ok(())
    }

    async fn wait(&self, timeout: Duration) {
        let mut conn = self.waiter.clone();
        let key = format!("{}:wake", self.prefix);
        let blpop = conn.blpop::<_, Option<(String, String)>>(&key, timeout.as_secs_f64());
        match tokio::time::timeout(timeout + Duration::from_secs(1), blpop).await {
            Ok(Ok(_)) => {}
            // Redis is unreachable: wait out the interval instead of spinning.
            _ => tokio::time::sleep(timeout).await,
        }
    }

    async fn counts(&self, queue: Option<&str>) -> anyhow::Result<Counts> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        let queues: Vec<&str> = match queue {
            Some(q) => vec![q],
            None => QUEUES.to_vec(),
        };
        for q in &queues {
            let base = format!("{}:q:{q}", self.prefix);
            pipe.zcard(format!("{base}:due"))
                .zcard(format!("{base}:active"))
                .get(format!("{base}:completed"))
                .get(format!("{base}:failed"));
        }
        let values: Vec<Option<i64>> = pipe.query_async(&mut conn).await?;
        let mut c = Counts::default();
        for chunk in values.chunks_exact(4) {
            c.queued += chunk[0].unwrap_or(0);
            c.active += chunk[1].unwrap_or(0);
            c.completed += chunk[2].unwrap_or(0);
            c.failed += chunk[3].unwrap_or(0);
        }
        Ok(c)
    }

    async fn live_workers(&self) -> anyhow::Result<i64> {
        let mut conn = self.conn.clone();
        let since = ms(now() - self.lease);
        Ok(conn
            .zcount(format!("{}:workers", self.prefix), since, "+inf")
            .await?)
    }

    async fn backend_healthy(&self) -> Option<bool> {
        Some(self.ping().await)
    }
}
