//! The merchant dashboard (port 3000): login, overview, transactions, webhooks, docs.
//!
//! Sessions: a random token in an `HttpOnly`, `SameSite=Strict` cookie; the database keeps
//! only its SHA-256 digest, with an expiry (`SESSION_TTL`). Every form carries the session's
//! CSRF token, checked in constant time, so another site cannot post forms for a merchant.
//! Repeated failed logins for an email are slowed down (`LoginThrottle`). Pages call the same
//! services as the API.

mod pages;

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use rand::distr::{Alphanumeric, SampleString};
use subtle::ConstantTimeEq;

use crate::{
    app::App,
    merchants::{self, secret_digest},
    store::{dashboard as db, merchants::Merchant, now},
};

const CSS: &str = include_str!("../../assets/dashboard.css");
const COOKIE: &str = "paygate_session";
/// How long a session lives.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);

/// The dashboard router.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/dashboard", get(pages::overview))
        .route(
            "/dashboard/credentials/rotate",
            post(pages::rotate_credentials),
        )
        .route("/dashboard/transactions", get(pages::transactions))
        .route("/dashboard/transactions.csv", get(pages::export_csv))
        .route("/dashboard/payments/{id}", get(pages::payment))
        .route("/dashboard/payments/{id}/capture", post(pages::capture))
        .route("/dashboard/payments/{id}/refund", post(pages::refund))
        .route("/dashboard/webhooks", get(pages::webhooks))
        .route("/dashboard/webhooks/config", post(pages::save_webhook))
        .route("/dashboard/webhooks/secret", post(pages::regenerate_secret))
        .route("/dashboard/webhooks/test", post(pages::test_webhook))
        .route("/dashboard/webhooks/{id}/retry", post(pages::retry_webhook))
        .route("/dashboard/docs", get(pages::docs))
        .route(
            "/assets/dashboard.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], CSS) }),
        )
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

async fn security_headers(req: axum::extract::Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    res
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

impl FromRequestParts<App> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/login").into_response();
        let token = cookie_token(&parts.headers).ok_or_else(to_login)?;
        let digest = secret_digest(&token);
        let session = db::session(&app.store, &digest, now())
            .await
            .map_err(|e| crate::http::error::ApiError::internal(&e).into_response())?
            .ok_or_else(to_login)?;
        let merchant = crate::store::merchants::get(&app.store, &session.merchant_id)
            .await
            .map_err(|e| crate::http::error::ApiError::internal(&e).into_response())?
            .ok_or_else(to_login)?;
        // A notice is shown by the next page that is not a form post, then forgotten.
        if parts.method == axum::http::Method::GET
            && let Some(notice) = &session.flash
        {
            db::take_flash(&app.store, &digest, notice)
                .await
                .map_err(|e| crate::http::error::ApiError::internal(&e).into_response())?;
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
async fn start_session(app: &App, merchant_id: &str) -> Result<String, sqlx::Error> {
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
    let secure = if app.config.public_api_url.starts_with("https:") {
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

/// Password checks in flight at once: argon2 is deliberately slow, so it runs on the blocking
/// pool, a few at a time, and never on the threads that serve requests.
static PASSWORD_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Verifies an email and password; the merchant's id when they match.
async fn check_login(
    app: &App,
    email: &str,
    password: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row = db::login_row(&app.store, email).await?;
    // Hash even for unknown emails, so timing does not reveal which emails exist.
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J0M4m0nBv0yvxqJUHVpVdM4NF4g9n7p8LDBc1Y0M2Bk";
    let (id, hash) = match row {
        Some((id, Some(hash))) => (Some(id), hash),
        _ => (None, DUMMY.to_owned()),
    };
    let ok = {
        let _permit = PASSWORD_CHECKS.acquire().await;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || merchants::verify_password(&password, &hash))
            .await
            .unwrap_or(false)
    };
    Ok(id.filter(|_| ok))
}

/// The merchant's own API secret when it can be shown: only the seeded test merchant's,
/// which is public. Other secrets are stored as digests and shown once, at rotation.
fn revealable_secret(m: &Merchant) -> Option<&'static str> {
    use merchants::test_merchant::{API_SECRET, ID};
    (m.id == ID && m.api_secret_hash == secret_digest(API_SECRET)).then_some(API_SECRET)
}
