//! The transactions: filters (status, method, a date range in the merchant's time zone with
//! presets), search, pages of 20, and the CSV export of the filtered set.

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use paygate_core::{Method, PaymentStatus, display_amount};

use super::{
    Frame, Pager, Q, SignedIn,
    export::{self, csv_field},
    internal, read_page, window_of, with_query,
};
use crate::{
    merchants::profile,
    pages::{PagesState, Time, page as render},
    store::{
        now,
        payments::{self, Filter, Payment},
    },
    views::iso,
};

const PAGE_SIZE: i64 = 20;
const HERE: &str = "/dashboard/transactions";

/// The filters of the page's query: status, method, search, and the date range (`from` and
/// `to`, days in the merchant's time zone `tz`, both included).
fn filter_of(q: &HashMap<String, String>, tz: Tz) -> (Filter, Range) {
    let range = Range {
        from: day_of(q, "from"),
        to: day_of(q, "to"),
    };
    let filter = Filter {
        status: q.get("status").and_then(|s| PaymentStatus::parse(s)),
        method: q.get("method").and_then(|m| Method::parse(m)),
        search: q
            .get("q")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        from: range.from.map(|d| start_of(d, tz)),
        to: range.to.and_then(|d| d.succ_opt()).map(|d| start_of(d, tz)),
    };
    (filter, range)
}

/// The chosen days of the date range.
#[derive(Clone, Copy, Default)]
struct Range {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

fn day_of(q: &HashMap<String, String>, name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(q.get(name)?.trim(), "%Y-%m-%d").ok()
}

/// The first instant of `day` in `tz` (the earliest, should the day start in a gap).
fn start_of(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = day.and_time(NaiveTime::MIN);
    (0..=3)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

fn query_of(f: &Filter, range: Range) -> String {
    let mut u = url::form_urlencoded::Serializer::new(String::new());
    let (from, to) = (range.from.map(day), range.to.map(day));
    for (k, v) in [
        ("status", f.status.map(PaymentStatus::as_str)),
        ("method", f.method.map(Method::as_str)),
        ("q", f.search.as_deref()),
        ("from", from.as_deref()),
        ("to", to.as_deref()),
    ] {
        if let Some(v) = v {
            u.append_pair(k, v);
        }
    }
    u.finish()
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The date range presets: `(name, from, to, chosen)` with today in the merchant's zone.
fn presets(today: NaiveDate, range: Range) -> Vec<(&'static str, String, String, bool)> {
    [("Today", 0), ("Last 7 days", 6), ("Last 30 days", 29)]
        .into_iter()
        .map(|(name, back)| {
            let from = today - Duration::days(back);
            let chosen = range.from == Some(from) && range.to == Some(today);
            (name, day(from), day(today), chosen)
        })
        .collect()
}

/// How the payment was paid: the VPA, the card's network and last four, or the UPI flow.
fn paid_with(p: &Payment) -> String {
    match (&p.vpa, &p.card_network, &p.card_last4) {
        (Some(vpa), _, _) => vpa.clone(),
        (None, network, Some(last4)) => {
            let network = network.as_deref().unwrap_or("card");
            let mut name = network.to_owned();
            if let Some(first) = name.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            format!("{name} •••• {last4}")
        }
        _ if p.method == Method::Upi => "UPI app".to_owned(),
        _ => String::new(),
    }
}

#[derive(askama::Template)]
#[template(path = "dashboard/transactions.html")]
struct Transactions {
    frame: Frame,
    selects: [Select; 2],
    search: String,
    from: String,
    to: String,
    presets: Vec<(&'static str, String, String, bool)>,
    /// The merchant's time zone, which the times and the date range are in.
    time_zone: String,
    /// Whether any filter is set (the "Clear" link shows).
    filtered: bool,
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
    /// The VPA or the card's network and last four.
    paid_with: String,
    status: PaymentStatus,
    created: Time,
}

/// `GET /dashboard/transactions`.
pub async fn page(State(app): State<PagesState>, s: SignedIn, Query(q): Q) -> Response {
    let tz = profile::zone_of(&s.merchant);
    let (f, range) = filter_of(&q, tz);
    let qs = query_of(&f, range);
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
        from: range.from.map(day).unwrap_or_default(),
        to: range.to.map(day).unwrap_or_default(),
        presets: presets(now().with_timezone(&tz).date_naive(), range),
        time_zone: s.merchant.time_zone.clone(),
        filtered: !qs.is_empty(),
        rows: rows
            .iter()
            .map(|p| Row {
                id: p.id.clone(),
                order_id: p.order_id.clone(),
                amount: display_amount(p.amount, &p.currency),
                method: p.method,
                paid_with: paid_with(p),
                status: p.status,
                created: Time::zoned(p.created_at, tz),
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
    let (f, _) = filter_of(&q, profile::zone_of(&s.merchant));
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
