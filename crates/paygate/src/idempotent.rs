//! Idempotent requests, from the services' side: a request that holds an idempotency key
//! hands its service a [`Replay`], and the service stores the response the API will give in
//! the same transaction as the change that response reports. So a key is `done` exactly when
//! its change committed: a process that dies before the commit leaves nothing but a `running`
//! key (taken over later, and the request runs once), one that dies after it leaves the
//! response to replay.

use std::{collections::HashSet, sync::Arc};

use crate::store::{
    Tx,
    idempotency::{self, Held, Stored},
    table::{self, Table},
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

/// Declares a service's error enum: its own variants, then the two that every service writing
/// with idempotency keys has (`KeyTakenOver`, `Store`), with the conversions its writes need: a
/// writer that stopped reads as a closed pool, a failed [`store_in`] as either variant.
macro_rules! service_error {
    ($(#[$meta:meta])* pub enum $name:ident { $($variants:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, thiserror::Error)]
        pub enum $name {
            $($variants)*
            #[error(transparent)]
            KeyTakenOver(#[from] $crate::idempotent::KeyTakenOver),
            #[error(transparent)]
            Store(#[from] sqlx::Error),
        }

        impl From<$crate::batch::Stopped> for $name {
            fn from(_: $crate::batch::Stopped) -> Self {
                Self::Store(sqlx::Error::PoolClosed)
            }
        }

        impl From<$crate::idempotent::StoreError> for $name {
            fn from(e: $crate::idempotent::StoreError) -> Self {
                match e {
                    $crate::idempotent::StoreError::TakenOver(t) => t.into(),
                    $crate::idempotent::StoreError::Store(s) => s.into(),
                }
            }
        }
    };
}
pub(crate) use service_error;

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

/// [`store_in`] for a batch of new rows, in one statement: stores the response of each
/// successful answer whose request holds a key. An answer whose key was taken over becomes
/// [`KeyTakenOver`] and its row is deleted from `tx`: its change must not commit.
pub async fn store_all_in<'a, T: Table + 'a, E: From<KeyTakenOver> + 'a>(
    tx: &mut Tx,
    batch: impl IntoIterator<Item = (Option<&'a Replay<T>>, &'a mut Result<T, E>)>,
) -> Result<(), sqlx::Error> {
    let mut batch: Vec<_> = batch.into_iter().collect();
    let stored: Vec<(&Held, Stored)> = batch
        .iter()
        .filter_map(|(replay, answer)| {
            let (r, value) = (replay.as_ref()?, answer.as_ref().ok()?);
            Some((&*r.held, r.response(value)))
        })
        .collect();
    let done: HashSet<(String, String)> = idempotency::complete_all_in(tx, &stored)
        .await?
        .into_iter()
        .collect();
    let mut lost = Vec::new();
    for (replay, answer) in &mut batch {
        if let (Some(r), Ok(row)) = (replay, &**answer)
            && !done.contains(&(r.held.merchant_id.clone(), r.held.key.clone()))
        {
            lost.push(row.id().to_owned());
            **answer = Err(KeyTakenOver.into());
        }
    }
    table::delete_in::<T>(tx, &lost).await
}
