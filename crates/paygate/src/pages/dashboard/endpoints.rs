//! The webhooks page's endpoints: add, edit, enable or disable, rotate the secret, replay
//! recent events, retry failed deliveries, delete. Each form answers with a notice on the
//! webhooks page, as the page's other forms do.

use axum::{
    extract::{Path, State},
    response::Response,
};

use super::{F, SignedIn, answer_form, refusal};
use crate::{
    pages::{PagesState, Time},
    store::endpoints::{Endpoint, HEALTH_WINDOW, Health},
    webhooks::endpoints::EndpointChange,
};

/// Where every form returns.
const HERE: &str = "/dashboard/webhooks";

/// An endpoint as the page lists it.
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: String,
    pub enabled: bool,
    pub secret: String,
    pub overlap_until: Option<Time>,
    /// `"97 % of 120"`, `"99 % of the last 1,000"`, or `"no deliveries yet"`.
    pub success: String,
    pub last_failure: Option<Time>,
    /// Disabled by the gateway: every attempt failed since `failing_since`.
    pub auto_disabled: bool,
    pub failing_since: Option<Time>,
}

impl EndpointRow {
    /// The row of `e`, with how its deliveries went.
    pub fn new(e: Endpoint, health: &[Health]) -> Self {
        let h = health.iter().find(|h| h.endpoint_id == e.id);
        let success = match h {
            Some(h) if h.deliveries >= HEALTH_WINDOW => format!(
                "{} % of the last {}",
                h.succeeded * 100 / h.deliveries,
                super::group_thousands(h.deliveries)
            ),
            Some(h) if h.deliveries > 0 => {
                format!("{} % of {}", h.succeeded * 100 / h.deliveries, h.deliveries)
            }
            _ => "no deliveries yet".to_owned(),
        };
        Self {
            success,
            last_failure: h.and_then(|h| h.last_failure_at).map(Time::from),
            overlap_until: e.previous_secret_until.map(Time::from),
            auto_disabled: !e.enabled && e.disabled_reason.as_deref() == Some("failing"),
            failing_since: e.failing_since.map(Time::from),
            events: if e.events.is_empty() {
                "all events".to_owned()
            } else {
                e.events.replace(' ', ", ")
            },
            description: e.description.unwrap_or_default(),
            id: e.id,
            url: e.url,
            enabled: e.enabled,
            secret: e.secret,
        }
    }
}

/// The event filter as the form's text gives it: types separated by commas or spaces.
fn events_of(text: Option<&String>) -> Option<Vec<String>> {
    text.map(|t| {
        t.split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// The change a form asks for: `url`, `description`, `events` when present.
fn change_of(f: &std::collections::HashMap<String, String>) -> EndpointChange {
    EndpointChange {
        url: f.get("url").map(|u| u.trim().to_owned()),
        description: f
            .get("description")
            .map(|d| Some(d.trim().to_owned()).filter(|d| !d.is_empty())),
        enabled: None,
        events: events_of(f.get("events")),
    }
}

/// The notice for what a form's action did: `ok`'s text, or the service's refusal.
fn notice<T>(
    done: Result<T, crate::webhooks::Error>,
    ok: impl FnOnce(T) -> String,
) -> Result<String, crate::http::error::ApiError> {
    done.map(ok).or_else(refusal)
}

/// `POST /dashboard/webhooks/endpoints`: a new endpoint.
pub async fn add(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        let done = app.webhooks.create_endpoint(&s.actor, change_of(&f), None);
        notice(done.await, |e| format!("Endpoint {} added.", e.url))
    })
    .await
}

/// `POST /dashboard/webhooks/endpoints/{id}`: saves the edit form.
pub async fn edit(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        let done = app.webhooks.update_endpoint(&s.actor, &id, change_of(&f));
        notice(done.await, |e| format!("Endpoint {} saved.", e.url))
    })
    .await
}

/// `POST /dashboard/webhooks/endpoints/{id}/enabled`: `enabled=true|false`.
pub async fn set_enabled(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    let enabled = f.get("enabled").is_some_and(|v| v == "true");
    answer_form(&app, &s, &f, HERE, async {
        let change = EndpointChange {
            enabled: Some(enabled),
            ..EndpointChange::default()
        };
        let done = app.webhooks.update_endpoint(&s.actor, &id, change);
        let state = if enabled { "enabled" } else { "disabled" };
        notice(done.await, |e| format!("Endpoint {} {state}.", e.url))
    })
    .await
}

/// `POST /dashboard/webhooks/endpoints/{id}/rotate`: a new secret, the old one signing beside
/// it for 24 hours.
pub async fn rotate(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        let done = app
            .webhooks
            .rotate_endpoint_secret(&s.actor, &id, None, None);
        notice(done.await, |_| {
            "New endpoint secret; the previous one keeps signing for 24 hours.".into()
        })
    })
    .await
}

/// `POST /dashboard/webhooks/endpoints/{id}/replay`: the events of the last `hours` hours.
pub async fn replay(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    let hours = f
        .get("hours")
        .and_then(|h| h.trim().parse::<i64>().ok())
        .filter(|h| (1..=24 * 30).contains(h));
    answer_form(&app, &s, &f, HERE, async {
        let Some(hours) = hours else {
            return Ok("Replay: hours must be a whole number from 1 to 720.".to_owned());
        };
        let since = crate::store::now() - chrono::Duration::hours(hours);
        let done = app.webhooks.replay(&s.actor, &id, since, None, None);
        notice(done.await, |r| {
            let more = if r.has_more {
                " (more remain: replay again)"
            } else {
                ""
            };
            format!("Replay queued {} deliveries{more}.", r.queued)
        })
    })
    .await
}

/// `POST /dashboard/webhooks/endpoints/{id}/retry-failed`.
pub async fn retry_failed(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        let done = app.webhooks.retry_failed(&s.actor, &id);
        notice(done.await, |n| format!("{n} failed deliveries retried."))
    })
    .await
}

/// `POST /dashboard/webhooks/endpoints/{id}/delete`.
pub async fn delete(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        let done = app.webhooks.delete_endpoint(&s.actor, &id);
        notice(done.await, |()| "Endpoint deleted.".to_owned())
    })
    .await
}

/// `POST /dashboard/webhooks/endpoints/{id}/test`: a `webhook.test` to this endpoint only.
pub async fn test(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        let done = app.webhooks.test_endpoint(&s.actor, &id);
        notice(done.await, |_| {
            "Test webhook queued for the endpoint.".to_owned()
        })
    })
    .await
}
