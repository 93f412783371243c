//! The merchant dashboard (port 3000): login, overview, transactions, payment links,
//! settlements, webhooks, docs.
//!
//! Sessions: a random token in an `HttpOnly`, `SameSite=Strict` cookie; the database keeps
//! only its SHA-256 digest, with an expiry (`SESSION_TTL`). Every form carries the session's
//! CSRF token, checked in constant time, so another site cannot post forms for a merchant.
//! The sign-in form carries a token of its own (a cookie it must match), so another site
//! cannot sign a browser in to an account of its choosing. Failed sign-ins are limited per
//! (email, client address) and per address, reserved before the password is hashed
//! ([`throttle`]). The session cookie is `Secure` whenever the dashboard is reached over HTTPS
//! (its public URL, or a trusted proxy's `X-Forwarded-Proto`). Every page answers
//! `Cache-Control: no-store`: several show secrets.
//! Pages call the same services as the API. One file per page; the HTML is in
//! `templates/dashboard/`.

mod access;
mod account;
mod audit_log;
mod docs;
mod endpoints;
mod export;
mod links;
mod login;
mod overview;
mod payment;
mod rotate;
mod settings;
mod settlements;
mod team;
mod throttle;
mod transactions;
mod two_factor;
mod webhooks;

pub use super::F;
pub use access::ROUTES;
pub use throttle::LoginThrottle;

use std::collections::HashMap;

use super::PagesState;
use crate::{
    audit::Actor,
    http::{
        error::ApiError,
        layers::{NO_FRAMES, NO_SNIFF, Set, with_headers},
        openapi::Document,
    },
    merchants::{
        self, secret_digest,
        team::{Permission, Role},
    },
    store::{
        dashboard as db,
        merchants::Merchant,
        now,
        table::{self, Start, Window},
    },
};
use axum::{
    Extension, Router,
    extract::{FromRequestParts, MatchedPath},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use rand::distr::{Alphanumeric, SampleString};
use subtle::ConstantTimeEq;

const COOKIE: &str = "paygate_session";
/// How long a session lives.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);
/// How long a session waits for its second factor.
const SECOND_FACTOR_TTL: chrono::Duration = chrono::Duration::minutes(10);

/// The dashboard router; `document` is the API's OpenAPI document, for the API reference.
pub fn router(state: PagesState, document: Document) -> Router {
    let router = Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/login", get(login::page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/dashboard", get(overview::page))
        .route(
            "/dashboard/credentials/rotate",
            get(rotate::api_secret).post(overview::rotate_credentials),
        )
        .route("/dashboard/upi", post(overview::save_upi))
        .route(
            "/dashboard/settings",
            get(settings::page).post(settings::save),
        )
        .route(
            "/dashboard/settings/logo",
            get(settings::logo).post(settings::upload_logo),
        )
        .route(
            "/dashboard/settings/logo/remove",
            post(settings::remove_logo),
        )
        .route("/dashboard/transactions", get(transactions::page))
        .route(
            "/dashboard/payment-links",
            get(links::page).post(links::create),
        )
        .route("/dashboard/payment-links/{id}/cancel", post(links::cancel))
        .route("/dashboard/transactions.csv", get(transactions::export_csv))
        .route("/dashboard/audit-log", get(audit_log::page))
        .route("/dashboard/audit-log.csv", get(audit_log::export_csv))
        .route("/dashboard/settlements", get(settlements::page))
        .route("/dashboard/settlements/{id}", get(settlements::settlement))
        .route(
            "/dashboard/settlements/{id}/transactions.csv",
            get(settlements::settlement_csv),
        )
        .route("/dashboard/reconciliations", post(settlements::reconcile))
        .route(
            "/dashboard/reconciliations/{id}",
            get(settlements::reconciliation),
        )
        .route("/dashboard/payments/{id}", get(payment::page))
        .route("/dashboard/payments/{id}/capture", post(payment::capture))
        .route("/dashboard/payments/{id}/refund", post(payment::refund))
        .route("/dashboard/webhooks", get(webhooks::page))
        .route("/dashboard/webhooks/config", post(webhooks::save))
        .route(
            "/dashboard/webhooks/secret",
            get(rotate::webhook_secret).post(webhooks::regenerate_secret),
        )
        .route("/dashboard/webhooks/test", post(webhooks::test))
        .route("/dashboard/webhooks/{id}/retry", post(webhooks::retry))
        .route(
            "/dashboard/webhooks/retry-failed",
            post(webhooks::retry_all_failed),
        )
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
        .route("/dashboard/team", get(team::page))
        .route("/dashboard/team/invite", post(team::invite))
        .route("/dashboard/team/{id}/role", post(team::set_role))
        .route("/dashboard/team/{id}/remove", post(team::remove))
        .route(
            "/dashboard/team/invitations/{id}/revoke",
            post(team::revoke),
        )
        .route(
            "/invitations/{token}",
            get(team::invitation).post(team::accept),
        )
        .route("/login/code", get(login::code_page).post(login::code))
        .route(
            "/dashboard/account/2fa",
            get(two_factor::page).post(two_factor::enable),
        )
        .route("/dashboard/account/2fa/disable", post(two_factor::disable))
        .route("/dashboard/team/two-factor", post(team::require_two_factor))
        .route("/dashboard/account", get(account::page))
        .route("/dashboard/account/password", post(account::password))
        .route(
            "/dashboard/account/sessions/{id}/end",
            post(account::end_session),
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
    // Pages show secrets: never stored by a browser or a proxy (assets say `no-cache`).
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    let router = with_headers(router, Set::IfNotPresent, &no_store);
    with_headers(router, Set::Overriding, &headers(CSP)).merge(with_headers(
        reference,
        Set::Overriding,
        &headers(REFERENCE_CSP),
    ))
}

/// The dashboard's Content-Security-Policy: its own scripts only (the filters' auto-apply; no
/// inline script), styles and images of its own.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
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
    /// The signed-in user's name and role.
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub notice: Option<String>,
}

