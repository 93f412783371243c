//! The team page (owners): the merchant's users and their roles, invitations (the link shown
//! once, to the owner who invited), role changes and removals; and the public page where an
//! invitation is accepted.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::{F, Frame, SignedIn, answer_form, internal};
use crate::{
    http::error::ApiError,
    merchants::team::{self, AcceptError, InviteError, Role},
    pages::{PagesState, Time, page as render},
    store::{
        now, two_factor,
        users::{self, TeamChange},
    },
};

/// Where every form of the page returns.
const HERE: &str = "/dashboard/team";

#[derive(askama::Template)]
#[template(path = "dashboard/team.html")]
struct TeamPage {
    frame: Frame,
    /// The invitation just made (its link shown once).
    invited: Option<Invited>,
    /// Why the invitation form was refused, and what was typed.
    error: Option<String>,
    email: String,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    roles: Vec<(&'static str, &'static str)>,
    /// The merchant requires two-factor sign-in of every user.
    two_factor_required: bool,
}

struct Invited {
    email: String,
    link: String,
    /// Whether it was mailed (`None`: no mail configured).
    mailed: Option<bool>,
}

struct MemberRow {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    you: bool,
    two_factor: bool,
    created: Time,
}

struct InvitationRow {
    handle: String,
    email: String,
    role: &'static str,
    expires: Time,
}

fn role_label(role: &str) -> &'static str {
    Role::parse(role).map_or("Viewer", Role::label)
}

async fn team_page(
    app: &PagesState,
    s: &SignedIn,
    status: StatusCode,
    invited: Option<Invited>,
    error: Option<String>,
    email: String,
) -> Response {
    let at = now();
    let (members, invitations, two_factor_required) = match tokio::try_join!(
        users::list(&app.store, &s.merchant.id),
        users::open_invitations(&app.store, &s.merchant.id, at),
        two_factor::required(&app.store, &s.merchant.id),
    ) {
        Ok(found) => found,
        Err(e) => return internal(&e),
    };
    let page = TeamPage {
        frame: Frame::new("Team", "Team", s),
        invited,
        error,
        email,
        members: members
            .into_iter()
            .map(|u| MemberRow {
                you: u.id == s.user.id,
                two_factor: u.two_factor,
                role: role_label(&u.role),
                created: u.created_at.into(),
                id: u.id,
                name: u.name,
                email: u.email,
            })
            .collect(),
        invitations: invitations
            .into_iter()
            .map(|i| InvitationRow {
                handle: i.id[..16].to_owned(),
                email: i.email,
                role: role_label(&i.role),
                expires: i.expires_at.into(),
            })
            .collect(),
        roles: Role::ALL.iter().map(|r| (r.as_str(), r.label())).collect(),
        two_factor_required,
    };
    render(status, &page)
}

/// `GET /dashboard/team`.
pub async fn page(State(app): State<PagesState>, s: SignedIn) -> Response {
    team_page(&app, &s, StatusCode::OK, None, None, String::new()).await
}

/// `POST /dashboard/team/invite`: the page again, with the invitation's link (shown once) or
/// why it was refused.
pub async fn invite(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    let email = f.get("email").map(|e| e.trim()).unwrap_or_default();
    let role = f.get("role").map(String::as_str).unwrap_or_default();
    match team::invite(&app.store, &s.actor, email, role).await {
        Ok((token, invitation)) => {
            let base = app.settings.public_dashboard_url.trim_end_matches('/');
            let link = format!("{base}/invitations/{token}");
            let role = role_label(&invitation.role);
            let mailed = match &app.mailer {
                Some(mailer) => Some(
                    mailer
                        .invitation(&invitation.email, &s.merchant.name, role, &link)
                        .await
                        .inspect_err(|cause| {
                            tracing::warn!(error = %cause, "a team invitation was not mailed");
                        })
                        .is_ok(),
                ),
                None => None,
            };
            let invited = Some(Invited {
                email: invitation.email,
                link,
                mailed,
            });
            team_page(&app, &s, StatusCode::OK, invited, None, String::new()).await
        }
        Err(InviteError::Db(e)) => internal(&e),
        Err(e) => {
            let (error, typed) = (Some(e.to_string()), email.to_owned());
            team_page(&app, &s, StatusCode::BAD_REQUEST, None, error, typed).await
        }
    }
}

fn team_change(change: TeamChange, done: &str) -> Result<String, ApiError> {
    Ok(match change {
        TeamChange::Done => done.to_owned(),
        TeamChange::NotFound => "No such user in this team.".to_owned(),
        TeamChange::LastOwner => {
            "A team keeps at least one owner: make someone else an owner first.".to_owned()
        }
    })
}

/// `POST /dashboard/team/{id}/role`.
pub async fn set_role(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    let act = async {
        let role = f.get("role").and_then(|r| Role::parse(r));
        let Some(role) = role else {
            return Ok("Choose a role.".to_owned());
        };
        let entry = s.actor.entry("user.role_change", ("user", &id), now());
        let (merchant, role_name) = (&s.merchant.id, role.as_str());
        let change = users::set_role(&app.store, merchant, &id, role_name, now(), Some(&entry))
            .await
            .map_err(|e| ApiError::internal(&e))?;
        team_change(change, &format!("Role changed to {}.", role.label()))
    };
    answer_form(&app, &s, &f, HERE, act).await
}

