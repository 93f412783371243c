//! The dashboard's pages and form handlers. HTML is rendered here (escaped with
//! `checkout::escape`); handlers call the same services as the API.

use std::{collections::HashMap, fmt::Write as _, net::SocketAddr};

use axum::{
    Form,
    extract::{ConnectInfo, Path, Query, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};

use super::{COOKIE, SignedIn, check_login, revealable_secret, start_session};
use crate::{
    app::App,
    checkout::{display_amount, escape},
    http::error::ApiError,
    merchants,
    payments::service as payments,
    refunds,
    store::{
        dashboard as db, events, now, payments::Filter, payments::Payment, refunds as refund_rows,
    },
    views::iso,
    webhooks,
};

type Q = Query<HashMap<String, String>>;
type F = Form<HashMap<String, String>>;

fn internal(e: &dyn std::fmt::Display) -> Response {
    ApiError::internal(e).into_response()
}

/// The page frame: navigation, a notice, the body.
fn layout(
    title: &str,
    active: &str,
    s: &SignedIn,
    notice: Option<&str>,
    body: &str,
) -> Html<String> {
    let nav: String = [
        ("/dashboard", "Overview"),
        ("/dashboard/transactions", "Transactions"),
        ("/dashboard/webhooks", "Webhooks"),
        ("/dashboard/docs", "Docs"),
    ]
    .iter()
    .map(|(href, name)| {
        let current = if *name == active {
            " aria-current=\"page\""
        } else {
            ""
        };
        format!("<a href=\"{href}\"{current}>{name}</a>")
    })
    .collect();
    let notice = notice
        .filter(|n| !n.is_empty())
        .map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>", escape(n)))
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · paygate</title><link rel=\"stylesheet\" href=\"/assets/dashboard.css\"></head><body>\
<header><div class=\"bar\"><a class=\"brand\" href=\"/dashboard\">paygate</a><nav aria-label=\"Main\">{nav}</nav>\
<span class=\"muted\">{merchant}</span><form class=\"inline\" method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button class=\"secondary\" data-test-id=\"logout-button\">Log out</button></form></div></header>\
<main>{notice}{body}</main></body></html>",
        title = escape(title),
        merchant = escape(&s.merchant.name),
        csrf = escape(&s.csrf),
    ))
}

/// A timestamp for people, `1 Dec 2026, 17:43 UTC`, with the exact ISO-8601 time in
/// `datetime` (for machines) and `title` (shown on hover).
fn time_html(t: chrono::DateTime<chrono::Utc>) -> String {
    let exact = iso(t);
    format!(
        "<time datetime=\"{exact}\" title=\"{exact}\">{}</time>",
        t.format("%-d %b %Y, %H:%M UTC")
    )
}

fn csrf_field(s: &SignedIn) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&s.csrf)
    )
}

/// Redirects to `to` after a form, with `notice` kept in the session for the next page (a
/// flash message): nothing a page shows comes from its query string.
async fn back(app: &App, s: &SignedIn, to: &str, notice: &str) -> Response {
    if let Err(e) = db::set_flash(&app.store, &s.token_digest, notice).await {
        return internal(&e);
    }
    Redirect::to(to).into_response()
}

// ---------- login ----------

fn login_html(message: Option<&str>) -> String {
    let msg = message
        .map(|m| {
            format!(
                "<p class=\"notice error\" role=\"alert\" data-test-id=\"login-error\">{}</p>",
                escape(m)
            )
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Sign in · paygate</title><link rel=\"stylesheet\" href=\"/assets/dashboard.css\"></head><body><main class=\"login\">\
<div class=\"card\"><h1>Sign in to paygate</h1>{msg}<form method=\"post\" action=\"/login\" data-test-id=\"login-form\">\
<label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required data-test-id=\"email-input\">\
<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required data-test-id=\"password-input\">\
<p><button type=\"submit\" data-test-id=\"login-button\">Sign in</button></p></form></div></main></body></html>"
    )
}

pub async fn login_page() -> Html<String> {
    Html(login_html(None))
}

pub async fn login(
    State(app): State<App>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Form(f): F,
) -> Response {
    let email = f
        .get("email")
        .map(|e| e.trim())
        .unwrap_or_default()
        .to_owned();
    let password = f.get("password").cloned().unwrap_or_default();
    if let Some(wait) = app.login_throttle.wait(&email, client.ip()) {
        let msg = format!(
            "Too many failed attempts. Try again in {} s.",
            wait.as_secs().max(1)
        );
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.as_secs().max(1).to_string())],
            Html(login_html(Some(&msg))),
        )
            .into_response();
    }
    match check_login(&app, &email, &password).await {
        Ok(Some(merchant_id)) => {
            app.login_throttle.succeeded(&email);
            match start_session(&app, &merchant_id).await {
                Ok(cookie) => {
                    ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard")).into_response()
                }
                Err(e) => internal(&e),
            }
        }
        Ok(None) => {
            app.login_throttle.failed(&email, client.ip());
            (
                StatusCode::UNAUTHORIZED,
                Html(login_html(Some("Invalid email or password"))),
            )
                .into_response()
        }
        Err(e) => internal(&e),
    }
}

