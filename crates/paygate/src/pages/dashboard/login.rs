//! Signing in and out.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};

use super::{COOKIE, F, SignedIn, internal, start_session};
use crate::{
    merchants,
    pages::{PagesState, page as render},
    store::{dashboard as db, now},
};

/// The sign-in page, with an error when the last attempt failed.
#[derive(askama::Template)]
#[template(path = "dashboard/login.html")]
struct Login<'a> {
    message: Option<&'a str>,
}

/// `GET /login`.
pub async fn page() -> Response {
    render(StatusCode::OK, &Login { message: None })
}

/// `POST /login`: a session cookie for the right email and password; slowed down after
/// repeated failures (per email and per client address).
pub async fn login(
    State(app): State<PagesState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    F(f): F,
) -> Response {
    let email = f
        .get("email")
        .map(|e| e.trim())
        .unwrap_or_default()
        .to_owned();
    let password = f.get("password").cloned().unwrap_or_default();
    if let Some(wait) = app.login_throttle.wait(&email, client.ip()) {
        let secs = wait.as_secs().max(1);
        let msg = format!("Too many failed attempts. Try again in {secs} s.");
        let mut res = render(
            StatusCode::TOO_MANY_REQUESTS,
            &Login {
                message: Some(&msg),
            },
        );
        if let Ok(v) = secs.to_string().parse() {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    match merchants::check_login(&app.store, &email, &password).await {
        Ok(Some(merchant_id)) => match start_session(&app, &merchant_id).await {
            Ok(cookie) => {
                ([(header::SET_COOKIE, cookie)], Redirect::to("/dashboard")).into_response()
            }
            Err(e) => internal(&e),
        },
        Ok(None) => {
            app.login_throttle.failed(&email, client.ip());
            let message = Some("Invalid email or password");
            render(StatusCode::UNAUTHORIZED, &Login { message })
        }
        Err(e) => internal(&e),
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
