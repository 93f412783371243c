//! The merchant dashboard (port 3000): login, overview, transactions, webhooks, docs.
//!
//! Sessions: a random token in an `HttpOnly`, `SameSite=Strict` cookie; the database keeps
//! only its SHA-256 digest, with an expiry (`SESSION_TTL`). Every form carries the session's
//! CSRF token, checked in constant time, so another site cannot post forms for a merchant.
//! Repeated failed logins for an email or from an address are slowed down (`LoginThrottle`).
//! Pages call the same services as the API. One file per page; the HTML is in
//! `templates/dashboard/`.

mod docs;
mod endpoints;
mod login;
mod overview;
mod payment;
mod transactions;
mod webhooks;

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::PagesState;
use crate::{
    http::{
        error::ApiError,
        layers::{NO_FRAMES, NO_SNIFF, Set, with_headers},
        openapi::Document,
    },
    merchants::{self, secret_digest},
    store::{dashboard as db, merchants::Merchant, now},
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
        .route("/dashboard/transactions", get(transactions::page))
        .route("/dashboard/transactions.csv", get(transactions::export_csv))
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
    pub fn nav(&self) -> [(&'static str, &'static str); 4] {
        [
            ("/dashboard", "Overview"),
            ("/dashboard/transactions", "Transactions"),
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

/// The highest page number a list accepts (anything above shows that page, empty).
const MAX_PAGE: i64 = 100_000;

/// `?page=N`, from 1 to [`MAX_PAGE`]; anything that is not a number is page 1.
fn page_number(q: &HashMap<String, String>) -> i64 {
    q.get("page")
        .and_then(|p| p.trim().parse::<i64>().ok())
        .map_or(1, |p| p.clamp(1, MAX_PAGE))
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

/// Starts a session: the cookie to set.
async fn start_session(app: &PagesState, merchant_id: &str) -> Result<String, sqlx::Error> {
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
    let secure = if app.settings.public_api_url.starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    Ok(format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_TTL.num_seconds()
    ))
}

/// Slows down repeated failed logins, per email and per client address: after
/// [`LoginThrottle::EMAIL_FREE`] failures for an email (or [`LoginThrottle::ADDRESS_FREE`]
/// from an address) within 15 minutes, each further attempt must wait 2^(excess) seconds (at
/// most 5 minutes) after the last failure. A throttled attempt is answered without checking
/// the password, so a flood of sign-ins costs no password hashing.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    const WINDOW: Duration = Duration::from_secs(15 * 60);
    /// Failures an email may have before attempts are slowed down.
    pub const EMAIL_FREE: u32 = 3;
    /// Failures an address may have (over any emails) before attempts are slowed down.
    pub const ADDRESS_FREE: u32 = 10;

    fn keys(email: &str, addr: IpAddr) -> [(String, u32); 2] {
        [
            (format!("email:{}", email.to_lowercase()), Self::EMAIL_FREE),
            (format!("addr:{addr}"), Self::ADDRESS_FREE),
        ]
    }

    /// How long a sign-in for `email` from `addr` must still wait, if at all.
    pub fn wait(&self, email: &str, addr: IpAddr) -> Option<Duration> {
        let map = self.failures.lock().ok()?;
        Self::keys(email, addr)
            .iter()
            .filter_map(|(key, free)| {
                let (n, last) = map.get(key)?;
                if *n < *free || last.elapsed() > Self::WINDOW {
                    return None;
                }
                let delay =
                    Duration::from_secs(2u64.pow((*n - free).min(8))).min(Duration::from_secs(300));
                delay.checked_sub(last.elapsed())
            })
            .max()
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, email: &str, addr: IpAddr) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 100_000 {
                map.clear();
            }
            for (key, _) in Self::keys(email, addr) {
                let e = map.entry(key).or_insert((0, Instant::now()));
                if e.1.elapsed() > Self::WINDOW {
                    e.0 = 0;
                }
                e.0 += 1;
                e.1 = Instant::now();
            }
        }
    }

    /// Forgets the email's failures after a successful sign-in (the address keeps its count).
    pub fn succeeded(&self, email: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&format!("email:{}", email.to_lowercase()));
        }
    }
}

/// The merchant's own API secret when it can be shown: only the seeded test merchant's,
/// which is public. Other secrets are stored as digests and shown once, at rotation.
fn revealable_secret(m: &Merchant) -> Option<&'static str> {
    use merchants::test_merchant::{API_SECRET, ID};
    (m.id == ID && m.api_secret_hash == secret_digest(API_SECRET)).then_some(API_SECRET)
}
