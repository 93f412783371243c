//! The transactions: filters, search, pages of 20, and the CSV export of the filtered set.

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use paygate_core::{Method, PaymentStatus, display_amount};

use super::{
    Frame, Pager, Q, SignedIn,
    export::{self, csv_field},
    internal, read_page, window_of, with_query,
};
use crate::{
    pages::{PagesState, Time, page as render},
    store::payments::{self, Filter, Payment},
    views::iso,
};

const PAGE_SIZE: i64 = 20;
const HERE: &str = "/dashboard/transactions";

fn filter_of(q: &HashMap<String, String>) -> Filter {
    Filter {
        status: q.get("status").and_then(|s| PaymentStatus::parse(s)),
        method: q.get("method").and_then(|m| Method::parse(m)),
        search: q
            .get("q")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        ..Filter::default()
    }
}

fn query_of(f: &Filter) -> String {
    let mut u = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("status", f.status.map(PaymentStatus::as_str)),
        ("method", f.method.map(Method::as_str)),
        ("q", f.search.as_deref()),
    ] {
        if let Some(v) = v {
            u.append_pair(k, v);
        }
    }
    u.finish()
}

#[derive(askama::Template)]
#[template(path = "dashboard/transactions.html")]
struct Transactions {
    frame: Frame,
    selects: [Select; 2],
    search: String,
    query: String,
    rows: Vec<Row>,
    pager: Pager,
}

/// A filter's drop-down.
struct Select {
    name: &'static str,
    label: &'static str,
    options: Vec<Choice>,
}

struct Choice {
    value: &'static str,
    text: &'static str,
    selected: bool,
}

impl Select {
    fn new(
        name: &'static str,
        label: &'static str,
        options: &[&'static str],
        current: Option<&'static str>,
    ) -> Self {
        let options = std::iter::once(("", "All"))
            .chain(options.iter().map(|o| (*o, *o)))
            .map(|(value, text)| Choice {
                value,
                text,
                selected: current.unwrap_or_default() == value,
            })
            .collect();
        Self {
            name,
            label,
            options,
        }
    }
}

/// A payment as the table shows it.
struct Row {
    id: String,
    order_id: String,
    amount: String,
    method: Method,
    status: PaymentStatus,
    created: Time,
}

/// `GET /dashboard/transactions`.
pub async fn page(State(app): State<PagesState>, s: SignedIn, Query(q): Q) -> Response {
    let f = filter_of(&q);
    let qs = query_of(&f);
    let base = with_query(HERE, &qs);
    let listed = read_page!(window_of(&q, PAGE_SIZE), |w| payments::list_filtered(
        &app.store,
        &s.merchant.id,
        &f,
        w
    ))
    .await;
    let (page, start) = match listed {
        Ok(x) => x,
        Err(e) => return internal(&e),
    };
    let pager = Pager::new(&page, &start, &base, |p| &p.id);
    let rows = page.rows;
    let view = Transactions {
        frame: Frame::new("Transactions", "Transactions", &s),
        selects: [
            Select::new(
                "status",
                "Status",
                &PaymentStatus::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>(),
                f.status.map(PaymentStatus::as_str),
            ),
            Select::new(
                "method",
                "Method",
                &Method::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                f.method.map(Method::as_str),
            ),
        ],
        search: f.search.clone().unwrap_or_default(),
        rows: rows
            .iter()
            .map(|p| Row {
                id: p.id.clone(),
                order_id: p.order_id.clone(),
                amount: display_amount(p.amount, &p.currency),
                method: p.method,
                status: p.status,
                created: p.created_at.into(),
            })
            .collect(),
        pager,
        query: qs,
    };
    render(StatusCode::OK, &view)
}

/// `GET /dashboard/transactions.csv`: the filtered set, amounts (fee and tax empty until a
/// payment succeeds) in paise, newest first, streamed (see [`export::csv`]).
pub async fn export_csv(State(app): State<PagesState>, s: SignedIn, Query(q): Q) -> Response {
    let f = filter_of(&q);
    let head = "payment_id,order_id,amount,currency,method,status,captured,amount_refunded,created_at,fee,tax\n";
    export::csv(
        (app.store.clone(), s.merchant.id.clone()),
        f.conditions(),
        (head, "transactions.csv"),
        |p: &Payment, out| {
            write!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&p.id),
                csv_field(&p.order_id),
                p.amount,
                csv_field(&p.currency),
                p.method,
                p.status,
                p.captured,
                p.amount_refunded,
                iso(p.created_at),
                p.fee.map(|f| f.to_string()).unwrap_or_default(),
                p.tax.map(|t| t.to_string()).unwrap_or_default()
            )
        },
    )
}