impl Frame {
    /// The frame of a page for the signed-in user.
    pub fn new(title: &'static str, active: &'static str, s: &SignedIn) -> Self {
        Self {
            title,
            active,
            merchant: s.merchant.name.clone(),
            user: s.user.name.clone(),
            role: s.user.role,
            csrf: s.csrf.clone(),
            notice: s.flash.clone(),
        }
    }

    /// The navigation: `(href, name)`, the team page for those who manage it.
    pub fn nav(&self) -> Vec<(&'static str, &'static str)> {
        let mut nav = vec![
            ("/dashboard", "Overview"),
            ("/dashboard/transactions", "Transactions"),
            ("/dashboard/payment-links", "Payment links"),
            ("/dashboard/settlements", "Settlements"),
            ("/dashboard/webhooks", "Webhooks"),
            ("/dashboard/settings", "Settings"),
        ];
        if self.role.can(Permission::Team) {
            nav.push(("/dashboard/team", "Team"));
        }
        if self.role.can(Permission::AuditLog) {
            nav.push(("/dashboard/audit-log", "Audit log"));
        }
        nav.push(("/dashboard/docs", "Docs"));
        nav
    }

    /// Whether the user may use the forms of `what` (a [`Permission`] by name, for templates):
    /// forms a role may not use are not shown (and refused by the server).
    pub fn can(&self, what: &str) -> bool {
        let p = match what {
            "api_keys" => Permission::ApiKeys,
            "webhooks" => Permission::Webhooks,
            "refunds" => Permission::Refunds,
            "captures" => Permission::Captures,
            "payment_links" => Permission::PaymentLinks,
            "settings" => Permission::Settings,
            "settlements" => Permission::Settlements,
            "team" => Permission::Team,
            _ => return false,
        };
        self.role.can(p)
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
/// The window a table's page asks for: `?starting_after=ID` (older rows) or
/// `?ending_before=ID` (newer rows), as on the API; the newest rows without either.
fn window_of(q: &HashMap<String, String>, limit: i64) -> Window {
    let cursor = |name: &str| {
        q.get(name)
            .map(|id| id.trim())
            .filter(|id| !id.is_empty() && id.len() <= 64)
            .map(str::to_owned)
    };
    let start = match (cursor("starting_after"), cursor("ending_before")) {
        (Some(id), _) => Start::After(id),
        (None, Some(id)) => Start::Before(id),
        (None, None) => Start::Offset(0),
    };
    Window { limit, start }
}

/// The links under a table: to newer rows, to older rows, and how many rows there are.
pub struct Pager {
    pub newer: Option<String>,
    pub older: Option<String>,
    /// `"42"`, or `"10,000+"` past what lists count.
    pub total: String,
}

/// Reads a table's page of `window` with `$read` (an expression of the window `$w`): the newest
/// page when the cursor is not one of the merchant's rows. `Result<(rows, start), error>`.
macro_rules! read_page {
    ($window:expr, |$w:ident| $read:expr) => {
        async {
            let window: $crate::store::table::Window = $window;
            let $w = window.clone();
            match $read.await {
                Ok(Some(page)) => Ok((page, window.start)),
                Ok(None) => {
                    let $w = $crate::store::table::Window::first(window.limit);
                    let start = $w.start.clone();
                    $read.await.map(|page| {
                        let page = page.unwrap_or($crate::store::table::Page {
                            rows: Vec::new(),
                            total: 0,
                            has_more: false,
                        });
                        (page, start)
                    })
                }
                Err(e) => Err(e),
            }
        }
    };
}
use read_page;

impl Pager {
    /// The links of `page`, read from `start`, to `base` (a path with its query string, if
    /// any, and no cursor).
    fn new<T>(page: &table::Page<T>, start: &Start, base: &str, id: impl Fn(&T) -> &str) -> Self {
        let (newer_exists, older_exists) = match start {
            Start::Offset(n) => (*n > 0, page.has_more),
            Start::After(_) => (true, page.has_more),
            Start::Before(_) => (page.has_more, true),
        };
        let sep = if base.contains('?') { '&' } else { '?' };
        let link = |name: &str, row: Option<&T>| {
            row.map(|r| {
                let mut u = url::form_urlencoded::Serializer::new(String::new());
                u.append_pair(name, id(r));
                format!("{base}{sep}{}", u.finish())
            })
        };
        Self {
            newer: link("ending_before", page.rows.first()).filter(|_| newer_exists),
            older: link("starting_after", page.rows.last()).filter(|_| older_exists),
            total: if page.total >= table::COUNT_UP_TO {
                format!("{}+", group_thousands(page.total))
            } else {
                group_thousands(page.total)
            },
        }
    }
}

impl Pager {
    /// How many rows, the noun in the right number: `1 payment`, `42 payments`, `10,000+
    /// payments`.
    pub fn count(&self, one: &str, many: &str) -> String {
        let noun = if self.total == "1" { one } else { many };
        format!("{} {noun}", self.total)
    }
}

/// `here` with the query string `qs`, when there is one: the base of a filtered list's links.
fn with_query(here: &str, qs: &str) -> String {
    if qs.is_empty() {
        here.to_owned()
    } else {
        format!("{here}?{qs}")
    }
}

/// `12345` → `"12,345"`.
fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A signed-in user of a merchant; pages without a session redirect to `/login`, and a route
/// the user's role does not reach answers 403 ([`access`]).
pub struct SignedIn {
    pub merchant: Merchant,
    pub user: Member,
    /// The user as the audit log records them: with the client's address and browser.
    pub actor: Actor,
    pub csrf: String,
    /// The notice a form left for this page (shown once).
    pub flash: Option<String>,
    token_digest: String,
}

/// The signed-in user.
pub struct Member {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    /// Signs in with a second factor.
    pub two_factor: bool,
}

/// Where a user the merchant requires a second factor of, and who has none yet, is sent; the
/// routes they may use meanwhile.
const SET_UP_TWO_FACTOR: &str = "/dashboard/account/2fa";
const WHILE_SETTING_UP: [&str; 2] = [SET_UP_TWO_FACTOR, "/logout"];

/// How often a session's "last seen" is written (not on every page view).
const SEEN_EVERY: chrono::Duration = chrono::Duration::minutes(1);

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
        // Before the notice is taken: the page it is sent to shows it.
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        if session.require_two_factor
            && !session.two_factor
            && !route.is_some_and(|r| WHILE_SETTING_UP.contains(&r))
        {
            return Err(Redirect::to(SET_UP_TWO_FACTOR).into_response());
        }
        // A notice is shown by the next page that is not a form post, then forgotten.
        if parts.method == axum::http::Method::GET
            && let Some(notice) = &session.flash
        {
            db::take_flash(&app.store, &digest, notice)
                .await
                .map_err(|e| internal(&e))?;
        }
        let at = now();
        if session
            .last_seen_at
            .is_none_or(|seen| at - seen >= SEEN_EVERY)
        {
            crate::store::users::touch_session(&app.store, &digest, at, SEEN_EVERY)
                .await
                .map_err(|e| internal(&e))?;
        }
        let (address, user_agent) = app.settings.trusted_proxies.origin(parts);
        let actor = Actor::user(&merchant.id, &session.user_id, &session.user_email)
            .via(address, user_agent);
        let signed_in = Self {
            merchant,
            actor,
            user: Member {
                id: session.user_id,
                name: session.user_name,
                email: session.user_email,
                // The column allows only the five roles; anything else reads as the least.
                role: Role::parse(&session.role).unwrap_or(Role::Viewer),
                two_factor: session.two_factor,
            },
            csrf: session.csrf_token,
            flash: session.flash,
            token_digest: digest,
        };
        let needed = route.and_then(|r| access::required(&parts.method, r));
        match needed {
            Some(p) if signed_in.user.role.can(p) => Ok(signed_in),
            _ => Err(access::forbidden(&signed_in)),
        }
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

/// Where a session is started from: the browser and the client's address, shown on the
/// user's account page.
pub struct Device<'a> {
    pub https: bool,
    /// The password was right and a second factor is still to come: the session opens only
    /// `/login/code` until then.
    pub second_factor_pending: bool,
    pub user_agent: Option<&'a str>,
    pub address: String,
}

/// Starts a session of the user: the cookie to set (`Secure` when the browser came over
/// HTTPS).
async fn start_session(
    app: &PagesState,
    user: &crate::store::users::User,
    device: &Device<'_>,
) -> Result<String, sqlx::Error> {
    let token = Alphanumeric.sample_string(&mut rand::rng(), 43);
    let csrf = Alphanumeric.sample_string(&mut rand::rng(), 32);
    let at = now();
    let ttl = if device.second_factor_pending {
        SECOND_FACTOR_TTL
    } else {
        SESSION_TTL
    };
    // What a browser says of itself, bounded.
    let user_agent = device
        .user_agent
        .map(|ua| ua.chars().take(200).collect::<String>());
    db::create_session(
        &app.store,
        &db::NewSession {
            digest: &secret_digest(&token),
            merchant_id: &user.merchant_id,
            user_id: &user.id,
            csrf: &csrf,
            user_agent: user_agent.as_deref(),
            address: &device.address,
            now: at,
            expires: at + ttl,
            second_factor_pending: device.second_factor_pending,
        },
    )
    .await?;
    let secure = if device.https { "; Secure" } else { "" };
    Ok(format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        ttl.num_seconds()
    ))
}

/// The merchant's own API secret when it can be shown: only the seeded test merchant's,
/// which is public. Other secrets are stored as digests and shown once, at rotation.
fn revealable_secret(m: &Merchant) -> Option<&'static str> {
    use merchants::test_merchant::{API_SECRET, ID};
    (m.id == ID && m.api_secret_hash == secret_digest(API_SECRET)).then_some(API_SECRET)
}
