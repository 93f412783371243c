//! The JSON shapes of settlements, their transactions and reconciliations.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::iso;
use crate::store::settlements::{Reconciliation, Settlement, Transaction};

/// A settlement: one payout of a merchant's captured payments less refunds, fees and tax.
#[derive(Serialize, ToSchema)]
pub struct SettlementBody<'a> {
    /// The settlement's id, `setl_` and 16 characters.
    #[schema(example = "setl_Kx7aB2cD9eF1gH3j")]
    pub id: &'a str,
    /// What is paid out, in the currency's smallest unit: `gross - refunds - fees - tax`
    /// (never negative).
    #[schema(example = 96460)]
    pub amount: i64,
    /// ISO 4217 code, upper case.
    #[schema(example = "INR")]
    pub currency: &'a str,
    /// The captured payments' amounts.
    #[schema(example = 100000)]
    pub gross: i64,
    /// The processed refunds' amounts.
    #[schema(example = 1000)]
    pub refunds: i64,
    /// The payments' fees.
    #[schema(example = 2000)]
    pub fees: i64,
    /// The tax on the fees.
    #[schema(example = 360)]
    pub tax: i64,
    /// Payments and refunds settled.
    #[schema(example = 3)]
    pub count: i64,
    /// `created`, `processed` or `failed` (retried at the next cycle).
    #[schema(example = "processed")]
    pub status: &'a str,
    /// The bank's reference of the transfer, once processed.
    #[schema(example = "PGSB4F1A9C03D2E7B6A1")]
    pub utr: Option<&'a str>,
    /// Transfers asked of the bank.
    pub attempts: i32,
    /// Why the last transfer failed.
    pub failure_reason: Option<&'a str>,
    /// When it was created (ISO 8601).
    pub created_at: String,
    /// When the money was sent (ISO 8601); `null` before.
    pub processed_at: Option<String>,
}

impl<'a> From<&'a Settlement> for SettlementBody<'a> {
    fn from(s: &'a Settlement) -> Self {
        Self {
            id: &s.id,
            amount: s.amount,
            currency: &s.currency,
            gross: s.gross,
            refunds: s.refunds,
            fees: s.fees,
            tax: s.tax,
            count: s.count,
            status: &s.status,
            utr: s.utr.as_deref(),
            attempts: s.attempts,
            failure_reason: s.failure_reason.as_deref(),
            created_at: iso(s.created_at),
            processed_at: s.processed_at.map(iso),
        }
    }
}

/// A captured payment or a processed refund, with its settlement.
#[derive(Serialize, ToSchema)]
pub struct TransactionBody<'a> {
    /// `payment` or `refund`.
    #[schema(example = "payment")]
    pub r#type: &'a str,
    /// The payment's or the refund's id.
    #[schema(example = "pay_Kx7aB2cD9eF1gH3j")]
    pub id: &'a str,
    /// The payment (a refund's payment).
    pub payment_id: &'a str,
    /// In the currency's smallest unit; a refund's is money returned.
    #[schema(example = 50000)]
    pub amount: i64,
    /// The gateway's fee (0 for a refund: the fee is not returned).
    #[schema(example = 1000)]
    pub fee: i64,
    /// The tax on the fee.
    #[schema(example = 180)]
    pub tax: i64,
    /// ISO 4217 code, upper case.
    pub currency: &'a str,
    /// When it became final: captured, or processed (ISO 8601).
    pub at: String,
    /// The settlement it belongs to; `null` until settled.
    pub settlement_id: Option<&'a str>,
    /// When its settlement was paid out (ISO 8601).
    pub settled_at: Option<String>,
    /// The bank's reference of that payout.
    pub utr: Option<&'a str>,
}

impl<'a> From<&'a Transaction> for TransactionBody<'a> {
    fn from(t: &'a Transaction) -> Self {
        Self {
            r#type: &t.kind,
            id: &t.id,
            payment_id: &t.payment_id,
            amount: t.amount,
            fee: t.fee,
            tax: t.tax,
            currency: &t.currency,
            at: iso(t.at),
            settlement_id: t.settlement_id.as_deref(),
            settled_at: t.settled_at.map(iso),
            utr: t.utr.as_deref(),
        }
    }
}

/// A bank report checked against paygate's transactions of its date.
#[derive(Serialize, ToSchema)]
pub struct ReconciliationBody<'a> {
    /// The reconciliation's id, `recon_` and 16 characters.
    #[schema(example = "recon_Kx7aB2cD9eF1gH3j")]
    pub id: &'a str,
    /// The report's date (UTC), `YYYY-MM-DD`.
    #[schema(example = "2026-12-07")]
    pub date: &'a str,
    /// Lines that agree with paygate.
    pub matched: i64,
    /// Lines whose amount or fee differs from paygate's.
    pub mismatched: i64,
    /// Lines naming a transaction paygate does not know.
    pub unknown: i64,
    /// paygate's transactions of the date the report leaves out.
    pub missing: i64,
    /// Each result: `{reference, type, result, reason, currency, expected_amount,
    /// reported_amount, expected_fee, reported_fee}`, `result` one of `matched`,
    /// `amount_mismatch` (the type, amount, fee or UTR differs, or the line repeats),
    /// `unknown` (no captured payment or processed refund of the merchant final that day) or
    /// `missing` (the first 10,000 are kept; all are counted); shown when reading one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub lines: Option<&'a Value>,
    /// When it was made (ISO 8601).
    pub created_at: String,
}

impl<'a> ReconciliationBody<'a> {
    /// The reconciliation, with its lines when `full`.
    pub fn new(r: &'a Reconciliation, full: bool) -> Self {
        Self {
            id: &r.id,
            date: &r.report_date,
            matched: r.matched,
            mismatched: r.mismatched,
            unknown: r.unknown,
            missing: r.missing,
            lines: full.then_some(&r.lines),
            created_at: iso(r.created_at),
        }
    }
}
