//! What every service works with: the store, the queue, the processor and the clock. The
//! composition root (`app.rs`) builds one and hands it to each service; services never see the
//! HTTP layer or each other's state.

use std::sync::Arc;

use crate::{clock::Clock, processor::Connector, queue::Queue, store::Store};

/// A service's context. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub queue: Arc<dyn Queue>,
    pub connector: Arc<dyn Connector>,
    pub clock: Clock,
    /// This process's id: the owner its claims (processor leases, idempotency keys, job
    /// leases) are held under, freed at once if it dies (see `liveness`).
    pub owner: Arc<str>,
    /// Write batches of each kind in flight at once (see `batch`).
    pub write_lanes: usize,
}

impl Ctx {
    /// The current time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
