//! The overview: API credentials, the headline figures, and the 30-day chart.

use std::collections::HashMap;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use paygate_core::{MinorUnit, display_amount, fees::show_percent};

use super::{F, Frame, SignedIn, answer_form, internal, revealable_secret, rotate};
use crate::{
    merchants,
    pages::{PagesState, page as render},
    store::{dashboard as db, now},
};

/// Success rate in whole percent, rounded half up; 0 when there are no payments.
pub fn success_rate(successful: i64, total: i64) -> i64 {
    if total <= 0 {
        0
    } else {
        (successful * 200 + total) / (2 * total)
    }
}

#[derive(askama::Template)]
#[template(path = "dashboard/overview.html")]
struct Overview<'a> {
    frame: Frame,
    api_key: String,
    /// A secret just rotated (shown once), or the seeded merchant's public one.
    new_secret: Option<&'a str>,
    public_secret: Option<&'static str>,
    /// Until when the secret before the last rotation keeps working.
    old_secret_until: Option<crate::pages::Time>,
    /// The VPA intent and QR payments are paid to.
    upi_id: Option<String>,
    /// What each method costs: `(method, fee, tax on the fee, whether it is the default)`.
    pricing: Vec<(&'static str, String, String, bool)>,
    /// Money not settled yet, per currency.
    unsettled: Vec<super::settlements::Unsettled>,
    total: i64,
    /// Collected per currency, the largest first (one line each; `₹0.00` with none).
    amounts: Vec<String>,
    /// Refunded and net (collected less refunded) per currency, in the order of `amounts`.
    refunded: Vec<String>,
    net: Vec<String>,
    rate: i64,
    chart: Chart,
}

/// The 30-day chart, laid out for `templates/dashboard/overview.html`: a focusable bar per day
/// (its figures shown on hover and focus), the success rate as a line, day labels under the
/// axis, and the same figures as a table.
struct Chart {
    width: f64,
    height: f64,
    /// Where the plot starts: the value axis's labels stand left of it.
    left: f64,
    /// The value axis: `(y, label)` from zero up.
    ticks: Vec<(String, String)>,
    top: f64,
    plot: f64,
    step: String,
    bar_width: String,
    baseline: f64,
    right: f64,
    label_y: f64,
    total: String,
    /// The currency the bars show (amounts of different currencies are never added).
    currency: String,
    bars: Vec<Bar>,
    labels: Vec<Label>,
    rate_points: String,
    rows: Vec<Row>,
}

struct Bar {
    day: String,
    long: String,
    short: String,
    x: String,
    center: String,
    anchor: &'static str,
    bar_x: String,
    bar_y: String,
    bar_height: String,
}

struct Label {
    x: String,
    text: String,
}

struct Row {
    day: String,
    label: String,
    payments: i64,
    successful: i64,
    amount: String,
}

/// One day of the chart.
struct ChartDay {
    day: chrono::NaiveDate,
    payments: i64,
    successful: i64,
    amount: i64,
}

/// The last 30 days (oldest first), with a zero for days without payments: payments counted
/// over every currency, the amount in `currency` only.
fn chart_days(days: &[db::Day], currency: &str) -> Vec<ChartDay> {
    let today = now().date_naive();
    let mut by_day: HashMap<&str, (i64, i64, i64)> = HashMap::new();
    for d in days {
        let e = by_day.entry(d.day.as_str()).or_default();
        e.0 += d.payments;
        e.1 += d.successful;
        if d.currency == currency {
            e.2 += d.amount;
        }
    }
    (0..30)
        .rev()
        .map(|back| {
            let day = today - chrono::Duration::days(back);
            let key = day.format("%Y-%m-%d").to_string();
            let (payments, successful, amount) =
                by_day.get(key.as_str()).copied().unwrap_or_default();
            ChartDay {
                day,
                payments,
                successful,
                amount,
            }
        })
        .collect()
}

/// An amount in minor units as an axis label: its major units shortened with one decimal at
/// most, in the Indian system for INR (`₹12.4L`, `₹1.2Cr`, `₹6.5K`), in thousands, millions
/// and billions otherwise (`USD 1.5M`).
fn compact(minor: i64, currency: &str) -> String {
    let exponent = paygate_core::Currency::parse(currency).map_or(2, |c| c.exponent());
    let major = minor as f64 / 10f64.powi(exponent as i32);
    let units: &[(f64, &str)] = if currency == "INR" {
        &[(1e7, "Cr"), (1e5, "L"), (1e3, "K")]
    } else {
        &[(1e9, "B"), (1e6, "M"), (1e3, "K")]
    };
    let (value, unit) = units
        .iter()
        .find(|(size, _)| major >= *size)
        .map_or((major, ""), |(size, unit)| (major / size, *unit));
    let number = format!("{value:.1}");
    let number = number.strip_suffix(".0").unwrap_or(&number);
    let symbol = if currency == "INR" {
        "₹".to_owned()
    } else {
        format!("{currency} ")
    };
    format!("{symbol}{number}{unit}")
}