pub async fn logout(State(app): State<App>, s: SignedIn, Form(f): F) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    if let Err(e) = db::end_session(&app.store, &s.token_digest, now()).await {
        return internal(&e);
    }
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}

// ---------- overview ----------

/// Success rate in whole percent, rounded half up; 0 when there are no payments.
pub fn success_rate(successful: i64, total: i64) -> i64 {
    if total <= 0 {
        0
    } else {
        (successful * 200 + total) / (2 * total)
    }
}

/// One day of the overview chart.
struct ChartDay {
    day: chrono::NaiveDate,
    payments: i64,
    successful: i64,
    amount: i64,
}

/// The last 30 days (oldest first), with a zero for days without payments.
fn chart_days(days: &[db::Day]) -> Vec<ChartDay> {
    let today = now().date_naive();
    let by_day: HashMap<&str, &db::Day> = days.iter().map(|d| (d.0.as_str(), d)).collect();
    (0..30)
        .rev()
        .map(|back| {
            let day = today - chrono::Duration::days(back);
            let key = day.format("%Y-%m-%d").to_string();
            let (payments, successful, amount) = by_day
                .get(key.as_str())
                .map_or((0, 0, 0), |d| (d.1, d.2, d.3));
            ChartDay {
                day,
                payments,
                successful,
                amount,
            }
        })
        .collect()
}

/// The overview chart: successful volume per day as bars (each focusable, its figures shown
/// on hover and focus), the success rate as a line, day labels under the axis, and the same
/// figures as a table for screen readers and anyone who prefers numbers.
fn chart(days: &[db::Day]) -> String {
    let series = chart_days(days);
    let max = series.iter().map(|d| d.amount).max().unwrap_or(0).max(1);
    let (w, h, side, top, bottom) = (640.0, 200.0, 8.0, 26.0, 26.0);
    let plot = h - top - bottom;
    let step = (w - 2.0 * side) / series.len() as f64;
    let (mut bars, mut line, mut labels, mut rows) =
        (String::new(), String::new(), String::new(), String::new());
    for (i, d) in series.iter().enumerate() {
        let x = side + i as f64 * step;
        let center = x + step / 2.0;
        let bh = (d.amount as f64 / max as f64) * plot;
        let amount = display_amount(d.amount, "INR");
        let long = format!(
            "{}: {} payments, {} successful, {amount} collected",
            d.day.format("%-d %b %Y"),
            d.payments,
            d.successful
        );
        let anchor = match i {
            0..=2 => "start",
            27.. => "end",
            _ => "middle",
        };
        let _ = write!(
            bars,
            "<g class=\"bar\" tabindex=\"0\" role=\"img\" aria-label=\"{long}\" data-test-id=\"chart-bar\" data-day=\"{day}\">\
<rect class=\"hit\" x=\"{x:.1}\" y=\"{top}\" width=\"{step:.1}\" height=\"{plot}\" fill=\"transparent\"/>\
<rect class=\"volume\" x=\"{bx:.1}\" y=\"{by:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\"/>\
<text class=\"value\" x=\"{center:.1}\" y=\"16\" text-anchor=\"{anchor}\" data-test-id=\"chart-value\">{short}</text><title>{long}</title></g>",
            long = escape(&long),
            day = d.day.format("%Y-%m-%d"),
            bx = x + step * 0.15,
            by = top + plot - bh,
            bw = step * 0.7,
            short = escape(&format!(
                "{}: {amount}, {} of {}",
                d.day.format("%-d %b"),
                d.successful,
                d.payments
            )),
        );
        if d.payments > 0 {
            let rate = d.successful as f64 / d.payments as f64;
            let _ = write!(line, "{center:.1},{:.1} ", top + plot - rate * plot);
        }
        if i % 7 == 1 || i == series.len() - 1 {
            let _ = write!(
                labels,
                "<text class=\"day\" x=\"{center:.1}\" y=\"{:.1}\" text-anchor=\"middle\" data-test-id=\"chart-day-label\">{}</text>",
                h - 8.0,
                d.day.format("%-d %b")
            );
        }
        let _ = write!(
            rows,
            "<tr data-test-id=\"chart-row\" data-day=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.day.format("%Y-%m-%d"),
            d.day.format("%-d %b %Y"),
            d.payments,
            d.successful,
            escape(&amount)
        );
    }
    let total: i64 = series.iter().map(|d| d.amount).sum();
    format!(
        "<svg viewBox=\"0 0 {w} {h}\" role=\"group\" aria-label=\"Successful volume per day (bars) and success rate (line), last 30 days: {total} in all. Each bar can be focused to read its figures; the table below has them all.\">\
<line class=\"axis\" x1=\"{side}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\"/>{bars}\
<polyline class=\"rate\" points=\"{line}\" fill=\"none\"/>{labels}</svg>\
<details data-test-id=\"chart-data\"><summary>The last 30 days as a table</summary><div class=\"table-wrap\"><table data-test-id=\"chart-table\">\
<thead><tr><th>Day</th><th>Payments</th><th>Successful</th><th>Collected</th></tr></thead><tbody>{rows}</tbody></table></div></details>",
        total = escape(&display_amount(total, "INR")),
        y0 = top + plot,
        x1 = w - side
    )
}

