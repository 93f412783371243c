//! Webhooks: from events to signed deliveries with retries.
//!
//! Guarantees:
//! - Every event of a merchant with a webhook URL becomes a delivery row in the transaction
//!   that wrote the event ([`record`]); its job goes to the `webhooks` queue.
//! - The payload `{"id","event","timestamp","data"}` is serialised once, stored, and sent
//!   byte for byte on every attempt; `X-Webhook-Signature` signs those bytes, and the Standard
//!   Webhooks headers (`webhook-id` = the event id, stable across attempts) are re-signed with
//!   the attempt's timestamp.
//! - 5 attempts on the schedule of SPEC A6, kept in `next_retry_at`, so a restart resumes it;
//!   then `failed`. An attempt is recorded with a conditional update on the attempt count, so
//!   two workers never record the same attempt twice.
//! - Delivery is at-least-once: a receiver de-duplicates by `webhook-id`.

pub mod client;
pub mod endpoints;
pub mod lanes;

use client::WebhookClient;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use paygate_core::{DeliveryStatus, webhook};
use serde_json::json;

use crate::{
    audit::{self, Actor},
    batch::{Batcher, per_request},
    context::Ctx,
    idempotent::{self, Replay},
    queue::{Existing, JobHandler, JobSpec, Queue, WEBHOOKS, worker::Slot},
    store::{
        Store, Tx, endpoints as endpoint_rows,
        events::{self, Event},
        merchants::{self, Merchant},
        now,
        table::{self, Page, Window},
        webhooks::{self as rows, AttemptRow, Delivery, NewDelivery, Sendable},
    },
};

idempotent::service_error! {
    /// Webhook errors.
    pub enum Error {
        #[error("webhook delivery not found")]
        NotFound,
        #[error("{0}")]
        InvalidUrl(String),
        #[error("no webhook URL is configured")]
        NotConfigured,
        #[error("webhook endpoint not found")]
        EndpointNotFound,
        #[error("{0}")]
        InvalidEndpoint(String),
        #[error("the merchant has its {0} webhook endpoints already")]
        TooManyEndpoints(i64),
        #[error("a replay of this endpoint is running: {0}")]
        ReplayRunning(String),
        #[error("the daily replay cap of {cap} deliveries would be passed ({left} left)")]
        ReplayCap { cap: i64, left: i64 },
    }
}

/// A new delivery's id: a UUID ordered by time (version 7), so that a batch's deliveries land
/// on the same pages of the deliveries' index instead of one random page each.
pub(crate) fn delivery_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The body of a delivery: serialised once, sent as is on every attempt. `sequence` is the
/// event's sequence number: larger for every later event of the same resource.
pub fn payload(event: &Event, sequence: i64) -> String {
    json!({
        "id": event.id,
        "event": event.event_type,
        "timestamp": event.created_at.timestamp(),
        "sequence": sequence,
        "data": event.data,
    })
    .to_string()
}

/// Writes `events` and, for a merchant with a webhook URL, a delivery per event, and stages
/// their jobs in the caller's transaction. Returns the jobs to dispatch after commit.
pub async fn record(
    queue: &dyn Queue,
    tx: &mut Tx,
    events: &[Event],
) -> Result<Vec<JobSpec>, sqlx::Error> {
    let jobs = record_events(tx, events).await?;
    queue.stage(tx, &jobs).await?;
    Ok(jobs)
}

