//! Idempotent requests, from the services' side: a request that holds an idempotency key
//! hands its service a [`Replay`], and the service stores the response the API will give in
//! the same transaction as the change that response reports. So a key is `done` exactly when
//! its change committed: a process that dies before the commit leaves nothing but a `running`
//! key (taken over later, and the request runs once), one that dies after it leaves the
//! response to replay.

use std::sync::Arc;

use crate::store::{
    Tx,
    idempotency::{self, Held, Stored},
};

/// The response the API gives for a result of type `T` (status and body bytes).
pub type Render<T> = Arc<dyn Fn(&T) -> Stored + Send + Sync>;

/// How to store the response for a result of type `T`.
pub struct Replay<T> {
    /// The claim on the key.
    pub held: Arc<Held>,
    /// How the API renders the result.
    pub render: Render<T>,
}

impl<T> Clone for Replay<T> {
    fn clone(&self) -> Self {
        Self {
            held: self.held.clone(),
            render: self.render.clone(),
        }
    }
}

/// The key was taken over by another request while this one ran: its change must not commit.
#[derive(Debug, thiserror::Error)]
#[error("the idempotency key was taken over by another request")]
pub struct KeyTakenOver;

/// Why storing a response failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    TakenOver(#[from] KeyTakenOver),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

impl<T> Replay<T> {
    /// The response for `value`.
    pub fn response(&self, value: &T) -> Stored {
        (self.render)(value)
    }
}

/// Stores the response for `value` in `tx` when the request holds a key (`replay`).
pub async fn store_in<T>(
    tx: &mut Tx,
    replay: Option<&Replay<T>>,
    value: &T,
) -> Result<(), StoreError> {
    let Some(r) = replay else {
        return Ok(());
    };
    if idempotency::complete_in(tx, &r.held, &r.response(value)).await? {
        Ok(())
    } else {
        Err(KeyTakenOver.into())
    }
}
