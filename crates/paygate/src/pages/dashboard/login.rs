//! Signing in and out.
//!
//! The sign-in form is protected like every other form: `GET /login` sets a random token in a
//! cookie of its own (`HttpOnly`, `SameSite=Strict`, for `/login` only) and writes the same
//! token into the form; `POST /login` answers 403 unless the two match (compared in constant
//! time). A page of another site can neither read the token nor send the cookie, so it cannot
//! sign a browser in to an account of its choosing.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use rand::distr::{Alphanumeric, SampleString};
use subtle::ConstantTimeEq;

use super::{COOKIE, F, SignedIn, internal, start_session, throttle::Refused};
use crate::{
    merchants,
    pages::{PagesState, page as render},
    store::{dashboard as db, now},
};

/// The sign-in form's token cookie.
const FORM_COOKIE: &str = "paygate_login";

/// The sign-in page, with an error when the last attempt failed.
#[derive(askama::Template)]
#[template(path = "dashboard/login.html")]
struct Login<'a> {
    message: Option<&'a str>,
    csrf: &'a str,
}

/// Whether the browser reached the dashboard over HTTPS: its public URL says so, or a trusted
/// proxy does.
fn over_https(app: &PagesState, peer: SocketAddr, headers: &HeaderMap) -> bool {
    app.settings.public_dashboard_url.starts_with("https:")
        || app
            .settings
            .trusted_proxies
            .forwarded_https(peer.ip(), headers)
}

/// The sign-in page with a fresh form token, its cookie set; `status` and `message` as given.
fn form(
    app: &PagesState,
    peer: SocketAddr,
    headers: &HeaderMap,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let csrf = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let secure = if over_https(app, peer, headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{FORM_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600{secure}"
    );
    let mut res = render(
        status,
        &Login {
            message,
            csrf: &csrf,
        },
    );
    if let Ok(v) = cookie.parse() {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// `GET /login`.
pub async fn page(
    State(app): State<PagesState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    form(&app, peer, &headers, StatusCode::OK, None)
}

/// The form token the browser's cookie carries.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == FORM_COOKIE)
        .map(|(_, value)| value)
}

/// `POST /login`: a session cookie for the right email and password. Refused without the
/// form's token; slowed down after repeated failures (per email and address, and per address).
pub async fn login(
    State(app): State<PagesState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    F(f): F,
) -> Response {
    let given = f.get("csrf").map(String::as_str).unwrap_or_default();
    let expected = cookie_token(&headers).unwrap_or_default();
    if given.is_empty() || !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        let message = Some("The sign-in form expired. Please sign in again.");
        return form(&app, peer, &headers, StatusCode::FORBIDDEN, message);
    }
    let email = f
        .get("email")
        .map(|e| e.trim())
        .unwrap_or_default()
        .to_owned();
    let password = f.get("password").cloned().unwrap_or_default();
    let client = app.settings.trusted_proxies.client(peer.ip(), &headers);
    let attempt = match app.login_throttle.reserve(&email, client) {
        Ok(attempt) => attempt,
        Err(refused) => {
            let secs = match refused {
                Refused::Wait(wait) => wait.as_secs().max(1),
                Refused::Busy => 1,
            };
            let msg = format!("Too many failed attempts. Try again in {secs} s.");
            let mut res = form(
                &app,
                peer,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&msg),
            );
            if let Ok(v) = secs.to_string().parse() {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return res;
        }
    };
    match merchants::check_login(&app.store, &email, &password).await {
        Ok(Some(merchant_id)) => {
            attempt.succeeded();
            match start_session(&app, &merchant_id, over_https(&app, peer, &headers)).await {
                Ok(cookie) => {
                    ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard")).into_response()
                }
                Err(e) => internal(&e),
            }
        }
        Ok(None) => {
            attempt.failed();
            let message = Some("Invalid email or password");
            form(&app, peer, &headers, StatusCode::UNAUTHORIZED, message)
        }
        Err(e) => {
            // Not the client's failure: nothing counted.
            attempt.succeeded();
            internal(&e)
        }
    }
}

/// `POST /logout`.
pub async fn logout(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    if let Err(e) = db::end_session(&app.store, &s.token_digest, now()).await {
        return internal(&e);
    }
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}
