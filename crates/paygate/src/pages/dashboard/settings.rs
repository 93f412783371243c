//! The settings page: the business profile (the name customers see on the checkout and the
//! time zone the dashboard shows times and date ranges in) and the logo beside the name on
//! the checkout, uploaded here and served from the database.

use std::collections::HashMap;

use axum::{
    extract::{Multipart, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{F, Frame, SignedIn, answer_form, back};
use crate::{
    http::error::ApiError,
    merchants::profile::{self, Error},
    pages::{PagesState, page as render},
};

const HERE: &str = "/dashboard/settings";

#[derive(askama::Template)]
#[template(path = "dashboard/settings.html")]
struct SettingsPage {
    frame: Frame,
    display_name: String,
    account_name: String,
    shown_name: String,
    time_zone: String,
    zones: &'static [chrono_tz::Tz],
    has_logo: bool,
    /// The start of the logo's digest: a new URL for each new logo.
    logo_version: String,
}

/// `GET /dashboard/settings`.
pub async fn page(State(_): State<PagesState>, s: SignedIn) -> Response {
    let m = &s.merchant;
    let view = SettingsPage {
        frame: Frame::new("Settings", "Settings", &s),
        display_name: m.display_name.clone().unwrap_or_default(),
        account_name: m.name.clone(),
        shown_name: m.public_name().to_owned(),
        time_zone: m.time_zone.clone(),
        zones: &chrono_tz::TZ_VARIANTS,
        has_logo: m.logo_digest.is_some(),
        logo_version: m
            .logo_digest
            .as_deref()
            .map(|d| d.chars().take(16).collect())
            .unwrap_or_default(),
    };
    render(StatusCode::OK, &view)
}

/// A refusal as the notice for the settings page; a database failure as the 500 it is.
fn notice(e: Error) -> Result<String, ApiError> {
    match e {
        Error::Invalid(why) => Ok(why.to_owned()),
        Error::Store(e) => Err(ApiError::internal(&e)),
    }
}

/// `POST /dashboard/settings`: the display name and the time zone.
pub async fn save(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    answer_form(&app, &s, &f, HERE, async {
        match profile::set(
            &app.store,
            &s.actor,
            field("display_name"),
            field("time_zone"),
        )
        .await
        {
            Ok(_) => Ok("Profile saved.".to_owned()),
            Err(e) => notice(e),
        }
    })
    .await
}

/// `POST /dashboard/settings/logo` (multipart: `csrf`, `logo` an image file).
pub async fn upload_logo(
    State(app): State<PagesState>,
    s: SignedIn,
    mut form: Multipart,
) -> Response {
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut image: Option<Vec<u8>> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return ApiError::bad_request("The upload could not be read").into_response(),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let Ok(bytes) = field.bytes().await else {
            return ApiError::bad_request("The upload could not be read").into_response();
        };
        if name == "logo" {
            image = Some(bytes.to_vec());
        } else if bytes.len() <= 1024 {
            fields.insert(name, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    if let Err(r) = s.check_csrf(&fields) {
        return r.into_response();
    }
    let said = match image.filter(|b| !b.is_empty()) {
        None => Ok("Choose an image to upload.".to_owned()),
        Some(bytes) => match profile::set_logo(&app.store, &s.actor, Some(bytes)).await {
            Ok(()) => Ok("Logo saved: the checkout shows it beside the name.".to_owned()),
            Err(e) => notice(e),
        },
    };
    match said {
        Ok(text) => back(&app, &s, HERE, &text).await,
        Err(e) => e.into_response(),
    }
}

/// `POST /dashboard/settings/logo/remove`.
pub async fn remove_logo(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        match profile::set_logo(&app.store, &s.actor, None).await {
            Ok(()) => Ok("Logo removed.".to_owned()),
            Err(e) => notice(e),
        }
    })
    .await
}

/// `GET /dashboard/settings/logo`: the logo, for the page's preview.
pub async fn logo(State(app): State<PagesState>, s: SignedIn, headers: HeaderMap) -> Response {
    crate::pages::logo(&app.store, &s.merchant.id, &headers).await
}
