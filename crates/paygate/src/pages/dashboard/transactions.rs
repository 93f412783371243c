//! The transactions: filters, search, pages of 20, and the CSV export of the filtered set.

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use paygate_core::{Method, PaymentStatus, display_amount};

use super::{Frame, Q, SignedIn, internal, page_number};
use crate::{
    pages::{PagesState, Time, page as render},
    store::payments::{self, Filter},
    views::iso,
};

const PAGE_SIZE: i64 = 20;

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
    page: i64,
    pages: i64,
    total: i64,
    prev: Option<String>,
    next: Option<String>,
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
    let page = page_number(&q);
    let offset = (page - 1) * PAGE_SIZE;
    let listed = payments::list_filtered(&app.store, &s.merchant.id, &f, PAGE_SIZE, offset).await;
    let (rows, total) = match listed {
        Ok(x) => x,
        Err(e) => return internal(&e),
    };
    let qs = query_of(&f);
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let link = |p: i64| {
        let sep = if qs.is_empty() { "" } else { "&" };
        format!("/dashboard/transactions?{qs}{sep}page={p}")
    };
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
        page,
        pages,
        total,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
        query: qs,
    };
    render(StatusCode::OK, &view)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `GET /dashboard/transactions.csv`: the filtered set, amounts in paise.
pub async fn export_csv(State(app): State<PagesState>, s: SignedIn, Query(q): Q) -> Response {
    let f = filter_of(&q);
    let mut out = String::from(
        "payment_id,order_id,amount,currency,method,status,captured,amount_refunded,created_at\n",
    );
    let mut offset = 0;
    loop {
        let (rows, total) =
            match payments::list_filtered(&app.store, &s.merchant.id, &f, 500, offset).await {
                Ok(x) => x,
                Err(e) => return internal(&e),
            };
        for p in &rows {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                csv_field(&p.id),
                csv_field(&p.order_id),
                p.amount,
                csv_field(&p.currency),
                p.method,
                p.status,
                p.captured,
                p.amount_refunded,
                iso(p.created_at)
            );
        }
        offset += 500;
        if rows.is_empty() || offset >= total {
            break;
        }
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"transactions.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
