//! Forward-only migrations, embedded in the binary, one folder per dialect.
//!
//! sqlx's own migrator needs its proc-macro crate (which compiles both database drivers a
//! second time) to embed files; this runner is the few lines we need instead. Each migration
//! runs in its own transaction together with its bookkeeping row; concurrent starts are
//! serialised (an advisory lock on PostgreSQL, `BEGIN IMMEDIATE` on SQLite).

use anyhow::Context as _;

use super::{Store, Tx, now, on_tx};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Migration `$version`, `$name`: the files `$file.sql` of both dialects, embedded.
macro_rules! migration {
    ($version:literal, $name:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../../../../migrations/sqlite/", $file, ".sql")),
            postgres: include_str!(concat!("../../../../migrations/postgres/", $file, ".sql")),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "core", "0001_core"),
    migration!(2, "leases", "0002_leases"),
    migration!(3, "refunds_idempotency", "0003_refunds_idempotency"),
    migration!(4, "webhooks", "0004_webhooks"),
    migration!(5, "sessions", "0005_sessions"),
    migration!(6, "production", "0006_production"),
    migration!(7, "webhook endpoints", "0007_webhook_endpoints"),
    migration!(8, "endpoint health", "0008_endpoint_health"),
    migration!(9, "scale", "0009_scale"),
    migration!(10, "due work", "0010_due_work"),
    migration!(11, "hardening", "0011_hardening"),
    migration!(12, "liveness", "0012_liveness"),
    migration!(13, "upi intent", "0013_upi_intent"),
    migration!(14, "payment links", "0014_payment_links"),
    migration!(15, "fees", "0015_fees"),
    migration!(16, "settlements", "0016_settlements"),
    migration!(17, "users", "0017_users"),
    migration!(18, "two-factor", "0018_two_factor"),
    migration!(19, "audit log", "0019_audit_log"),
    migration!(20, "failed deliveries", "0020_failed_deliveries"),
    migration!(21, "refunds in rollups", "0021_refunds_in_rollups"),
    migration!(22, "secret overlap", "0022_secret_overlap"),
    migration!(23, "business profile", "0023_business_profile"),
    migration!(24, "order callback", "0024_order_callback"),
];

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS paygate_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)";

/// Applies the pending migrations up to `version` (all of them with `i64::MAX`).
pub(super) async fn run(store: &Store, version: i64) -> anyhow::Result<()> {
    for migration in MIGRATIONS.iter().filter(|m| m.version <= version) {
        let mut tx = store.begin().await?;
        if let Tx::Postgres(t) = &mut tx {
            sqlx::query("SELECT pg_advisory_xact_lock(7382923)")
                .execute(&mut **t)
                .await?;
        }
        let applied: bool = on_tx!(&mut tx, conn => {
            sqlx::raw_sql(BOOKKEEPING).execute(&mut *conn).await?;
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM paygate_migrations WHERE version = $1")
                .bind(migration.version)
                .fetch_one(&mut *conn)
                .await? > 0
        });
        if applied {
            continue;
        }
        let sql = match &tx {
            Tx::Sqlite(_) => migration.sqlite,
            Tx::Postgres(_) => migration.postgres,
        };
        on_tx!(&mut tx, conn => {
            sqlx::raw_sql(sql)
                .execute(&mut *conn)
                .await
                .with_context(|| format!("migration {} ({}) failed", migration.version, migration.name))?;
            sqlx::query("INSERT INTO paygate_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(migration.version)
                .bind(migration.name)
                .bind(now().to_rfc3339())
                .execute(&mut *conn)
                .await?;
        });
        tx.commit().await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "migration applied"
        );
    }
    Ok(())
}
