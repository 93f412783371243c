//! The input rows of a batched statement: named, typed columns that become a relation `v` the
//! statement reads (`INSERT … SELECT … FROM v`, `UPDATE … FROM v`), so a batch of any size is
//! written by one statement.
//!
//! PostgreSQL reads them as `UNNEST($1::text[], $2::bigint[], …)`, one array parameter per
//! column: the statement's text is the same for every batch size, so it is prepared once per
//! connection. SQLite has no arrays and reads them as `VALUES ($1, $2), ($3, $4), …`, one
//! parameter per value (preparing a statement is cheap there, and the connection caches one
//! per batch size). sqlx offers neither form for both backends, hence this small builder.

use chrono::{DateTime, Utc};
use sqlx::{
    Arguments as _, AssertSqlSafe, FromRow,
    postgres::{PgArguments, PgRow},
    sqlite::{SqliteArguments, SqliteRow},
};

use super::{Db, Store, Tx};

/// One column's values.
enum Values {
    Text(Vec<Option<String>>),
    /// JSON text: `jsonb` on PostgreSQL, text on SQLite.
    Json(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<bool>),
    Time(Vec<Option<DateTime<Utc>>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Self::Text(v) | Self::Json(v) => v.len(),
            Self::Int(v) => v.len(),
            Self::Bool(v) => v.len(),
            Self::Time(v) => v.len(),
            Self::Bytes(v) => v.len(),
        }
    }

    fn pg_type(&self) -> &'static str {
        match self {
            Self::Text(_) => "text[]",
            Self::Json(_) => "text[]::jsonb[]",
            Self::Int(_) => "bigint[]",
            Self::Bool(_) => "boolean[]",
            Self::Time(_) => "timestamptz[]",
            Self::Bytes(_) => "bytea[]",
        }
    }
}

/// Named columns of equal length.
#[derive(Default)]
pub struct Rows {
    columns: Vec<(&'static str, Values)>,
    len: usize,
}

impl Rows {
    /// No columns yet, `len` rows.
    pub fn new(len: usize) -> Self {
        Self {
            columns: Vec::new(),
            len,
        }
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(mut self, name: &'static str, values: Values) -> Self {
        let len = values.len();
        debug_assert_eq!(
            len, self.len,
            "column {name} has {len} values, not {}",
            self.len
        );
        self.columns.push((name, values));
        self
    }

    /// A text column.
    pub fn text<S: Into<String>>(self, name: &'static str, v: impl IntoIterator<Item = S>) -> Self {
        self.push(
            name,
            Values::Text(v.into_iter().map(|s| Some(s.into())).collect()),
        )
    }

    /// A text column with NULLs.
    pub fn opt_text(self, name: &'static str, v: impl IntoIterator<Item = Option<String>>) -> Self {
        self.push(name, Values::Text(v.into_iter().collect()))
    }

    /// A JSON column (each value a serialised JSON document).
    pub fn json(self, name: &'static str, v: impl IntoIterator<Item = String>) -> Self {
        self.push(name, Values::Json(v.into_iter().map(Some).collect()))
    }

    /// A bytes column.
    pub fn bytes(self, name: &'static str, v: impl IntoIterator<Item = Vec<u8>>) -> Self {
        self.push(name, Values::Bytes(v.into_iter().map(Some).collect()))
    }

    /// An integer column.
    pub fn int(self, name: &'static str, v: impl IntoIterator<Item = i64>) -> Self {
        self.push(name, Values::Int(v.into_iter().map(Some).collect()))
    }

    /// An integer column with NULLs.
    pub fn opt_int(self, name: &'static str, v: impl IntoIterator<Item = Option<i64>>) -> Self {
        self.push(name, Values::Int(v.into_iter().collect()))
    }

    /// A boolean column.
    pub fn bool(self, name: &'static str, v: impl IntoIterator<Item = bool>) -> Self {
        self.push(name, Values::Bool(v.into_iter().collect()))
    }

    /// A timestamp column.
    pub fn time(self, name: &'static str, v: impl IntoIterator<Item = DateTime<Utc>>) -> Self {
        self.push(name, Values::Time(v.into_iter().map(Some).collect()))
    }

    /// A timestamp column with NULLs.
    pub fn opt_time(
        self,
        name: &'static str,
        v: impl IntoIterator<Item = Option<DateTime<Utc>>>,
    ) -> Self {
        self.push(name, Values::Time(v.into_iter().collect()))
    }

    fn names(&self) -> String {
        self.columns
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `v(a, b) AS (…)`, for a `WITH` clause, for PostgreSQL.
    fn pg_cte(&self) -> String {
        let arrays: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, v))| format!("${}::{}", i + 1, v.pg_type()))
            .collect();
        format!(
            "v({}) AS (SELECT * FROM UNNEST({}))",
            self.names(),
            arrays.join(", ")
        )
    }

    /// `v(a, b) AS (VALUES …)`, for a `WITH` clause, for SQLite. The placeholders are plain
    /// `?`, bound in order: SQLite looks a numbered one up by name in a list, which for the
    /// thousands of values of a batch costs more than the insert.
    fn sqlite_cte(&self) -> String {
        let row = format!("({})", vec!["?"; self.columns.len()].join(", "));
        format!(
            "v({}) AS (VALUES {})",
            self.names(),
            vec![row.as_str(); self.len].join(", ")
        )
    }

