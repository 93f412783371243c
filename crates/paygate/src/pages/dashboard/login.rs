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

use super::{COOKIE, Device, F, SignedIn, internal, start_session, throttle::Refused};
use crate::{
    audit::{self, Actor},
    merchants::{self, two_factor},
    pages::{PagesState, page as render},
    store::{dashboard as db, now, users},
};

/// The sign-in form's token cookie.
const FORM_COOKIE: &str = "paygate_login";

/// The sign-in page, with an error when the last attempt failed.
#[derive(askama::Template)]
#[template(path = "dashboard/login.html")]
struct Login<'a> {
    message: Option<&'a str>,
    csrf: &'a str,
    /// The email the last attempt was made with (kept in the field).
    email: &'a str,
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

/// The sign-in page with a fresh form token, its cookie set; `status` and `message` as given,
/// the email field holding `email`.
fn form(
    app: &PagesState,
    peer: SocketAddr,
    headers: &HeaderMap,
    status: StatusCode,
    (message, email): (Option<&str>, &str),
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
            email,
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
    form(&app, peer, &headers, StatusCode::OK, (None, ""))
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
        let typed = f.get("email").map(|e| e.trim()).unwrap_or_default();
        return form(
            &app,
            peer,
            &headers,
            StatusCode::FORBIDDEN,
            (message, typed),
        );
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
                (Some(&msg), &email),
            );
            if let Ok(v) = secs.to_string().parse() {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return res;
        }
    };
    let user = match merchants::check_login(&app.store, &email, &password).await {
        Ok(Some(id)) => users::get(&app.store, &id).await,
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    match user {
        Ok(Some(user)) => {
            attempt.succeeded();
            if !user.two_factor {
                signed_in(&app, &user, true, &client, &headers).await;
            }
            let device = Device {
                https: over_https(&app, peer, &headers),
                second_factor_pending: user.two_factor,
                user_agent: headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok()),
                address: client.to_string(),
            };
            // With a second factor, the session opens only the code's page until then.
            let next = if user.two_factor {
                "/login/code"
            } else {
                "/dashboard"
            };
            match start_session(&app, &user, &device).await {
                Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response(),
                Err(e) => internal(&e),
            }
        }
        Ok(None) => {
            attempt.failed();
            // A wrong password for a user's email is recorded in that merchant's log.
            if let Ok(Some(user)) = users::by_email(&app.store, &email).await {
                signed_in(&app, &user, false, &client, &headers).await;
            }
            let message = Some("Invalid email or password");
            form(
                &app,
                peer,
                &headers,
                StatusCode::UNAUTHORIZED,
                (message, &email),
            )
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
    let entry = s.actor.entry("user.sign_out", ("user", &s.user.id), now());
    if let Err(e) = audit::record(&app.store, &entry).await {
        tracing::warn!(error = %e, "sign-out not recorded in the audit log");
    }
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}

/// The second step of signing in: the code from the user's app, or a recovery code.
#[derive(askama::Template)]
#[template(path = "dashboard/login_code.html")]
struct CodePage<'a> {
    email: &'a str,
    csrf: &'a str,
    message: Option<&'a str>,
}

/// The session waiting for its second factor, from its cookie.
async fn pending(
    app: &PagesState,
    headers: &HeaderMap,
) -> Result<(String, db::PendingSession), Response> {
    let to_login = || Redirect::to("/login").into_response();
    let token = super::cookie_token(headers).ok_or_else(to_login)?;
    let digest = merchants::secret_digest(&token);
    match db::pending_session(&app.store, &digest, now()).await {
        Ok(Some(p)) => Ok((digest, p)),
        Ok(None) => Err(to_login()),
        Err(e) => Err(internal(&e)),
    }
}

/// `GET /login/code`.
pub async fn code_page(State(app): State<PagesState>, headers: HeaderMap) -> Response {
    match pending(&app, &headers).await {
        Ok((_, p)) => render(
            StatusCode::OK,
            &CodePage {
                email: &p.email,
                csrf: &p.csrf_token,
                message: None,
            },
        ),
        Err(r) => r,
    }
}

/// `POST /login/code`: a right code (or recovery code) replaces the waiting session with a
/// signed-in one; wrong codes are throttled like wrong passwords.
pub async fn code(
    State(app): State<PagesState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    F(f): F,
) -> Response {
    let (digest, p) = match pending(&app, &headers).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let given = f.get("csrf").map(String::as_str).unwrap_or_default();
    if given.is_empty() || !bool::from(given.as_bytes().ct_eq(p.csrf_token.as_bytes())) {
        return super::CsrfRejected.into_response();
    }
    let page = |status: StatusCode, message: &str| {
        let page = CodePage {
            email: &p.email,
            csrf: &p.csrf_token,
            message: Some(message),
        };
        render(status, &page)
    };
    let client = app.settings.trusted_proxies.client(peer.ip(), &headers);
    let attempt = match app.login_throttle.reserve(&p.email, client) {
        Ok(attempt) => attempt,
        Err(_) => {
            let msg = "Too many wrong codes. Wait a minute, then try again.";
            return page(StatusCode::TOO_MANY_REQUESTS, msg);
        }
    };
    let sealer = two_factor::Sealer::new(&app.settings.secret_key);
    let code = f.get("code").map(String::as_str).unwrap_or_default();
    let user = match users::get(&app.store, &p.user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::to("/login").into_response(),
        Err(e) => return internal(&e),
    };
    let verified = two_factor::verify(&app.store, &sealer, &p.user_id, code).await;
    if let Ok(ok) = verified {
        signed_in(&app, &user, ok, &client, &headers).await;
    }
    match verified {
        Ok(true) => attempt.succeeded(),
        Ok(false) => {
            attempt.failed();
            return page(
                StatusCode::UNAUTHORIZED,
                "That code is not right, or was used already.",
            );
        }
        Err(e) => {
            attempt.succeeded();
            return internal(&e);
        }
    }
    if let Err(e) = db::end_session(&app.store, &digest, now()).await {
        return internal(&e);
    }
    let device = Device {
        https: over_https(&app, peer, &headers),
        second_factor_pending: false,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        address: client.to_string(),
    };
    match start_session(&app, &user, &device).await {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard")).into_response(),
        Err(e) => internal(&e),
    }
}

/// Records a sign-in of `user` (`ok`), or a failed attempt (a wrong password or code), in the
/// merchant's audit log. Not recording it does not stop the sign-in: it is logged instead.
async fn signed_in(
    app: &PagesState,
    user: &users::User,
    ok: bool,
    client: &std::net::IpAddr,
    headers: &HeaderMap,
) {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let actor = Actor::user(&user.merchant_id, &user.id, &user.email)
        .via(Some(client.to_string()), user_agent);
    let resource = ("user", user.id.as_str());
    let entry = if ok {
        actor.entry("user.sign_in", resource, now())
    } else {
        actor.failure("user.sign_in", resource, now())
    };
    if let Err(e) = audit::record(&app.store, &entry).await {
        tracing::warn!(error = %e, "sign-in not recorded in the audit log");
    }
}