/// Writes `events` and their deliveries: one to the merchant's default endpoint (its webhook
/// URL, when set) and one to each of its enabled endpoints that wants the event's type (one
/// statement each, for any merchants). Returns the delivery jobs, not staged (for a caller that
/// stages them with jobs of its own, in one go).
pub async fn record_events(tx: &mut Tx, events: &[Event]) -> Result<Vec<JobSpec>, sqlx::Error> {
    let sequences = events::insert(tx, events).await?;
    let at = now();
    let payloads: Vec<(String, i64)> = events
        .iter()
        .map(|e| {
            let seq = sequences.get(&e.id).copied().unwrap_or_default();
            (payload(e, seq), seq)
        })
        .collect();
    let delivery =
        |e: &Event, (payload, seq): &(String, i64), endpoint_id: Option<String>| NewDelivery {
            id: delivery_id(),
            merchant_id: e.merchant_id.clone(),
            event_id: e.id.clone(),
            event: e.event_type.clone(),
            payload: payload.clone(),
            endpoint_id,
            sequence: *seq,
        };
    let defaults: Vec<NewDelivery> = events
        .iter()
        .zip(&payloads)
        .map(|(e, p)| delivery(e, p, None))
        .collect();
    let mut ids = rows::insert_if_configured(tx, &defaults, at).await?;
    let merchants: Vec<String> = events.iter().map(|e| e.merchant_id.clone()).collect();
    let targets = endpoint_rows::enabled_for(tx, &merchants).await?;
    if !targets.is_empty() {
        let to_endpoints: Vec<NewDelivery> = events
            .iter()
            .zip(&payloads)
            .flat_map(|(e, p)| {
                targets
                    .iter()
                    .filter(|(_, m, wanted)| {
                        *m == e.merchant_id && webhook::wants(wanted, &e.event_type)
                    })
                    .map(|(id, ..)| delivery(e, p, Some(id.clone())))
                    .collect::<Vec<_>>()
            })
            .collect();
        ids.extend(rows::insert_for_endpoints(tx, &to_endpoints, at).await?);
    }
    Ok(ids
        .into_iter()
        .map(|id| JobSpec::at(WEBHOOKS, id, at))
        .collect())
}

/// The webhooks service: deliveries (the `webhooks` queue's jobs), manual retries, the
/// merchant's webhook configuration, and the test webhook.
pub struct Webhooks {
    ctx: Ctx,
    client: WebhookClient,
    /// Delays before attempts 1–5.
    schedule: Vec<Duration>,
    writer: Writer,
    /// The most endpoints a merchant may have (besides its default one).
    max_endpoints: i64,
    /// How long every attempt to an endpoint may fail before it is disabled.
    disable_after: chrono::Duration,
    /// The attempts in flight per destination, in this process, and the deliveries waiting.
    lanes: Arc<lanes::Lanes>,
    /// The most deliveries a merchant's replays may queue in 24 hours.
    replay_daily_max: i64,
}

/// A delivery that waited longer than this for a lane is read again before its attempt (it
/// may have been retried, its endpoint disabled or deleted, its secret rotated meanwhile).
const READ_AGAIN_AFTER: Duration = Duration::from_secs(1);

#[async_trait::async_trait]
impl JobHandler for Webhooks {
    async fn run(&self, delivery_id: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
        self.deliver(delivery_id, &mut Slot::detached()).await
    }

    async fn run_in(
        &self,
        delivery_id: &str,
        slot: &mut Slot,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        self.deliver(delivery_id, slot).await
    }

    async fn ready(&self) {
        self.lanes.ready().await;
    }
}

impl Webhooks {
    /// The service over `ctx`, sending with `client` on `schedule`.
    pub fn new(ctx: Ctx, client: WebhookClient, schedule: Vec<Duration>) -> Self {
        let writer = Writer::new(ctx.store.clone(), 1);
        Self {
            ctx,
            client,
            schedule,
            writer,
            max_endpoints: 16,
            disable_after: chrono::Duration::days(5),
            lanes: Arc::new(lanes::Lanes::new(lanes::Settings {
                start: 16,
                max: 256,
                queue: 1000,
                pace: 256,
            })),
            replay_daily_max: 100_000,
        }
    }

    /// The most deliveries a merchant's replays may queue in 24 hours
    /// (`WEBHOOK_REPLAY_DAILY_MAX`; 100,000 by default).
    pub fn with_replay_daily_max(mut self, max: u32) -> Self {
        self.replay_daily_max = i64::from(max);
        self
    }

    /// The lanes per destination: the limit each starts at (`WEBHOOK_ENDPOINT_CONCURRENCY`,
    /// 16), its maximum (`WEBHOOK_ENDPOINT_MAX_CONCURRENCY`, 256), the deliveries waiting in
    /// memory per destination (`WEBHOOK_ENDPOINT_QUEUE`, 1,000), and how many may wait for
    /// live destinations before claims pause (the worker's slots).
    pub fn with_lanes(mut self, settings: lanes::Settings) -> Self {
        self.lanes = Arc::new(lanes::Lanes::new(settings));
        self
    }