    /// The arguments for PostgreSQL: one array per column.
    fn pg_arguments(self) -> Result<PgArguments, sqlx::Error> {
        let mut args = PgArguments::default();
        for (_, v) in self.columns {
            match v {
                Values::Text(v) | Values::Json(v) => args.add(v).map_err(sqlx::Error::Encode)?,
                Values::Int(v) => args.add(v).map_err(sqlx::Error::Encode)?,
                Values::Bool(v) => args.add(v).map_err(sqlx::Error::Encode)?,
                Values::Time(v) => args.add(v).map_err(sqlx::Error::Encode)?,
                Values::Bytes(v) => args.add(v).map_err(sqlx::Error::Encode)?,
            }
        }
        Ok(args)
    }

    /// The arguments for SQLite: row by row, in the order of the placeholders.
    fn sqlite_arguments(self) -> Result<SqliteArguments, sqlx::Error> {
        let mut args = SqliteArguments::default();
        let mut columns: Vec<std::vec::IntoIter<Cell>> = self
            .columns
            .into_iter()
            .map(|(_, v)| cells(v).into_iter())
            .collect();
        for _ in 0..self.len {
            for column in &mut columns {
                match column.next() {
                    Some(Cell::Text(s)) => args.add(s).map_err(sqlx::Error::Encode)?,
                    Some(Cell::Int(i)) => args.add(i).map_err(sqlx::Error::Encode)?,
                    Some(Cell::Bool(b)) => args.add(b).map_err(sqlx::Error::Encode)?,
                    Some(Cell::Time(t)) => args.add(t).map_err(sqlx::Error::Encode)?,
                    Some(Cell::Bytes(b)) => args.add(b).map_err(sqlx::Error::Encode)?,
                    None => {}
                }
            }
        }
        Ok(args)
    }
}

/// One value of a column, for SQLite's one-parameter-per-value binding.
enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    Time(Option<DateTime<Utc>>),
    Bytes(Option<Vec<u8>>),
}

fn cells(v: Values) -> Vec<Cell> {
    match v {
        Values::Text(v) | Values::Json(v) => v.into_iter().map(Cell::Text).collect(),
        Values::Bytes(v) => v.into_iter().map(Cell::Bytes).collect(),
        Values::Int(v) => v.into_iter().map(Cell::Int).collect(),
        Values::Bool(v) => v.into_iter().map(Cell::Bool).collect(),
        Values::Time(v) => v.into_iter().map(Cell::Time).collect(),
    }
}

/// What a batched statement can return: a row type both backends decode.
pub trait Fetched:
    Send + Unpin + for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow>
{
}
impl<T: Send + Unpin + for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow>> Fetched for T {}

/// Runs `WITH <rows as v> <statement>` in `tx` and returns its rows. The statement reads the
/// input rows as `v`.
pub async fn fetch<T: Fetched>(
    tx: &mut Tx,
    rows: Rows,
    statement: &str,
) -> Result<Vec<T>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    match tx {
        Tx::Postgres(t) => fetch_pg(&mut **t, rows, statement).await,
        Tx::Sqlite(t) => fetch_sqlite(&mut **t, rows, statement).await,
    }
}

/// [`fetch`] outside a transaction, on the store's write connection(s): for a batch that is
/// one statement.
pub async fn fetch_write<T: Fetched>(
    store: &Store,
    rows: Rows,
    statement: &str,
) -> Result<Vec<T>, sqlx::Error> {
    fetch_on(&store.write, rows, statement).await
}

/// [`fetch`] of a statement that only reads, on the store's read pool (on SQLite it leaves the
/// one writer connection to the writes).
pub async fn fetch_read<T: Fetched>(
    store: &Store,
    rows: Rows,
    statement: &str,
) -> Result<Vec<T>, sqlx::Error> {
    fetch_on(&store.db, rows, statement).await
}

async fn fetch_on<T: Fetched>(db: &Db, rows: Rows, statement: &str) -> Result<Vec<T>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    match db {
        Db::Postgres(pool) => fetch_pg(pool, rows, statement).await,
        Db::Sqlite(pool) => fetch_sqlite(pool, rows, statement).await,
    }
}

async fn fetch_pg<'e, T: Fetched>(
    on: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    rows: Rows,
    statement: &str,
) -> Result<Vec<T>, sqlx::Error> {
    let sql = format!("WITH {} {statement}", rows.pg_cte());
    sqlx::query_as_with(AssertSqlSafe(sql), rows.pg_arguments()?)
        .fetch_all(on)
        .await
}

async fn fetch_sqlite<'e, T: Fetched>(
    on: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    rows: Rows,
    statement: &str,
) -> Result<Vec<T>, sqlx::Error> {
    let sql = format!("WITH {} {statement}", rows.sqlite_cte());
    sqlx::query_as_with(AssertSqlSafe(sql), rows.sqlite_arguments()?)
        .fetch_all(on)
        .await
}

/// `cols` (a comma-separated column list) with every column qualified by `table`, for the
/// `RETURNING` of an `UPDATE … FROM v`, where a bare `id` would be ambiguous.
pub fn qualified(table: &str, cols: &str) -> String {
    cols.split(',')
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `WITH <rows as v> <statement>` in `tx` for its effect; returns the rows it affected.
pub async fn execute(tx: &mut Tx, rows: Rows, statement: &str) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    Ok(match tx {
        Tx::Postgres(t) => {
            let sql = format!("WITH {} {statement}", rows.pg_cte());
            sqlx::query_with(AssertSqlSafe(sql), rows.pg_arguments()?)
                .execute(&mut **t)
                .await?
                .rows_affected()
        }
        Tx::Sqlite(t) => {
            let sql = format!("WITH {} {statement}", rows.sqlite_cte());
            sqlx::query_with(AssertSqlSafe(sql), rows.sqlite_arguments()?)
                .execute(&mut **t)
                .await?
                .rows_affected()
        }
    })
}
