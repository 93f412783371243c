//! Webhook endpoints: several per merchant (at most `WEBHOOK_ENDPOINTS_MAX`), each with its
//! URL, description, event filter and secret. The merchant's webhook URL
//! (`PUT /api/v1/webhooks/config`) stays its default endpoint, which gets every event.
//!
//! Rotating an endpoint's secret keeps the previous one signing beside the new one for an
//! overlap window (24 h unless asked otherwise; 0 revokes the old secret at once), so
//! receivers can switch secrets without missing a delivery.

use chrono::{DateTime, Duration, Utc};
use paygate_core::webhook;
use rand::distr::{Alphanumeric, SampleString};

use super::{Error, Webhooks};
use crate::{
    audit::{self, Actor},
    idempotent::{self, Replay},
    merchants::new_webhook_secret,
    queue::{JobSpec, WEBHOOKS},
    store::{
        endpoints::{self as rows, Endpoint},
        events::{self as event_rows, Event},
        replays as replay_rows,
        webhooks::{self as delivery_rows, NewDelivery},
    },
};

/// How long a rotated-out secret keeps signing, by default.
pub const DEFAULT_OVERLAP: Duration = Duration::hours(24);
/// The longest overlap a rotation may ask for.
pub const MAX_OVERLAP_SECONDS: i64 = 7 * 24 * 3600;
/// The longest description, characters.
const DESCRIPTION_MAX: usize = 255;

/// What a create or an update sets (`None`: unchanged, or the default on create).
#[derive(Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub events: Option<Vec<String>>,
}

impl Webhooks {
    /// Checks a change's values; returns the event filter as stored (space-separated).
    fn check(&self, change: &EndpointChange) -> Result<Option<String>, Error> {
        if let Some(url) = &change.url {
            if url.len() > 2048 {
                return Err(Error::InvalidEndpoint(
                    "url must be at most 2048 characters".into(),
                ));
            }
            self.client
                .check_url(url)
                .map_err(|reason| Error::InvalidEndpoint(reason.replace("webhook_url", "url")))?;
        }
        if let Some(Some(d)) = &change.description
            && d.chars().count() > DESCRIPTION_MAX
        {
            return Err(Error::InvalidEndpoint(format!(
                "description must be at most {DESCRIPTION_MAX} characters"
            )));
        }
        let Some(events) = &change.events else {
            return Ok(None);
        };
        if events.len() > webhook::EVENT_TYPES.len() * 2 {
            return Err(Error::InvalidEndpoint("events lists too many types".into()));
        }
        if let Some(bad) = events.iter().find(|e| !webhook::valid_pattern(e)) {
            return Err(Error::InvalidEndpoint(format!(
                "events: {bad:?} is not an event type or a prefix wildcard like \"payment.*\" \
                 (types: {})",
                webhook::EVENT_TYPES.join(", ")
            )));
        }
        Ok(Some(events.join(" ")))
    }