    /// Where a destination (an endpoint id, or `merchant:<id>` for a merchant's default URL)
    /// stands in this process: its limit, attempts in flight, deliveries waiting and held.
    pub fn destination(&self, key: &str) -> Option<lanes::Stats> {
        self.lanes.stats(key)
    }

    /// How long every attempt to an endpoint may fail before it is disabled
    /// (`WEBHOOK_ENDPOINT_DISABLE_AFTER`; 5 days by default).
    pub fn with_disable_after(mut self, after: Duration) -> Self {
        self.disable_after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        self
    }

    /// The most endpoints a merchant may have (`WEBHOOK_ENDPOINTS_MAX`; 16 by default).
    pub fn with_max_endpoints(mut self, max: u32) -> Self {
        self.max_endpoints = i64::from(max);
        self
    }

    /// Runs one attempt of a delivery. Returns when to run again (`None`: finished, or not
    /// pending). Idempotent: a delivery that is not pending is left alone, and one whose retry is
    /// not due yet is rescheduled. When its destination's lanes are all busy it waits for one
    /// without `slot`, or, when too many wait already, goes back to the store until the
    /// destination drains (no attempt counted either way).
    pub async fn deliver(
        &self,
        id: &str,
        slot: &mut Slot,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        let Some(mut sendable) = self.writer.load(id.to_owned()).await? else {
            return Ok(None);
        };
        if let Some(later) = self.not_now(&sendable) {
            return Ok(later);
        }
        let destination = self.lanes.destination(&destination_key(&sendable.delivery));
        let lane = match destination.enter(id) {
            lanes::Entry::Lane(lane) => lane,
            lanes::Entry::Full => {
                metrics::counter!("paygate_webhook_deliveries_held_total").increment(1);
                let d = &sendable.delivery;
                let due = d.next_retry_at.unwrap_or(d.created_at);
                return Ok(Some(destination.overflow(id, due, self.ctx.now())));
            }
            lanes::Entry::Wait(waiter) => {
                slot.release();
                let since = std::time::Instant::now();
                let lane = tokio::select! {
                    lane = waiter.lane() => lane,
                    () = slot.stopping() => return Ok(Some(self.ctx.now())),
                };
                if since.elapsed() > READ_AGAIN_AFTER {
                    let Some(fresh) = self.writer.load(id.to_owned()).await? else {
                        return Ok(None);
                    };
                    if let Some(later) = self.not_now(&fresh) {
                        return Ok(later);
                    }
                    sendable = fresh;
                }
                lane
            }
        };
        let d = &sendable.delivery;
        let previous = sendable.previous_secret.as_deref().filter(|_| {
            sendable
                .previous_until
                .is_some_and(|until| until > self.ctx.now())
        });
        let response = match &sendable.url {
            Some(url) => self.send(&sendable.secret, previous, url, d).await,
            None => client::Response {
                code: None,
                body: "no webhook URL is configured".into(),
                retry_after: None,
                duration: Duration::ZERO,
            },
        };
        let back = lane.finish(lanes::Answer::of(response.code));
        self.hand_back(back);
        let attempts = u32::try_from(d.attempts).unwrap_or(0) + 1;
        let at = self.ctx.now();
        let success = response.code.is_some_and(|c| (200..300).contains(&c));
        let next = if success {
            None
        } else {
            webhook::next_delay(&self.schedule, attempts, response.retry_after)
                .map(|delay| at + delay)
        };
        let status = match (success, next) {
            (true, _) => DeliveryStatus::Success,
            (false, Some(_)) => DeliveryStatus::Pending,
            (false, None) => DeliveryStatus::Failed,
        };
        let attempt = AttemptRow {
            id: id.to_owned(),
            previous: d.attempts,
            cycle: d.cycle,
            at,
            status,
            next_retry_at: next,
            response_code: response.code.map(i32::from),
            response_body: response.body,
            duration_ms: i64::try_from(response.duration.as_millis()).unwrap_or(i64::MAX),
        };
        metrics::counter!(
            "paygate_webhook_deliveries_total",
            "outcome" => if success { "success" } else { "failure" },
            "attempt" => attempts.to_string(),
        )
        .increment(1);
        if !self.writer.record(attempt).await? {
            // Another worker recorded this attempt first (its schedule stands), or a manual retry
            // started a new cycle while this attempt was in flight (its job runs again).
            return Ok(None);
        }
        tracing::info!(delivery = %id, event = %d.event, attempt = attempts, code = ?response.code, %status, "webhook attempt");
        if let Some(endpoint) = &d.endpoint_id
            && let Err(e) = self
                .endpoint_outcome(&d.merchant_id, endpoint, success)
                .await
        {
            tracing::warn!(error = %e, endpoint = %endpoint, "endpoint health not recorded");
        }
        Ok(next)
    }

