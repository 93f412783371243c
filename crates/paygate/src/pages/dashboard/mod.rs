//! The merchant dashboard (port 3000): login, overview, transactions, payment links,
//! settlements, webhooks, docs.
//!
//! Sessions: a random token in an `HttpOnly`, `SameSite=Strict` cookie; the database keeps
//! only its SHA-256 digest, with an expiry (`SESSION_TTL`). Every form carries the session's
//! CSRF token, checked in constant time, so another site cannot post forms for a merchant.
//! The sign-in form carries a token of its own (a cookie it must match), so another site
//! cannot sign a browser in to an account of its choosing. Failed sign-ins are limited per
//! (email, client address) and per address, reserved before the password is hashed
//! ([`throttle`]). The session cookie is `Secure` whenever the dashboard is reached over HTTPS
//! (its public URL, or a trusted proxy's `X-Forwarded-Proto`). Every page answers
//! `Cache-Control: no-store`: several show secrets.
//! Pages call the same services as the API. One file per page; the HTML is in
//! `templates/dashboard/`.

mod docs;
mod endpoints;
mod links;
mod login;
mod overview;
mod payment;
mod settlements;
mod throttle;
mod transactions;
mod webhooks;

pub use super::F;
pub use throttle::LoginThrottle;

use std::collections::HashMap;

use super::PagesState;
use crate::{
    http::{
        error::ApiError,
        layers::{NO_FRAMES, NO_SNIFF, Set, with_headers},
        openapi::Document,
    },
    merchants::{self, secret_digest},
    store::{
        dashboard as db,
        merchants::Merchant,
        now,
        table::{self, Start, Window},
    },
};
use axum::{
    Extension, Router,
    extract::FromRequestParts,
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use rand::distr::{Alphanumeric, SampleString};
use subtle::ConstantTimeEq;

const COOKIE: &str = "paygate_session";
/// How long a session lives.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);

/// The dashboard router; `document` is the API's OpenAPI document, for the API reference.
pub fn router(state: PagesState, document: Document) -> Router {
    let router = Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/login", get(login::page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/dashboard", get(overview::page))
        .route(
            "/dashboard/credentials/rotate",
            post(overview::rotate_credentials),
        )
        .route("/dashboard/upi", post(overview::save_upi))
        .route("/dashboard/transactions", get(transactions::page))
        .route(
            "/dashboard/payment-links",
            get(links::page).post(links::create),
        )
        .route("/dashboard/payment-links/{id}/cancel", post(links::cancel))
        .route("/dashboard/transactions.csv", get(transactions::export_csv))
        .route("/dashboard/settlements", get(settlements::page))
        .route("/dashboard/settlements/{id}", get(settlements::settlement))
        .route(
            "/dashboard/settlements/{id}/transactions.csv",
            get(settlements::settlement_csv),
        )
        .route("/dashboard/reconciliations", post(settlements::reconcile))
        .route(
            "/dashboard/reconciliations/{id}",
            get(settlements::reconciliation),
        )
        .route("/dashboard/payments/{id}", get(payment::page))
        .route("/dashboard/payments/{id}/capture", post(payment::capture))
        .route("/dashboard/payments/{id}/refund", post(payment::refund))
        .route("/dashboard/webhooks", get(webhooks::page))
        .route("/dashboard/webhooks/config", post(webhooks::save))
        .route(
            "/dashboard/webhooks/secret",
            post(webhooks::regenerate_secret),
        )
        .route("/dashboard/webhooks/test", post(webhooks::test))
        .route("/dashboard/webhooks/{id}/retry", post(webhooks::retry))
        .route("/dashboard/webhooks/endpoints", post(endpoints::add))
        .route("/dashboard/webhooks/endpoints/{id}", post(endpoints::edit))
        .route(
            "/dashboard/webhooks/endpoints/{id}/enabled",
            post(endpoints::set_enabled),
        )
        .route(
            "/dashboard/webhooks/endpoints/{id}/rotate",
            post(endpoints::rotate),
        )
        .route(
            "/dashboard/webhooks/endpoints/{id}/replay",
            post(endpoints::replay),
        )
        .route(
            "/dashboard/webhooks/endpoints/{id}/retry-failed",
            post(endpoints::retry_failed),
        )
        .route(
            "/dashboard/webhooks/endpoints/{id}/delete",
            post(endpoints::delete),
        )
        .route(
            "/dashboard/webhooks/endpoints/{id}/test",
            post(endpoints::test),
        )
        .route("/dashboard/docs", get(docs::page))
        .route("/dashboard/openapi.json", get(docs::document))
        .route("/assets/{file}", get(super::asset))
        .layer(Extension(document))
        .with_state(state.clone());
    let reference = Router::new()
        .route("/dashboard/docs/api", get(docs::reference))
        .with_state(state);
    let headers = |csp| {
        [
            NO_SNIFF,
            NO_FRAMES,
            (header::REFERRER_POLICY, "same-origin"),
            (header::CONTENT_SECURITY_POLICY, csp),
        ]
    };
    // Pages show secrets: never stored by a browser or a proxy (assets say `no-cache`).
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    let router = with_headers(router, Set::IfNotPresent, &no_store);
    with_headers(router, Set::Overriding, &headers(CSP)).merge(with_headers(
        reference,
        Set::Overriding,
        &headers(REFERENCE_CSP),
    ))
}

