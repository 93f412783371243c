//! Settlements and reconciliation: money out to the merchant, and the bank's report checked
//! against paygate.
//!
//! The settlement cycle ([`Settlements::run`], a worker chore every `SETTLEMENT_INTERVAL`):
//! 1. **Claim.** For each merchant and currency with transactions due (captured payments and
//!    processed refunds final for `SETTLEMENT_DELAY`), one transaction claims them all for a
//!    new settlement by one conditional statement per table (`settlement_id IS NULL`), sums
//!    them and writes the settlement `created`. A transaction is claimed by exactly one
//!    settlement whatever runs at once; one that becomes final meanwhile is left for the next.
//!    When the claimed transactions come to less than nothing (refunds beyond captures), the
//!    transaction rolls back: they stay unsettled and are carried into the next settlement,
//!    never paid out as negative.
//! 2. **Transfer.** Every settlement not yet processed is sent to the bank with the idempotency
//!    key `payout_<id>` (the bank answers the same transfer, and UTR, for the same key), then
//!    marked `processed` with its `settlement.processed` event in one transaction, by a
//!    conditional update: a settlement is announced once. A refused transfer marks it `failed`;
//!    the next cycle tries again.
//!
//! A crash at any point leaves either nothing (the claim rolled back) or a settlement the next
//! cycle transfers.

use std::{
    collections::{HashMap, HashSet},
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt as _;
use paygate_core::{ReconciliationId, SettlementId};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{
    audit::{self, Actor},
    context::Ctx,
    idempotent::{self, Replay},
    processor::PayoutRequest,
    queue::worker::Chore,
    store::{
        Store,
        events::Event,
        settlements::{self as rows, Reconciliation, Settlement, Transaction, Window},
        table::{self, Page, Window as ListWindow},
    },
    views::SettlementBody,
    webhooks,
};

/// Settlements transferred by one cycle, at most.
const PAYOUT_BATCH: i64 = 100;
/// The most lines a bank report may have.
pub const REPORT_LINES_MAX: usize = 10_000;
/// The `missing` lines a reconciliation keeps (all are counted).
const MISSING_KEPT: i64 = 10_000;
/// Transfers asked of the bank at once.
const PAYOUT_CONCURRENCY: usize = 16;

idempotent::service_error! {
    /// Settlement errors.
    pub enum Error {
        #[error("settlement not found")]
        NotFound,
        #[error("reconciliation not found")]
        ReconciliationNotFound,
        #[error("{0}")]
        BadReport(String),
        #[error("money overflow")]
        Overflow,
    }
}

/// What one cycle did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cycle {
    /// Settlements created.
    pub created: usize,
    /// Settlements transferred.
    pub processed: usize,
    /// Transfers refused.
    pub failed: usize,
    /// Merchants or settlements whose step failed (logged; tried again next cycle).
    pub errors: usize,
}

/// The settlements service.
pub struct Settlements {
    ctx: Ctx,
    delay: chrono::Duration,
    /// Whether the worker settles (`SETTLEMENT_INTERVAL` is not 0).
    automatic: bool,
}