    /// Why a delivery is not attempted now: `Some(None)`, it is finished; `Some(Some(at))`,
    /// look again at `at`; `None`, attempt it.
    fn not_now(&self, sendable: &Sendable) -> Option<Option<DateTime<Utc>>> {
        let d = &sendable.delivery;
        if d.status != DeliveryStatus::Pending {
            return Some(None);
        }
        if sendable.enabled == Some(false) {
            // Its endpoint is disabled: held, unattempted, until it is enabled again (which
            // queues it at once); looked at again meanwhile in case that hand-off was lost.
            return Some(Some(self.ctx.now() + chrono::Duration::minutes(5)));
        }
        match d.next_retry_at {
            Some(due) if due > self.ctx.now() + chrono::Duration::milliseconds(20) => {
                Some(Some(due))
            }
            _ => None,
        }
    }

    /// Hands deliveries held back in the store to the queue again, due when they were due
    /// before (so they are claimed in the order they came).
    fn hand_back(&self, held: Vec<(String, DateTime<Utc>)>) {
        if held.is_empty() {
            return;
        }
        let jobs: Vec<JobSpec> = held
            .into_iter()
            .map(|(id, at)| JobSpec::at(WEBHOOKS, id, at))
            .collect();
        let queue = self.ctx.queue.clone();
        tokio::spawn(async move {
            if let Err(e) = queue.enqueue(&jobs).await {
                // Their holds run out and they are claimed then.
                tracing::warn!(error = %e, held = jobs.len(), "held deliveries not handed back");
            }
        });
    }

    /// Signs and sends the stored payload. During a rotation's overlap `webhook-signature`
    /// carries both signatures (`v1,<new> v1,<previous>`, as Standard Webhooks allows), so a
    /// receiver holding either secret verifies; `X-Webhook-Signature` carries the new one.
    async fn send(
        &self,
        secret: &str,
        previous: Option<&str>,
        url: &str,
        d: &Delivery,
    ) -> client::Response {
        let timestamp = self.ctx.now().timestamp();
        let body = d.payload.as_bytes();
        let mut signatures = webhook::standard_signature(secret, &d.event_id, timestamp, body);
        if let Some(old) = previous {
            signatures.push(' ');
            signatures.push_str(&webhook::standard_signature(
                old,
                &d.event_id,
                timestamp,
                body,
            ));
        }
        let mut headers = vec![
            ("x-webhook-signature", webhook::hex_signature(secret, body)),
            ("webhook-id", d.event_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signatures),
        ];
        if let Some(seq) = d.sequence {
            headers.push(("webhook-sequence", seq.to_string()));
        }
        self.client.post(url, &headers, &d.payload).await
    }