/// The dashboard's Content-Security-Policy: no scripts at all, styles and images of its own.
const CSP: &str = "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The API reference's: the vendored renderer, this origin's scripts only. (RapiDoc styles
/// its shadow DOM with constructed stylesheets and element styles, hence the inline styles.)
const REFERENCE_CSP: &str = "default-src 'self'; script-src 'self'; \
                             style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                             font-src 'self' data:; form-action 'self'; base-uri 'none'; \
                             frame-ancestors 'none'";

/// What every signed-in page shows around its body (`templates/dashboard/layout.html`).
pub struct Frame {
    pub title: &'static str,
    /// The navigation entry of this page.
    pub active: &'static str,
    pub merchant: String,
    pub csrf: String,
    pub notice: Option<String>,
}

impl Frame {
    /// The frame of a page for the signed-in merchant.
    pub fn new(title: &'static str, active: &'static str, s: &SignedIn) -> Self {
        Self {
            title,
            active,
            merchant: s.merchant.name.clone(),
            csrf: s.csrf.clone(),
            notice: s.flash.clone(),
        }
    }

    /// The navigation: `(href, name)`.
    pub fn nav(&self) -> [(&'static str, &'static str); 6] {
        [
            ("/dashboard", "Overview"),
            ("/dashboard/transactions", "Transactions"),
            ("/dashboard/payment-links", "Payment links"),
            ("/dashboard/settlements", "Settlements"),
            ("/dashboard/webhooks", "Webhooks"),
            ("/dashboard/docs", "Docs"),
        ]
    }
}

/// A page for a missing (or another merchant's) thing.
#[derive(askama::Template)]
#[template(path = "dashboard/not_found.html")]
struct NotFound {
    frame: Frame,
    what: &'static str,
}

/// 404 inside the dashboard's frame.
fn not_found(s: &SignedIn, what: &'static str) -> Response {
    let page = NotFound {
        frame: Frame::new("Not found", "Transactions", s),
        what,
    };
    super::page(StatusCode::NOT_FOUND, &page)
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    ApiError::internal(e).into_response()
}

/// Redirects to `to` after a form, with `notice` kept in the session for the next page (a
/// flash message): nothing a page shows comes from its query string.
async fn back(state: &PagesState, s: &SignedIn, to: &str, notice: &str) -> Response {
    if let Err(e) = db::set_flash(&state.store, &s.token_digest, notice).await {
        return internal(&e);
    }
    Redirect::to(to).into_response()
}

/// Answers a form of the signed-in merchant: 403 without the session's CSRF token (`act` does
/// not run); otherwise runs `act` and redirects to `to` with the notice it returns, or answers
/// the error it fails with.
async fn answer_form(
    state: &PagesState,
    s: &SignedIn,
    form: &HashMap<String, String>,
    to: &str,
    act: impl Future<Output = Result<String, ApiError>>,
) -> Response {
    if let Err(r) = s.check_csrf(form) {
        return r.into_response();
    }
    match act.await {
        Ok(notice) => back(state, s, to, &notice).await,
        Err(e) => e.into_response(),
    }
}

/// A service's refusal as the notice for the next page; an internal error as the 500 it is.
fn refusal(e: impl Into<ApiError>) -> Result<String, ApiError> {
    let e = e.into();
    if e.status.is_server_error() {
        Err(e)
    } else {
        Ok(e.description)
    }
}

type Q = axum::extract::Query<HashMap<String, String>>;
/// The window a table's page asks for: `?starting_after=ID` (older rows) or
/// `?ending_before=ID` (newer rows), as on the API; the newest rows without either.
fn window_of(q: &HashMap<String, String>, limit: i64) -> Window {
    let cursor = |name: &str| {
        q.get(name)
            .map(|id| id.trim())
            .filter(|id| !id.is_empty() && id.len() <= 64)
            .map(str::to_owned)
    };
    let start = match (cursor("starting_after"), cursor("ending_before")) {
        (Some(id), _) => Start::After(id),
        (None, Some(id)) => Start::Before(id),
        (None, None) => Start::Offset(0),
    };
    Window { limit, start }
}

/// The links under a table: to newer rows, to older rows, and how many rows there are.
pub struct Pager {
    pub newer: Option<String>,
    pub older: Option<String>,
    /// `"42"`, or `"10,000+"` past what lists count.
    pub total: String,
}

