//! The integration guide, with the merchant's own key (and, for the seeded test merchant, its
//! public secret) in the snippets.

use axum::{
    Extension,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{Frame, SignedIn, revealable_secret};
use crate::{
    http::openapi::Document,
    pages::{PagesState, page as render},
};

#[derive(askama::Template)]
#[template(path = "dashboard/docs.html")]
struct Docs<'a> {
    frame: Frame,
    api: &'a str,
    checkout: &'a str,
    key: &'a str,
    secret: &'a str,
}

#[derive(askama::Template)]
#[template(path = "dashboard/api_reference.html")]
struct Reference<'a> {
    frame: Frame,
    api: &'a str,
}

/// `GET /dashboard/docs/api`: the OpenAPI document, rendered by the vendored RapiDoc (the
/// one dashboard page that runs a script; its CSP allows only this origin's).
pub async fn reference(State(app): State<PagesState>, s: SignedIn) -> Response {
    let mut frame = Frame::new("API reference", "Docs", &s);
    frame.notice = None;
    let view = Reference {
        frame,
        api: &app.settings.public_api_url,
    };
    render(StatusCode::OK, &view)
}

/// `GET /dashboard/openapi.json`: the API's OpenAPI document, on the dashboard's origin (for
/// the reference page).
pub async fn document(Extension(doc): Extension<Document>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.as_str().to_owned(),
    )
        .into_response()
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
