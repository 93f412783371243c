//! The HTML pages (an adapter): the merchant dashboard and the hosted checkout, rendered from
//! askama templates (`templates/`, escaped by default) with the assets embedded in the binary.
//! What both listeners share lives here: their state, how a timestamp reads, the assets with
//! their `ETag`s, and the page security headers.

pub mod checkout;
pub mod dashboard;

use std::{collections::HashMap, sync::Arc};

use axum::{
    body::Body,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use rust_embed::RustEmbed;

use crate::{
    http::error::ApiError, merchants::CredentialCache, orders::Orders, payment_links::PaymentLinks,
    payments::service::Payments, refunds::Refunds, settlements::Settlements, store::Store,
    views::iso, webhooks::Webhooks,
};

/// The settings the pages read.
#[derive(Clone, Debug)]
pub struct PageSettings {
    /// How browsers reach the API (the docs' snippets).
    pub public_api_url: String,
    /// How browsers reach the checkout (the SDK, the docs' snippets).
    pub public_checkout_url: String,
    /// How browsers reach the dashboard (`https:`: the session cookie is `Secure`).
    pub public_dashboard_url: String,
    /// Reverse proxies whose forwarding headers are believed (client address, HTTPS).
    pub trusted_proxies: crate::http::forwarded::TrustedProxies,
    /// Serve the demo shop.
    pub test_endpoints: bool,
    /// Test mode: the checkout shows "Simulate approve / decline" beside a UPI QR.
    pub test_mode: bool,
    /// Seals the dashboard users' TOTP secrets.
    pub secret_key: crate::config::SecretKey,
}

/// What the pages' handlers work with. Cheap to clone.
pub type PagesState = Arc<PagesParts>;

/// The parts of a [`PagesState`].
pub struct PagesParts {
    pub store: Store,
    pub credentials: Arc<CredentialCache>,
    pub orders: Arc<Orders>,
    pub payments: Arc<Payments>,
    pub payment_links: Arc<PaymentLinks>,
    pub refunds: Arc<Refunds>,
    pub settlements: Arc<Settlements>,
    pub webhooks: Arc<Webhooks>,
    pub login_throttle: dashboard::LoginThrottle,
    pub settings: PageSettings,
    /// Mails team invitations, when `SMTP_URL` is set.
    pub mailer: Option<crate::mail::Mailer>,
}

/// A timestamp for people, `1 Dec 2026, 17:43 UTC`, with the exact ISO-8601 time for
/// `<time datetime>` and its `title` (shown on hover).
pub struct Time {
    pub exact: String,
    pub readable: String,
}

impl Time {
    /// The time as the time zone `tz` shows it: `1 Dec 2026, 23:13 IST`.
    pub fn zoned(t: DateTime<Utc>, tz: chrono_tz::Tz) -> Self {
        Self {
            exact: iso(t),
            readable: t
                .with_timezone(&tz)
                .format("%-d %b %Y, %H:%M %Z")
                .to_string(),
        }
    }
}

impl From<DateTime<Utc>> for Time {
    fn from(t: DateTime<Utc>) -> Self {
        Self {
            exact: iso(t),
            readable: t.format("%-d %b %Y, %H:%M UTC").to_string(),
        }
    }
}

/// The CSS, images and scripts of the pages, embedded in the binary.
#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// A merchant's logo as uploaded on the dashboard, read from the database, with its SHA-256
/// as the `ETag`; 404 when there is none. (Served by the checkout at `/logo/{merchant}` and
/// by the dashboard at `/dashboard/settings/logo`.)
pub async fn logo(store: &Store, merchant_id: &str, headers: &HeaderMap) -> Response {
    match crate::store::merchants::logo(store, merchant_id).await {
        Ok(Some(logo)) => {
            let kind = crate::merchants::profile::image_type(&logo.bytes)
                .unwrap_or("application/octet-stream");
            let tag = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&logo.bytes));
            with_etag(kind, logo.bytes, &tag, headers)
        }
        Ok(None) => (StatusCode::NOT_FOUND, "No logo").into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

/// `GET /assets/{file}`: an embedded asset, with an `ETag` (its SHA-256), so a browser
/// revalidates it with `If-None-Match` and gets a 304 when it did not change.
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match Assets::get(&file) {
        Some(found) => with_etag(
            content_type(&file),
            found.data.into_owned(),
            &hex::encode(found.metadata.sha256_hash()),
            &headers,
        ),
        None => (StatusCode::NOT_FOUND, "No such asset").into_response(),
    }
}

/// An embedded asset's text (for the SDK, which the checkout fills in before serving).
pub fn asset_text(file: &str) -> String {
    Assets::get(file)
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .unwrap_or_default()
}

/// `body` with its `ETag`, or a 304 when the browser already has it.
pub fn with_etag(
    content_type: &'static str,
    body: Vec<u8>,
    tag: &str,
    request: &HeaderMap,
) -> Response {
    let etag = format!("\"{tag}\"");
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(body))
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    res
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// Renders a template with `status`.
pub fn page<T: askama::Template>(status: StatusCode, template: &T) -> Response {
    let mut res = crate::http::html(template);
    if res.status() == StatusCode::OK {
        *res.status_mut() = status;
    }
    res
}

/// A form's fields; a form holding U+0000 anywhere is refused (400), as the API refuses it
/// in JSON: the databases cannot store it in text.
pub struct F(pub HashMap<String, String>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for F {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let axum::Form(fields) = axum::Form::<HashMap<String, String>>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if fields
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(
                ApiError::bad_request("A form field holds the NUL character").into_response(),
            );
        }
        Ok(Self(fields))
    }
}
