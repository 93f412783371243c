//! Storage: one [`Store`] over either embedded SQLite or PostgreSQL.
//!
//! Each query is written once and compiled for both backends by the [`on_pool!`] and [`on_tx!`]
//! macros, which expand the same body against `sqlx::Sqlite` and `sqlx::Postgres` ([`sql!`]
//! runs one statement through them). The SQL we use (`$n` placeholders, `RETURNING`,
//! `ON CONFLICT`, partial indexes) runs unchanged on both; where the dialects differ (locking
//! clauses, schema types) the code names the difference.
//! Storage code is SQL only: business rules live in the services.
//!
//! Write transactions on SQLite start with `BEGIN IMMEDIATE`, so two transactions that read
//! and then write queue up on the busy timeout instead of failing with "database is locked".

pub mod audit;
pub mod audit_log;
pub mod dashboard;
pub mod endpoints;
pub mod events;
pub mod idempotency;
pub mod jobs;
pub mod leases;
pub mod merchants;
mod migrate;
pub mod orders;
pub mod payment_links;
pub mod payments;
pub mod pricing;
pub mod processes;
pub mod processor;
pub mod refunds;
pub mod replays;
pub mod rows;
pub mod settlements;
pub mod table;
pub mod two_factor;
pub mod users;
pub mod webhooks;

use std::{path::Path, str::FromStr, sync::Arc, time::Duration};

use anyhow::Context as _;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{
    PgPool, Postgres, Sqlite, SqlitePool, Transaction,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

/// Expands `$body` once per backend with `$pool` bound to that backend's pool.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// Like [`on_pool!`] for statements that write: on SQLite they go through the single writer
/// connection, so writers queue in the pool instead of spinning on SQLite's busy handler.
macro_rules! on_write {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.write {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// Expands `$body` once per backend with `$conn` bound to the transaction's connection.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}
/// One statement, written once for both backends: `sql!(on_write(store) => execute(SQL, a, b))`
/// runs `SQL` with `a` and `b` bound to `$1` and `$2` through [`on_write!`] (or [`on_pool!`],
/// [`on_tx!`]). `execute` answers the number of rows affected; `fetch_one`, `fetch_all` and
/// `fetch_optional` read rows (as `sqlx::query_as`), `scalar::fetch_…` single values (as
/// `sqlx::query_scalar`).
macro_rules! sql {
    ($on:ident($db:expr) => execute($sql:expr $(, $arg:expr)* $(,)?)) => {
        $crate::store::$on!($db, c => {
            sqlx::query($sql)$(.bind($arg))*.execute(c).await.map(|done| done.rows_affected())
        })
    };
    ($on:ident($db:expr) => scalar::$run:ident($sql:expr $(, $arg:expr)* $(,)?)) => {
        $crate::store::$on!($db, c => sqlx::query_scalar($sql)$(.bind($arg))*.$run(c).await)
    };
    ($on:ident($db:expr) => $run:ident($sql:expr $(, $arg:expr)* $(,)?)) => {
        $crate::store::$on!($db, c => sqlx::query_as($sql)$(.bind($arg))*.$run(c).await)
    };
}
pub(crate) use on_pool;
pub(crate) use on_tx;
pub(crate) use on_write;
pub(crate) use sql;

/// The two database backends.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle to the database; cheap to clone. Reads use `db`; writes use `write`, which on
/// SQLite is a pool of one connection (SQLite has one writer at a time anyway) and on
/// PostgreSQL the same pool.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: Db,
    pub(crate) write: Db,
    /// SQLite's checkpointer, stopped by [`Store::close`] or when the last clone of the store
    /// is dropped.
    checkpointer: Option<Arc<Checkpointer>>,
}

/// How long a PostgreSQL connection may rest in the pool before it is tested again.
const PG_RETEST_AFTER: Duration = Duration::from_secs(1);

/// The WAL size (in pages) at which SQLite's writer checkpoints itself.
const WAL_BACKSTOP_PAGES: u32 = 32_768;

/// How often the checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);

/// Copies SQLite's WAL into the database file on a connection and thread of its own, every
/// [`CHECKPOINT_EVERY`], so that the single writer does not stop committing to do it (left to
/// SQLite, the commit that fills the WAL to 1,000 pages copies and syncs them all, and the
/// batches behind it wait). A passive checkpoint never waits for the writer nor blocks it; it
/// copies the frames committed so far. The writer's own checkpoint at [`WAL_BACKSTOP_PAGES`]
/// then has little left to copy, and restarts the WAL from its beginning.
#[derive(Debug)]
struct Checkpointer(tokio::task::JoinHandle<()>);

impl Checkpointer {
    async fn start(options: SqliteConnectOptions) -> anyhow::Result<Self> {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .context("cannot open the SQLite database for checkpoints")?;
        Ok(Self(tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Logged when checkpoints start failing and when they recover, not every tick.
            let mut failing = false;
            loop {
                every.tick().await;
                match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut conn)
                    .await
                {
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "WAL checkpoints failing; the writer's own checkpoint remains");
                    }
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("WAL checkpoints recovered");
                    }
                    _ => {}
                }
            }
        })))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An open write transaction on either backend.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }
}

