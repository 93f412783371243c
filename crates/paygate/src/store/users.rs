//! Dashboard users (a merchant's team), their sessions, and invitations to join.
//!
//! A merchant's first owner is the user with the merchant's own id (created with the merchant;
//! the migration made every existing merchant's sign-in that user). Team changes that could
//! leave a merchant without an owner run in a transaction that first locks the merchant's row,
//! so two owners demoting each other at once cannot both succeed.

use chrono::{DateTime, Utc};

use super::{
    Store, Tx,
    audit_log::{self, Entry},
    merchants, sql,
};

/// A dashboard user. The password hash is never read into it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub merchant_id: String,
    pub email: String,
    pub name: String,
    /// `owner`, `admin`, `developer`, `support` or `viewer`.
    pub role: String,
    pub created_at: DateTime<Utc>,
    /// Whether the user signs in with a second factor.
    pub two_factor: bool,
}

macro_rules! cols {
    () => {
        "id, merchant_id, email, name, role, created_at, totp_secret IS NOT NULL AS two_factor"
    };
}

/// The user with this email (of an active merchant): id and password hash.
pub async fn login_row(
    store: &Store,
    email: &str,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    let sql = "SELECT u.id, u.password_hash FROM users u JOIN merchants m ON m.id = u.merchant_id \
               WHERE lower(u.email) = lower($1) AND m.disabled_reason IS NULL";
    sql!(on_pool(store) => fetch_optional(sql, email))
}

/// The user's password hash.
pub async fn password_hash(store: &Store, user_id: &str) -> Result<Option<String>, sqlx::Error> {
    let sql = "SELECT password_hash FROM users WHERE id = $1";
    let row: Option<(Option<String>,)> = sql!(on_pool(store) => fetch_optional(sql, user_id))?;
    Ok(row.and_then(|(h,)| h))
}

/// Sets the user's password hash (an empty one removes the password); with `if_unset`, only
/// where none is set. A changed password ends the user's sessions at once, except `keep` (the
/// session that changed it). Returns whether the user's row changed.
pub async fn set_password_hash(
    store: &Store,
    user_id: &str,
    hash: &str,
    if_unset: bool,
    keep: Option<&str>,
    now: DateTime<Utc>,
    audit: Option<&Entry>,
) -> Result<bool, sqlx::Error> {
    let sql = if if_unset {
        "UPDATE users SET password_hash = $2, updated_at = $3 \
         WHERE id = $1 AND password_hash IS NULL"
    } else {
        "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1"
    };
    let hash = Some(hash).filter(|h| !h.is_empty());
    let mut tx = store.begin().await?;
    let changed = sql!(on_tx(&mut tx) => execute(sql, user_id, hash, now))? == 1;
    if changed && !if_unset {
        let sql = "DELETE FROM sessions WHERE user_id = $1 AND id <> $2";
        sql!(on_tx(&mut tx) => execute(sql, user_id, keep.unwrap_or_default()))?;
    }
    audit_log::append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(changed)
}

/// The merchant's users, oldest first.
pub async fn list(store: &Store, merchant_id: &str) -> Result<Vec<User>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        cols!(),
        " FROM users WHERE merchant_id = $1 ORDER BY created_at, id"
    );
    sql!(on_pool(store) => fetch_all(sql, merchant_id))
}

/// The user with this id.
pub async fn get(store: &Store, id: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = concat!("SELECT ", cols!(), " FROM users WHERE id = $1");
    sql!(on_pool(store) => fetch_optional(sql, id))
}

/// The user with this email, of any merchant.
pub async fn by_email(store: &Store, email: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        cols!(),
        " FROM users WHERE lower(email) = lower($1)"
    );
    sql!(on_pool(store) => fetch_optional(sql, email))
}

/// What a change to a team did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeamChange {
    Done,
    /// No such user of this merchant.
    NotFound,
    /// The change would leave the merchant without an owner.
    LastOwner,
}

