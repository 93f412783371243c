//! A merchant's team: roles and what each may do on the dashboard, and invitations.
//!
//! Roles (the table is in `docs/API.md`): **owner** (everything, including the team),
//! **admin** (everything but the team), **developer** (API keys and webhooks, reads all),
//! **support** (reads all, refunds, payment links), **viewer** (reads only). Every signed-in
//! dashboard route names the [`Permission`] it needs; the server checks it on every request.
//!
//! Invitations: a random token in a link, shown once to the owner who invited (and mailed
//! when SMTP is configured); the database keeps its SHA-256 digest. Single use, valid for
//! [`INVITATION_TTL`]; accepting sets the new user's name and password.

use rand::distr::{Alphanumeric, SampleString};

use super::{MIN_PASSWORD, hash_password, secret_digest};
use crate::audit::Actor;
use crate::store::{
    Store, now,
    users::{self, Accepted, Invitation},
};

/// How long an invitation link works.
pub const INVITATION_TTL: chrono::Duration = chrono::Duration::hours(72);

/// A dashboard user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    Developer,
    Support,
    Viewer,
}

/// What a dashboard route lets a user do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Read every page (and one's own account: password, sessions).
    Read,
    /// Rotate the API secret.
    ApiKeys,
    /// The webhook URL, secret and endpoints, test webhooks, retries and replays.
    Webhooks,
    Refunds,
    Captures,
    PaymentLinks,
    /// The merchant's settings (its UPI id).
    Settings,
    /// Reconciling bank reports.
    Settlements,
    /// Reading the audit log (and exporting it).
    AuditLog,
    /// Users, roles and invitations.
    Team,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Developer,
        Role::Support,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Support => "support",
            Role::Viewer => "viewer",
        }
    }

    /// The role named `s`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The role as a page shows it.
    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Developer => "Developer",
            Role::Support => "Support",
            Role::Viewer => "Viewer",
        }
    }

    /// Whether this role may do `p`.
    pub fn can(self, p: Permission) -> bool {
        use Permission as P;
        match (self, p) {
            (_, P::Read) | (Role::Owner, _) => true,
            (Role::Admin, P::Team) => false,
            (Role::Admin, _) => true,
            (Role::Developer, P::ApiKeys | P::Webhooks) => true,
            (Role::Support, P::Refunds | P::PaymentLinks) => true,
            _ => false,
        }
    }
}

/// Why an invitation was not made.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("{0} already signs in to a paygate dashboard")]
    EmailTaken(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Invites `email` to the merchant's team with `role`; returns the invitation's token (for
/// its link, shown once) and the invitation.
pub async fn invite(
    store: &Store,
    by: &Actor,
    email: &str,
    role: &str,
) -> Result<(String, Invitation), InviteError> {
    let email = email.trim();
    if !email.contains('@') || email.len() > 254 || email.chars().any(char::is_whitespace) {
        return Err(InviteError::Invalid("Enter the email address to invite."));
    }
    let role = Role::parse(role).ok_or(InviteError::Invalid("Choose a role."))?;
    if users::by_email(store, email).await?.is_some() {
        return Err(InviteError::EmailTaken(email.to_owned()));
    }
    let token = Alphanumeric.sample_string(&mut rand::rng(), 43);
    let at = now();
    let invitation = Invitation {
        id: secret_digest(&token),
        merchant_id: by.merchant_id.clone(),
        email: email.to_owned(),
        role: role.as_str().to_owned(),
        invited_by: by.id.clone(),
        created_at: at,
        expires_at: at + INVITATION_TTL,
    };
    // The log names the invitation by its handle (never by its token).
    let entry = by.entry(
        "invitation.create",
        ("invitation", &invitation.id[..16]),
        at,
    );
    users::invite(store, &invitation, Some(&entry)).await?;
    Ok((token, invitation))
}

/// Why an invitation could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("{0}")]
    Invalid(String),
    #[error("This invitation was used, revoked or has expired. Ask for a new one.")]
    Gone,
    #[error("This email address already signs in to a paygate dashboard.")]
    EmailTaken,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Accepts the invitation with this token: a new user named `name` with `password`, joining
/// from `origin` (the client's address and user agent, for the audit log).
pub async fn accept(
    store: &Store,
    token: &str,
    (name, password): (&str, &str),
    (address, user_agent): (Option<String>, Option<&str>),
) -> Result<users::User, AcceptError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AcceptError::Invalid("Enter your name.".into()));
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(AcceptError::Invalid(format!(
            "The password must have at least {MIN_PASSWORD} characters."
        )));
    }
    let digest = secret_digest(token);
    // Checked before the (slow) hash: a used link costs nothing.
    let Some(invitation) = users::open_invitation(store, &digest, now())
        .await
        .map_err(anyhow::Error::from)?
    else {
        return Err(AcceptError::Gone);
    };
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(anyhow::Error::from)??;
    let (id, at) = (uuid::Uuid::new_v4().to_string(), now());
    let joined =
        Actor::user(&invitation.merchant_id, &id, &invitation.email).via(address, user_agent);
    let entry = joined.entry("user.join", ("user", &id), at);
    match users::accept(store, &digest, &id, name, &hash, at, Some(&entry))
        .await
        .map_err(anyhow::Error::from)?
    {
        Accepted::Joined(user) => Ok(user),
        Accepted::Gone => Err(AcceptError::Gone),
        Accepted::EmailTaken => Err(AcceptError::EmailTaken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_table_says() {
        use Permission as P;
        let all = [
            P::Read,
            P::ApiKeys,
            P::Webhooks,
            P::Refunds,
            P::Captures,
            P::PaymentLinks,
            P::Settings,
            P::Settlements,
            P::AuditLog,
            P::Team,
        ];
        let allowed = |r: Role| all.into_iter().filter(|p| r.can(*p)).collect::<Vec<_>>();
        assert_eq!(allowed(Role::Owner), all.to_vec());
        assert_eq!(allowed(Role::Admin), all[..9].to_vec());
        assert_eq!(
            allowed(Role::Developer),
            vec![P::Read, P::ApiKeys, P::Webhooks]
        );
        assert_eq!(
            allowed(Role::Support),
            vec![P::Read, P::Refunds, P::PaymentLinks]
        );
        assert_eq!(allowed(Role::Viewer), vec![P::Read]);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
