//! The auditor: once the load stopped and the gateway settled, reads the database, the
//! simulated bank's ledger, the load's log and the receivers' logs, and counts every violation
//! of the invariants (see `bench/chaos.sh`). Any count above zero fails the run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use paygate::store::{Store, audit};
use paygate_core::webhook;
use serde::Serialize;
use serde_json::Value;

use super::load::{Answer, by_key};

/// What the auditor found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Findings {
    /// Payments and refunds answered 201 that are missing, or not final.
    pub lost: u64,
    /// Payments whose order's status disagrees (paid without a successful payment, or not
    /// paid with one).
    pub order_mismatches: u64,
    /// Payments charged more than once, or successful without a charge.
    pub duplicate_charges: u64,
    /// Refunds paid more than once, or processed without being paid.
    pub duplicate_refunds: u64,
    /// Payments whose refunds exceed them, or whose `amount_refunded` is not the sum of
    /// their processed refunds.
    pub refund_over_limit: u64,
    /// Retries with a key that did not get the first answer, byte for byte.
    pub idempotency_mismatches: u64,
    /// Event and destination pairs that should have been delivered.
    pub webhooks_expected: u64,
    /// Of those, never received with a valid signature.
    pub webhooks_missing: u64,
    /// Deliveries received more than once (reported, not a failure: delivery is at least once).
    pub webhooks_duplicated: u64,
    /// Deliveries whose signature did not verify.
    pub bad_signatures: u64,
    /// Events whose sequence number in a delivery disagrees with the event log, or whose
    /// resource's numbers do not increase with time.
    pub sequence_regressions: u64,
    /// Work still pending after the settle time (jobs lost or stuck).
    pub still_pending: u64,
}

impl Findings {
    /// Whether every invariant held.
    pub fn clean(&self) -> bool {
        let Self {
            lost,
            order_mismatches,
            duplicate_charges,
            duplicate_refunds,
            refund_over_limit,
            idempotency_mismatches,
            webhooks_expected: _,
            webhooks_missing,
            webhooks_duplicated: _,
            bad_signatures,
            sequence_regressions,
            still_pending,
        } = self;
        [
            lost,
            order_mismatches,
            duplicate_charges,
            duplicate_refunds,
            refund_over_limit,
            idempotency_mismatches,
            webhooks_missing,
            bad_signatures,
            sequence_regressions,
            still_pending,
        ]
        .iter()
        .all(|n| **n == 0)
    }
}

/// A payment or refund id inside a processor key (`charge_pay_…`, `refund_rfnd_…`): the id's
/// prefix and 16 characters.
fn resource_of(key: &str) -> Option<(&'static str, String)> {
    for (kind, prefix, id_len) in [("charge", "charge_", 20), ("refund", "refund_", 21)] {
        if let Some(rest) = key.strip_prefix(prefix) {
            return Some((kind, rest.chars().take(id_len).collect()));
        }
    }
    None
}

/// Audits the books and the logs.
pub async fn audit(
    store: &Store,
    answers: &[Answer],
    receiver_logs: &[std::path::PathBuf],
) -> anyhow::Result<Findings> {
    let mut f = Findings::default();
    let payments = audit::payments(store).await?;
    let refunds = audit::refunds(store).await?;
    let by_id: HashMap<&str, &audit::PaymentRow> =
        payments.iter().map(|p| (p.id.as_str(), p)).collect();
    let refund_ids: HashMap<&str, &audit::RefundRow> =
        refunds.iter().map(|r| (r.id.as_str(), r)).collect();

    // Everything answered 201 exists and is final.
    for a in answers.iter().filter(|a| a.status == 201) {
        let Some(id) = &a.created else { continue };
        if id.starts_with("pay_") {
            match by_id.get(id.as_str()) {
                Some(p) if p.status != "pending" => {}
                _ => f.lost += 1,
            }
        } else if id.starts_with("rfnd_") {
            match refund_ids.get(id.as_str()) {
                Some(r) if r.status == "processed" => {}
                _ => f.lost += 1,
            }
        }
    }
    // An order is paid exactly when one of its payments succeeded.
    let mut orders: HashMap<&str, (bool, bool)> = HashMap::new();
    for p in &payments {
        let o = orders.entry(p.order_id.as_str()).or_default();
        o.0 = p.order_status == "paid";
        o.1 |= p.status == "success";
    }
    f.order_mismatches = orders
        .values()
        .filter(|(paid, success)| paid != success)
        .count() as u64;

    // The bank: at most one charge per payment and one payout per refund, and every success
    // charged.
    let mut charges: HashMap<String, u32> = HashMap::new();
    let mut payouts: HashMap<String, u32> = HashMap::new();
    for (key, _kind, _ok, _calls) in audit::operations(store).await? {
        match resource_of(&key) {
            Some(("charge", id)) => *charges.entry(id).or_default() += 1,
            Some((_, id)) => *payouts.entry(id).or_default() += 1,
            None => {}
        }
    }
    for p in &payments {
        let n = charges.get(&p.id).copied().unwrap_or(0);
        if n > 1 || (p.status == "success" && n == 0) {
            f.duplicate_charges += 1;
        }
    }
    for r in &refunds {
        let n = payouts.get(&r.id).copied().unwrap_or(0);
        if n > 1 || (r.status == "processed" && n == 0) {
            f.duplicate_refunds += 1;
        }
    }

    // Refunds stay within their payment, and amount_refunded is their sum.
    let mut refunded: HashMap<&str, i64> = HashMap::new();
    for r in refunds.iter().filter(|r| r.status == "processed") {
        *refunded.entry(r.payment_id.as_str()).or_default() += r.amount;
    }
    for p in &payments {
        let sum = refunded.get(p.id.as_str()).copied().unwrap_or(0);
        if sum > p.amount || sum != p.amount_refunded {
            f.refund_over_limit += 1;
        }
    }

    // Every retry with a key got the first answer (409 "in use" and answers that never came
    // are not answers; 5xx are counted apart).
    for group in by_key(answers).values() {
        let mut first: Option<&Answer> = None;
        for a in group {
            if a.status == 0 || a.status == 409 || a.status >= 500 {
                continue;
            }
            match first {
                None => first = Some(a),
                Some(f0) if f0.status != a.status || f0.digest != a.digest => {
                    f.idempotency_mismatches += 1;
                }
                Some(_) => {}
            }
        }
    }

    webhooks(store, receiver_logs, &mut f).await?;

    let (p, r, d) = audit::pending(store).await?;
    f.still_pending = u64::try_from(p + r + d).unwrap_or(u64::MAX);
    Ok(f)
}

