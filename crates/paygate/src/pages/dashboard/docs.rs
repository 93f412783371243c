//! The integration guide, with the merchant's own key (and, for the seeded test merchant, its
//! public secret) in the snippets.

use axum::{extract::State, http::StatusCode, response::Response};

use super::{Frame, SignedIn, revealable_secret};
use crate::pages::{PagesState, page as render};

#[derive(askama::Template)]
#[template(path = "dashboard/docs.html")]
struct Docs<'a> {
    frame: Frame,
    api: &'a str,
    checkout: &'a str,
    key: &'a str,
    secret: &'a str,
}

/// `GET /dashboard/docs`.
pub async fn page(State(app): State<PagesState>, s: SignedIn) -> Response {
    let mut frame = Frame::new("Docs", "Docs", &s);
    frame.notice = None;
    let view = Docs {
        frame,
        api: &app.settings.public_api_url,
        checkout: &app.settings.public_checkout_url,
        key: &s.merchant.api_key,
        secret: revealable_secret(&s.merchant).unwrap_or("YOUR_API_SECRET"),
    };
    render(StatusCode::OK, &view)
}