async fn overview_page(
    app: &App,
    s: &SignedIn,
    notice: Option<&str>,
    new_secret: Option<&str>,
) -> Response {
    let stats = match db::stats(&app.store, &s.merchant.id).await {
        Ok(x) => x,
        Err(e) => return internal(&e),
    };
    let days = match db::daily(
        &app.store,
        &s.merchant.id,
        now() - chrono::Duration::days(30),
    )
    .await
    {
        Ok(d) => d,
        Err(e) => return internal(&e),
    };
    let secret = match (new_secret, revealable_secret(&s.merchant)) {
        (Some(new), _) => format!("<strong>New secret, shown once:</strong> <code data-test-id=\"api-secret\">{}</code>", escape(new)),
        (None, Some(known)) => format!("<details><summary>Reveal</summary><code data-test-id=\"api-secret\">{known}</code></details>"),
        (None, None) => "<span data-test-id=\"api-secret\" class=\"muted\">•••••••• (stored as a digest: rotate to get a new one)</span>".into(),
    };
    let body = format!(
        "<h1 data-test-id=\"dashboard\">Overview</h1>\
<section class=\"card\" data-test-id=\"api-credentials\"><h2>API credentials</h2>\
<p>API key: <code data-test-id=\"api-key\">{key}</code></p><p>API secret: {secret}</p>\
<form method=\"post\" action=\"/dashboard/credentials/rotate\">{csrf}<button class=\"secondary\" data-test-id=\"rotate-secret-button\">Rotate API secret</button></form></section>\
<section class=\"card grid\" data-test-id=\"stats-container\">\
<div class=\"stat\"><div class=\"v\" data-test-id=\"total-transactions\">{total}</div><div class=\"k\">Transactions</div></div>\
<div class=\"stat\"><div class=\"v\" data-test-id=\"total-amount\">{amount}</div><div class=\"k\">Collected (successful payments)</div></div>\
<div class=\"stat\"><div class=\"v\" data-test-id=\"success-rate\">{rate}%</div><div class=\"k\">Success rate</div></div></section>\
<section class=\"card chart\" data-test-id=\"volume-chart\"><h2>Last 30 days</h2>{chart}</section>",
        key = escape(&s.merchant.api_key),
        csrf = csrf_field(s),
        total = stats.total,
        amount = escape(&display_amount(stats.successful_amount, "INR")),
        rate = success_rate(stats.successful, stats.total),
        chart = chart(&days),
    );
    layout("Overview", "Overview", s, notice, &body).into_response()
}

pub async fn overview(State(app): State<App>, s: SignedIn) -> Response {
    overview_page(&app, &s, s.flash.as_deref(), None).await
}

pub async fn rotate_credentials(State(app): State<App>, s: SignedIn, Form(f): F) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    match merchants::rotate_api_secret(&app.store, &app.credentials, &s.merchant).await {
        Ok(secret) => {
            overview_page(
                &app,
                &s,
                Some("API secret rotated: the old one no longer works."),
                Some(&secret),
            )
            .await
        }
        Err(e) => internal(&e),
    }
}