impl Settlements {
    /// Settles transactions final for `delay`; `automatic` when the worker runs the cycle.
    pub fn new(ctx: Ctx, delay: Duration, automatic: bool) -> Self {
        Self {
            ctx,
            delay: chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX),
            automatic,
        }
    }

    /// Whether the worker settles by itself (else `paygate processor settle` does).
    pub fn automatic(&self) -> bool {
        self.automatic
    }

    /// How long a final transaction waits before it is settled.
    pub fn delay(&self) -> chrono::Duration {
        self.delay
    }

    /// One cycle: settles what is due, then transfers every settlement not yet processed.
    pub async fn run(&self) -> Result<Cycle, Error> {
        let mut cycle = Cycle::default();
        let cutoff = self
            .ctx
            .now()
            .checked_sub_signed(self.delay)
            .unwrap_or(DateTime::UNIX_EPOCH);
        for (merchant_id, currency) in rows::due(&self.ctx.store, cutoff).await? {
            // One merchant's failure (a deadlock, an overflow) stops no other's settlement.
            match self.settle(&merchant_id, &currency, cutoff).await {
                Ok(Some(_)) => cycle.created += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(merchant_id, currency, error = %e, "settling failed");
                    cycle.errors += 1;
                }
            }
        }
        // Every settlement not processed, least recently tried first, each once per cycle,
        // several transfers at once.
        let started = self.ctx.now();
        loop {
            let batch = rows::unpaid(&self.ctx.store, started, PAYOUT_BATCH).await?;
            if batch.is_empty() {
                break;
            }
            let transfers: Vec<_> = batch.iter().map(|s| self.transfer(s)).collect();
            let outcomes: Vec<Result<bool, Error>> = futures_util::stream::iter(transfers)
                .buffer_unordered(PAYOUT_CONCURRENCY)
                .collect()
                .await;
            for outcome in outcomes {
                match outcome {
                    Ok(true) => cycle.processed += 1,
                    Ok(false) => cycle.failed += 1,
                    Err(e) => {
                        tracing::warn!(error = %e, "recording a transfer failed");
                        cycle.errors += 1;
                    }
                }
            }
            if batch.len() < PAYOUT_BATCH as usize || cycle.errors > 0 {
                break;
            }
        }
        if cycle != Cycle::default() {
            tracing::info!(
                created = cycle.created,
                processed = cycle.processed,
                failed = cycle.failed,
                errors = cycle.errors,
                "settlement cycle"
            );
        }
        Ok(cycle)
    }

    /// Claims the merchant's due transactions in `currency` into a new settlement; `None` when
    /// there were none (another run took them) or they come to less than nothing (carried).
    async fn settle(
        &self,
        merchant_id: &str,
        currency: &str,
        cutoff: DateTime<Utc>,
    ) -> Result<Option<Settlement>, Error> {
        let id = SettlementId::generate().into_string();
        let mut tx = self.ctx.store.begin().await?;
        let totals = rows::claim(&mut tx, &id, merchant_id, currency, cutoff).await?;
        if totals.count == 0 {
            return Ok(None);
        }
        let amount = totals
            .gross
            .checked_sub(totals.refunds)
            .and_then(|a| a.checked_sub(totals.fees))
            .and_then(|a| a.checked_sub(totals.tax))
            .ok_or(Error::Overflow)?;
        if amount < 0 {
            // Dropping the transaction rolls the claim back: carried to the next settlement.
            tracing::info!(
                merchant_id,
                currency,
                balance = amount,
                "negative balance carried"
            );
            return Ok(None);
        }
        let at = self.ctx.now();
        let settlement = Settlement {
            id,
            merchant_id: merchant_id.to_owned(),
            currency: currency.to_owned(),
            amount,
            gross: totals.gross,
            refunds: totals.refunds,
            fees: totals.fees,
            tax: totals.tax,
            count: totals.count,
            status: "created".to_owned(),
            utr: None,
            attempts: 0,
            failure_reason: None,
            created_at: at,
            updated_at: at,
            processed_at: None,
        };
        rows::insert(&mut tx, &settlement).await?;
        tx.commit().await?;
        Ok(Some(settlement))
    }

    /// Asks the bank to transfer `s` and records the answer; whether it was transferred.
    async fn transfer(&self, s: &Settlement) -> Result<bool, Error> {
        let request = PayoutRequest {
            idempotency_key: format!("payout_{}", s.id),
            merchant_id: s.merchant_id.clone(),
            amount: s.amount,
            currency: s.currency.clone(),
        };
        let utr = match self.ctx.connector.payout(&request).await {
            Ok(utr) => utr,
            Err(e) => {
                // The bank's own words stay in the log: the merchant sees a fixed reason.
                tracing::warn!(settlement = %s.id, error = %e, "settlement transfer failed");
                let reason =
                    "The bank did not take the transfer; it is tried again at the next cycle";
                rows::mark_failed(&self.ctx.store, &s.id, reason, self.ctx.now()).await?;
                return Ok(false);
            }
        };
        let mut tx = self.ctx.store.begin().await?;
        let Some(done) = rows::mark_processed(&mut tx, &s.id, &utr, self.ctx.now()).await? else {
            // Processed by another run meanwhile: its event is written.
            return Ok(true);
        };
        let event = Event::new(
            &done.merchant_id,
            "settlement.processed",
            &done.id,
            json!({ "settlement": SettlementBody::from(&done) }),
            done.updated_at,
        );
        let jobs = webhooks::record(&*self.ctx.queue, &mut tx, &[event]).await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(&jobs).await;
        Ok(true)
    }

    /// Checks the bank's report of `date` (CSV: `reference,type,amount,fee,utr`) against the
    /// merchant's transactions: each line matched, `amount_mismatch` (amount or fee differs),
    /// or `unknown`; each of paygate's captured payments and processed refunds of the date the
    /// report leaves out, `missing`. The result is kept.
    pub async fn reconcile(
        &self,
        by: &Actor,
        date: NaiveDate,
        report: &str,
        replay: Option<Replay<Reconciliation>>,
    ) -> Result<Reconciliation, Error> {
        let merchant_id = by.merchant_id.as_str();
        let lines = parse_report(report)?;
        let references: Vec<String> = lines.iter().map(|l| l.reference.clone()).collect();
        let known: HashMap<String, Transaction> =
            rows::known(&self.ctx.store, merchant_id, &references)
                .await?
                .into_iter()
                .map(|t| (t.id.clone(), t))
                .collect();
        let (from, to) = day(date);
        let mut out = Vec::new();
        let (mut matched, mut mismatched, mut unknown, mut missing) = (0, 0, 0, 0);
        let mut seen: HashSet<&str> = HashSet::new();
        for line in &lines {
            let t = known.get(&line.reference);
            let fee = t.map(|t| t.fee.saturating_add(t.tax));
            let (result, reason) = match t {
                None => (
                    "unknown",
                    "paygate has no captured payment or processed refund with this reference"
                        .to_owned(),
                ),
                Some(t) if t.at < from || t.at >= to => (
                    "unknown",
                    format!("final on {}, not on the report's date", t.at.date_naive()),
                ),
                Some(t) => {
                    let utr = t.utr.as_deref().unwrap_or("");
                    let differs = [
                        (
                            !seen.insert(line.reference.as_str()),
                            "reported more than once",
                        ),
                        (t.kind != line.kind, "the type differs"),
                        (t.amount != line.amount, "the amount differs"),
                        (fee != Some(line.fee), "the fee differs"),
                        (utr != line.utr, "the UTR differs"),
                    ]
                    .into_iter()
                    .find_map(|(bad, why)| bad.then_some(why));
                    match differs {
                        None => ("matched", String::new()),
                        Some(why) => ("amount_mismatch", why.to_owned()),
                    }
                }
            };
            match result {
                "matched" => matched += 1,
                "unknown" => unknown += 1,
                _ => mismatched += 1,
            }
            out.push(json!({
                "reference": line.reference, "type": line.kind, "result": result,
                "reason": reason, "currency": t.map(|t| t.currency.as_str()),
                "expected_amount": t.map(|t| t.amount), "reported_amount": line.amount,
                "expected_fee": fee, "reported_fee": line.fee,
            }));
        }
        // paygate's transactions of the date the report leaves out, a page at a time; past
        // MISSING_KEPT only counted.
        let reported: HashSet<&str> = lines.iter().map(|l| l.reference.as_str()).collect();
        each_of_day(&self.ctx.store, merchant_id, date, |t| {
            if reported.contains(t.id.as_str()) {
                return;
            }
            missing += 1;
            if missing <= MISSING_KEPT {
                out.push(json!({
                    "reference": t.id, "type": t.kind, "result": "missing",
                    "reason": "in paygate, not in the report", "currency": t.currency,
                    "expected_amount": t.amount, "reported_amount": null,
                    "expected_fee": t.fee.saturating_add(t.tax), "reported_fee": null,
                }));
            }
        })
        .await?;
        let reconciliation = Reconciliation {
            id: ReconciliationId::generate().into_string(),
            merchant_id: merchant_id.to_owned(),
            report_date: date.format("%Y-%m-%d").to_string(),
            matched,
            mismatched,
            unknown,
            missing,
            lines: Value::Array(out),
            created_at: self.ctx.now(),
        };
        let mut tx = self.ctx.store.begin().await?;
        rows::insert_reconciliation(&mut tx, &reconciliation).await?;
        idempotent::store_in(&mut tx, replay.as_ref(), &reconciliation).await?;
        audit::record_in(
            &mut tx,
            by,
            "reconciliation.create",
            ("reconciliation", reconciliation.id.as_str()),
            reconciliation.created_at,
        )
        .await?;
        tx.commit().await?;
        Ok(reconciliation)
    }
}

