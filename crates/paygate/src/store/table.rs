//! The reads and writes every table of a merchant's rows takes alike: one row by id, a page of
//! the merchant's rows with their total, a batch inserted or deleted by one statement. Each
//! statement's text is fixed at compile time by [`table!`] (from the table's name and the
//! calling module's column list), so every one is a prepared, parameterised statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Store, Tx, rows, sql};

/// A table whose rows are read whole as `Self`, each belonging to a merchant. Implemented by
/// [`table!`].
pub trait Table: rows::Fetched {
    /// `SELECT <columns> … WHERE id = $1`.
    const GET: &'static str;
    /// `SELECT <columns> … WHERE merchant_id = $1 ORDER BY <newest first> LIMIT $2 OFFSET $3`.
    const PAGE: &'static str;
    /// `SELECT COUNT(*) … WHERE merchant_id = $1`.
    const COUNT: &'static str;
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
/// module's `$cols!()`, a merchant's listed in `$order`; with `pending`, [`Pending`] too.
macro_rules! table {
    ($row:ty, $table:literal, $cols:ident, $order:literal, pending) => {
        $crate::store::table::table!($row, $table, $cols, $order);

        impl $crate::store::table::Pending for $row {
            const PENDING_BEFORE: &'static str = concat!(
                "SELECT id FROM ",
                $table,
                " WHERE status = 'pending' AND created_at < $1 ",
                "ORDER BY created_at LIMIT $2"
            );
        }
    };
    ($row:ty, $table:literal, $cols:ident, $order:literal) => {
        impl $crate::store::table::Table for $row {
            const GET: &'static str =
                concat!("SELECT ", $cols!(), " FROM ", $table, " WHERE id = $1");
            const PAGE: &'static str = concat!(
                "SELECT ",
                $cols!(),
                " FROM ",
                $table,
                " WHERE merchant_id = $1 ORDER BY ",
                $order,
                " LIMIT $2 OFFSET $3"
            );
            const COUNT: &'static str =
                concat!("SELECT COUNT(*) FROM ", $table, " WHERE merchant_id = $1");
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

/// Which part of a merchant's list: `limit` rows from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub limit: i64,
    pub offset: i64,
}

/// A page of a merchant's rows, and the merchant's total.
pub type Page<T> = (Vec<T>, i64);

/// The page of the merchant's rows in `window`, newest first.
pub async fn page<T: Table>(
    store: &Store,
    merchant_id: &str,
    window: Window,
) -> Result<Page<T>, sqlx::Error> {
    let (limit, offset) = (window.limit, window.offset);
    let page = sql!(on_pool(store) => fetch_all(T::PAGE, merchant_id, limit, offset))?;
    let total = sql!(on_pool(store) => scalar::fetch_one(T::COUNT, merchant_id))?;
    Ok((page, total))
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