fn chart(days: &[db::Day], currency: &str) -> Chart {
    let series = chart_days(days, currency);
    let max = series.iter().map(|d| d.amount).max().unwrap_or(0).max(1);
    let (width, height, side, top, bottom) = (640.0, 200.0, 8.0, 26.0, 26.0);
    let left = 72.0;
    let plot = height - top - bottom;
    let step = (width - left - side) / series.len() as f64;
    let peak = series.iter().map(|d| d.amount).max().unwrap_or(0);
    // Zero, half the highest day and the highest day; only zero without any.
    let ticks = [0, peak / 2, peak]
        .into_iter()
        .enumerate()
        .filter(|(i, v)| *i == 0 || *v > 0)
        .map(|(_, v)| {
            let y = top + plot - (v as f64 / max as f64) * plot;
            (format!("{y:.1}"), compact(v, currency))
        })
        .collect();
    let (mut bars, mut labels, mut rows, mut points) = (vec![], vec![], vec![], vec![]);
    for (i, d) in series.iter().enumerate() {
        let x = left + i as f64 * step;
        let center = x + step / 2.0;
        let bar_height = (d.amount as f64 / max as f64) * plot;
        let amount = display_amount(d.amount, currency);
        bars.push(Bar {
            day: d.day.format("%Y-%m-%d").to_string(),
            long: format!(
                "{}: {} payments, {} successful, {amount} collected",
                d.day.format("%-d %b %Y"),
                d.payments,
                d.successful
            ),
            short: format!(
                "{}: {amount}, {} of {}",
                d.day.format("%-d %b"),
                d.successful,
                d.payments
            ),
            x: format!("{x:.1}"),
            center: format!("{center:.1}"),
            anchor: match i {
                0..=2 => "start",
                27.. => "end",
                _ => "middle",
            },
            bar_x: format!("{:.1}", x + step * 0.15),
            bar_y: format!("{:.1}", top + plot - bar_height),
            bar_height: format!("{bar_height:.1}"),
        });
        if d.payments > 0 {
            let rate = d.successful as f64 / d.payments as f64;
            points.push(format!("{center:.1},{:.1}", top + plot - rate * plot));
        }
        if i % 7 == 1 || i == series.len() - 1 {
            labels.push(Label {
                x: format!("{center:.1}"),
                text: d.day.format("%-d %b").to_string(),
            });
        }
        rows.push(Row {
            day: d.day.format("%Y-%m-%d").to_string(),
            label: d.day.format("%-d %b %Y").to_string(),
            payments: d.payments,
            successful: d.successful,
            amount,
        });
    }
    Chart {
        width,
        height,
        left,
        ticks,
        top,
        plot,
        step: format!("{step:.1}"),
        bar_width: format!("{:.1}", step * 0.7),
        baseline: top + plot,
        right: width - side,
        label_y: height - 8.0,
        total: display_amount(series.iter().map(|d| d.amount).sum::<i64>(), currency),
        currency: currency.to_owned(),
        bars,
        labels,
        rate_points: points.join(" "),
        rows,
    }
}

async fn overview(app: &PagesState, s: &SignedIn, new_secret: Option<&str>) -> Response {
    let stats = match db::stats(&app.store, &s.merchant.id).await {
        Ok(x) => x,
        Err(e) => return internal(&e),
    };
    let since = now() - chrono::Duration::days(30);
    let days = match db::daily(&app.store, &s.merchant.id, since).await {
        Ok(d) => d,
        Err(e) => return internal(&e),
    };
    let pricing = match crate::store::pricing::of(&app.store, &s.merchant.id).await {
        Ok(p) => p
            .into_iter()
            .map(|p| {
                let name = if p.method == paygate_core::Method::Upi {
                    "UPI"
                } else {
                    "Card"
                };
                (
                    name,
                    show_percent(p.fee_bps),
                    show_percent(p.tax_bps),
                    p.default,
                )
            })
            .collect(),
        Err(e) => return internal(&e),
    };
    let unsettled = match super::settlements::unsettled(app, &s.merchant.id).await {
        Ok(u) => u,
        Err(e) => return crate::http::error::ApiError::from(e).into_response(),
    };
    let page = Overview {
        frame: Frame::new("Overview", "Overview", s),
        api_key: s.merchant.api_key.clone(),
        new_secret,
        public_secret: revealable_secret(&s.merchant),
        old_secret_until: s.merchant.previous.api_secret_until(now()).map(Into::into),
        upi_id: s.merchant.upi_id.clone(),
        pricing,
        unsettled,
        total: stats.total,
        amounts: per_currency(&stats, |collected, _| collected),
        refunded: per_currency(&stats, |_, refunded| refunded),
        net: per_currency(&stats, |collected, refunded| {
            collected.saturating_sub(refunded)
        }),
        rate: success_rate(stats.successful, stats.total),
        // The bars show the currency collected most.
        chart: chart(
            &days,
            stats.amounts.first().map_or("INR", |(c, _)| c.as_str()),
        ),
    };
    render(StatusCode::OK, &page)
}

