//! An audit log entry as the API shows it.

use serde::Serialize;
use utoipa::ToSchema;

use super::iso;
use crate::store::audit_log::Entry;

/// Who did what, to what, from where, when, and how it ended.
#[derive(Serialize, ToSchema)]
pub struct AuditLogBody<'a> {
    /// The entry's id, `audit_` and 16 characters.
    #[schema(example = "audit_mh3k2x0aQ7bR4tLp")]
    pub id: &'a str,
    /// Who acted.
    pub actor: ActorBody<'a>,
    /// What was done: `payment.create`, `refund.create`, `user.sign_in`, …
    #[schema(example = "payment.capture")]
    pub action: &'a str,
    /// What it was done to.
    pub resource: ResourceBody<'a>,
    /// The client's address, when known.
    pub ip: Option<&'a str>,
    /// The client's `User-Agent`, when sent.
    pub user_agent: Option<&'a str>,
    /// `success`, or `failure` (a sign-in with a wrong password or code).
    #[schema(example = "success")]
    pub outcome: &'a str,
    /// When (ISO 8601).
    pub created_at: String,
}

/// Who acted: an API key or a dashboard user.
#[derive(Serialize, ToSchema)]
pub struct ActorBody<'a> {
    /// `api_key` or `user`.
    #[serde(rename = "type")]
    #[schema(example = "api_key")]
    pub kind: &'a str,
    /// The API key, or the user's id.
    pub id: &'a str,
    /// The API key, or the user's email when they acted.
    pub name: &'a str,
}

/// What an action was done to.
#[derive(Serialize, ToSchema)]
pub struct ResourceBody<'a> {
    /// `order`, `payment`, `refund`, `payment_link`, `webhook_endpoint`, `user`, …
    #[serde(rename = "type")]
    #[schema(example = "payment")]
    pub kind: &'a str,
    /// Its id.
    pub id: Option<&'a str>,
}

impl<'a> AuditLogBody<'a> {
    pub fn new(e: &'a Entry) -> Self {
        Self {
            id: &e.id,
            actor: ActorBody {
                kind: &e.actor_type,
                id: &e.actor_id,
                name: &e.actor_name,
            },
            action: &e.action,
            resource: ResourceBody {
                kind: &e.resource_type,
                id: e.resource_id.as_deref(),
            },
            ip: e.address.as_deref(),
            user_agent: e.user_agent.as_deref(),
            outcome: &e.outcome,
            created_at: iso(e.created_at),
        }
    }
}