/// Reads the user inside `tx` after locking the merchant, and whether another owner remains
/// besides them.
async fn locked_user(
    tx: &mut Tx,
    merchant_id: &str,
    id: &str,
) -> Result<Option<(String, bool)>, sqlx::Error> {
    merchants::lock(tx, merchant_id).await?;
    let sql = "SELECT role FROM users WHERE id = $1 AND merchant_id = $2";
    let Some((role,)): Option<(String,)> = sql!(on_tx(tx) => fetch_optional(sql, id, merchant_id))?
    else {
        return Ok(None);
    };
    let sql = "SELECT COUNT(*) FROM users WHERE merchant_id = $1 AND role = 'owner' AND id <> $2";
    let others: i64 = sql!(on_tx(tx) => scalar::fetch_one(sql, merchant_id, id))?;
    Ok(Some((role, others > 0)))
}

/// Gives a user of the merchant another role; the last owner keeps theirs.
pub async fn set_role(
    store: &Store,
    merchant_id: &str,
    id: &str,
    role: &str,
    now: DateTime<Utc>,
    audit: Option<&Entry>,
) -> Result<TeamChange, sqlx::Error> {
    let mut tx = store.begin().await?;
    let Some((current, other_owner)) = locked_user(&mut tx, merchant_id, id).await? else {
        return Ok(TeamChange::NotFound);
    };
    if current == "owner" && role != "owner" && !other_owner {
        return Ok(TeamChange::LastOwner);
    }
    let sql = "UPDATE users SET role = $3, updated_at = $4 WHERE id = $1 AND merchant_id = $2";
    sql!(on_tx(&mut tx) => execute(sql, id, merchant_id, role, now))?;
    audit_log::append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(TeamChange::Done)
}

/// Removes a user of the merchant, ending their sessions at once; the last owner stays.
pub async fn remove(
    store: &Store,
    merchant_id: &str,
    id: &str,
    audit: Option<&Entry>,
) -> Result<TeamChange, sqlx::Error> {
    let mut tx = store.begin().await?;
    let Some((current, other_owner)) = locked_user(&mut tx, merchant_id, id).await? else {
        return Ok(TeamChange::NotFound);
    };
    if current == "owner" && !other_owner {
        return Ok(TeamChange::LastOwner);
    }
    let sql = "DELETE FROM sessions WHERE user_id = $1";
    sql!(on_tx(&mut tx) => execute(sql, id))?;
    let sql = "DELETE FROM users WHERE id = $1 AND merchant_id = $2";
    sql!(on_tx(&mut tx) => execute(sql, id, merchant_id))?;
    audit_log::append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(TeamChange::Done)
}

/// One of a user's live sessions, as their account page lists it. `handle` names it in forms
/// (the first 16 hex digits of its token's digest).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRow {
    pub handle: String,
    pub user_agent: Option<String>,
    pub address: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// The user's live sessions, the most recently started first.
pub async fn sessions(
    store: &Store,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    let sql = "SELECT substr(id, 1, 16) AS handle, user_agent, address, created_at, last_seen_at \
               FROM sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC, id";
    sql!(on_pool(store) => fetch_all(sql, user_id, now))
}

