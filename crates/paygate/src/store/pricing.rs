//! Pricing rows: what a merchant pays per method (see `paygate_core::fees`). A method without
//! a row is priced at the defaults; the fees themselves are computed by the statement that makes
//! a payment final (`payments::finish_all`).

use chrono::{DateTime, Utc};
use paygate_core::{
    Method,
    fees::{DEFAULT_FEE_BPS, DEFAULT_TAX_BPS},
};

use super::{Store, sql};

/// A merchant's price for one method, in basis points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    pub method: Method,
    pub fee_bps: i64,
    pub tax_bps: i64,
    /// Whether this is the default (no row of the merchant's).
    pub default: bool,
}

/// The merchant's price for each method (the defaults where it has none), UPI first.
pub async fn of(store: &Store, merchant_id: &str) -> Result<Vec<Price>, sqlx::Error> {
    let sql = "SELECT method, fee_bps, tax_bps FROM pricing WHERE merchant_id = $1";
    let rows: Vec<(String, i64, i64)> = sql!(on_pool(store) => fetch_all(sql, merchant_id))?;
    Ok([Method::Upi, Method::Card]
        .into_iter()
        .map(
            |method| match rows.iter().find(|(m, _, _)| m.as_str() == method.as_str()) {
                Some((_, fee_bps, tax_bps)) => Price {
                    method,
                    fee_bps: *fee_bps,
                    tax_bps: *tax_bps,
                    default: false,
                },
                None => Price {
                    method,
                    fee_bps: DEFAULT_FEE_BPS,
                    tax_bps: DEFAULT_TAX_BPS,
                    default: true,
                },
            },
        )
        .collect())
}

/// Sets the merchant's price for `method` (for the payments that succeed from now on).
pub async fn set(
    store: &Store,
    merchant_id: &str,
    method: Method,
    fee_bps: i64,
    tax_bps: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO pricing (merchant_id, method, fee_bps, tax_bps, updated_at) \
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (merchant_id, method) \
               DO UPDATE SET fee_bps = excluded.fee_bps, tax_bps = excluded.tax_bps, \
               updated_at = excluded.updated_at";
    sql!(on_write(store) => execute(sql, merchant_id, method.as_str(), fee_bps, tax_bps, at))?;
    Ok(())
}
