//! Group commit: a [`Batcher`] collects the requests that arrive together and hands them, as
//! one batch, to one call of its function, which writes them all in one transaction with
//! multi-row statements and answers each from what its own row did.
//!
//! How long a request may wait: not at all when the system is idle (a lone request is a batch
//! of one and goes at once); under load, for the batch ahead of it in its lane to commit, while
//! it collects with the others that arrive meanwhile (up to `max` per batch). Requests are
//! answered only after their batch committed. A batch runs on a task of its own, so it runs to
//! completion (commit, then handing its jobs to the queue) even when the request that asked for
//! it is gone: a client that disconnects cannot leave half of its change behind. A batch that
//! panics answers its requests with `None`.
//!
//! Why not a crate: the batching crates on crates.io batch by time or size for throughput
//! (buffering a lone request), where this needs "whatever is waiting, now" with per-request
//! answers and several lanes; it is these few lines.
//!
//! Measured (Prometheus, by `kind`): how long each request waited to be taken into a batch
//! (`paygate_write_batch_wait_seconds`), the batch sizes (`paygate_write_batch_size`), how long
//! a batch ran (`paygate_write_batch_seconds`), and each stage of it, statement by statement,
//! commit and hand-off to the queue (`paygate_write_stage_seconds`, by `stage`, from
//! [`Stages`]).

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{Mutex, mpsc, oneshot};

struct Pending<I, O> {
    item: I,
    reply: oneshot::Sender<O>,
    since: Instant,
}

/// Batches concurrent requests of type `I` into calls of one function answering `O` each.
pub struct Batcher<I, O> {
    sender: mpsc::UnboundedSender<Pending<I, O>>,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts `lanes` batch loops (several batches in flight at once: one per database
    /// connection they use), each taking up to `max` waiting requests per batch and running
    /// `run` on them. `run` returns one answer per request, in order. `kind` names the writes in
    /// the metrics.
    pub fn new<F, Fut>(kind: &'static str, max: usize, lanes: usize, run: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        let (sender, receiver) = mpsc::unbounded_channel::<Pending<I, O>>();
        let receiver = Arc::new(Mutex::new(receiver));
        let run = Arc::new(run);
        for _ in 0..lanes.max(1) {
            let (receiver, run) = (receiver.clone(), run.clone());
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut receiver = receiver.lock().await;
                        let Some(first) = receiver.recv().await else {
                            return;
                        };
                        let mut batch = vec![first];
                        while batch.len() < max {
                            match receiver.try_recv() {
                                Ok(p) => batch.push(p),
                                Err(_) => break,
                            }
                        }
                        batch
                    };
                    let taken = Instant::now();
                    let waited =
                        metrics::histogram!("paygate_write_batch_wait_seconds", "kind" => kind);
                    for p in &batch {
                        waited.record(taken.duration_since(p.since).as_secs_f64());
                    }
                    metrics::histogram!("paygate_write_batch_size", "kind" => kind)
                        .record(batch.len() as f64);
                    let (items, replies): (Vec<I>, Vec<oneshot::Sender<O>>) =
                        batch.into_iter().map(|p| (p.item, p.reply)).unzip();
                    let run = run.clone();
                    // Its own task: a panic is contained to this batch.
                    if let Ok(answers) = tokio::spawn(async move { run(items).await }).await {
                        metrics::histogram!("paygate_write_batch_seconds", "kind" => kind)
                            .record(taken.elapsed().as_secs_f64());
                        for (reply, answer) in replies.into_iter().zip(answers) {
                            let _ = reply.send(answer);
                        }
                    }
                }
            });
        }
        Self { sender }
    }

    /// Submits a request; its answer once its batch committed (`None` if the batch failed
    /// without answering).
    pub async fn submit(&self, item: I) -> Option<O> {
        let (reply, answer) = oneshot::channel();
        let since = Instant::now();
        self.sender.send(Pending { item, reply, since }).ok()?;
        answer.await.ok()
    }
}

/// Times the stages of one batch: each [`Stages::mark`] records the time since the previous
/// one (or the start) as `paygate_write_stage_seconds{kind, stage}`.
pub struct Stages {
    kind: &'static str,
    last: Instant,
}

impl Stages {
    /// Starts timing a batch of `kind`.
    pub fn start(kind: &'static str) -> Self {
        Self {
            kind,
            last: Instant::now(),
        }
    }

    /// Ends `stage`: records how long it took.
    pub fn mark(&mut self, stage: &'static str) {
        let now = Instant::now();
        let took: Duration = now.duration_since(self.last);
        metrics::histogram!("paygate_write_stage_seconds", "kind" => self.kind, "stage" => stage)
            .record(took.as_secs_f64());
        self.last = now;
    }
}

impl<I: Send + 'static, T: Send + 'static, E: From<Stopped> + Send + 'static>
    Batcher<I, Result<T, E>>
{
    /// [`Batcher::submit`] for a writer that answers results: a batch that failed without
    /// answering answers [`Stopped`].
    pub async fn call(&self, item: I) -> Result<T, E> {
        self.submit(item)
            .await
            .unwrap_or_else(|| Err(Stopped.into()))
    }
}

/// Runs `all` on the whole batch; if its transaction fails, on each request alone, so that a
/// fault answers only the request that caused it.
pub async fn per_request<'a, I, T, E, F, Fut>(ops: &'a [I], all: F) -> Vec<Result<T, E>>
where
    E: From<sqlx::Error> + From<Stopped>,
    F: Fn(&'a [I]) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Result<T, E>>, sqlx::Error>>,
{
    match all(ops).await {
        Ok(answers) => answers,
        Err(e) if ops.len() == 1 => vec![Err(e.into())],
        Err(e) => {
            tracing::warn!(error = %e, batch = ops.len(), "batch failed; writing its requests one by one");
            let mut answers = Vec::with_capacity(ops.len());
            for op in ops.chunks(1) {
                match all(op).await {
                    Ok(mut one) => answers.push(one.pop().unwrap_or(Err(Stopped.into()))),
                    Err(e) => answers.push(Err(e.into())),
                }
            }
            answers
        }
    }
}

/// A writer whose batch loops are gone (the process is stopping).
#[derive(Debug, thiserror::Error)]
#[error("the writer stopped")]
pub struct Stopped;