    /// Creates an endpoint for the merchant (enabled unless asked otherwise), with a new secret.
    pub async fn create_endpoint(
        &self,
        by: &Actor,
        change: EndpointChange,
        replay: Option<Replay<Endpoint>>,
    ) -> Result<Endpoint, Error> {
        let merchant_id = by.merchant_id.as_str();
        let events = self.check(&change)?.unwrap_or_default();
        let url = change
            .url
            .ok_or_else(|| Error::InvalidEndpoint("url is required".into()))?;
        let at = self.ctx.now();
        let endpoint = Endpoint {
            id: format!("we_{}", Alphanumeric.sample_string(&mut rand::rng(), 16)),
            merchant_id: merchant_id.to_owned(),
            url,
            description: change.description.flatten(),
            enabled: change.enabled.unwrap_or(true),
            events,
            secret: new_webhook_secret(),
            previous_secret: None,
            previous_secret_until: None,
            created_at: at,
            updated_at: at,
            failing_since: None,
            disabled_reason: None,
        };
        let mut tx = self.ctx.store.begin().await?;
        if !rows::insert_within(&mut tx, &endpoint, self.max_endpoints).await? {
            return Err(Error::TooManyEndpoints(self.max_endpoints));
        }
        idempotent::store_in(&mut tx, replay.as_ref(), &endpoint).await?;
        audit::record_in(
            &mut tx,
            by,
            "webhook_endpoint.create",
            ("webhook_endpoint", endpoint.id.as_str()),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(endpoint)
    }

    /// The merchant's endpoints, oldest first.
    pub async fn endpoints(&self, merchant_id: &str) -> Result<Vec<Endpoint>, Error> {
        Ok(rows::list(&self.ctx.store, merchant_id).await?)
    }

    /// How each of the merchant's endpoints is doing (those with deliveries).
    pub async fn endpoint_health(&self, merchant_id: &str) -> Result<Vec<rows::Health>, Error> {
        Ok(rows::health(&self.ctx.store, merchant_id).await?)
    }

    /// The merchant's endpoint.
    pub async fn endpoint(&self, merchant_id: &str, id: &str) -> Result<Endpoint, Error> {
        rows::get(&self.ctx.store, merchant_id, id)
            .await?
            .ok_or(Error::EndpointNotFound)
    }

    /// Changes what `change` sets. Re-enabling an endpoint resumes its pending deliveries
    /// (they were only held while it was disabled).
    pub async fn update_endpoint(
        &self,
        by: &Actor,
        id: &str,
        change: EndpointChange,
    ) -> Result<Endpoint, Error> {
        let merchant_id = by.merchant_id.as_str();
        let events = self.check(&change)?;
        // Only what the request sets is written (enabling or disabling also starts the
        // failing record over), in one statement: a concurrent rotation or auto-disable stands.
        let set = rows::Change {
            url: change.url.as_deref(),
            description: change.description.as_ref().map(Option::as_deref),
            enabled: change.enabled,
            events: events.as_deref(),
        };
        let mut tx = self.ctx.store.begin().await?;
        let updated = rows::update(&mut tx, merchant_id, id, &set, self.ctx.now())
            .await?
            .ok_or(Error::EndpointNotFound)?;
        audit::record_in(
            &mut tx,
            by,
            "webhook_endpoint.update",
            ("webhook_endpoint", id),
            self.ctx.now(),
        )
        .await?;
        tx.commit().await?;
        if change.enabled == Some(true) {
            let ids = crate::store::webhooks::pending_for_endpoint(&self.ctx.store, id).await?;
            let at = self.ctx.now();
            let jobs = super::restarted(ids, at);
            if let Err(e) = self.ctx.queue.enqueue(&jobs).await {
                tracing::warn!(error = %e, "re-enabled endpoint: deliveries not queued now; they resume within 5 minutes");
            }
        }
        Ok(updated)
    }

    /// Removes the merchant's endpoint; its pending deliveries end `failed`.
    pub async fn delete_endpoint(&self, by: &Actor, id: &str) -> Result<(), Error> {
        let merchant_id = by.merchant_id.as_str();
        let mut tx = self.ctx.store.begin().await?;
        if !rows::delete(&mut tx, merchant_id, id, self.ctx.now()).await? {
            return Err(Error::EndpointNotFound);
        }
        audit::record_in(
            &mut tx,
            by,
            "webhook_endpoint.delete",
            ("webhook_endpoint", id),
            self.ctx.now(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives the endpoint a new secret; the current one keeps signing beside it for
    /// `overlap_seconds` (default [`DEFAULT_OVERLAP`]; 0 revokes it now).
    pub async fn rotate_endpoint_secret(
        &self,
        by: &Actor,
        id: &str,
        overlap_seconds: Option<i64>,
        replay: Option<Replay<Endpoint>>,
    ) -> Result<Endpoint, Error> {
        let merchant_id = by.merchant_id.as_str();
        let overlap = match overlap_seconds {
            None => DEFAULT_OVERLAP,
            Some(s) if (0..=MAX_OVERLAP_SECONDS).contains(&s) => Duration::seconds(s),
            Some(_) => {
                return Err(Error::InvalidEndpoint(format!(
                    "overlap_seconds must be from 0 to {MAX_OVERLAP_SECONDS}"
                )));
            }
        };
        let at = self.ctx.now();
        let until = (!overlap.is_zero()).then(|| at + overlap);
        let mut tx = self.ctx.store.begin().await?;
        let updated = rows::rotate(&mut tx, merchant_id, id, &new_webhook_secret(), until, at)
            .await?
            .ok_or(Error::EndpointNotFound)?;
        idempotent::store_in(&mut tx, replay.as_ref(), &updated).await?;
        audit::record_in(
            &mut tx,
            by,
            "webhook_endpoint.rotate_secret",
            ("webhook_endpoint", id),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Delivers again to the endpoint every event of the merchant created in `[since, until)`
    /// that the endpoint wants (and, when given, `events` names): new deliveries carrying the
    /// same event ids and bodies. At most [`REPLAY_MAX`] events per call; returns how many were
    /// queued and, when the range held more, where to continue. An event with a delivery to
    /// the endpoint pending already is not queued again; a replay runs until all it queued has
    /// ended, and another of the same endpoint meanwhile is refused
    /// ([`Error::ReplayRunning`]), as is one that would take the merchant's replays past
    /// `WEBHOOK_REPLAY_DAILY_MAX` deliveries in 24 hours ([`Error::ReplayCap`]).
    pub async fn replay(
        &self,
        by: &Actor,
        id: &str,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        events: Option<Vec<String>>,
    ) -> Result<Replayed, Error> {
        let merchant_id = by.merchant_id.as_str();
        let endpoint = self.endpoint(merchant_id, id).await?;
        let filter = self
            .check(&EndpointChange {
                events,
                ..EndpointChange::default()
            })?
            .unwrap_or_default();
        let until = until.unwrap_or_else(|| self.ctx.now());
        if since >= until {
            return Err(Error::InvalidEndpoint("since must be before until".into()));
        }
        let found =
            event_rows::in_range(&self.ctx.store, merchant_id, since, until, REPLAY_MAX + 1)
                .await?;
        let has_more = found.len() > REPLAY_MAX as usize;
        let taken = &found[..found.len().min(REPLAY_MAX as usize)];
        let next_since = has_more.then(|| found[REPLAY_MAX as usize].0.created_at);
        let deliveries: Vec<NewDelivery> = taken
            .iter()
            .filter(|(e, _)| {
                webhook::wants(&endpoint.events, &e.event_type)
                    && webhook::wants(&filter, &e.event_type)
            })
            .map(|(e, seq)| NewDelivery {
                id: super::delivery_id(),
                merchant_id: merchant_id.to_owned(),
                event_id: e.id.clone(),
                event: e.event_type.clone(),
                payload: super::payload(e, *seq),
                endpoint_id: Some(endpoint.id.clone()),
                sequence: *seq,
            })
            .collect();
        let at = self.ctx.now();
        let replay_id = format!("rpl_{}", Alphanumeric.sample_string(&mut rand::rng(), 16));
        let mut jobs = Vec::with_capacity(deliveries.len());
        let mut tx = self.ctx.store.begin().await?;
        // One replay at a time per endpoint, and a daily cap per merchant: counted under the
        // merchant's row lock, so concurrent replays cannot pass either.
        crate::store::merchants::lock(&mut tx, merchant_id).await?;
        replay_rows::finish_idle(&mut tx, id).await?;
        if let Some(running) = replay_rows::running(&mut tx, id).await? {
            return Err(Error::ReplayRunning(running));
        }
        let used = replay_rows::queued_since(&mut tx, merchant_id, at - Duration::days(1)).await?;
        // In chunks: a statement binds every value of its rows. An event with a delivery to
        // this endpoint pending already is not queued again.
        for chunk in deliveries.chunks(500) {
            let ids = delivery_rows::insert_replayed(&mut tx, chunk, at, &replay_id).await?;
            let chunk_jobs: Vec<JobSpec> = ids
                .into_iter()
                .map(|d| JobSpec::at(WEBHOOKS, d, at))
                .collect();
            jobs.extend(chunk_jobs);
        }
        let queued = i64::try_from(jobs.len()).unwrap_or(i64::MAX);
        if used.saturating_add(queued) > self.replay_daily_max {
            // Dropped unanswered: the transaction rolls back, nothing queued.
            return Err(Error::ReplayCap {
                cap: self.replay_daily_max,
                left: (self.replay_daily_max - used).max(0),
            });
        }
        let replay = replay_rows::NewReplay {
            id: &replay_id,
            merchant_id,
            endpoint_id: id,
            since,
            until,
            queued,
            at,
        };
        if !replay_rows::insert(&mut tx, &replay).await? {
            let running = replay_rows::running(&mut tx, id).await?.unwrap_or_default();
            return Err(Error::ReplayRunning(running));
        }
        self.ctx.queue.stage(&mut tx, &jobs).await?;
        audit::record_in(
            &mut tx,
            by,
            "webhook_endpoint.replay",
            ("webhook_endpoint", id),
            at,
        )
        .await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(&jobs).await;
        Ok(Replayed {
            id: replay_id,
            queued: jobs.len(),
            has_more,
            next_since,
        })
    }

    /// Starts a new cycle of attempts, now, for every failed delivery to the endpoint.
    pub async fn retry_failed(&self, by: &Actor, id: &str) -> Result<usize, Error> {
        let merchant_id = by.merchant_id.as_str();
        self.endpoint(merchant_id, id).await?;
        let at = self.ctx.now();
        let mut tx = self.ctx.store.begin().await?;
        let ids = delivery_rows::restart_failed(&mut tx, merchant_id, id, at).await?;
        let jobs = super::restarted(ids, at);
        self.ctx.queue.stage(&mut tx, &jobs).await?;
        audit::record_in(
            &mut tx,
            by,
            "webhook_endpoint.retry_failed",
            ("webhook_endpoint", id),
            at,
        )
        .await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(&jobs).await;
        Ok(jobs.len())
    }
}

/// The most events one replay queues.
pub const REPLAY_MAX: i64 = 10_000;

/// What a replay queued.
pub struct Replayed {
    /// The replay (`rpl_…`); it runs until every delivery it queued has ended.
    pub id: String,
    pub queued: usize,
    pub has_more: bool,
    /// Where to continue when `has_more`.
    pub next_since: Option<DateTime<Utc>>,
}

impl Webhooks {
    /// After an attempt to an endpoint: records how it went, and disables an endpoint whose
    /// every attempt has failed for [`Webhooks::disable_after`], recording a
    /// `webhook_endpoint.disabled` event (delivered to the merchant's default endpoint and to
    /// its other endpoints that want it). Its pending deliveries wait until it is enabled.
    pub(super) async fn endpoint_outcome(
        &self,
        merchant_id: &str,
        endpoint_id: &str,
        success: bool,
    ) -> Result<(), Error> {
        let at = self.ctx.now();
        let outcome = rows::record_outcome(&self.ctx.store, endpoint_id, success, at).await?;
        let Some((Some(since), true)) = outcome else {
            return Ok(());
        };
        let before = at - self.disable_after;
        if since > before {
            return Ok(());
        }
        let mut tx = self.ctx.store.begin().await?;
        let Some(e) = rows::auto_disable(&mut tx, endpoint_id, before, at).await? else {
            return Ok(());
        };
        let data = serde_json::json!({"webhook_endpoint": {
            "id": e.id, "url": e.url, "enabled": false, "disabled_reason": "failing",
            "failing_since": e.failing_since.map(crate::views::iso),
            "disabled_at": crate::views::iso(at),
        }});
        let event = Event::new(merchant_id, "webhook_endpoint.disabled", &e.id, data, at);
        let jobs = super::record_events(&mut tx, std::slice::from_ref(&event)).await?;
        self.ctx.queue.stage(&mut tx, &jobs).await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(&jobs).await;
        tracing::warn!(endpoint = %e.id, failing_since = ?e.failing_since, "webhook endpoint disabled: every attempt failed");
        Ok(())
    }
}

impl Webhooks {
    /// Sends a `webhook.test` event to this endpoint only (through the queue, like any
    /// delivery); returns the delivery as committed. A disabled endpoint is refused.
    pub async fn test_endpoint(
        &self,
        by: &Actor,
        id: &str,
    ) -> Result<crate::store::webhooks::Delivery, Error> {
        let merchant_id = by.merchant_id.as_str();
        let e = self.endpoint(merchant_id, id).await?;
        if !e.enabled {
            return Err(Error::InvalidEndpoint(
                "the endpoint is disabled: enable it to test it".into(),
            ));
        }
        let at = self.ctx.now();
        let data = serde_json::json!({
            "message": "This is a test webhook from paygate",
            "merchant_id": merchant_id,
            "webhook_endpoint_id": e.id,
        });
        let event = Event::new(merchant_id, "webhook.test", merchant_id, data, at);
        let mut tx = self.ctx.store.begin().await?;
        let sequences = event_rows::insert(&mut tx, std::slice::from_ref(&event)).await?;
        let sequence = sequences.get(&event.id).copied().unwrap_or_default();
        let delivery = NewDelivery {
            id: super::delivery_id(),
            merchant_id: merchant_id.to_owned(),
            event_id: event.id.clone(),
            event: event.event_type.clone(),
            payload: super::payload(&event, sequence),
            endpoint_id: Some(e.id),
            sequence,
        };
        let ids = delivery_rows::insert_for_endpoints(&mut tx, &[delivery], at).await?;
        let jobs: Vec<JobSpec> = ids
            .iter()
            .map(|d| JobSpec::at(WEBHOOKS, d.clone(), at))
            .collect();
        self.ctx.queue.stage(&mut tx, &jobs).await?;
        let committed = match ids.first() {
            Some(d) => delivery_rows::get_in(&mut tx, d).await?,
            None => None,
        }
        .ok_or(Error::EndpointNotFound)?;
        audit::record_in(
            &mut tx,
            by,
            "webhook_endpoint.test",
            ("webhook_endpoint", id),
            at,
        )
        .await?;
        tx.commit().await?;
        self.ctx.queue.dispatch(&jobs).await;
        Ok(committed)
    }
}