// ---------- transactions ----------

const PAGE_SIZE: i64 = 20;
/// The highest page number a list accepts (anything above shows that page, empty).
const MAX_PAGE: i64 = 100_000;

/// `?page=N`, from 1 to [`MAX_PAGE`]; anything that is not a number is page 1.
fn page_number(q: &HashMap<String, String>) -> i64 {
    q.get("page")
        .and_then(|p| p.trim().parse::<i64>().ok())
        .map_or(1, |p| p.clamp(1, MAX_PAGE))
}

fn filter_of(q: &HashMap<String, String>) -> Filter {
    let pick =
        |k: &str, allowed: &[&str]| q.get(k).filter(|v| allowed.contains(&v.as_str())).cloned();
    Filter {
        status: pick("status", &["pending", "success", "failed"]),
        method: pick("method", &["upi", "card"]),
        search: q
            .get("q")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    }
}

fn query_of(f: &Filter) -> String {
    let mut u = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("status", &f.status),
        ("method", &f.method),
        ("q", &f.search),
    ] {
        if let Some(v) = v {
            u.append_pair(k, v);
        }
    }
    u.finish()
}

fn select(name: &str, label: &str, options: &[&str], current: Option<&String>) -> String {
    let opts: String = std::iter::once(("", "All"))
        .chain(options.iter().map(|o| (*o, *o)))
        .map(|(v, t)| {
            let sel =
                if current.map(String::as_str) == Some(v) || (v.is_empty() && current.is_none()) {
                    " selected"
                } else {
                    ""
                };
            format!("<option value=\"{v}\"{sel}>{t}</option>")
        })
        .collect();
    format!(
        "<div class=\"field\"><label for=\"{name}\">{label}</label><select id=\"{name}\" name=\"{name}\" data-test-id=\"filter-{name}\">{opts}</select></div>"
    )
}