/// Reads a table's page of `window` with `$read` (an expression of the window `$w`): the newest
/// page when the cursor is not one of the merchant's rows. `Result<(rows, start), error>`.
macro_rules! read_page {
    ($window:expr, |$w:ident| $read:expr) => {
        async {
            let window: $crate::store::table::Window = $window;
            let $w = window.clone();
            match $read.await {
                Ok(Some(page)) => Ok((page, window.start)),
                Ok(None) => {
                    let $w = $crate::store::table::Window::first(window.limit);
                    let start = $w.start.clone();
                    $read.await.map(|page| {
                        let page = page.unwrap_or($crate::store::table::Page {
                            rows: Vec::new(),
                            total: 0,
                            has_more: false,
                        });
                        (page, start)
                    })
                }
                Err(e) => Err(e),
            }
        }
    };
}
use read_page;

impl Pager {
    /// The links of `page`, read from `start`, to `base` (a path with its query string, if
    /// any, and no cursor).
    fn new<T>(page: &table::Page<T>, start: &Start, base: &str, id: impl Fn(&T) -> &str) -> Self {
        let (newer_exists, older_exists) = match start {
            Start::Offset(n) => (*n > 0, page.has_more),
            Start::After(_) => (true, page.has_more),
            Start::Before(_) => (page.has_more, true),
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        let link = |name: &str, row: Option<&T>| {
            row.map(|r| {
                let mut u = url::form_urlencoded::Serializer::new(String::new());
                u.append_pair(name, id(r));
                format!("{base}{sep}{}", u.finish())
            })
        };
        Self {
            newer: link("ending_before", page.rows.first()).filter(|_| newer_exists),
            older: link("starting_after", page.rows.last()).filter(|_| older_exists),
            total: if page.total >= table::COUNT_UP_TO {
                format!("{}+", group_thousands(page.total))
            } else {
                group_thousands(page.total)
            },
        }
    }
}

/// `12345` → `"12,345"`.
fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A signed-in merchant; pages without a session redirect to `/login`.
pub struct SignedIn {
    pub merchant: Merchant,
    pub csrf: String,
    /// The notice a form left for this page (shown once).
    pub flash: Option<String>,
    token_digest: String,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

impl FromRequestParts<PagesState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &PagesState,
    ) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/login").into_response();
        let token = cookie_token(&parts.headers).ok_or_else(to_login)?;
        let digest = secret_digest(&token);
        let session = db::session(&app.store, &digest, now())
            .await
            .map_err(|e| internal(&e))?
            .ok_or_else(to_login)?;
        let merchant = crate::store::merchants::get(&app.store, &session.merchant_id)
            .await
            .map_err(|e| internal(&e))?
            .ok_or_else(to_login)?;
        // A notice is shown by the next page that is not a form post, then forgotten.
        if parts.method == axum::http::Method::GET
            && let Some(notice) = &session.flash
        {
            db::take_flash(&app.store, &digest, notice)
                .await
                .map_err(|e| internal(&e))?;
        }
        Ok(Self {
            merchant,
            csrf: session.csrf_token,
            flash: session.flash,
            token_digest: digest,
        })
    }
}

impl SignedIn {
    /// Checks a form's CSRF token in constant time.
    pub fn check_csrf(&self, form: &HashMap<String, String>) -> Result<(), CsrfRejected> {
        let given = form.get("csrf").map(String::as_str).unwrap_or_default();
        if !given.is_empty() && bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(CsrfRejected)
        }
    }
}

/// A form without this session's CSRF token: 403.
pub struct CsrfRejected;

impl IntoResponse for CsrfRejected {
    fn into_response(self) -> Response {
        let msg = "The form expired or did not come from this dashboard. Reload the page.";
        (StatusCode::FORBIDDEN, msg).into_response()
    }
}

/// Starts a session: the cookie to set (`Secure` when the browser came over HTTPS).
async fn start_session(
    app: &PagesState,
    merchant_id: &str,
    https: bool,
) -> Result<String, sqlx::Error> {
    let token = Alphanumeric.sample_string(&mut rand::rng(), 43);
    let csrf = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let at = now();
    db::create_session(
        &app.store,
        &secret_digest(&token),
        merchant_id,
        &csrf,
        at,
        at + SESSION_TTL,
    )
    .await?;
    let secure = if https { "; Secure" } else { "" };
    Ok(format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_TTL.num_seconds()
    ))
}

/// The merchant's own API secret when it can be shown: only the seeded test merchant's,
/// which is public. Other secrets are stored as digests and shown once, at rotation.
fn revealable_secret(m: &Merchant) -> Option<&'static str> {
    use merchants::test_merchant::{API_SECRET, ID};
    (m.id == ID && m.api_secret_hash == secret_digest(API_SECRET)).then_some(API_SECRET)
}
