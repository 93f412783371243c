//! The signed-in user's own account (every role): who they are, their password (changing it
//! ends their other sessions), and their live sessions, each of which they can end.

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};

use super::{COOKIE, F, Frame, SignedIn, answer_form, internal};
use crate::{
    http::error::ApiError,
    merchants,
    pages::{PagesState, Time, page as render},
    store::{now, users},
};

const HERE: &str = "/dashboard/account";

#[derive(askama::Template)]
#[template(path = "dashboard/account.html")]
struct AccountPage {
    frame: Frame,
    name: String,
    email: String,
    role: &'static str,
    two_factor: bool,
    sessions: Vec<SessionView>,
}

struct SessionView {
    handle: String,
    device: String,
    address: String,
    created: Time,
    last_seen: Option<Time>,
    current: bool,
}

/// `GET /dashboard/account`.
pub async fn page(State(app): State<PagesState>, s: SignedIn) -> Response {
    let sessions = match users::sessions(&app.store, &s.user.id, now()).await {
        Ok(rows) => rows,
        Err(e) => return internal(&e),
    };
    let page = AccountPage {
        frame: Frame::new("Account", "Account", &s),
        name: s.user.name.clone(),
        email: s.user.email.clone(),
        role: s.user.role.label(),
        two_factor: s.user.two_factor,
        sessions: sessions
            .into_iter()
            .map(|r| SessionView {
                current: s.token_digest.starts_with(&r.handle),
                device: r.user_agent.unwrap_or_else(|| "Unknown browser".into()),
                address: r.address.unwrap_or_default(),
                created: r.created_at.into(),
                last_seen: r.last_seen_at.map(Time::from),
                handle: r.handle,
            })
            .collect(),
    };
    render(StatusCode::OK, &page)
}

/// `POST /dashboard/account/password`: needs the current password; the user's other
/// sessions end.
pub async fn password(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let (current, new, confirm) = (field("current"), field("password"), field("confirm"));
    let act = async {
        if new != confirm {
            return Ok("The two new passwords differ.".to_owned());
        }
        if new.chars().count() < merchants::MIN_PASSWORD {
            return Ok(format!(
                "The password must have at least {} characters.",
                merchants::MIN_PASSWORD
            ));
        }
        let hash = users::password_hash(&app.store, &s.user.id)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        if !merchants::check_password(current, hash).await {
            return Ok("The current password is not right.".to_owned());
        }
        merchants::set_password(
            &app.store,
            &s.user.id,
            new,
            (Some(&s.token_digest), Some(&s.actor)),
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
        Ok("Password changed; your other sessions have ended.".to_owned())
    };
    answer_form(&app, &s, &f, HERE, act).await
}

/// `POST /dashboard/account/sessions/{id}/end`: ending the current session signs out.
pub async fn end_session(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(handle): Path<String>,
    F(f): F,
) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    let entry = s.actor.entry("session.end", ("session", &handle), now());
    match users::end_session(&app.store, &s.user.id, &handle, Some(&entry)).await {
        Ok(_) if s.token_digest.starts_with(&handle) && handle.len() == 16 => {
            let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
            ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
        }
        Ok(ended) => {
            let notice = if ended {
                "Session ended."
            } else {
                "That session had ended already."
            };
            super::back(&app, &s, HERE, notice).await
        }
        Err(e) => internal(&e),
    }
}
