//! Settlements, their transactions (recon) and reconciliation of the bank's reports.

use std::collections::HashMap;

use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    Answer, ApiError, ApiJson, ApiResult, ApiState, Authed, IdParam, IdPath, Idempotency, Page,
    Paging, PagingParams, render, time_range,
};
use crate::{
    settlements,
    store::{
        Store,
        settlements::{Reconciliation, Transaction, Window},
    },
    views::{ReconciliationBody, SettlementBody, TransactionBody},
};

/// Transactions read at a time by the CSV export.
const EXPORT_CHUNK: i64 = 1000;
/// The largest recon page.
const RECON_LIMIT_MAX: i64 = 1000;

/// The filters of `GET /api/v1/settlements`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query string for the OpenAPI document
pub struct SettlementFilters {
    /// Only settlements created at or after this time (RFC 3339).
    from: Option<String>,
    /// Only settlements created before this time (RFC 3339).
    to: Option<String>,
}

/// List settlements, newest first.
///
/// A settlement pays out a merchant's captured payments less processed refunds, fees and tax,
/// final for `SETTLEMENT_DELAY`; `from`/`to` (RFC 3339, on `created_at`, `to` exclusive) narrow
/// the list.
#[utoipa::path(get, path = "/api/v1/settlements", operation_id = "listSettlements", tag = "Settlements",
    params(PagingParams, SettlementFilters),
    responses((status = 200, description = "A page of settlements", body = Page<SettlementBody>)))]
pub async fn list(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    page: Paging,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let (from, to) = time_range(&q)?;
    let rows = settlements::list(&app.store, &m.id, from, to, page.window()).await?;
    page.render(&rows, SettlementBody::from)
}

/// Fetch a settlement.
#[utoipa::path(get, path = "/api/v1/settlements/{id}", operation_id = "getSettlement", tag = "Settlements", params(IdParam),
    responses((status = 200, description = "The settlement", body = SettlementBody)))]
pub async fn get(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    IdPath(id): IdPath,
) -> ApiResult {
    let s = settlements::get(&app.store, &m.id, &id).await?;
    render(SettlementBody::from(&s))
}

/// The query of `GET /api/v1/settlements/recon`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query string for the OpenAPI document
pub struct ReconParams {
    /// Only transactions final (captured, processed) at or after this time (RFC 3339).
    from: Option<String>,
    /// Only transactions final before this time (RFC 3339).
    to: Option<String>,
    /// Only this settlement's transactions.
    settlement_id: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// A cursor: the id of the last transaction of the previous page.
    starting_after: Option<String>,
}

/// A page of transactions, oldest first.
#[derive(Serialize, ToSchema)]
pub struct TransactionPage<'a> {
    /// The transactions of this page.
    pub data: Vec<TransactionBody<'a>>,
    /// Whether more follow: pass the last `id` as `starting_after`.
    pub has_more: bool,
}

/// The recon query, checked: the window of the first page.
async fn recon_window(
    store: &Store,
    merchant_id: &str,
    q: &HashMap<String, String>,
) -> ApiResult<Window> {
    let (from, to) = time_range(q)?;
    let limit = match q.get("limit") {
        None => 100,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=RECON_LIMIT_MAX).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit must be an integer from 1 to {RECON_LIMIT_MAX}"
                ))
            })?,
    };
    let after = match q.get("starting_after") {
        None => None,
        Some(id) => {
            let at = settlements::final_at(store, merchant_id, id)
                .await?
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "starting_after must be the id of a transaction of this list",
                    )
                })?;
            Some((at, id.clone()))
        }
    };
    let settlement_id = q.get("settlement_id").cloned();
    if settlement_id
        .as_deref()
        .is_some_and(|s| paygate_core::SettlementId::parse(s).is_none())
    {
        return Err(ApiError::bad_request(
            "settlement_id must be a settlement's id, setl_ and 16 characters",
        ));
    }
    Ok(Window {
        from: from.unwrap_or(DateTime::UNIX_EPOCH),
        to: to.unwrap_or(far_future()),
        settlement_id,
        after,
        limit,
    })
}

/// The end of an open range: 9999-12-31.
pub fn far_future() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Every captured payment and processed refund with its fee, tax and settlement.
///
/// Oldest first, by when each became final; `from`/`to` (RFC 3339, `to` exclusive) and
/// `settlement_id` narrow it. Pages by `starting_after` (each page costs the same however
/// deep). With `Accept: text/csv` the whole range is streamed as CSV
/// (`type,id,payment_id,amount,fee,tax,currency,at,settlement_id,settled_at,utr`).
#[utoipa::path(get, path = "/api/v1/settlements/recon", operation_id = "listSettlementTransactions", tag = "Settlements",
    params(ReconParams),
    responses((status = 200, description = "A page of transactions (or CSV)", body = TransactionPage,
        content_type = "application/json")))]
