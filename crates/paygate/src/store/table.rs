//! The reads and writes every table of a merchant's rows takes alike: one row by id, a page of
//! the merchant's rows with their total, a batch inserted or deleted by one statement. Each
//! statement's text is fixed at compile time by [`table!`] (from the table's name and the
//! calling module's column list), so every one is a prepared, parameterised statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use sqlx::AssertSqlSafe;

use super::{Store, Tx, on_pool, rows, sql};

/// A table whose rows are read whole as `Self`, each belonging to a merchant. Implemented by
/// [`table!`].
pub trait Table: rows::Fetched {
    /// `SELECT <columns> … WHERE id = $1`.
    const GET: &'static str;
    /// The table's name.
    const TABLE: &'static str;
    /// `SELECT <columns> FROM <table>`.
    const SELECT: &'static str;
    /// The columns a list is ordered by (newest last), unique together: `created_at, id`.
    const KEY: &'static str;
    /// `INSERT INTO … (<columns>) SELECT <columns> FROM v`.
    const INSERT: &'static str;
    /// `DELETE FROM … WHERE id IN (SELECT id FROM v)`.
    const DELETE: &'static str;

    /// The row's id.
    fn id(&self) -> &str;
    /// The merchant the row belongs to.
    fn merchant_id(&self) -> &str;
}

/// A table of things created `pending` and processed by a job (payments, refunds), which the
/// recovery sweep re-enqueues while they stay pending. Implemented by [`table!`] with `pending`.
pub trait Pending: Table {
    /// `SELECT id … WHERE status = 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2`.
    const PENDING_BEFORE: &'static str;
}

/// Implements [`Table`] for `$row`, the rows of `$table` with the columns of the calling
/// module's `$cols!()`, a merchant's listed by `$key` (newest first); with `pending`,
/// [`Pending`] too.
macro_rules! table {
    ($row:ty, $table:literal, $cols:ident, $key:literal, pending) => {
        $crate::store::table::table!($row, $table, $cols, $key);

        impl $crate::store::table::Pending for $row {
            const PENDING_BEFORE: &'static str = concat!(
                "SELECT id FROM ",
                $table,
                " WHERE status = 'pending' AND created_at < $1 ",
                "ORDER BY created_at LIMIT $2"
            );
        }
    };
    ($row:ty, $table:literal, $cols:ident, $key:literal) => {
        impl $crate::store::table::Table for $row {
            const GET: &'static str =
                concat!("SELECT ", $cols!(), " FROM ", $table, " WHERE id = $1");
            const TABLE: &'static str = $table;
            const SELECT: &'static str = concat!("SELECT ", $cols!(), " FROM ", $table);
            const KEY: &'static str = $key;
            const INSERT: &'static str = concat!(
                "INSERT INTO ",
                $table,
                " (",
                $cols!(),
                ") SELECT ",
                $cols!(),
                " FROM v"
            );
            const DELETE: &'static str =
                concat!("DELETE FROM ", $table, " WHERE id IN (SELECT id FROM v)");

            fn id(&self) -> &str {
                &self.id
            }

            fn merchant_id(&self) -> &str {
                &self.merchant_id
            }
        }
    };
}
pub(crate) use table;

/// The row with this id, whoever owns it.
pub async fn get<T: Table>(store: &Store, id: &str) -> Result<Option<T>, sqlx::Error> {
    sql!(on_pool(store) => fetch_optional(T::GET, id))
}

/// The row with this id, read inside a transaction.
pub async fn get_in<T: Table>(tx: &mut Tx, id: &str) -> Result<Option<T>, sqlx::Error> {
    sql!(on_tx(tx) => fetch_optional(T::GET, id))
}

/// The row with this id if it is the merchant's (anyone's, for `None`). An id that is not of
/// the row's form (`valid` false) reads nothing.
pub async fn owned<T: Table>(
    store: &Store,
    merchant_id: Option<&str>,
    id: &str,
    valid: bool,
) -> Result<Option<T>, sqlx::Error> {
    if !valid {
        return Ok(None);
    }
    Ok(get::<T>(store, id)
        .await?
        .filter(|row| merchant_id.is_none_or(|m| m == row.merchant_id())))
}

/// `rows` by their ids.
pub fn by_id<T: Table>(rows: Vec<T>) -> HashMap<String, T> {
    rows.into_iter()
        .map(|row| (row.id().to_owned(), row))
        .collect()
}

/// Where a page of a list starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// After skipping this many rows: the database walks every skipped row, so deep pages
    /// cost in proportion to the offset (kept for the seed contract).
    Offset(i64),
    /// Right after the row with this id: the rows older than it (`starting_after`).
    After(String),
    /// Right before the row with this id: the rows newer than it (`ending_before`).
    Before(String),
}

/// Which part of a merchant's list: `limit` rows from `start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub limit: i64,
    pub start: Start,
}

impl Window {
    /// The first `limit` rows.
    pub fn first(limit: i64) -> Self {
        Self {
            limit,
            start: Start::Offset(0),
        }
    }
}