/// `POST /dashboard/team/{id}/remove`: the user's sessions end at once.
pub async fn remove(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    let act = async {
        if id == s.user.id {
            return Ok("You cannot remove yourself: another owner can.".to_owned());
        }
        let entry = s.actor.entry("user.remove", ("user", &id), now());
        let change = users::remove(&app.store, &s.merchant.id, &id, Some(&entry))
            .await
            .map_err(|e| ApiError::internal(&e))?;
        team_change(change, "User removed; their sessions have ended.")
    };
    answer_form(&app, &s, &f, HERE, act).await
}

/// `POST /dashboard/team/invitations/{id}/revoke`.
pub async fn revoke(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(handle): Path<String>,
    F(f): F,
) -> Response {
    let act = async {
        let entry = s
            .actor
            .entry("invitation.revoke", ("invitation", &handle), now());
        let (merchant, at) = (&s.merchant.id, now());
        let done = users::revoke_invitation(&app.store, merchant, &handle, at, Some(&entry))
            .await
            .map_err(|e| ApiError::internal(&e))?;
        Ok(if done {
            "Invitation revoked: its link no longer works."
        } else {
            "No such open invitation."
        }
        .to_owned())
    };
    answer_form(&app, &s, &f, HERE, act).await
}

/// `POST /dashboard/team/two-factor`: requires (or stops requiring) two-factor sign-in of
/// every user; a user without it is sent to set it up at their next page.
pub async fn require_two_factor(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    let act = async {
        let on = f.get("required").is_some_and(|v| v == "true");
        let action = if on {
            "settings.two_factor_required"
        } else {
            "settings.two_factor_optional"
        };
        let entry = s.actor.entry(action, ("merchant", &s.merchant.id), now());
        two_factor::set_required(&app.store, &s.merchant.id, on, Some(&entry))
            .await
            .map_err(|e| ApiError::internal(&e))?;
        Ok(if on {
            "Two-factor sign-in is now required: users without it set it up at their next page."
        } else {
            "Two-factor sign-in is no longer required."
        }
        .to_owned())
    };
    answer_form(&app, &s, &f, HERE, act).await
}

/// The public page of an invitation: a form for the new user's name and password, or why the
/// link no longer works; after accepting, a link to sign in.
#[derive(askama::Template)]
#[template(path = "dashboard/invitation.html")]
struct InvitationPage {
    /// Whom the invitation is for, and as what; `None` once it is gone.
    open: Option<(String, &'static str)>,
    error: Option<String>,
    name: String,
    /// The new user, once accepted: their email and role.
    joined: Option<(String, &'static str)>,
}

/// `GET /invitations/{token}`.
pub async fn invitation(State(app): State<PagesState>, Path(token): Path<String>) -> Response {
    let digest = crate::merchants::secret_digest(&token);
    match users::open_invitation(&app.store, &digest, now()).await {
        Ok(Some(i)) => {
            let page = InvitationPage {
                open: Some((i.email, role_label(&i.role))),
                error: None,
                name: String::new(),
                joined: None,
            };
            render(StatusCode::OK, &page)
        }
        Ok(None) => gone(None),
        Err(e) => internal(&e),
    }
}

fn gone(error: Option<String>) -> Response {
    let page = InvitationPage {
        open: None,
        error,
        name: String::new(),
        joined: None,
    };
    render(StatusCode::GONE, &page)
}

/// `POST /invitations/{token}`: creates the user, once.
pub async fn accept(
    State(app): State<PagesState>,
    Path(token): Path<String>,
    parts: axum::http::request::Parts,
    F(f): F,
) -> Response {
    let name = f.get("name").map(|n| n.trim()).unwrap_or_default();
    let password = f.get("password").map(String::as_str).unwrap_or_default();
    let confirm = f.get("confirm").map(String::as_str).unwrap_or_default();
    if password != confirm {
        return refused(&app, &token, name, "The two passwords differ.".to_owned()).await;
    }
    let origin = app.settings.trusted_proxies.origin(&parts);
    match team::accept(&app.store, &token, (name, password), origin).await {
        Ok(user) => {
            let page = InvitationPage {
                open: None,
                error: None,
                name: String::new(),
                joined: Some((user.email, role_label(&user.role))),
            };
            render(StatusCode::OK, &page)
        }
        Err(AcceptError::Invalid(e)) => refused(&app, &token, name, e).await,
        Err(AcceptError::Internal(e)) => internal(&e),
        Err(e @ (AcceptError::Gone | AcceptError::EmailTaken)) => gone(Some(e.to_string())),
    }
}

/// The invitation's form again with why it was refused (or, if it is gone meanwhile, 410).
async fn refused(app: &PagesState, token: &str, name: &str, error: String) -> Response {
    let digest = crate::merchants::secret_digest(token);
    match users::open_invitation(&app.store, &digest, now()).await {
        Ok(Some(i)) => {
            let page = InvitationPage {
                open: Some((i.email, role_label(&i.role))),
                error: Some(error),
                name: name.to_owned(),
                joined: None,
            };
            render(StatusCode::BAD_REQUEST, &page)
        }
        Ok(None) => gone(None),
        Err(e) => internal(&e),
    }
}
