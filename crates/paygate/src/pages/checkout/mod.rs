//! The checkout listener (port 3001): the hosted checkout page, `checkout.js`, their assets,
//! a demo merchant page, and the public payment endpoints the page calls on its own origin.
//!
//! Pages are rendered here from templates compiled into the binary; CSS and JavaScript are
//! embedded assets. The checkout page may be framed by any merchant page (that is its job) but
//! runs only its own scripts (Content-Security-Policy), and it talks only to its own origin.

use std::collections::HashMap;

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use paygate_core::{Currency, OrderAmount};
use serde_json::json;

use crate::{
    app::App,
    http::{api, error::ApiError},
    merchants::test_merchant,
    orders::{self, NewOrder},
    store::merchants,
};

const CSS: &str = include_str!("../../assets/checkout.css");
const PAGE_JS: &str = include_str!("../../assets/checkout-page.js");
const SDK_JS: &str = include_str!("../../assets/checkout.js");
const DEMO_JS: &str = include_str!("../../assets/demo.js");
const PAGE: &str = include_str!("../../templates/checkout.html");
const MESSAGE: &str = include_str!("../../templates/message.html");
const DEMO: &str = include_str!("../../templates/demo.html");

/// HTML-escapes text for element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills `{{name}}` placeholders; values must already be escaped.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

pub use paygate_core::display_amount;

/// The checkout router.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/checkout", get(checkout))
        .route("/checkout.js", get(sdk))
        .route(
            "/assets/checkout.css",
            get(|| async { asset("text/css", CSS.to_owned()) }),
        )
        .route(
            "/assets/checkout-page.js",
            get(|| async { asset("text/javascript", PAGE_JS.to_owned()) }),
        )
        .route(
            "/assets/demo.js",
            get(|| async { asset("text/javascript", DEMO_JS.to_owned()) }),
        )
        .route("/demo", get(demo))
        .route("/demo/order", post(demo_order))
        // The public API routes answer exactly as on the API port: JSON errors, body limit.
        .nest(
            "/api",
            crate::http::with_api_rejections(Router::new().nest("/v1", api::public_routes_v1())),
        )
        .fallback(|| async {
            message(
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing at this address.",
                false,
            )
        })
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

fn asset(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `X-Content-Type-Options` everywhere, and a Content-Security-Policy for pages that lets
/// them run only this origin's scripts while any page may frame the checkout.
async fn security_headers(req: axum::extract::Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "referrer-policy",
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; \
                 frame-src 'self'; frame-ancestors *",
            ),
        );
    }
    res
}

/// A simple page with a title and a message.
fn message(status: StatusCode, title: &str, text: &str, embedded: bool) -> Response {
    let body = fill(
        MESSAGE,
        &[
            ("title", &escape(title)),
            ("text", &escape(text)),
            ("body_class", if embedded { "embedded" } else { "" }),
        ],
    );
    (status, Html(body)).into_response()
}

/// `GET /checkout?order_id=…[&embedded=true][&origin=…]`.
async fn checkout(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Response {
    let embedded = q.get("embedded").is_some_and(|v| v == "true");
    let Some(order_id) = q.get("order_id") else {
        return message(
            StatusCode::BAD_REQUEST,
            "No order",
            "This checkout link has no order in it.",
            embedded,
        );
    };
    let order = match orders::get(&app.store, None, order_id).await {
        Ok(o) => o,
        Err(orders::Error::NotFound) => {
            return message(
                StatusCode::NOT_FOUND,
                "Order not found",
                "We could not find this order. Please go back to the shop and try again.",
                embedded,
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    if order.status == "paid" {
        return message(
            StatusCode::OK,
            "Already paid",
            "This order has already been paid. Thank you!",
            embedded,
        );
    }
    let merchant = match merchants::get(&app.store, &order.merchant_id).await {
        Ok(Some(m)) => m.name,
        Ok(None) => String::new(),
        Err(e) => return ApiError::internal(&e).into_response(),
    };
    // The parent page's origin, for postMessage; only a well-formed http(s) origin is kept.
    let parent_origin = q
        .get("origin")
        .and_then(|o| url::Url::parse(o).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let amount = display_amount(order.amount, &order.currency);
    let page = fill(
        PAGE,
        &[
            ("order_id", &escape(&order.id)),
            ("merchant", &escape(&merchant)),
            ("amount", &escape(&amount)),
            ("embedded", if embedded { "true" } else { "false" }),
            ("body_class", if embedded { "embedded" } else { "" }),
            ("parent_origin", &escape(&parent_origin)),
        ],
    );
    Html(page).into_response()
}

/// `GET /checkout.js`: the SDK, with this checkout's public URL as its fallback origin (used
/// when it is imported as a module, where the script cannot see its own address).
async fn sdk(State(app): State<App>) -> Response {
    let origin =
        serde_json::to_string(&app.config.public_checkout_url).unwrap_or_else(|_| "\"\"".into());
    let mut res = asset(
        "text/javascript",
        SDK_JS.replace("\"__PUBLIC_CHECKOUT_URL__\"", &origin),
    );
    // A module import from a merchant's page is a cross-origin (CORS) fetch; the SDK is public.
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

/// `GET /demo`: a small shop that sells one thing through the widget (with the test
/// merchant; only when `TEST_ENDPOINTS` is on).
async fn demo(State(app): State<App>) -> Response {
    if !app.config.test_endpoints {
        return message(
            StatusCode::NOT_FOUND,
            "Not here",
            "The demo is turned off.",
            false,
        );
    }
    Html(fill(DEMO, &[("key", test_merchant::API_KEY)])).into_response()
}

/// The price of the demo product, paise.
const DEMO_PRICE: i64 = 49_900;

/// `POST /demo/order`: the demo shop's server creates an order for its customer.
async fn demo_order(State(app): State<App>) -> Response {
    if !app.config.test_endpoints {
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
    };
    match orders::create(&app.order_writer, test_merchant::ID, new, None).await {
        Ok(o) => (
            StatusCode::CREATED,
            Json(json!({"id": o.id, "amount": o.amount, "currency": o.currency})),
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_amounts() {
        assert_eq!(
            escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(display_amount(50_000, "INR"), "₹500.00");
        assert_eq!(display_amount(123_456_700, "INR"), "₹12,34,567.00");
        assert_eq!(display_amount(1_205, "USD"), "USD 12.05");
        assert_eq!(fill("a {{x}} b {{x}}", &[("x", "1")]), "a 1 b 1");
    }
}