pub async fn recon(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let window = recon_window(&app.store, &m.id, &q).await?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv {
        return Ok(csv(
            app.store.clone(),
            m.id.clone(),
            window,
            "transactions.csv",
        ));
    }
    let rows = settlements::transactions(&app.store, &m.id, &window).await?;
    let has_more = rows.len() as i64 == window.limit;
    Ok(render(TransactionPage {
        data: rows.iter().map(TransactionBody::from).collect(),
        has_more,
    })?
    .into_response())
}

/// The CSV header of the transactions.
pub const CSV_HEADER: &str =
    "type,id,payment_id,amount,fee,tax,currency,at,settlement_id,settled_at,utr\n";

/// Streams the merchant's transactions in `window` (from its start to its end, whatever its
/// limit) as a CSV download named `filename`, a chunk at a time.
pub fn csv(store: Store, merchant_id: String, window: Window, filename: &str) -> Response {
    use futures_util::StreamExt as _;
    use std::fmt::Write as _;
    let first = window;
    let state = Some(Window {
        limit: EXPORT_CHUNK,
        ..first
    });
    let rows = futures_util::stream::unfold(state, move |w| {
        let (store, merchant_id) = (store.clone(), merchant_id.clone());
        async move {
            let w = w?;
            let page: Vec<Transaction> =
                match settlements::transactions(&store, &merchant_id, &w).await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::error!(error = %e, "transactions export stopped");
                        return Some((Err(std::io::Error::other("export stopped")), None));
                    }
                };
            let mut out = String::new();
            for t in &page {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    t.kind,
                    t.id,
                    t.payment_id,
                    t.amount,
                    t.fee,
                    t.tax,
                    t.currency,
                    crate::views::iso(t.at),
                    t.settlement_id.as_deref().unwrap_or(""),
                    t.settled_at.map(crate::views::iso).unwrap_or_default(),
                    t.utr.as_deref().unwrap_or("")
                );
            }
            let next = (page.len() as i64 == w.limit).then(|| Window {
                after: page.last().map(|t| (t.at, t.id.clone())),
                ..w
            });
            Some((Ok::<_, std::io::Error>(out), next))
        }
    });
    let body = axum::body::Body::from_stream(
        futures_util::stream::iter([Ok(CSV_HEADER.to_owned())]).chain(rows),
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The body of `POST /api/v1/reconciliation`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReconciliation {
    /// The report's date (UTC), `YYYY-MM-DD`.
    #[schema(example = "2026-12-07")]
    pub date: String,
    /// The bank's report as CSV: the header `reference,type,amount,fee,utr`, then one
    /// transaction per line (`type` `payment` or `refund`, amounts and the fee with its tax in
    /// the smallest currency unit), as `paygate processor report` prints it.
    #[schema(
        example = "reference,type,amount,fee,utr\npay_Kx7aB2cD9eF1gH3j,payment,50000,1180,PGSB4F1A9C03D2E7B6A1\n"
    )]
    pub report: String,
}

/// The report's date, checked.
pub fn report_date(date: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| ApiError::bad_request("date must be a date like 2026-12-07"))
}

/// Reconcile a bank report.
///
/// Checks each line of the bank's report of `date` against paygate's transactions: `matched`,
/// `amount_mismatch` (the amount or the fee differs), `unknown` (paygate has no such
/// transaction); and each captured payment and processed refund of that date the report leaves
/// out, `missing`. The result is kept (`GET /api/v1/reconciliation`). Answers `201`.
#[utoipa::path(post, path = "/api/v1/reconciliation", operation_id = "createReconciliation", tag = "Settlements",
    request_body = CreateReconciliation,
    responses((status = 201, description = "The reconciliation, with each line's result", body = ReconciliationBody)))]
pub async fn reconcile(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    key: Idempotency,
    ApiJson(body): ApiJson<CreateReconciliation>,
) -> ApiResult<Answer> {
    let date = report_date(&body.date)?;
    let render =
        |r: &Reconciliation| Answer::json(StatusCode::CREATED, &ReconciliationBody::new(r, true));
    key.answer(render, |replay| {
        app.settlements.reconcile(&by, date, &body.report, replay)
    })
    .await
}

/// List reconciliations, newest first (without their lines).
#[utoipa::path(get, path = "/api/v1/reconciliation", operation_id = "listReconciliations", tag = "Settlements",
    params(PagingParams),
    responses((status = 200, description = "A page of reconciliations", body = Page<ReconciliationBody>)))]
pub async fn reconciliations(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    page: Paging,
) -> ApiResult {
    let rows = settlements::reconciliations(&app.store, &m.id, page.window()).await?;
    page.render(&rows, |r| ReconciliationBody::new(r, false))
}

/// Fetch a reconciliation, with each line's result.
#[utoipa::path(get, path = "/api/v1/reconciliation/{id}", operation_id = "getReconciliation", tag = "Settlements", params(IdParam),
    responses((status = 200, description = "The reconciliation", body = ReconciliationBody)))]
pub async fn reconciliation(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    IdPath(id): IdPath,
) -> ApiResult {
    let r = settlements::reconciliation(&app.store, &m.id, &id).await?;
    render(ReconciliationBody::new(&r, true))
}
