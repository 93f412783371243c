//! The user's two-factor sign-in (every role): setting it up (the secret as a QR code and as
//! text, confirmed by a code), the recovery codes shown once, and turning it off (with a code,
//! unless the team requires it). A user the team requires it of is sent here before anything
//! else (see [`super::SignedIn`]).

use axum::{extract::State, http::StatusCode, response::Response};

use super::{F, Frame, SignedIn, answer_form, internal};
use crate::{
    http::error::ApiError,
    merchants::two_factor::{self, Sealer, Setup, TwoFactorError},
    pages::{PagesState, page as render},
    store::two_factor as rows,
};

#[derive(askama::Template)]
#[template(path = "dashboard/two_factor.html")]
struct TwoFactorPage {
    frame: Frame,
    enabled: bool,
    required: bool,
    recovery_left: i64,
    /// The secret being set up, while it is off.
    setup: Option<Setup>,
    /// The recovery codes just made (shown once).
    recovery: Option<Vec<String>>,
    error: Option<String>,
}

async fn two_factor_page(
    app: &PagesState,
    s: &SignedIn,
    status: StatusCode,
    recovery: Option<Vec<String>>,
    error: Option<String>,
) -> Response {
    let sealer = Sealer::new(&app.settings.secret_key);
    let enabled = s.user.two_factor || recovery.is_some();
    let found = async {
        let required = rows::required(&app.store, &s.merchant.id).await?;
        let left = rows::recovery_left(&app.store, &s.user.id).await?;
        let setup = if enabled {
            None
        } else {
            Some(two_factor::setup(&app.store, &sealer, &s.user.id, &s.user.email).await?)
        };
        Ok::<_, sqlx::Error>((required, left, setup))
    };
    let (required, recovery_left, setup) = match found.await {
        Ok(found) => found,
        Err(e) => return internal(&e),
    };
    let page = TwoFactorPage {
        frame: Frame::new("Two-factor sign-in", "Account", s),
        enabled,
        required,
        recovery_left,
        setup,
        recovery,
        error,
    };
    render(status, &page)
}

/// `GET /dashboard/account/2fa`.
pub async fn page(State(app): State<PagesState>, s: SignedIn) -> Response {
    two_factor_page(&app, &s, StatusCode::OK, None, None).await
}

/// `POST /dashboard/account/2fa`: a code of the secret being set up turns it on; the page
/// then shows the recovery codes, once.
pub async fn enable(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    use axum::response::IntoResponse as _;
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    let sealer = Sealer::new(&app.settings.secret_key);
    let code = f.get("code").map(String::as_str).unwrap_or_default();
    match two_factor::enable(&app.store, &sealer, &s.actor, code).await {
        Ok(codes) => two_factor_page(&app, &s, StatusCode::OK, Some(codes), None).await,
        Err(TwoFactorError::Db(e)) => internal(&e),
        Err(e) => {
            let error = Some(e.to_string());
            two_factor_page(&app, &s, StatusCode::BAD_REQUEST, None, error).await
        }
    }
}

/// `POST /dashboard/account/2fa/disable`.
pub async fn disable(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    let act = async {
        let sealer = Sealer::new(&app.settings.secret_key);
        let code = f.get("code").map(String::as_str).unwrap_or_default();
        match two_factor::disable(&app.store, &sealer, &s.actor, code).await {
            Ok(()) => Ok("Two-factor sign-in is off.".to_owned()),
            Err(TwoFactorError::Db(e)) => Err(ApiError::internal(&e)),
            Err(e) => Ok(e.to_string()),
        }
    };
    answer_form(&app, &s, &f, "/dashboard/account/2fa", act).await
}
