//! The settlements page: what is not settled yet and when it will be, the settlements (each
//! with its transactions and their CSV), and reconciliation: upload the bank's report of a day
//! and see each line's result.

use std::collections::HashMap;

use axum::{
    extract::{Multipart, Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use chrono::DateTime;
use paygate_core::display_amount;

use super::{Frame, Pager, Q, SignedIn, internal, not_found, read_page, window_of};
use crate::{
    http::{
        api::settlements::{csv, far_future, report_date},
        error::ApiError,
    },
    pages::{PagesState, Time, page as render},
    settlements::{self, Error},
    store::{
        now,
        settlements::{Reconciliation, Settlement, Transaction, Window},
    },
};

const PAGE_SIZE: i64 = 20;
/// Transactions a settlement's page shows (the CSV has them all).
const SHOWN_TRANSACTIONS: i64 = 200;
/// The largest report the upload takes, bytes.
const REPORT_MAX: usize = 2 * 1024 * 1024;

/// A currency's money not settled yet, as the pages show it.
pub struct Unsettled {
    pub balance: String,
    pub count: i64,
    /// When the next settlement is expected to take it.
    pub next: Option<Time>,
    /// The balance is negative: carried until captures cover it.
    pub negative: bool,
}

/// The merchant's unsettled money per currency (empty when everything is settled).
pub async fn unsettled(app: &PagesState, merchant_id: &str) -> Result<Vec<Unsettled>, Error> {
    let delay = app.settlements.delay();
    let automatic = app.settlements.automatic();
    Ok(
        settlements::unsettled(&app.store, merchant_id, delay, now())
            .await?
            .into_iter()
            .map(|(u, next)| Unsettled {
                balance: display_amount(u.balance, &u.currency),
                count: u.count,
                next: next.filter(|_| automatic).map(Time::from),
                negative: u.balance < 0,
            })
            .collect(),
    )
}

#[derive(askama::Template)]
#[template(path = "dashboard/settlements.html")]
struct SettlementsPage {
    frame: Frame,
    unsettled: Vec<Unsettled>,
    /// The delay before a transaction is settled, in words.
    delay: String,
    pager: Pager,
    rows: Vec<Row>,
    reconciliations: Vec<ReconRow>,
    today: String,
    error: Option<String>,
}

/// A settlement as the tables show it.
struct Row {
    id: String,
    amount: String,
    gross: String,
    deductions: String,
    count: i64,
    status: String,
    utr: String,
    created: Time,
}

impl From<&Settlement> for Row {
    fn from(s: &Settlement) -> Self {
        let money = |a: i64| display_amount(a, &s.currency);
        Self {
            id: s.id.clone(),
            amount: money(s.amount),
            gross: money(s.gross),
            deductions: money(s.refunds.saturating_add(s.fees).saturating_add(s.tax)),
            count: s.count,
            status: s.status.clone(),
            utr: s.utr.clone().unwrap_or_default(),
            created: Time::from(s.created_at),
        }
    }
}

struct ReconRow {
    id: String,
    date: String,
    matched: i64,
    mismatched: i64,
    unknown: i64,
    missing: i64,
    created: Time,
}

impl From<&Reconciliation> for ReconRow {
    fn from(r: &Reconciliation) -> Self {
        Self {
            id: r.id.clone(),
            date: r.report_date.clone(),
            matched: r.matched,
            mismatched: r.mismatched,
            unknown: r.unknown,
            missing: r.missing,
            created: Time::from(r.created_at),
        }
    }
}

/// A delay in words: `2 days`, `5 seconds`.
fn words(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    let (n, unit) = match s {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// `GET /dashboard/settlements`.
pub async fn page(State(app): State<PagesState>, s: SignedIn, Query(q): Q) -> Response {
    show(&app, &s, &q, None).await
}

async fn show(
    app: &PagesState,
    s: &SignedIn,
    q: &HashMap<String, String>,
    error: Option<String>,
) -> Response {
    let listed = read_page!(window_of(q, PAGE_SIZE), |w| settlements::list(
        &app.store,
        &s.merchant.id,
        None,
        None,
        w
    ))
    .await;
    let (page, start) = match listed {
        Ok(x) => x,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let recons = settlements::reconciliations(
        &app.store,
        &s.merchant.id,
        crate::store::table::Window::first(10),
    )
    .await;
    let recons = match recons {
        Ok(r) => r.map(|p| p.rows).unwrap_or_default(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let unsettled = match unsettled(app, &s.merchant.id).await {
        Ok(u) => u,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let pager = Pager::new(&page, &start, "/dashboard/settlements", |s: &Settlement| {
        &s.id
    });
    let view = SettlementsPage {
        frame: Frame::new("Settlements", "Settlements", s),
        unsettled,
        delay: words(app.settlements.delay()),
        pager,
        rows: page.rows.iter().map(Row::from).collect(),
        reconciliations: recons.iter().map(ReconRow::from).collect(),
        today: now().format("%Y-%m-%d").to_string(),
        error: error.clone(),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(status, &view)
}

#[derive(askama::Template)]
#[template(path = "dashboard/settlement.html")]
struct SettlementPage {
    frame: Frame,
    s: Row,
    fees: String,
    tax: String,
    refunds: String,
    processed: Option<Time>,
    failure: Option<String>,
    transactions: Vec<TxRow>,
    more: bool,
}

struct TxRow {
    kind: String,
    id: String,
    payment_id: String,
    amount: String,
    fee: String,
    created: Time,
}

impl TxRow {
    fn new(t: &Transaction) -> Self {
        Self {
            kind: t.kind.clone(),
            id: t.id.clone(),
            payment_id: t.payment_id.clone(),
            amount: display_amount(t.amount, &t.currency),
            fee: display_amount(t.fee.saturating_add(t.tax), &t.currency),
            created: Time::from(t.at),
        }
    }
}

/// The window of every transaction of settlement `id`.
fn of_settlement(id: &str, limit: i64) -> Window {
    Window {
        from: DateTime::UNIX_EPOCH,
        to: far_future(),
        settlement_id: Some(id.to_owned()),
        after: None,
        limit,
    }
}

/// `GET /dashboard/settlements/{id}`.
pub async fn settlement(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let settlement = match settlements::get(&app.store, &s.merchant.id, &id).await {
        Ok(x) => x,
        Err(Error::NotFound) => return not_found(&s, "Settlement"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let txs = settlements::transactions(
        &app.store,
        &s.merchant.id,
        &of_settlement(&id, SHOWN_TRANSACTIONS + 1),
    )
    .await;
    let mut txs = match txs {
        Ok(t) => t,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let more = txs.len() as i64 > SHOWN_TRANSACTIONS;
    txs.truncate(SHOWN_TRANSACTIONS as usize);
    let money = |a: i64| display_amount(a, &settlement.currency);
    let view = SettlementPage {
        frame: Frame::new("Settlement", "Settlements", &s),
        fees: money(settlement.fees),
        tax: money(settlement.tax),
        refunds: money(settlement.refunds),
        processed: settlement.processed_at.map(Time::from),
        failure: settlement.failure_reason.clone(),
        s: Row::from(&settlement),
        transactions: txs.iter().map(TxRow::new).collect(),
        more,
    };
    render(StatusCode::OK, &view)
}

/// `GET /dashboard/settlements/{id}/transactions.csv`: every transaction of the settlement.
pub async fn settlement_csv(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
) -> Response {
    match settlements::get(&app.store, &s.merchant.id, &id).await {
        Ok(_) => {}
        Err(Error::NotFound) => return not_found(&s, "Settlement"),
        Err(e) => return ApiError::from(e).into_response(),
    }
    csv(
        app.store.clone(),
        s.merchant.id.clone(),
        of_settlement(&id, 1000),
        &format!("{id}.csv"),
    )
}

/// `POST /dashboard/reconciliations` (multipart: `csrf`, `date`, `report` a CSV file):
/// reconciles the report and shows the result, or the settlements page with why it was
/// refused.
pub async fn reconcile(
    State(app): State<PagesState>,
    s: SignedIn,
    mut form: Multipart,
) -> Response {
    let mut fields: HashMap<String, String> = HashMap::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => {
                return ApiError::bad_request("The upload could not be read").into_response();
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let Ok(bytes) = field.bytes().await else {
            return ApiError::bad_request("The upload could not be read").into_response();
        };
        if bytes.len() > REPORT_MAX {
            return ApiError::bad_request("The report is larger than 2 MiB").into_response();
        }
        let text = String::from_utf8_lossy(&bytes).replace('\0', "");
        fields.insert(name, text);
    }
    if let Err(r) = s.check_csrf(&fields) {
        return r.into_response();
    }
    let none = HashMap::new();
    let date = match report_date(fields.get("date").map(String::as_str).unwrap_or("")) {
        Ok(d) => d,
        Err(e) => return show(&app, &s, &none, Some(e.description)).await,
    };
    let report = fields.get("report").cloned().unwrap_or_default();
    if report.trim().is_empty() {
        let why = "Choose the bank's report (a CSV file) to upload".to_owned();
        return show(&app, &s, &none, Some(why)).await;
    }
    match app
        .settlements
        .reconcile(&s.actor, date, &report, None)
        .await
    {
        Ok(r) => Redirect::to(&format!("/dashboard/reconciliations/{}", r.id)).into_response(),
        Err(Error::BadReport(why)) => show(&app, &s, &none, Some(why)).await,
        Err(e) => internal(&ApiError::from(e).description),
    }
}

#[derive(askama::Template)]
#[template(path = "dashboard/reconciliation.html")]
struct ReconciliationPage {
    frame: Frame,
    r: ReconRow,
    lines: Vec<Line>,
}

struct Line {
    reference: String,
    kind: String,
    result: String,
    /// The result in words.
    shown: &'static str,
    /// Why it is not matched.
    reason: String,
    expected: String,
    reported: String,
}

/// `GET /dashboard/reconciliations/{id}`.
pub async fn reconciliation(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let r = match settlements::reconciliation(&app.store, &s.merchant.id, &id).await {
        Ok(r) => r,
        Err(Error::ReconciliationNotFound) => return not_found(&s, "Reconciliation"),
        Err(e) => return ApiError::from(e).into_response(),
    };
    // A line of a transaction paygate knows carries its currency; the others are read as
    // the simulated bank reports, in INR.
    let money = |l: &serde_json::Value, amount: &str, fee: &str| {
        let currency = l["currency"].as_str().unwrap_or("INR");
        match (l[amount].as_i64(), l[fee].as_i64()) {
            (Some(a), Some(f)) => format!(
                "{} (fee {})",
                display_amount(a, currency),
                display_amount(f, currency)
            ),
            _ => "—".to_owned(),
        }
    };
    let lines = r
        .lines
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| Line {
            reference: l["reference"].as_str().unwrap_or_default().to_owned(),
            kind: l["type"].as_str().unwrap_or_default().to_owned(),
            result: l["result"].as_str().unwrap_or_default().to_owned(),
            shown: match l["result"].as_str() {
                Some("matched") => "matched",
                Some("amount_mismatch") => "amount mismatch",
                Some("unknown") => "unknown to paygate",
                _ => "missing from the report",
            },
            reason: l["reason"].as_str().unwrap_or_default().to_owned(),
            expected: money(l, "expected_amount", "expected_fee"),
            reported: money(l, "reported_amount", "reported_fee"),
        })
        .collect();
    let view = ReconciliationPage {
        frame: Frame::new("Reconciliation", "Settlements", &s),
        r: ReconRow::from(&r),
        lines,
    };
    render(StatusCode::OK, &view)
}