/// A page of a merchant's rows, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    /// How many rows the whole list has, counted up to [`COUNT_UP_TO`] (see [`count`]).
    pub total: i64,
    /// Whether rows lie beyond this page in the direction it was read: older ones (from the
    /// start, an offset or `starting_after`), newer ones (`ending_before`).
    pub has_more: bool,
}

/// How far a list's total is counted. Counting reads every counted row's index entry, so the
/// count is bounded to keep a page's cost flat: a longer list's total reads `COUNT_UP_TO`
/// (its rows are still all reachable by paging).
pub const COUNT_UP_TO: i64 = 10_000;

/// A value bound to a [`Filter`]'s placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    Time(DateTime<Utc>),
    Int(i64),
}

/// Conditions a list's rows must meet besides being the merchant's, each a fixed SQL text with
/// `?` where its value goes (numbered `$n` when the statement is built): only the conditions
/// asked for are in the statement, so each query is one the indexes serve.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    conditions: Vec<(&'static str, Arg)>,
}

impl Filter {
    /// Adds `condition` (every `?` in it is bound to `arg`).
    pub fn and(mut self, condition: &'static str, arg: Arg) -> Self {
        self.conditions.push((condition, arg));
        self
    }

    /// Whether no condition is set.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }
}

/// A statement under construction: its text and the values of its placeholders in order
/// (`$1` is always the merchant id).
struct Statement {
    sql: String,
    args: Vec<Arg>,
}

impl Statement {
    fn new(head: &str, merchant_id: &str) -> Self {
        Self {
            sql: format!("{head} WHERE merchant_id = $1"),
            args: vec![Arg::Text(merchant_id.to_owned())],
        }
    }

    /// Appends `text` with each `?` replaced by a new placeholder bound to `arg`.
    fn push(&mut self, text: &str, arg: &Arg) {
        let mut parts = text.split('?');
        self.sql.push_str(parts.next().unwrap_or_default());
        for part in parts {
            self.args.push(arg.clone());
            self.sql.push_str(&format!("${}{part}", self.args.len()));
        }
    }

    fn filtered(mut self, filter: &Filter) -> Self {
        for (condition, arg) in &filter.conditions {
            self.sql.push_str(" AND ");
            self.push(condition, arg);
        }
        self
    }
}

/// Binds a [`Statement`]'s values to the query `$q` (of either backend).
macro_rules! bound {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for arg in $args {
            q = match arg {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Time(t) => q.bind(*t),
                Arg::Int(n) => q.bind(*n),
            };
        }
        q
    }};
}

