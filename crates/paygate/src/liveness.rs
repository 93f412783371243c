//! Ownership that dies with its owner: every process has an identity (a random id, and where it
//! runs) and beats every `PROCESS_HEARTBEAT_MS`; what it holds (its workers' job leases, its
//! requests' idempotency keys, its processor leases) names it. A process whose beat is older
//! than `PROCESS_DEAD_AFTER_MS` by the database's clock, or whose process is gone from this
//! host (its pid no longer runs with the same start time), is dead: the first live process to
//! notice marks it so (one conditional update, so one process frees each) and frees what it
//! held at once. The job and key leases stay as the backstop for a process alive but stuck
//! for less than the dead-owner time: it keeps its claims (its beats resume when it does).
//!
//! A process that restarts finds its previous incarnation gone from this host at its first
//! pass, so on the embedded backends (SQLite: one process) whatever it held is free at start.
//!
//! Written here: the liveness rule spans the database, the queue and this host's process table;
//! no crate keeps such a registry.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use crate::{
    queue::Queue,
    store::{
        Store,
        processes::{self, Identity},
    },
};

/// A process's liveness: its beat, and the freeing of dead owners' claims.
pub struct Liveness {
    store: Store,
    queue: Arc<dyn Queue>,
    me: Identity,
    every: Duration,
    dead_after: Duration,
}

impl Liveness {
    /// The liveness of the process `id` (`kind`: `all`, `serve`, `worker`), beating `every`,
    /// taking silence for `dead_after` as death.
    pub fn new(
        store: Store,
        queue: Arc<dyn Queue>,
        (id, kind): (&str, &str),
        every: Duration,
        dead_after: Duration,
    ) -> Self {
        Self {
            store,
            queue,
            me: identity(id, kind),
            every,
            dead_after,
        }
    }

    /// A new process id.
    pub fn new_id() -> String {
        format!("process-{}", uuid::Uuid::new_v4().simple())
    }

    /// This process's id: what its claims are held under.
    pub fn id(&self) -> &str {
        &self.me.id
    }

    /// Registers the process and frees what dead owners held (a previous incarnation's, first).
    pub async fn register(&self) -> anyhow::Result<()> {
        processes::register(&self.store, &self.me).await?;
        self.reap().await?;
        Ok(())
    }

    /// Beats and reaps until `shutdown`, then forgets the process (its workers have handed
    /// back what they held by then).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.every) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
            match processes::beat(&self.store, &self.me.id).await {
                Ok(true) => {}
                // Removed (a restart of the database, say): register again.
                Ok(false) => {
                    if let Err(e) = processes::register(&self.store, &self.me).await {
                        tracing::warn!(error = %e, "process registration failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "process heartbeat failed"),
            }
            if let Err(e) = self.reap().await {
                tracing::warn!(error = %e, "freeing dead processes' claims failed");
            }
        }
    }

    /// Forgets this process after a clean stop.
    pub async fn stop(&self) {
        if let Err(e) = processes::remove(&self.store, &self.me.id).await {
            tracing::warn!(error = %e, "process not unregistered");
        }
    }

    /// Marks dead the silent processes and those gone from this host, and frees what they
    /// held. Returns how many died.
    pub async fn reap(&self) -> anyhow::Result<usize> {
        let mut dead = processes::mark_silent_dead(&self.store, self.dead_after).await?;
        if self.me.start_ticks > 0 {
            for (id, pid, ticks) in processes::on_host(&self.store, &self.me).await? {
                if !running(pid, ticks) && processes::mark_dead(&self.store, &id).await? {
                    dead.push(id);
                }
            }
        }
        for id in &dead {
            let freed = processes::free_claims(&self.store, id).await?;
            // Its jobs go back to the queue, due now (the queue knows which it held).
            self.queue.release(id).await?;
            tracing::warn!(
                process = %id,
                idempotency_keys = freed.keys,
                processor_leases = freed.leases,
                "a process died: what it held is free"
            );
        }
        if !dead.is_empty() {
            processes::purge_dead(&self.store).await?;
        }
        Ok(dead.len())
    }
}

/// This process's identity: `id`, the host's name and boot, its pid and start time.
fn identity(id: &str, kind: &str) -> Identity {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let pid = std::process::id();
    Identity {
        id: id.to_owned(),
        kind: kind.to_owned(),
        host: read("/proc/sys/kernel/hostname"),
        boot_id: read("/proc/sys/kernel/random/boot_id"),
        pid: i64::from(pid),
        start_ticks: start_ticks(pid).unwrap_or(0),
    }
}

/// A process's start time on this host, clock ticks since boot (`/proc/PID/stat`, field 22).
fn start_ticks(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let after_name = stat.rsplit_once(')')?.1;
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process `pid` started at `ticks` still runs on this host.
fn running(pid: i64, ticks: i64) -> bool {
    u32::try_from(pid)
        .ok()
        .and_then(start_ticks)
        .is_some_and(|t| t == ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_made_up_one_does_not() {
        let me = identity("test-1", "test");
        assert!(me.start_ticks > 0, "{me:?}");
        assert!(running(me.pid, me.start_ticks));
        assert!(!running(me.pid, me.start_ticks + 1), "another start time");
        assert!(!running(i64::from(u32::MAX), 1));
    }
}