/// The current time, truncated to microseconds (the precision both backends store).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`), creating the SQLite file and its
    /// folder if missing. Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let (db, write, checkpointer) = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("DATABASE_URL: cannot parse {url}"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
                // The writer's batches touch many pages: 16 MiB of cache keeps the hot ones
                // (the readers get 2 MiB each, below). No memory map: every page of the file
                // read through it stayed resident (the serve process grew past 100 MiB under
                // load), for no measured gain over the page cache (BENCHMARKS.md).
                .pragma("cache_size", "-16384")
                .pragma("mmap_size", "0")
                // A batch's statements differ by their number of rows: keep them all prepared.
                .statement_cache_capacity(1024)
                // Statement journals (a multi-row statement inside a transaction keeps one, to
                // undo just that statement) in memory, not in a temporary file written through
                // the kernel for every page a batch touches.
                .pragma("temp_store", "memory")
                // The checkpointer (below) copies the WAL into the database off the writer's
                // thread; the writer checkpoints only what is left once the WAL reached this
                // many pages, so that the WAL restarts and stays bounded under steady load.
                .pragma("wal_autocheckpoint", WAL_BACKSTOP_PAGES.to_string())
                // What a restarted WAL keeps of its file: the backstop's size is reached only
                // under sustained load.
                .pragma("journal_size_limit", (64 << 20).to_string());
            if let Some(dir) = Path::new(options.get_filename()).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create the folder {}", dir.display()))?;
            }
            // A connection to a file does not go stale: no round trip to its thread to test it
            // before each use (the pool tests it when it comes back).
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.clone())
                .await
                .with_context(|| format!("cannot open the SQLite database {url}"))?;
            let read = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .connect_with(options.clone().pragma("cache_size", "-2048"))
                .await
                .with_context(|| format!("cannot open the SQLite database {url}"))?;
            let checkpointer = Checkpointer::start(options).await?;
            (
                Db::Sqlite(read),
                Db::Sqlite(write),
                Some(Arc::new(checkpointer)),
            )
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).context("DATABASE_URL: cannot parse")?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                // The pool tests a connection when it comes back; tested again before use only
                // after resting (the server may have gone meanwhile), not on every acquire: a
                // round trip less per transaction under load.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PG_RETEST_AFTER {
                            use sqlx::Connection as _;
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options)
                .await
                .context("cannot connect to PostgreSQL (DATABASE_URL)")?;
            (Db::Postgres(pool.clone()), Db::Postgres(pool), None)
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite:// or postgres://");
        };
        Ok(Self {
            db,
            write,
            checkpointer,
        })
    }

    /// The read pool's open and idle connections (on SQLite, of the read pool; the writer is
    /// one more).
    pub fn pool_usage(&self) -> (u32, usize) {
        match &self.db {
            Db::Sqlite(p) => (p.size(), p.num_idle()),
            Db::Postgres(p) => (p.size(), p.num_idle()),
        }
    }

    /// The backend's name, for logs and health.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Applies the pending migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        migrate::run(self, i64::MAX).await
    }

    /// Applies the pending migrations up to `version` only: for tests of an upgrade from an
    /// older schema.
    pub async fn migrate_until(&self, version: i64) -> anyhow::Result<()> {
        migrate::run(self, version).await
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match &self.write {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sql!(on_pool(self) => execute("SELECT 1")).is_ok()
    }

    /// Closes every connection (and stops SQLite's checkpointer).
    pub async fn close(&self) {
        if let Some(c) = &self.checkpointer {
            c.0.abort();
        }
        on_pool!(self, pool => pool.close().await);
        on_write!(self, pool => pool.close().await);
    }
}

/// Whether `err` is a violation of the named unique constraint or index.
pub fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => match db.constraint() {
            Some(name) => name == constraint,
            // SQLite names the columns, not the index, in its message.
            None => true,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the checkpointer, what a transaction writes stays in the WAL until it holds
    /// [`WAL_BACKSTOP_PAGES`]; with it, the database file receives it within moments, while
    /// the WAL is far below the backstop (so the writer did not copy it itself).
    #[tokio::test]
    async fn the_checkpointer_copies_the_wal_into_the_database_off_the_writer() {
        let dir = std::env::temp_dir().join(format!(
            "paygate-checkpoint-{}",
            paygate_core::ids::random_id("")
        ));
        let path = dir.join("c.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()), 2)
            .await
            .unwrap();
        sql!(on_write(store) => execute("CREATE TABLE t (v BLOB NOT NULL)")).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        let mut tx = store.begin().await.unwrap();
        for _ in 0..200 {
            sql!(on_tx(&mut tx) => execute("INSERT INTO t (v) VALUES (randomblob(4000))")).unwrap();
        }
        tx.commit().await.unwrap();
        let wal = std::fs::metadata(dir.join("c.db-wal")).unwrap().len();
        assert!(
            wal < u64::from(WAL_BACKSTOP_PAGES) * 4096 / 10,
            "WAL {wal} bytes"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let grown = loop {
            let now = std::fs::metadata(&path).unwrap().len();
            if now >= before + 200 * 4000 || std::time::Instant::now() > deadline {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            grown >= before + 200 * 4000,
            "the database file grew from {before} to {grown} bytes only"
        );
    }
}