/// The statement reading the page of `window` (one row more than asked, to tell `has_more`),
/// and whether it reads newest first.
fn page_statement<T: Table>(
    merchant_id: &str,
    filter: &Filter,
    window: &Window,
) -> (Statement, bool) {
    let mut st = Statement::new(T::SELECT, merchant_id).filtered(filter);
    let key = T::KEY;
    let desc: String = key
        .split(',')
        .map(|c| format!("{} DESC", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let newest_first = !matches!(window.start, Start::Before(_));
    match &window.start {
        Start::Offset(_) => {}
        Start::After(id) | Start::Before(id) => {
            let op = if newest_first { "<" } else { ">" };
            // The cursor row's key, read by its id (the primary key) within the merchant's rows.
            let cursor = format!(
                " AND ({key}) {op} (SELECT {key} FROM {} WHERE id = ? AND merchant_id = $1)",
                T::TABLE
            );
            st.push(&cursor, &Arg::Text(id.clone()));
        }
    }
    st.sql.push_str(" ORDER BY ");
    st.sql.push_str(if newest_first { &desc } else { key });
    st.sql
        .push_str(&format!(" LIMIT {}", window.limit.saturating_add(1)));
    if let Start::Offset(n) = window.start {
        st.sql.push_str(&format!(" OFFSET {n}"));
    }
    (st, newest_first)
}

/// The page of the merchant's rows in `window`, newest first, with the list's total (counted
/// up to [`COUNT_UP_TO`]). `None` when the window starts at a cursor that is not one of the
/// merchant's rows of this table.
pub async fn page<T: Table>(
    store: &Store,
    merchant_id: &str,
    window: Window,
) -> Result<Option<Page<T>>, sqlx::Error> {
    filtered(store, merchant_id, &Filter::default(), window).await
}

/// [`page`] of the rows that meet `filter`; the rows and the count are read at once.
pub async fn filtered<T: Table>(
    store: &Store,
    merchant_id: &str,
    filter: &Filter,
    window: Window,
) -> Result<Option<Page<T>>, sqlx::Error> {
    let (rows, total) = tokio::try_join!(
        read::<T>(store, merchant_id, filter, &window),
        count::<T>(store, merchant_id, filter)
    )?;
    Ok(rows.map(|(rows, has_more)| Page {
        rows,
        total,
        has_more,
    }))
}

/// The rows of [`filtered`] without the count, and whether more lie beyond them (as
/// [`Page::has_more`]): for a reader that walks a whole list, such as an export.
pub async fn read<T: Table>(
    store: &Store,
    merchant_id: &str,
    filter: &Filter,
    window: &Window,
) -> Result<Option<(Vec<T>, bool)>, sqlx::Error> {
    let (st, newest_first) = page_statement::<T>(merchant_id, filter, window);
    let mut rows: Vec<T> = on_pool!(store, c => {
        bound!(sqlx::query_as(AssertSqlSafe(st.sql.clone())), &st.args).fetch_all(c).await
    })?;
    let has_more = rows.len() as i64 > window.limit;
    rows.truncate(usize::try_from(window.limit).unwrap_or(0));
    if !newest_first {
        rows.reverse();
    }
    if rows.is_empty()
        && let Start::After(id) | Start::Before(id) = &window.start
        && owned::<T>(store, Some(merchant_id), id, true)
            .await?
            .is_none()
    {
        return Ok(None);
    }
    Ok(Some((rows, has_more)))
}

/// The statement counting the merchant's rows that meet `filter`, up to [`COUNT_UP_TO`].
fn count_statement<T: Table>(merchant_id: &str, filter: &Filter) -> Statement {
    let mut st =
        Statement::new(&format!("SELECT 1 FROM {}", T::TABLE), merchant_id).filtered(filter);
    st.sql = format!(
        "SELECT COUNT(*) FROM ({} LIMIT {COUNT_UP_TO}) AS counted",
        st.sql
    );
    st
}

/// How many of the merchant's rows meet `filter`, counted up to [`COUNT_UP_TO`]: the count
/// reads at most that many index entries, whatever the table's size.
pub async fn count<T: Table>(
    store: &Store,
    merchant_id: &str,
    filter: &Filter,
) -> Result<i64, sqlx::Error> {
    let st = count_statement::<T>(merchant_id, filter);
    on_pool!(store, c => {
        bound!(sqlx::query_scalar(AssertSqlSafe(st.sql.clone())), &st.args).fetch_one(c).await
    })
}

/// The query plans of the statements a page of `window` and its count run, one plan line per
/// string: `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on PostgreSQL with sequential scans and
/// sorts priced out (`enable_seqscan`, `enable_sort` off), so a plan that still scans the
/// table or sorts is one no index can serve, whatever the table's size.
pub async fn explain<T: Table>(
    store: &Store,
    merchant_id: &str,
    filter: &Filter,
    window: &Window,
) -> Result<Vec<Vec<String>>, sqlx::Error> {
    let (page, _) = page_statement::<T>(merchant_id, filter, window);
    let mut plans = Vec::new();
    for st in [page, count_statement::<T>(merchant_id, filter)] {
        plans.push(plan(store, &st.sql, &st.args).await?);
    }
    Ok(plans)
}

/// The query plan of `sql` with `args` bound, one plan line per string, read as [`explain`]
/// reads them (sequential scans and sorts priced out on PostgreSQL).
pub async fn plan(store: &Store, sql: &str, args: &[Arg]) -> Result<Vec<String>, sqlx::Error> {
    Ok(match &store.db {
        super::Db::Sqlite(pool) => {
            let sql = format!("EXPLAIN QUERY PLAN {sql}");
            let rows: Vec<(i64, i64, i64, String)> =
                bound!(sqlx::query_as(AssertSqlSafe(sql)), args)
                    .fetch_all(pool)
                    .await?;
            rows.into_iter().map(|r| r.3).collect()
        }
        super::Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SET LOCAL enable_seqscan = off")
                .execute(&mut *tx)
                .await?;
            sqlx::query("SET LOCAL enable_sort = off")
                .execute(&mut *tx)
                .await?;
            let sql = format!("EXPLAIN {sql}");
            let lines: Vec<String> = bound!(sqlx::query_scalar(AssertSqlSafe(sql)), args)
                .fetch_all(&mut *tx)
                .await?;
            tx.rollback().await?;
            lines
        }
    })
}

/// Ids of the rows still `pending` that were created before `before`, oldest first.
pub async fn pending_before<T: Pending>(
    store: &Store,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sql!(on_pool(store) => scalar::fetch_all(T::PENDING_BEFORE, before, limit))
}

/// Inserts `input` (every column of the table), in one statement.
pub async fn insert_all<T: Table>(tx: &mut Tx, input: rows::Rows) -> Result<(), sqlx::Error> {
    rows::execute(tx, input, T::INSERT).await?;
    Ok(())
}

/// Deletes rows this transaction inserted (whose requests lost their idempotency keys).
pub async fn delete_in<T: Table>(tx: &mut Tx, ids: &[String]) -> Result<(), sqlx::Error> {
    let input = rows::Rows::new(ids.len()).text("id", ids.iter().cloned());
    rows::execute(tx, input, T::DELETE).await?;
    Ok(())
}
