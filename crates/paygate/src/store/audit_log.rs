//! Audit log rows: appended in the transaction of the change they record, read a page at a
//! time (newest first) with filters. Nothing here updates or deletes a row; the database's
//! triggers refuse both.

use chrono::{DateTime, Utc};

use super::{
    Store, Tx,
    table::{self, Arg, Page, Window, table},
};

/// A stored audit log entry.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    pub id: String,
    pub merchant_id: String,
    /// `api_key` or `user`.
    pub actor_type: String,
    /// The API key or the user.
    pub actor_id: String,
    /// Who the actor was when it acted: the user's email, the API key.
    pub actor_name: String,
    /// What was done: `payment.capture`, `user.sign_in`, …
    pub action: String,
    /// What it was done to: `payment`, `user`, …
    pub resource_type: String,
    pub resource_id: Option<String>,
    /// The client's address, when known.
    pub address: Option<String>,
    pub user_agent: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    pub created_at: DateTime<Utc>,
}

macro_rules! cols {
    () => {
        "id, merchant_id, actor_type, actor_id, actor_name, action, resource_type, resource_id, \
         address, user_agent, outcome, created_at"
    };
}

table!(Entry, "audit_logs", cols, "created_at, id");

/// Appends `entries`, in one statement.
pub async fn insert_all(tx: &mut Tx, entries: &[Entry]) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let each = |f: fn(&Entry) -> String| entries.iter().map(f).collect::<Vec<_>>();
    let input = super::rows::Rows::new(entries.len())
        .text("id", each(|e| e.id.clone()))
        .text("merchant_id", each(|e| e.merchant_id.clone()))
        .text("actor_type", each(|e| e.actor_type.clone()))
        .text("actor_id", each(|e| e.actor_id.clone()))
        .text("actor_name", each(|e| e.actor_name.clone()))
        .text("action", each(|e| e.action.clone()))
        .text("resource_type", each(|e| e.resource_type.clone()))
        .opt_text("resource_id", entries.iter().map(|e| e.resource_id.clone()))
        .opt_text("address", entries.iter().map(|e| e.address.clone()))
        .opt_text("user_agent", entries.iter().map(|e| e.user_agent.clone()))
        .text("outcome", each(|e| e.outcome.clone()))
        .time("created_at", entries.iter().map(|e| e.created_at));
    table::insert_all::<Entry>(tx, input).await
}

/// Appends `entry` on its own (a sign-in, which changes nothing else).
pub async fn insert(store: &Store, entry: &Entry) -> Result<(), sqlx::Error> {
    let mut tx = store.begin().await?;
    insert_all(&mut tx, std::slice::from_ref(entry)).await?;
    tx.commit().await
}

/// The filters of a list of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// One actor: an API key or a user id.
    pub actor_id: Option<String>,
    /// One action, or (ending in `.`) every action on one kind of resource: `payment.`.
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// At or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Before this instant.
    pub to: Option<DateTime<Utc>>,
}

impl Filter {
    /// The conditions of the filter: an actor or a resource id is served by its index
    /// (`merchant_id, actor_id, created_at, id` and `merchant_id, resource_id, …`), the rest
    /// read the merchant's entries newest first by `(merchant_id, created_at, id)`.
    pub fn conditions(&self) -> table::Filter {
        let mut c = table::Filter::default();
        let text = |s: &String| Arg::Text(s.clone());
        if let Some(actor) = &self.actor_id {
            c = c.and("actor_id = ?", text(actor));
        }
        match &self.action {
            Some(prefix) if prefix.ends_with('.') => {
                c = c.and("substr(action, 1, length(?)) = ?", text(prefix));
            }
            Some(action) => c = c.and("action = ?", text(action)),
            None => {}
        }
        if let Some(kind) = &self.resource_type {
            c = c.and("resource_type = ?", text(kind));
        }
        if let Some(id) = &self.resource_id {
            c = c.and("resource_id = ?", text(id));
        }
        if let Some(from) = self.from {
            c = c.and("created_at >= ?", Arg::Time(from));
        }
        if let Some(to) = self.to {
            c = c.and("created_at < ?", Arg::Time(to));
        }
        c
    }
}

/// A page of the merchant's entries matching `f`, newest first; `None` if the window's cursor
/// is not one of the merchant's entries.
pub async fn list(
    store: &Store,
    merchant_id: &str,
    f: &Filter,
    window: Window,
) -> Result<Option<Page<Entry>>, sqlx::Error> {
    table::filtered(store, merchant_id, &f.conditions(), window).await
}

/// The entries of [`list`] without the count (for an export walking the whole log).
pub async fn read(
    store: &Store,
    merchant_id: &str,
    f: &Filter,
    window: &Window,
) -> Result<Option<(Vec<Entry>, bool)>, sqlx::Error> {
    table::read(store, merchant_id, &f.conditions(), window).await
}

/// Appends `entry`, when there is one, in `tx` (the change's transaction).
pub async fn append(tx: &mut Tx, entry: Option<&Entry>) -> Result<(), sqlx::Error> {
    match entry {
        Some(e) => insert_all(tx, std::slice::from_ref(e)).await,
        None => Ok(()),
    }
}