/// The instant `date` starts and the next day starts (UTC).
pub fn day(date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let end = start
        .checked_add_signed(chrono::Duration::days(1))
        .unwrap_or(start);
    (start, end)
}

/// One line of a bank report.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ReportLine {
    reference: String,
    kind: String,
    amount: i64,
    fee: i64,
    utr: String,
}

/// The header of a bank report.
pub const REPORT_HEADER: &str = "reference,type,amount,fee,utr";

/// Reads a report: the header, then one transaction per line (blank lines skipped).
fn parse_report(report: &str) -> Result<Vec<ReportLine>, Error> {
    let bad = |n: usize, why: &str| Error::BadReport(format!("report line {n}: {why}"));
    let mut lines = report
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, header)) if header.trim().trim_start_matches('\u{feff}') == REPORT_HEADER => {}
        _ => {
            return Err(Error::BadReport(format!(
                "a report starts with the header {REPORT_HEADER}"
            )));
        }
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        if out.len() == REPORT_LINES_MAX {
            return Err(Error::BadReport(format!(
                "a report has at most {REPORT_LINES_MAX} lines"
            )));
        }
        let fields: Vec<&str> = line.trim().split(',').map(str::trim).collect();
        let [reference, kind, amount, fee, utr] = fields[..] else {
            return Err(bad(n, "expected 5 fields: reference,type,amount,fee,utr"));
        };
        if reference.is_empty() || reference.len() > 64 {
            return Err(bad(n, "reference must be 1 to 64 characters"));
        }
        if kind != "payment" && kind != "refund" {
            return Err(bad(n, "type must be payment or refund"));
        }
        let number = |v: &str, name: &str| {
            v.parse::<i64>()
                .ok()
                .filter(|a| *a >= 0)
                .ok_or_else(|| bad(n, &format!("{name} must be a whole number of paise")))
        };
        out.push(ReportLine {
            reference: reference.to_owned(),
            kind: kind.to_owned(),
            amount: number(amount, "amount")?,
            fee: number(fee, "fee")?,
            utr: utr.to_owned(),
        });
    }
    Ok(out)
}