    /// Starts a new cycle of attempts for the merchant's delivery, now. The job runs again even
    /// if an attempt of the old cycle is in flight (it runs once that attempt ends).
    pub async fn retry(
        &self,
        by: &Actor,
        id: &str,
        replay: Option<Replay<Delivery>>,
    ) -> Result<Delivery, Error> {
        let merchant_id = by.merchant_id.as_str();
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(Error::NotFound);
        }
        let mut tx = self.ctx.store.begin().await?;
        let at = self.ctx.now();
        let Some(d) = rows::restart(&mut tx, id, merchant_id, at).await? else {
            return Err(Error::NotFound);
        };
        let job = JobSpec {
            existing: Existing::Again,
            ..JobSpec::at(WEBHOOKS, d.id.clone(), at)
        };
        self.ctx
            .queue
            .stage(&mut tx, std::slice::from_ref(&job))
            .await?;
        idempotent::store_in(&mut tx, replay.as_ref(), &d).await?;
        audit::record_in(&mut tx, by, "webhook.retry", ("webhook_delivery", id), at).await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(std::slice::from_ref(&job)).await;
        Ok(d)
    }

    /// The merchant's deliveries that meet `filter`, newest first.
    pub async fn list(
        &self,
        merchant_id: &str,
        filter: &rows::Filter,
        page: Window,
    ) -> Result<Option<Page<Delivery>>, Error> {
        let conditions = filter.conditions();
        Ok(table::filtered(&self.ctx.store, merchant_id, &conditions, page).await?)
    }

    /// Starts a new cycle of attempts, now, for the failed deliveries of the merchant of `by`
    /// (every endpoint's and the default's; at most [`RETRY_ALL_MAX`] a call, the oldest
    /// first); returns how many.
    pub async fn retry_all_failed(&self, by: &Actor) -> Result<usize, Error> {
        let at = self.ctx.now();
        let mut tx = self.ctx.store.begin().await?;
        let ids = rows::restart_all_failed(&mut tx, &by.merchant_id, RETRY_ALL_MAX, at).await?;
        let jobs = restarted(ids, at);
        self.ctx.queue.stage(&mut tx, &jobs).await?;
        let resource = ("merchant", by.merchant_id.as_str());
        audit::record_in(&mut tx, by, "webhook.retry_all_failed", resource, at).await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(&jobs).await;
        Ok(jobs.len())
    }

    /// Sets or clears the merchant's webhook URL, refusing URLs on blocked networks when the
    /// address is literal (names are checked at each delivery).
    pub async fn set_url(&self, by: &Actor, url: Option<&str>) -> Result<Merchant, Error> {
        let merchant_id = by.merchant_id.as_str();
        if let Some(u) = url {
            if u.len() > 2048 {
                return Err(Error::InvalidUrl(
                    "webhook_url must be at most 2048 characters".into(),
                ));
            }
            self.client.check_url(u).map_err(Error::InvalidUrl)?;
        }
        let mut tx = self.ctx.store.begin().await?;
        let updated = merchants::set_webhook_url(&mut tx, merchant_id, url, self.ctx.now())
            .await?
            .ok_or(Error::NotFound)?;
        let resource = ("merchant", merchant_id);
        audit::record_in(
            &mut tx,
            by,
            "webhook_settings.update",
            resource,
            self.ctx.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Replaces the merchant's webhook secret with a new `whsec_…` one.
    pub async fn rotate_secret(
        &self,
        by: &Actor,
        overlap: chrono::Duration,
        replay: Option<Replay<Merchant>>,
    ) -> Result<Merchant, Error> {
        let merchant_id = by.merchant_id.as_str();
        let secret = crate::merchants::new_webhook_secret();
        let at = self.ctx.now();
        let until = (overlap > chrono::Duration::zero()).then(|| at + overlap);
        let mut tx = self.ctx.store.begin().await?;
        let updated = merchants::set_webhook_secret(&mut tx, merchant_id, &secret, until, at)
            .await?
            .ok_or(Error::NotFound)?;
        idempotent::store_in(&mut tx, replay.as_ref(), &updated).await?;
        audit::record_in(
            &mut tx,
            by,
            "webhook_settings.rotate_secret",
            ("merchant", merchant_id),
            self.ctx.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Records a `webhook.test` event and makes its first delivery attempt now, in this request;
    /// later attempts follow the schedule through the queue. (Should the process die between the
    /// commit and the attempt, the recovery sweep takes the delivery over.) Returns the delivery
    /// as it stands after the attempt. With an idempotency key, the delivery as committed is the
    /// stored response, replaced by the view after the attempt once it is made.
    pub async fn send_test(
        &self,
        by: &Actor,
        replay: Option<Replay<Delivery>>,
    ) -> Result<Delivery, Error> {
        let current = merchants::get(&self.ctx.store, &by.merchant_id)
            .await?
            .ok_or(Error::NotFound)?;
        if current.webhook_url.is_none() {
            return Err(Error::NotConfigured);
        }
        let data = json!({"message": "This is a test webhook from paygate", "merchant_id": by.merchant_id});
        let event = Event::new(
            &by.merchant_id,
            "webhook.test",
            &by.merchant_id,
            data,
            self.ctx.now(),
        );
        let mut tx = self.ctx.store.begin().await?;
        let jobs = record_events(&mut tx, std::slice::from_ref(&event)).await?;
        let job = jobs.first().ok_or(Error::NotConfigured)?.clone();
        // The test event also goes to the endpoints that want it, through the queue.
        let others = &jobs[1..];
        self.ctx.queue.stage(&mut tx, others).await?;
        let committed = rows::get_in(&mut tx, &job.resource_id)
            .await?
            .ok_or(Error::NotFound)?;
        idempotent::store_in(&mut tx, replay.as_ref(), &committed).await?;
        let resource = ("webhook_delivery", committed.id.as_str());
        audit::record_in(&mut tx, by, "webhook.test", resource, self.ctx.now()).await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(others).await;
        match self.deliver(&job.resource_id, &mut Slot::detached()).await {
            Ok(Some(next)) => {
                let retry = JobSpec::at(WEBHOOKS, job.resource_id.clone(), next);
                if let Err(e) = self.ctx.queue.enqueue(std::slice::from_ref(&retry)).await {
                    tracing::warn!(error = %e, "test webhook retry not queued; the sweep will queue it");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "test webhook attempt failed"),
        }
        let after = rows::get(&self.ctx.store, &job.resource_id)
            .await?
            .ok_or(Error::NotFound)?;
        if let Some(r) = &replay
            && !crate::store::idempotency::update_response(
                &self.ctx.store,
                &r.held,
                &r.response(&after),
            )
            .await?
        {
            tracing::warn!(
                "test webhook: the idempotency key was taken over; its stored answer stands"
            );
        }
        Ok(after)
    }
}

/// The jobs of deliveries that start a new cycle of attempts at `at` (run again even if a job
/// of theirs ran before).
fn restarted(ids: Vec<String>, at: DateTime<Utc>) -> Vec<JobSpec> {
    ids.into_iter()
        .map(|d| JobSpec {
            existing: Existing::Again,
            ..JobSpec::at(WEBHOOKS, d, at)
        })
        .collect()
}

/// The most failed deliveries one "retry all failed" starts again.
pub const RETRY_ALL_MAX: i64 = 10_000;

/// The lanes a delivery goes through: its endpoint's, or its merchant's default URL's.
fn destination_key(d: &Delivery) -> String {
    match &d.endpoint_id {
        Some(endpoint) => endpoint.clone(),
        None => format!("merchant:{}", d.merchant_id),
    }
}

/// The deliveries' group-committed reads and writes: the worker's concurrent delivery jobs
/// read their deliveries (with their merchants' URL and secret) with one statement per batch,
/// and record their attempts with one statement per batch.
pub struct Writer {
    load: Batcher<String, Result<Option<Sendable>, Error>>,
    record: Batcher<AttemptRow, Result<bool, Error>>,
}

impl Writer {
    /// Starts the writer: `lanes` batches of each kind in flight at once.
    pub fn new(store: Store, lanes: usize) -> Self {
        let s = store.clone();
        let load = Batcher::new("delivery_load", 256, lanes, move |ids: Vec<String>| {
            let s = s.clone();
            async move {
                per_request(&ids, |chunk| async {
                    let mut found: std::collections::HashMap<String, Sendable> =
                        rows::sendable(&s, chunk)
                            .await?
                            .into_iter()
                            .map(|x| (x.delivery.id.clone(), x))
                            .collect();
                    Ok(chunk.iter().map(|id| Ok(found.remove(id))).collect())
                })
                .await
            }
        });
        let record = Batcher::new(
            "delivery_record",
            256,
            lanes,
            move |attempts: Vec<AttemptRow>| {
                let s = store.clone();
                async move {
                    per_request(&attempts, |chunk| async {
                        let recorded: std::collections::HashSet<String> =
                            rows::record_attempts(&s, chunk)
                                .await?
                                .into_iter()
                                .collect();
                        Ok(chunk.iter().map(|a| Ok(recorded.contains(&a.id))).collect())
                    })
                    .await
                }
            },
        );
        Self { load, record }
    }

    /// The delivery with its merchant's URL and secret, read fresh.
    pub async fn load(&self, id: String) -> Result<Option<Sendable>, Error> {
        self.load.call(id).await
    }

    /// Records an attempt; `false` when another was recorded first or a new cycle began.
    pub async fn record(&self, attempt: AttemptRow) -> Result<bool, Error> {
        self.record.call(attempt).await
    }
}
