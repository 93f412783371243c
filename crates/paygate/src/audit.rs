//! Who changed what: the actor of a request (an API key, or a dashboard user) and the audit
//! log entries it leaves. A service that changes something appends its entry in the
//! transaction of the change ([`record_in`]), so a change that rolls back leaves none; a
//! sign-in, which changes nothing else, appends its own ([`record`]). Requests with no actor
//! (the public checkout, the worker's jobs) leave none.

use chrono::{DateTime, Utc};
use paygate_core::AuditLogId;

use crate::store::{
    Store, Tx,
    audit_log::{self, Entry},
    table::Table,
};

/// Who acts: an API key or a dashboard user of a merchant, and where from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub merchant_id: String,
    pub kind: ActorKind,
    /// The API key, or the user's id.
    pub id: String,
    /// The API key, or the user's email.
    pub name: String,
    /// The client's address, when known.
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

/// What kind of actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorKind {
    ApiKey,
    User,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::User => "user",
        }
    }
}

/// Longest user agent kept, characters.
const USER_AGENT_MAX: usize = 256;

impl Actor {
    /// The merchant's API key `key`.
    pub fn api_key(merchant_id: &str, key: &str) -> Self {
        Self {
            merchant_id: merchant_id.to_owned(),
            kind: ActorKind::ApiKey,
            id: key.to_owned(),
            name: key.to_owned(),
            address: None,
            user_agent: None,
        }
    }

    /// The merchant's user `id` (`email`).
    pub fn user(merchant_id: &str, id: &str, email: &str) -> Self {
        Self {
            merchant_id: merchant_id.to_owned(),
            kind: ActorKind::User,
            id: id.to_owned(),
            name: email.to_owned(),
            address: None,
            user_agent: None,
        }
    }

    /// The actor, acting from `address` with `user_agent` (cut to 256 characters).
    pub fn via(mut self, address: Option<String>, user_agent: Option<&str>) -> Self {
        self.address = address;
        self.user_agent = user_agent.map(|ua| ua.chars().take(USER_AGENT_MAX).collect());
        self
    }

    /// The entry of this actor doing `action` to `resource` (`(type, id)`) at `at`.
    pub fn entry(&self, action: &str, resource: (&str, &str), at: DateTime<Utc>) -> Entry {
        Entry {
            id: AuditLogId::generate().into_string(),
            merchant_id: self.merchant_id.clone(),
            actor_type: self.kind.as_str().to_owned(),
            actor_id: self.id.clone(),
            actor_name: self.name.clone(),
            action: action.to_owned(),
            resource_type: resource.0.to_owned(),
            resource_id: Some(resource.1.to_owned()).filter(|id| !id.is_empty()),
            address: self.address.clone(),
            user_agent: self.user_agent.clone(),
            outcome: "success".to_owned(),
            created_at: at,
        }
    }

    /// [`Actor::entry`] of an attempt that failed (a sign-in with a wrong password or code).
    pub fn failure(&self, action: &str, resource: (&str, &str), at: DateTime<Utc>) -> Entry {
        Entry {
            outcome: "failure".to_owned(),
            ..self.entry(action, resource, at)
        }
    }
}

/// Appends the entry of `by` doing `action` to `resource` in `tx`, the change's transaction.
pub async fn record_in(
    tx: &mut Tx,
    by: &Actor,
    action: &str,
    resource: (&str, &str),
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    audit_log::insert_all(tx, &[by.entry(action, resource, at)]).await
}

/// Appends `entry` on its own (sign-ins: nothing else changes with them).
pub async fn record(store: &Store, entry: &Entry) -> Result<(), sqlx::Error> {
    audit_log::insert(store, entry).await
}

/// Appends, for each successful answer of a batch whose request has an actor, that actor's
/// entry of `action` on the answer's row (a `resource` row), in one statement.
pub async fn record_all_in<'a, T: Table + 'a, E: 'a>(
    tx: &mut Tx,
    action: &str,
    resource: &str,
    batch: impl IntoIterator<Item = (Option<&'a Actor>, &'a Result<T, E>)>,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let entries: Vec<Entry> = batch
        .into_iter()
        .filter_map(|(by, answer)| {
            let (by, row) = (by?, answer.as_ref().ok()?);
            Some(by.entry(action, (resource, row.id()), at))
        })
        .collect();
    audit_log::insert_all(tx, &entries).await
}