/// The simulated bank's report of `date`: every captured payment and processed refund of the
/// merchant final that day, as CSV (`reference,type,amount,fee,utr`; the fee with its tax, the
/// UTR of its settlement's transfer, empty before).
pub async fn bank_report(
    store: &Store,
    merchant_id: &str,
    date: NaiveDate,
) -> Result<String, Error> {
    let mut out = format!("{REPORT_HEADER}\n");
    each_of_day(store, merchant_id, date, |t| {
        let _ = writeln!(
            out,
            "{},{},{},{},{}",
            t.id,
            t.kind,
            t.amount,
            t.fee.saturating_add(t.tax),
            t.utr.as_deref().unwrap_or("")
        );
    })
    .await?;
    Ok(out)
}

/// Calls `f` with each of the merchant's transactions final on `date`, oldest first, reading
/// them a thousand at a time by the recon list's keyset pages.
async fn each_of_day(
    store: &Store,
    merchant_id: &str,
    date: NaiveDate,
    mut f: impl FnMut(&Transaction),
) -> Result<(), Error> {
    const PAGE: i64 = 1000;
    let (from, to) = day(date);
    let mut after = None;
    loop {
        let window = Window {
            from,
            to,
            settlement_id: None,
            after,
            limit: PAGE,
        };
        let page = rows::transactions(store, merchant_id, &window).await?;
        page.iter().for_each(&mut f);
        if (page.len() as i64) < PAGE {
            return Ok(());
        }
        after = page.last().map(|t| (t.at, t.id.clone()));
    }
}