/// Ends the user's session named `handle`; whether there was one.
pub async fn end_session(
    store: &Store,
    user_id: &str,
    handle: &str,
    audit: Option<&Entry>,
) -> Result<bool, sqlx::Error> {
    if handle.len() != 16 {
        return Ok(false);
    }
    let sql = "DELETE FROM sessions WHERE user_id = $1 AND substr(id, 1, 16) = $2";
    let mut tx = store.begin().await?;
    if sql!(on_tx(&mut tx) => execute(sql, user_id, handle))? == 0 {
        return Ok(false);
    }
    audit_log::append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// Records that the session was used at `now` (at most once per `every`: a page view is not a
/// write each time).
pub async fn touch_session(
    store: &Store,
    digest: &str,
    now: DateTime<Utc>,
    every: chrono::Duration,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE sessions SET last_seen_at = $2 \
               WHERE id = $1 AND (last_seen_at IS NULL OR last_seen_at < $3)";
    sql!(on_write(store) => execute(sql, digest, now, now - every))?;
    Ok(())
}

/// An invitation to join a merchant's team. `id` is the digest of its link's token.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Invitation {
    pub id: String,
    pub merchant_id: String,
    pub email: String,
    pub role: String,
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

macro_rules! invitation_cols {
    () => {
        "id, merchant_id, email, role, invited_by, created_at, expires_at"
    };
}

/// Stores an invitation.
pub async fn invite(
    store: &Store,
    i: &Invitation,
    audit: Option<&Entry>,
) -> Result<(), sqlx::Error> {
    let sql = concat!(
        "INSERT INTO invitations (",
        invitation_cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
    );
    let mut tx = store.begin().await?;
    sql!(on_tx(&mut tx) => execute(
        sql, &i.id, &i.merchant_id, &i.email, &i.role, &i.invited_by, i.created_at, i.expires_at,
    ))?;
    audit_log::append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

/// The merchant's invitations still open at `now`, the newest first.
pub async fn open_invitations(
    store: &Store,
    merchant_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Invitation>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        invitation_cols!(),
        " FROM invitations WHERE merchant_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL \
         AND expires_at > $2 ORDER BY created_at DESC, id"
    );
    sql!(on_pool(store) => fetch_all(sql, merchant_id, now))
}

/// The open invitation whose token has this digest.
pub async fn open_invitation(
    store: &Store,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<Option<Invitation>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        invitation_cols!(),
        " FROM invitations WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL \
         AND expires_at > $2"
    );
    sql!(on_pool(store) => fetch_optional(sql, digest, now))
}

/// Revokes the merchant's open invitation named `handle` (the first 16 hex digits of its id).
pub async fn revoke_invitation(
    store: &Store,
    merchant_id: &str,
    handle: &str,
    now: DateTime<Utc>,
    audit: Option<&Entry>,
) -> Result<bool, sqlx::Error> {
    if handle.len() != 16 {
        return Ok(false);
    }
    let sql = "UPDATE invitations SET revoked_at = $3 WHERE merchant_id = $1 \
               AND substr(id, 1, 16) = $2 AND accepted_at IS NULL AND revoked_at IS NULL";
    let mut tx = store.begin().await?;
    if sql!(on_tx(&mut tx) => execute(sql, merchant_id, handle, now))? == 0 {
        return Ok(false);
    }
    audit_log::append(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// What accepting an invitation did.
#[derive(Debug)]
pub enum Accepted {
    /// The new user.
    Joined(User),
    /// Used, revoked or expired (or never issued).
    Gone,
    /// Someone signs in with that email already.
    EmailTaken,
}

/// Accepts the open invitation whose token has this digest, once: takes it (a conditional
/// update) and creates its user with `name` and `password_hash`, in one transaction.
pub async fn accept(
    store: &Store,
    digest: &str,
    user_id: &str,
    name: &str,
    password_hash: &str,
    now: DateTime<Utc>,
    audit: Option<&Entry>,
) -> Result<Accepted, sqlx::Error> {
    let mut tx = store.begin().await?;
    let sql = "UPDATE invitations SET accepted_at = $2 WHERE id = $1 AND accepted_at IS NULL \
               AND revoked_at IS NULL AND expires_at > $2 RETURNING merchant_id, email, role";
    let Some((merchant_id, email, role)): Option<(String, String, String)> =
        sql!(on_tx(&mut tx) => fetch_optional(sql, digest, now))?
    else {
        return Ok(Accepted::Gone);
    };
    let sql = concat!(
        "INSERT INTO users (id, merchant_id, email, name, role, password_hash, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ",
        cols!()
    );
    let inserted = sql!(on_tx(&mut tx) => fetch_one(
        sql, user_id, &merchant_id, &email, name, &role, password_hash, now,
    ));
    match inserted {
        Ok(user) => {
            audit_log::append(&mut tx, audit).await?;
            tx.commit().await?;
            Ok(Accepted::Joined(user))
        }
        Err(e) if super::is_unique_violation(&e, "users_email_key") => Ok(Accepted::EmailTaken),
        Err(e) => Err(e),
    }
}
