//! The checkout listener (port 3001): the hosted checkout page, `checkout.js`, their assets,
//! a demo merchant page, and the public payment endpoints the page calls on its own origin
//! (the API's own routes, mounted under `/api` by the composition root).
//!
//! Pages are askama templates (`templates/checkout/`); CSS and JavaScript are the embedded
//! assets. The checkout page may be framed by any merchant page (that is its job) but runs
//! only its own scripts (Content-Security-Policy), and it talks only to its own origin.

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use paygate_core::{Currency, OrderAmount, OrderStatus, display_amount};
use serde_json::json;
use sha2::{Digest, Sha256};
use tower_http::set_header::SetResponseHeaderLayer;

mod links;

use super::{PagesState, page};
use crate::{
    http::{
        error::ApiError,
        layers::{NO_SNIFF, Set, with_headers},
    },
    merchants::test_merchant,
    orders::{self, NewOrder},
    store::merchants,
};

/// The page Content-Security-Policy: this origin's scripts, styles and requests only; any page
/// may frame the checkout.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; \
                   frame-src 'self'; frame-ancestors *";

/// The checkout router; `public_api` answers under `/api` (the public payment endpoints).
pub fn router(state: PagesState, public_api: Router) -> Router {
    let router = Router::new()
        .route("/checkout", get(checkout))
        .route("/checkout.js", get(sdk))
        .route("/assets/{file}", get(super::asset))
        .route("/demo", get(demo))
        .route("/demo/order", post(demo_order))
        .route("/l/{id}", get(links::show).post(links::start))
        .route("/l/{id}/return", get(links::back))
        .route("/logo/{merchant}", get(logo))
        .fallback(|| async {
            let page_not_found =
                Message::new("Page not found", "There is nothing at this address.");
            page(StatusCode::NOT_FOUND, &page_not_found)
        })
        .with_state(state)
        .nest("/api", public_api);
    let headers = [
        NO_SNIFF,
        (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
    ];
    // The policy is for pages: on HTML answers only.
    let csp = |res: &Response| is_html(res).then(|| HeaderValue::from_static(CSP));
    with_headers(router, Set::IfNotPresent, &headers).layer(SetResponseHeaderLayer::if_not_present(
        header::CONTENT_SECURITY_POLICY,
        csp,
    ))
}

fn is_html(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// A simple page with a title and a message (`templates/checkout/message.html`).
#[derive(askama::Template)]
#[template(path = "checkout/message.html")]
struct Message {
    title: &'static str,
    text: &'static str,
    embedded: bool,
}

impl Message {
    fn new(title: &'static str, text: &'static str) -> Self {
        Self {
            title,
            text,
            embedded: false,
        }
    }

    fn embedded(self, embedded: bool) -> Self {
        Self { embedded, ..self }
    }
}

/// The payment page (`templates/checkout/checkout.html`).
#[derive(askama::Template)]
#[template(path = "checkout/checkout.html")]
struct Checkout {
    order_id: String,
    /// The name customers see (the display name, else the account's name).
    merchant: String,
    /// The merchant's logo (`/logo/{merchant}?v=…`), or empty.
    logo: String,
    amount: String,
    embedded: bool,
    /// The framing page's origin, for `postMessage` (empty when unknown).
    parent_origin: String,
    /// The merchant's VPA when it takes UPI intent and QR payments (INR orders); empty: UPI
    /// collect only.
    payee: String,
    /// Test mode: "Simulate approve" and "Simulate decline" beside the QR.
    simulate: bool,
    /// Where the page goes after a success (with `payment_id` added): the payment link's
    /// return for an order of a link, else the order's `callback_url` (not in the widget);
    /// empty otherwise.
    return_url: String,
}

/// `GET /checkout?order_id=…[&embedded=true][&origin=…]`.
async fn checkout(
    State(app): State<PagesState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let embedded = q.get("embedded").is_some_and(|v| v == "true");
    let say = |status, title, text| page(status, &Message::new(title, text).embedded(embedded));
    let Some(order_id) = q.get("order_id") else {
        let text = "This checkout link has no order in it.";
        return say(StatusCode::BAD_REQUEST, "No order", text);
    };
    let order = match orders::get(&app.store, None, order_id).await {
        Ok(o) => o,
        Err(orders::Error::NotFound) => {
            let text = "We could not find this order. Please go back to the shop and try again.";
            return say(StatusCode::NOT_FOUND, "Order not found", text);
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    if order.status == OrderStatus::Paid {
        let text = "This order has already been paid. Thank you!";
        return say(StatusCode::OK, "Already paid", text);
    }
    let (merchant, upi_id, logo) = match merchants::get(&app.store, &order.merchant_id).await {
        Ok(Some(m)) => {
            let logo = m.logo_digest.as_deref().map(|d| {
                let version: String = d.chars().take(16).collect();
                format!("/logo/{}?v={version}", m.id)
            });
            (
                m.public_name().to_owned(),
                m.upi_id,
                logo.unwrap_or_default(),
            )
        }
        Ok(None) => Default::default(),
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    let payee = upi_id
        .filter(|_| order.currency == "INR")
        .unwrap_or_default();
    // The parent page's origin, for postMessage; only a well-formed http(s) origin is kept.
    let parent_origin = q
        .get("origin")
        .and_then(|o| url::Url::parse(o).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let view = Checkout {
        amount: display_amount(order.amount, &order.currency),
        order_id: order.id,
        merchant,
        logo,
        embedded,
        parent_origin,
        payee,
        // The customer's answer is simulated only where payments wait for it: test mode.
        simulate: app.settings.test_endpoints && app.settings.test_mode,
        // Inside the widget the merchant's page hears of the payment by message instead.
        return_url: match (order.payment_link_id, order.callback_url) {
            (Some(link), _) => format!("/l/{link}/return"),
            (None, Some(callback)) if !embedded => callback,
            _ => String::new(),
        },
    };
    page(StatusCode::OK, &view)
}

/// `GET /logo/{merchant}`: the merchant's logo, for its checkout pages.
async fn logo(
    State(app): State<PagesState>,
    axum::extract::Path(merchant): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    super::logo(&app.store, &merchant, &headers).await
}

/// `GET /checkout.js`: the SDK, with this checkout's public URL as its fallback origin (used
/// when it is imported as a module, where the script cannot see its own address).
async fn sdk(State(app): State<PagesState>, headers: HeaderMap) -> Response {
    let origin =
        serde_json::to_string(&app.settings.public_checkout_url).unwrap_or_else(|_| "\"\"".into());
    let body = super::asset_text("checkout.js").replace("\"__PUBLIC_CHECKOUT_URL__\"", &origin);
    let tag = hex::encode(Sha256::digest(body.as_bytes()));
    let mut res = super::with_etag("text/javascript", body.into_bytes(), &tag, &headers);
    // A module import from a merchant's page is a cross-origin (CORS) fetch; the SDK is public.
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

/// The demo shop (`templates/checkout/demo.html`).
#[derive(askama::Template)]
#[template(path = "checkout/demo.html")]
struct Demo {
    key: &'static str,
}

/// `GET /demo`: a small shop that sells one thing through the widget (with the test
/// merchant; only when `TEST_ENDPOINTS` is on).
async fn demo(State(app): State<PagesState>) -> Response {
    if !app.settings.test_endpoints {
        let off = Message::new("Not here", "The demo is turned off.");
        return page(StatusCode::NOT_FOUND, &off);
    }
    let key = test_merchant::API_KEY;
    page(StatusCode::OK, &Demo { key })
}

/// The price of the demo product, paise.
const DEMO_PRICE: i64 = 49_900;

/// `POST /demo/order`: the demo shop's server creates an order for its customer.
async fn demo_order(State(app): State<PagesState>) -> Response {
    if !app.settings.test_endpoints {
        return ApiError::not_found("The demo is turned off").into_response();
    }
    let Some(amount) = OrderAmount::parse(DEMO_PRICE) else {
        return ApiError::bad_request("invalid demo price").into_response();
    };
    let new = NewOrder {
        amount,
        currency: Currency::INR,
        receipt: Some("demo".into()),
        notes: json!({"source": "demo"}),
        callback_url: None,
    };
    match app.orders.create(test_merchant::ID, None, new, None).await {
        Ok(o) => (
            StatusCode::CREATED,
            Json(json!({"id": o.id, "amount": o.amount.get(), "currency": o.currency})),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