pub async fn transactions(State(app): State<App>, s: SignedIn, Query(q): Q) -> Response {
    let f = filter_of(&q);
    let page = page_number(&q);
    let (rows, total) = match crate::store::payments::list_filtered(
        &app.store,
        &s.merchant.id,
        &f,
        PAGE_SIZE,
        (page - 1) * PAGE_SIZE,
    )
    .await
    {
        Ok(x) => x,
        Err(e) => return internal(&e),
    };
    let body_rows: String = rows
        .iter()
        .map(|p| {
            format!(
                "<tr data-test-id=\"transaction-row\" data-payment-id=\"{id}\"><td data-label=\"Payment\"><a href=\"/dashboard/payments/{id}\" data-test-id=\"payment-id\" class=\"mono\">{id}</a></td>\
<td data-label=\"Order\" data-test-id=\"order-id\" class=\"mono\">{order}</td><td data-label=\"Amount\" data-test-id=\"amount\">{amount}</td><td data-label=\"Method\" data-test-id=\"method\">{method}</td>\
<td data-label=\"Status\" data-test-id=\"status\" class=\"status-{status}\">{status}</td><td data-label=\"Created\" data-test-id=\"created-at\">{created}</td></tr>",
                id = escape(&p.id),
                order = escape(&p.order_id),
                amount = escape(&display_amount(p.amount, &p.currency)),
                method = escape(&p.method),
                status = escape(&p.status),
                created = time_html(p.created_at),
            )
        })
        .collect();
    let qs = query_of(&f);
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let link = |p: i64, text: &str, test: &str| {
        let sep = if qs.is_empty() { "" } else { "&" };
        format!(
            "<a class=\"button secondary\" data-test-id=\"{test}\" href=\"/dashboard/transactions?{qs}{sep}page={p}\">{text}</a>"
        )
    };
    let prev = if page > 1 {
        link(page - 1, "Previous", "prev-page")
    } else {
        String::new()
    };
    let next = if page < pages {
        link(page + 1, "Next", "next-page")
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Transactions</h1><form class=\"card row filters\" method=\"get\" action=\"/dashboard/transactions\" data-test-id=\"transactions-filters\">\
{status}{method}<div class=\"field\"><label for=\"q\">Payment or order id</label><input id=\"q\" name=\"q\" type=\"search\" value=\"{search}\" data-test-id=\"search-input\"></div>\
<button data-test-id=\"filter-button\">Apply</button><a class=\"button secondary\" data-test-id=\"export-csv\" href=\"/dashboard/transactions.csv?{qs}\">Export CSV</a></form>\
<div class=\"card table-wrap\"><table class=\"stack\" data-test-id=\"transactions-table\"><thead><tr><th>Payment</th><th>Order</th><th>Amount</th><th>Method</th><th>Status</th><th>Created</th></tr></thead>\
<tbody>{body_rows}</tbody></table><div class=\"pager\">{prev}<span class=\"muted\" data-test-id=\"page-info\">Page {page} of {pages} · {total} payments</span>{next}</div></div>",
        status = select(
            "status",
            "Status",
            &["pending", "success", "failed"],
            f.status.as_ref()
        ),
        method = select("method", "Method", &["upi", "card"], f.method.as_ref()),
        search = escape(f.search.as_deref().unwrap_or_default()),
    );
    layout(
        "Transactions",
        "Transactions",
        &s,
        s.flash.as_deref(),
        &body,
    )
    .into_response()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub async fn export_csv(State(app): State<App>, s: SignedIn, Query(q): Q) -> Response {
    let f = filter_of(&q);
    let mut out = String::from(
        "payment_id,order_id,amount,currency,method,status,captured,amount_refunded,created_at\n",
    );
    let mut offset = 0;
    loop {
        let (rows, total) = match crate::store::payments::list_filtered(
            &app.store,
            &s.merchant.id,
            &f,
            500,
            offset,
        )
        .await
        {
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
                csv_field(&p.method),
                csv_field(&p.status),
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

// ---------- payment detail ----------

pub async fn payment(
    State(app): State<App>,
    s: SignedIn,
    Path(id): Path<String>,
    Query(_): Q,
) -> Response {
    let p: Payment = match payments::get(&app.store, Some(&s.merchant.id), &id).await {
        Ok(p) => p,
        Err(payments::Error::Store(e)) => return internal(&e),
        Err(_) => {
            return (
                StatusCode::NOT_FOUND,
                layout(
                    "Not found",
                    "Transactions",
                    &s,
                    None,
                    "<h1>Payment not found</h1>",
                ),
            )
                .into_response();
        }
    };
    let (evs, refunds_list, deliveries) = match (
        events::for_resource(&app.store, &p.id).await,
        refund_rows::for_payment(&app.store, &p.id).await,
        crate::store::webhooks::for_resource(&app.store, &p.id).await,
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return internal(&e),
    };
    let timeline: String = evs
        .iter()
        .map(|e| format!("<li data-test-id=\"timeline-event\"><code>{}</code> <span class=\"muted\">{}</span></li>", escape(&e.event_type), time_html(e.created_at)))
        .collect();
    let refunds_html: String = refunds_list
        .iter()
        .map(|r| format!("<tr data-test-id=\"refund-row\" data-refund-id=\"{id}\"><td class=\"mono\">{id}</td><td>{amount}</td><td class=\"status-{st}\">{st}</td><td>{reason}</td><td>{at}</td></tr>",
            id = escape(&r.id), amount = escape(&display_amount(r.amount, &p.currency)), st = escape(&r.status),
            reason = escape(r.reason.as_deref().unwrap_or("")), at = time_html(r.created_at)))
        .collect();
    let deliveries_html: String = deliveries
        .iter()
        .map(|d| {
            format!(
                "<tr><td>{}</td><td class=\"status-{st}\">{st}</td><td>{}</td><td>{}</td></tr>",
                escape(&d.event),
                d.attempts,
                d.response_code.map(|c| c.to_string()).unwrap_or_default(),
                st = escape(&d.status)
            )
        })
        .collect();
    let left = p.amount - p.amount_refunded;
    let capture = if p.status == "success" && !p.captured {
        format!(
            "<form method=\"post\" action=\"/dashboard/payments/{id}/capture\">{csrf}<button data-test-id=\"capture-button\">Capture {amt}</button></form>",
            id = escape(&p.id),
            csrf = csrf_field(&s),
            amt = escape(&display_amount(p.amount, &p.currency))
        )
    } else {
        String::new()
    };
    let refund = if p.status == "success" && left > 0 {
        format!(
            "<form method=\"post\" action=\"/dashboard/payments/{id}/refund\" class=\"row\" data-test-id=\"refund-form\">{csrf}\
<div><label for=\"amount\">Refund amount (paise; empty: all {left} left)</label><input id=\"amount\" name=\"amount\" inputmode=\"numeric\" data-test-id=\"refund-amount-input\"></div>\
<div><label for=\"reason\">Reason</label><input id=\"reason\" name=\"reason\" maxlength=\"255\" data-test-id=\"refund-reason-input\"></div>\
<button data-test-id=\"refund-button\">Refund</button></form>",
            id = escape(&p.id),
            csrf = csrf_field(&s)
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Payment <span class=\"mono\" data-test-id=\"payment-detail-id\">{id}</span></h1><section class=\"card\" data-test-id=\"payment-detail\">\
<p>Status: <strong class=\"status-{status}\" data-test-id=\"payment-status\">{status}</strong> · Captured: <strong data-test-id=\"payment-captured\">{captured}</strong> · \
Amount: {amount} · Refunded: <span data-test-id=\"payment-refunded\">{refunded}</span></p><p>Order <span class=\"mono\">{order}</span> · {method}{error}</p>{capture}{refund}</section>\
<section class=\"card\"><h2>Timeline</h2><ol class=\"timeline\" data-test-id=\"payment-timeline\">{timeline}</ol></section>\
<section class=\"card table-wrap\"><h2>Refunds</h2><table data-test-id=\"refunds-table\"><thead><tr><th>Refund</th><th>Amount</th><th>Status</th><th>Reason</th><th>Created</th></tr></thead><tbody>{refunds_html}</tbody></table></section>\
<section class=\"card table-wrap\"><h2>Webhook deliveries</h2><table><thead><tr><th>Event</th><th>Status</th><th>Attempts</th><th>Response</th></tr></thead><tbody>{deliveries_html}</tbody></table></section>",
        id = escape(&p.id),
        status = escape(&p.status),
        captured = if p.captured { "yes" } else { "no" },
        amount = escape(&display_amount(p.amount, &p.currency)),
        refunded = escape(&display_amount(p.amount_refunded, &p.currency)),
        order = escape(&p.order_id),
        method = escape(&p.method),
        error = p
            .error_description
            .as_deref()
            .map(|e| format!(" · {}", escape(e)))
            .unwrap_or_default(),
    );
    layout("Payment", "Transactions", &s, s.flash.as_deref(), &body).into_response()
}

pub async fn capture(
    State(app): State<App>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): F,
) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    let path = format!("/dashboard/payments/{id}");
    match payments::capture(&app, &s.merchant.id, &id, None, None).await {
        Ok(_) => back(&app, &s, &path, "Payment captured.").await,
        Err(payments::Error::Store(e)) => internal(&e),
        Err(e) => back(&app, &s, &path, &ApiError::from(e).description).await,
    }
}

pub async fn refund(
    State(app): State<App>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): F,
) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    let path = format!("/dashboard/payments/{id}");
    let amount = match f.get("amount").map(|a| a.trim()).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match a.parse::<i64>() {
            Ok(n) if (1..=paygate_core::OrderAmount::MAX).contains(&n) => Some(n),
            _ => {
                return back(
                    &app,
                    &s,
                    &path,
                    "The refund amount must be a positive whole number of paise.",
                )
                .await;
            }
        },
    };
    let reason = f
        .get("reason")
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(refunds::REASON_MAX).collect());
    match refunds::create(&app, &s.merchant.id, &id, amount, reason, None).await {
        Ok(r) => back(&app, &s, &path, &format!("Refund {} created.", r.id)).await,
        Err(refunds::Error::Store(e)) => internal(&e),
        Err(e) => back(&app, &s, &path, &ApiError::from(e).description).await,
    }
}