/// The merchant's settlement with this id.
pub async fn get(store: &Store, merchant_id: &str, id: &str) -> Result<Settlement, Error> {
    let valid = SettlementId::parse(id).is_some();
    table::owned::<Settlement>(store, Some(merchant_id), id, valid)
        .await?
        .ok_or(Error::NotFound)
}

/// A page of the merchant's settlements, newest first, created in `[from, to)` when given.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    window: ListWindow,
) -> Result<Option<Page<Settlement>>, Error> {
    let mut filter = table::Filter::default();
    if let Some(from) = from {
        filter = filter.and("created_at >= ?", table::Arg::Time(from));
    }
    if let Some(to) = to {
        filter = filter.and("created_at < ?", table::Arg::Time(to));
    }
    Ok(table::filtered::<Settlement>(store, merchant_id, &filter, window).await?)
}

/// A page of the merchant's transactions (captured payments, processed refunds), oldest first.
pub async fn transactions(
    store: &Store,
    merchant_id: &str,
    window: &Window,
) -> Result<Vec<Transaction>, Error> {
    Ok(rows::transactions(store, merchant_id, window).await?)
}

/// When the merchant's transaction `id` became final, for a cursor; `None` when it is not one.
pub async fn final_at(
    store: &Store,
    merchant_id: &str,
    id: &str,
) -> Result<Option<DateTime<Utc>>, Error> {
    Ok(rows::final_at(store, merchant_id, id).await?)
}

/// The merchant's reconciliation with this id.
pub async fn reconciliation(
    store: &Store,
    merchant_id: &str,
    id: &str,
) -> Result<Reconciliation, Error> {
    let valid = ReconciliationId::parse(id).is_some();
    table::owned::<Reconciliation>(store, Some(merchant_id), id, valid)
        .await?
        .ok_or(Error::ReconciliationNotFound)
}

/// A page of the merchant's reconciliations, newest first.
pub async fn reconciliations(
    store: &Store,
    merchant_id: &str,
    window: ListWindow,
) -> Result<Option<Page<Reconciliation>>, Error> {
    Ok(table::page::<Reconciliation>(store, merchant_id, window).await?)
}

/// What the merchant has not been paid yet, per currency, with when the next settlement is
/// expected (the oldest transaction's time plus the delay, at the earliest now).
pub async fn unsettled(
    store: &Store,
    merchant_id: &str,
    delay: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Vec<(rows::Unsettled, Option<DateTime<Utc>>)>, Error> {
    Ok(rows::unsettled(store, merchant_id)
        .await?
        .into_iter()
        .map(|u| {
            let next = u
                .oldest
                .and_then(|o| o.checked_add_signed(delay))
                .map(|t| t.max(now));
            (u, next)
        })
        .collect())
}

/// The settlement cycle as a worker chore: started at the sweep once `interval` has passed
/// since this process last started it, in a task of its own (transfers take the bank's time,
/// and the sweep must not wait for them); never two at once in one process.
pub struct Cycler {
    settlements: Arc<Settlements>,
    interval: Duration,
    last: Mutex<Option<tokio::time::Instant>>,
    running: Arc<AtomicBool>,
}

impl Cycler {
    pub fn new(settlements: Arc<Settlements>, interval: Duration) -> Self {
        Self {
            settlements,
            interval,
            last: Mutex::new(None),
            running: Arc::new(AtomicBool::new(false)),
        }
    }
}

#[async_trait]
impl Chore for Cycler {
    async fn run(&self) -> anyhow::Result<usize> {
        let mut last = self.last.lock().await;
        if last.is_some_and(|l| l.elapsed() < self.interval)
            || self.running.swap(true, Ordering::AcqRel)
        {
            return Ok(0);
        }
        *last = Some(tokio::time::Instant::now());
        let (settlements, running) = (self.settlements.clone(), self.running.clone());
        tokio::spawn(async move {
            if let Err(e) = settlements.run().await {
                tracing::warn!(error = %e, "settlement cycle failed");
            }
            running.store(false, Ordering::Release);
        });
        Ok(1)
    }
}
