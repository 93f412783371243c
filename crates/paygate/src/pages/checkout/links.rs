//! A payment link's page (`/l/{id}`): what is due, to whom and for what, and the amount to pay
//! (in major units, when the link takes partial payments); paying creates an order of the link
//! and continues on the checkout page, which comes back to `/l/{id}/return` after a success.
//! From there the customer goes to the merchant's `callback_url` with the signed outcome, or
//! back to the link's page. A paid, expired or cancelled link says so, with no way to pay.

use std::collections::HashMap;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use paygate_core::{Currency, MinorUnit, PaymentStatus, display_amount};

use super::{Message, page};
use crate::{
    http::error::ApiError,
    pages::{F, PagesState, Time},
    payment_links::{self, Error, allowed_amounts, callback_signature, closed},
    store::{merchants, now, payment_links::PaymentLink},
};

/// The link's page (`templates/checkout/link.html`).
#[derive(askama::Template)]
#[template(path = "checkout/link.html")]
struct LinkPage {
    id: String,
    merchant: String,
    due: String,
    amount: String,
    description: Option<String>,
    customer: Option<String>,
    /// What was paid so far, once something was.
    paid: Option<String>,
    expire_by: Option<Time>,
    partial: bool,
    currency: String,
    /// The amount field's text: what was typed, or all that is due.
    input: String,
    /// The least the next payment may be.
    min: String,
    error: Option<String>,
}

/// An amount in major units as the field shows it (`600.00`).
fn major(amount: i64, currency: Currency) -> String {
    MinorUnit::new(amount)
        .to_grouped_string(currency)
        .replace(',', "")
}

fn not_found() -> Response {
    let text = "We could not find this payment link. Check the link you were sent.";
    page(StatusCode::NOT_FOUND, &Message::new("Link not found", text))
}

/// The page of a link that takes no payments (`paid`, `expired`, `cancelled`).
fn closed_page(status: &str) -> Response {
    let (code, title, text) = match status {
        "paid" => (
            StatusCode::OK,
            "Paid",
            "This payment link has been paid in full. Thank you!",
        ),
        "cancelled" => (
            StatusCode::GONE,
            "Link cancelled",
            "This payment link was cancelled and takes no payments.",
        ),
        _ => (
            StatusCode::GONE,
            "Link expired",
            "This payment link has expired and takes no more payments. Ask the merchant for a new one.",
        ),
    };
    page(code, &Message::new(title, text))
}

/// The link, or the page that answers instead.
async fn link_of(app: &PagesState, id: &str) -> Result<PaymentLink, Response> {
    match payment_links::get(&app.store, None, id).await {
        Ok(l) => Ok(l),
        Err(Error::NotFound) => Err(not_found()),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

/// `GET /l/{id}`.
pub async fn show(State(app): State<PagesState>, Path(id): Path<String>) -> Response {
    match link_of(&app, &id).await {
        Ok(link) => render(&app, &link, None, None).await,
        Err(r) => r,
    }
}

async fn render(
    app: &PagesState,
    link: &PaymentLink,
    typed: Option<String>,
    error: Option<String>,
) -> Response {
    if let Some(status) = closed(link, now()) {
        return closed_page(status);
    }
    let merchant = match merchants::get(&app.store, &link.merchant_id).await {
        Ok(m) => m.map(|m| m.public_name().to_owned()).unwrap_or_default(),
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    let currency = Currency::parse(&link.currency).unwrap_or(Currency::INR);
    let show = |a: i64| display_amount(a, &link.currency);
    let (min, max) = allowed_amounts(link);
    let view = LinkPage {
        id: link.id.clone(),
        merchant,
        due: show(max),
        amount: show(link.amount),
        description: link.description.clone(),
        customer: link.customer["name"].as_str().map(str::to_owned),
        paid: (link.amount_paid > 0).then(|| show(link.amount_paid)),
        expire_by: link.expire_by.map(Time::from),
        partial: link.accept_partial,
        currency: link.currency.clone(),
        input: typed.unwrap_or_else(|| major(max, currency)),
        min: show(min),
        error,
    };
    let status = if view.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(status, &view)
}

/// `POST /l/{id}`: an order of the link for the amount typed, then the checkout page.
pub async fn start(State(app): State<PagesState>, Path(id): Path<String>, F(form): F) -> Response {
    let link = match link_of(&app, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let currency = Currency::parse(&link.currency).unwrap_or(Currency::INR);
    let typed = form.get("amount").cloned().unwrap_or_default();
    let Some(amount) = currency.parse_major(&typed) else {
        let why = format!("Enter an amount in {}, like 500 or 500.50", currency.code());
        return render(&app, &link, Some(typed), Some(why)).await;
    };
    match app.payment_links.start_payment(&link.id, amount).await {
        Ok(order) => {
            let mut to = url::form_urlencoded::Serializer::new(String::new());
            to.append_pair("order_id", &order.id);
            Redirect::to(&format!("/checkout?{}", to.finish())).into_response()
        }
        Err(Error::AmountNotAllowed(why)) => render(&app, &link, Some(typed), Some(why)).await,
        Err(Error::Closed(status)) => closed_page(&status),
        Err(Error::NotFound) => not_found(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /l/{id}/return?payment_id=…`: after a successful payment of the link, to the merchant's
/// `callback_url` with `payment_link_id`, `payment_id`, `status` (the link's) and `signature`;
/// without one (or for a payment that is not a successful one of this link), to the link's page.
pub async fn back(
    State(app): State<PagesState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let link = match link_of(&app, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let to_page = Redirect::to(&format!("/l/{}", link.id)).into_response();
    let (Some(callback), Some(payment_id)) = (&link.callback_url, q.get("payment_id")) else {
        return to_page;
    };
    let payment = match crate::payments::service::get(&app.store, None, payment_id).await {
        Ok(p) if p.status == PaymentStatus::Success => p,
        Ok(_) | Err(crate::payments::service::Error::NotFound) => return to_page,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match payment_links::is_link_order(&app.store, &link.id, &payment.order_id).await {
        Ok(true) => {}
        Ok(false) => return to_page,
        Err(e) => return ApiError::from(e).into_response(),
    }
    let secret = match merchants::get(&app.store, &link.merchant_id).await {
        Ok(Some(m)) => m.webhook_secret,
        Ok(None) => return not_found(),
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    let Ok(mut url) = url::Url::parse(callback) else {
        return to_page;
    };
    let signature = callback_signature(&secret, &link.id, &payment.id, &link.status);
    url.query_pairs_mut()
        .append_pair("payment_link_id", &link.id)
        .append_pair("payment_id", &payment.id)
        .append_pair("status", &link.status)
        .append_pair("signature", &signature);
    Redirect::to(url.as_str()).into_response()
}