// ---------- webhooks ----------

pub async fn webhooks(State(app): State<App>, s: SignedIn, Query(q): Q) -> Response {
    let page = page_number(&q);
    let (rows, total) = match webhooks::list(&app, &s.merchant.id, 50, (page - 1) * 50).await {
        Ok(x) => x,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let items: String = rows
        .iter()
        .map(|d| {
            let next = if d.status == "pending" { d.next_retry_at.map(time_html).unwrap_or_default() } else { String::new() };
            let excerpt: String = d.response_body.as_deref().unwrap_or("").chars().take(300).collect();
            format!(
                "<tr data-test-id=\"webhook-log-item\" data-webhook-id=\"{id}\"><td data-test-id=\"webhook-event\"><code>{event}</code></td>\
<td data-test-id=\"webhook-status\" class=\"status-{status}\">{status}</td><td data-test-id=\"webhook-attempts\">{attempts}</td>\
<td data-test-id=\"webhook-last-attempt\">{last}</td><td data-test-id=\"webhook-response-code\">{code}</td>\
<td><details><summary>Details</summary><p>Next retry: {next}</p><p>Duration: {dur} ms</p><pre>{excerpt}</pre></details></td>\
<td><form method=\"post\" action=\"/dashboard/webhooks/{id}/retry\">{csrf}<button class=\"secondary\" data-test-id=\"retry-webhook-button\">Retry</button></form></td></tr>",
                id = escape(&d.id),
                event = escape(&d.event),
                status = escape(&d.status),
                attempts = d.attempts,
                last = d.last_attempt_at.map(time_html).unwrap_or_default(),
                code = d.response_code.map(|c| c.to_string()).unwrap_or_default(),
                next = next,
                dur = d.duration_ms.unwrap_or(0),
                excerpt = escape(&excerpt),
                csrf = csrf_field(&s),
            )
        })
        .collect();
    let url = s.merchant.webhook_url.as_deref().unwrap_or("");
    let more = if page * 50 < total {
        format!(
            "<a class=\"button secondary\" href=\"/dashboard/webhooks?page={}\">Older</a>",
            page + 1
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Webhooks</h1><section class=\"card\" data-test-id=\"webhook-config\"><h2>Configuration</h2>\
<form method=\"post\" action=\"/dashboard/webhooks/config\" data-test-id=\"webhook-config-form\">{csrf}<label for=\"webhook_url\">Webhook URL</label>\
<input id=\"webhook_url\" name=\"webhook_url\" type=\"url\" value=\"{url}\" placeholder=\"https://yoursite.example/webhooks\" data-test-id=\"webhook-url-input\">\
<p><button data-test-id=\"save-webhook-button\">Save</button></p></form>\
<p>Webhook secret: <code data-test-id=\"webhook-secret\">{secret}</code></p><div class=\"row\">\
<form method=\"post\" action=\"/dashboard/webhooks/secret\">{csrf}<button class=\"secondary\" data-test-id=\"regenerate-secret-button\">Regenerate secret</button></form>\
<form method=\"post\" action=\"/dashboard/webhooks/test\">{csrf}<button class=\"secondary\" data-test-id=\"test-webhook-button\">Send Test Webhook</button></form></div></section>\
<section class=\"card table-wrap\"><h2>Deliveries <span class=\"muted\">({total})</span></h2><table data-test-id=\"webhook-logs-table\"><thead><tr><th>Event</th><th>Status</th><th>Attempts</th>\
<th>Last attempt</th><th>Response</th><th></th><th></th></tr></thead><tbody>{items}</tbody></table><div class=\"pager\">{more}</div></section>",
        csrf = csrf_field(&s),
        url = escape(url),
        secret = escape(&s.merchant.webhook_secret),
    );
    layout("Webhooks", "Webhooks", &s, s.flash.as_deref(), &body).into_response()
}

pub async fn save_webhook(State(app): State<App>, s: SignedIn, Form(f): F) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    let url = f
        .get("webhook_url")
        .map(|u| u.trim())
        .filter(|u| !u.is_empty());
    match webhooks::set_url(&app, &s.merchant.id, url).await {
        Ok(_) => {
            back(
                &app,
                &s,
                "/dashboard/webhooks",
                if url.is_some() {
                    "Webhook URL saved."
                } else {
                    "Webhooks turned off."
                },
            )
            .await
        }
        Err(e) => {
            back(
                &app,
                &s,
                "/dashboard/webhooks",
                &ApiError::from(e).description,
            )
            .await
        }
    }
}

pub async fn regenerate_secret(State(app): State<App>, s: SignedIn, Form(f): F) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    match webhooks::rotate_secret(&app, &s.merchant.id, None).await {
        Ok(_) => {
            back(
                &app,
                &s,
                "/dashboard/webhooks",
                "New webhook secret generated.",
            )
            .await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn test_webhook(State(app): State<App>, s: SignedIn, Form(f): F) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    match webhooks::send_test(&app, &s.merchant, None).await {
        Ok(d) => {
            back(
                &app,
                &s,
                "/dashboard/webhooks",
                &format!(
                    "Test webhook sent: {} ({}).",
                    d.status,
                    d.response_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "no answer".into())
                ),
            )
            .await
        }
        Err(e) => {
            back(
                &app,
                &s,
                "/dashboard/webhooks",
                &ApiError::from(e).description,
            )
            .await
        }
    }
}

pub async fn retry_webhook(
    State(app): State<App>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): F,
) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    match webhooks::retry(&app, &s.merchant.id, &id, None).await {
        Ok(_) => back(&app, &s, "/dashboard/webhooks", "Webhook retry scheduled.").await,
        Err(e) => {
            back(
                &app,
                &s,
                "/dashboard/webhooks",
                &ApiError::from(e).description,
            )
            .await
        }
    }
}