/// Every event reached every matching enabled destination at least once, signed; counts
/// duplicates and sequence numbers out of place.
async fn webhooks(
    store: &Store,
    logs: &[std::path::PathBuf],
    f: &mut Findings,
) -> anyhow::Result<()> {
    let events = audit::events(store).await?;
    let destinations = audit::destinations(store).await?;
    // A destination is known by its URL's path.
    let path_of = |url: &str| {
        url::Url::parse(url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    };
    let by_path: HashMap<String, &audit::Destination> =
        destinations.iter().map(|d| (path_of(&d.url), d)).collect();
    let event_seq: HashMap<&str, i64> = events.iter().map(|e| (e.id.as_str(), e.seq)).collect();
    // Received, signed: (path, event id) → arrivals.
    let mut received: HashMap<(String, String), u64> = HashMap::new();
    for log in logs {
        let Ok(text) = std::fs::read_to_string(log) else {
            continue;
        };
        for line in text.lines() {
            let Ok(r) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if r["status"] != 200 {
                continue;
            }
            let path = r["path"].as_str().unwrap_or_default().to_owned();
            let id = r["id"].as_str().unwrap_or_default().to_owned();
            let Some(d) = by_path.get(&path) else {
                continue;
            };
            let body = r["body"].as_str().unwrap_or_default();
            let ts: i64 = r["timestamp"].as_str().unwrap_or("0").parse().unwrap_or(0);
            let sig = r["signature"].as_str().unwrap_or_default();
            let signed = webhook::verify_standard(
                &d.secret,
                &id,
                ts,
                body.as_bytes(),
                sig,
                ts,
                Duration::ZERO,
            ) || d.previous_secret.as_deref().is_some_and(|old| {
                webhook::verify_standard(old, &id, ts, body.as_bytes(), sig, ts, Duration::ZERO)
            });
            if !signed {
                f.bad_signatures += 1;
                continue;
            }
            let sent_seq = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|b| b["sequence"].as_i64());
            if sent_seq.is_some() && sent_seq != event_seq.get(id.as_str()).copied() {
                f.sequence_regressions += 1;
            }
            *received.entry((path, id)).or_default() += 1;
        }
    }
    // Sequence numbers grow with time, per resource.
    let mut last: BTreeMap<&str, (i64, chrono::DateTime<chrono::Utc>)> = BTreeMap::new();
    for e in &events {
        if let Some((seq, at)) = last.get(e.resource_id.as_str())
            && (e.seq <= *seq || e.created_at < *at)
        {
            f.sequence_regressions += 1;
        }
        last.insert(&e.resource_id, (e.seq, e.created_at));
    }
    let mut expected: HashSet<(String, String)> = HashSet::new();
    for e in &events {
        for d in destinations
            .iter()
            .filter(|d| d.merchant_id == e.merchant_id && d.enabled)
        {
            if d.endpoint_id.is_none() || webhook::wants(&d.events, &e.event_type) {
                expected.insert((path_of(&d.url), e.id.clone()));
            }
        }
    }
    f.webhooks_expected = expected.len() as u64;
    f.webhooks_missing = expected
        .iter()
        .filter(|k| !received.contains_key(*k))
        .count() as u64;
    f.webhooks_duplicated = received.values().map(|n| n.saturating_sub(1)).sum();
    Ok(())
}