/// One figure per currency the merchant collected (or refunded) in, from what it collected and
/// what it refunded: the largest collected first; `₹0.00` with none.
fn per_currency(stats: &db::Stats, figure: impl Fn(i64, i64) -> i64) -> Vec<String> {
    let mut currencies: Vec<&str> = stats.amounts.iter().map(|(c, _)| c.as_str()).collect();
    for (c, _) in &stats.refunded {
        if !currencies.contains(&c.as_str()) {
            currencies.push(c);
        }
    }
    if currencies.is_empty() {
        return vec![display_amount(0, "INR")];
    }
    let of = |list: &[(String, MinorUnit)], c: &str| {
        list.iter()
            .find(|(k, _)| k == c)
            .map_or(0, |(_, amount)| amount.get())
    };
    currencies
        .into_iter()
        .map(|c| display_amount(figure(of(&stats.amounts, c), of(&stats.refunded, c)), c))
        .collect()
}

/// `GET /dashboard`.
pub async fn page(State(app): State<PagesState>, s: SignedIn) -> Response {
    overview(&app, &s, None).await
}

/// `POST /dashboard/credentials/rotate`: a new API secret, shown once on the page it answers;
/// the current one keeps working for the overlap the confirmation page chose.
pub async fn rotate_credentials(
    State(app): State<PagesState>,
    mut s: SignedIn,
    F(f): F,
) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    let Some(overlap) = rotate::overlap_of(&f) else {
        let notice = "Choose when the current secret stops working.";
        return super::back(&app, &s, "/dashboard/credentials/rotate", notice).await;
    };
    let until = (overlap > chrono::Duration::zero()).then(|| now() + overlap);
    let rotated = merchants::rotate_api_secret(
        &app.store,
        &app.credentials,
        &s.merchant,
        until,
        Some(&s.actor),
    )
    .await;
    match rotated {
        Ok((secret, until)) => {
            s.flash = Some(format!(
                "API secret rotated. {}",
                rotate::old_secret_notice(until, "works")
            ));
            s.merchant.previous.api_secret_until = until;
            overview(&app, &s, Some(&secret)).await
        }
        Err(e) => internal(&e),
    }
}

/// `POST /dashboard/upi`: sets (or, empty, clears) the VPA intent and QR payments are paid to.
pub async fn save_upi(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    let upi_id = f.get("upi_id").map(|u| u.trim()).filter(|u| !u.is_empty());
    answer_form(&app, &s, &f, "/dashboard", async {
        Ok(
            match merchants::set_upi_id(&app.store, &s.merchant.id, upi_id, Some(&s.actor)).await {
                Ok(()) if upi_id.is_some() => "UPI ID saved.".to_owned(),
                Ok(()) => "UPI ID cleared: intent and QR payments are off.".to_owned(),
                Err(None) => "UPI ID is not a valid VPA (name@bank).".to_owned(),
                Err(Some(e)) => return Err(crate::http::error::ApiError::internal(&e)),
            },
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn axis_labels_are_short() {
        use super::compact;
        assert_eq!(compact(0, "INR"), "₹0");
        assert_eq!(compact(526_000, "INR"), "₹5.3K");
        assert_eq!(compact(123_504_499, "INR"), "₹12.4L");
        assert_eq!(compact(1_000_000_000, "INR"), "₹1Cr");
        assert_eq!(compact(99_900, "INR"), "₹999");
        assert_eq!(compact(150_000_000, "USD"), "USD 1.5M");
        assert_eq!(compact(5_000, "JPY"), "JPY 5K");
    }

    use super::*;

    #[test]
    fn success_rate_rounds_half_up_to_whole_percent() {
        assert_eq!(success_rate(0, 0), 0);
        assert_eq!(success_rate(2, 3), 67);
        assert_eq!(success_rate(1, 3), 33);
        assert_eq!(success_rate(1, 8), 13);
        assert_eq!(success_rate(5, 5), 100);
    }
}