// ---------- docs ----------

pub async fn docs(State(app): State<App>, s: SignedIn) -> Response {
    let api = &app.config.public_api_url;
    let checkout = &app.config.public_checkout_url;
    let key = &s.merchant.api_key;
    let secret = revealable_secret(&s.merchant).unwrap_or("YOUR_API_SECRET");
    let create = format!(
        "curl -X POST {api}/api/v1/orders \\\n  -H \"X-Api-Key: {key}\" \\\n  -H \"X-Api-Secret: {secret}\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '{{\"amount\": 50000, \"currency\": \"INR\", \"receipt\": \"receipt_1\"}}'"
    );
    let sdk = format!(
        "<script src=\"{checkout}/checkout.js\"></script>\n<button id=\"pay\">Pay ₹500.00</button>\n<script>\n  document.getElementById(\"pay\").onclick = function () {{\n    // orderId: an order your server created with the API\n    new PaymentGateway({{\n      key: \"{key}\",\n      orderId: \"order_xxxxxxxxxxxxxxxx\",\n      onSuccess: function (data) {{ console.log(\"paid\", data.paymentId); }},\n      onFailure: function (data) {{ console.log(\"failed\", data); }},\n      onClose: function () {{ console.log(\"closed\"); }}\n    }}).open();\n  }};\n</script>"
    );
    let webhook = "// Node (npm install standardwebhooks), with the raw request body\nconst crypto = require(\"crypto\");\nconst { Webhook } = require(\"standardwebhooks\");\nconst secret = process.env.WEBHOOK_SECRET; // from the Webhooks page\n\nfunction verify(rawBody, headers) {\n  // Scheme 1: X-Webhook-Signature, hex HMAC-SHA256 of the body\n  const expected = crypto.createHmac(\"sha256\", secret).update(rawBody).digest(\"hex\");\n  const given = Buffer.from(headers[\"x-webhook-signature\"] || \"\", \"hex\");\n  if (given.length !== 32 || !crypto.timingSafeEqual(given, Buffer.from(expected, \"hex\"))) throw new Error(\"bad signature\");\n  // Scheme 2: Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)\n  new Webhook(secret).verify(rawBody, headers); // throws if invalid\n  return JSON.parse(rawBody);\n}\n\n# Python (pip install standardwebhooks)\nimport hashlib, hmac, os\nfrom standardwebhooks.webhooks import Webhook\nsecret = os.environ[\"WEBHOOK_SECRET\"]\n\ndef verify(raw_body: str, headers: dict) -> None:\n    expected = hmac.new(secret.encode(), raw_body.encode(), hashlib.sha256).hexdigest()\n    if not hmac.compare_digest(expected, headers.get(\"x-webhook-signature\", \"\")):\n        raise ValueError(\"bad signature\")\n    Webhook(secret).verify(raw_body, headers)  # raises if invalid";
    let body = format!(
        "<h1 data-test-id=\"api-docs\">Integration guide</h1>\
<section class=\"card\" data-test-id=\"section-create-order\"><h2>1. Create an order (your server)</h2><pre data-test-id=\"code-snippet-create-order\">{create}</pre>\
<p class=\"muted\">Amounts are in paise. Send <code>Idempotency-Key</code> to make retries safe.</p></section>\
<section class=\"card\" data-test-id=\"section-sdk-integration\"><h2>2. Take the payment (your page)</h2><pre data-test-id=\"code-snippet-sdk\">{sdk}</pre>\
<p class=\"muted\">Try it: <a href=\"{checkout_e}/demo\">the demo shop</a>.</p></section>\
<section class=\"card\" data-test-id=\"section-webhook-verification\"><h2>3. Verify webhooks (your server)</h2><pre data-test-id=\"code-snippet-webhook\">{webhook}</pre>\
<p class=\"muted\">The Standard Webhooks libraries need a generated <code>whsec_…</code> secret: regenerate yours on the Webhooks page if it is the test one.</p></section>",
        create = escape(&create),
        sdk = escape(&sdk),
        webhook = escape(webhook),
        checkout_e = escape(checkout),
    );
    layout("Docs", "Docs", &s, None, &body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rate_rounds_half_up_to_whole_percent() {
        assert_eq!(success_rate(0, 0), 0);
        assert_eq!(success_rate(2, 3), 67);
        assert_eq!(success_rate(1, 3), 33);
        assert_eq!(success_rate(1, 8), 13);
        assert_eq!(success_rate(5, 5), 100);
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
