//! The webhooks page: the URL and secret, a test event, and the delivery log with retries.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use paygate_core::DeliveryStatus;

use super::{
    F, Frame, Pager, Q, SignedIn, answer_form, endpoints::EndpointRow, read_page, rotate,
    window_of, with_query,
};
use crate::{
    http::error::ApiError,
    pages::{PagesState, Time, page as render},
    store::{
        now,
        webhooks::{Delivery, Filter},
    },
};

const PAGE_SIZE: i64 = 50;
/// Where every form of the page returns.
const HERE: &str = "/dashboard/webhooks";

#[derive(askama::Template)]
#[template(path = "dashboard/webhooks.html")]
struct WebhooksPage {
    frame: Frame,
    url: String,
    secret: String,
    /// Until when the secret before the last rotation also signs.
    old_secret_until: Option<Time>,
    pager: Pager,
    rows: Vec<Row>,
    endpoints: Vec<EndpointRow>,
    /// The delivery log's filters: `(value, text, selected)` of each drop-down, and the event.
    states: Vec<(String, String, bool)>,
    destinations: Vec<(String, String, bool)>,
    event: String,
    /// Whether any filter is set.
    filtered: bool,
}

/// A delivery as the log shows it.
struct Row {
    id: String,
    event: String,
    /// The endpoint's URL; empty for the default endpoint.
    endpoint: String,
    /// `pending`, `retrying` (pending after a failed attempt), `success` or `failed`.
    state: &'static str,
    /// Why the last attempt failed when no status code came back (the connection's error).
    error: String,
    attempts: i32,
    last: Option<Time>,
    code: String,
    next: Option<Time>,
    duration: i64,
    /// The start of the receiver's answer.
    excerpt: String,
}

/// `GET /dashboard/webhooks`.
pub async fn page(State(app): State<PagesState>, s: SignedIn, Query(q): Q) -> Response {
    let text = |name: &str| {
        q.get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 100 && !v.chars().any(char::is_control))
    };
    let filter = Filter {
        state: text("state").filter(|st| Filter::STATES.contains(&st.as_str())),
        event: text("event"),
        endpoint: text("endpoint"),
    };
    // Built apart: the serializer may not be held across an await.
    let base = {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("state", &filter.state),
            ("event", &filter.event),
            ("endpoint", &filter.endpoint),
        ] {
            if let Some(v) = v {
                query.append_pair(k, v);
            }
        }
        with_query(HERE, &query.finish())
    };
    let listed = read_page!(window_of(&q, PAGE_SIZE), |w| app.webhooks.list(
        &s.merchant.id,
        &filter,
        w
    ))
    .await;
    let (page, start) = match listed {
        Ok(x) => x,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let pager = Pager::new(&page, &start, &base, |d: &Delivery| &d.id);
    let rows = page.rows;
    let (endpoints, health) = match tokio::try_join!(
        app.webhooks.endpoints(&s.merchant.id),
        app.webhooks.endpoint_health(&s.merchant.id)
    ) {
        Ok(x) => x,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let endpoint_urls: std::collections::HashMap<String, String> = endpoints
        .iter()
        .map(|e| (e.id.clone(), e.url.clone()))
        .collect();
    let choice = |current: &Option<String>, (value, text): (String, String)| {
        let selected = current.as_deref().unwrap_or_default() == value;
        (value, text, selected)
    };
    let states = std::iter::once(("", "Any state"))
        .chain(Filter::STATES.iter().map(|st| (*st, *st)))
        .map(|(v, t)| choice(&filter.state, (v.to_owned(), t.to_owned())))
        .collect();
    let destinations = [
        (String::new(), "Every destination".to_owned()),
        ("default".to_owned(), "The webhook URL".to_owned()),
    ]
    .into_iter()
    .chain(endpoints.iter().map(|e| (e.id.clone(), e.url.clone())))
    .map(|pair| choice(&filter.endpoint, pair))
    .collect();
    let endpoints = endpoints
        .into_iter()
        .map(|e| EndpointRow::new(e, &health))
        .collect();
    let view = WebhooksPage {
        frame: Frame::new("Webhooks", "Webhooks", &s),
        url: s.merchant.webhook_url.clone().unwrap_or_default(),
        secret: s.merchant.webhook_secret.clone(),
        old_secret_until: s
            .merchant
            .previous
            .webhook_secret_until(now())
            .map(Into::into),
        pager,
        rows: rows
            .into_iter()
            .map(|d| Row {
                error: d
                    .response_body
                    .as_deref()
                    .filter(|_| d.response_code.is_none() && d.attempts > 0)
                    .unwrap_or_default()
                    .chars()
                    .take(80)
                    .collect(),
                next: d
                    .next_retry_at
                    .filter(|_| d.status == DeliveryStatus::Pending)
                    .map(Time::from),
                excerpt: d
                    .response_body
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
                endpoint: d
                    .endpoint_id
                    .as_ref()
                    .and_then(|id| endpoint_urls.get(id.as_str()).cloned())
                    .unwrap_or_default(),
                state: match d.status {
                    DeliveryStatus::Pending if d.attempts > 0 => "retrying",
                    status => status.as_str(),
                },
                id: d.id,
                event: d.event,
                attempts: d.attempts,
                last: d.last_attempt_at.map(Time::from),
                code: d.response_code.map(|c| c.to_string()).unwrap_or_default(),
                duration: d.duration_ms.unwrap_or(0),
            })
            .collect(),
        endpoints,
        states,
        destinations,
        event: filter.event.clone().unwrap_or_default(),
        filtered: filter != Filter::default(),
    };
    render(StatusCode::OK, &view)
}

/// `POST /dashboard/webhooks/config`: sets (or, empty, clears) the webhook URL.
pub async fn save(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    let url = f
        .get("webhook_url")
        .map(|u| u.trim())
        .filter(|u| !u.is_empty());
    answer_form(&app, &s, &f, HERE, async {
        Ok(match app.webhooks.set_url(&s.actor, url).await {
            Ok(_) if url.is_some() => "Webhook URL saved.".to_owned(),
            Ok(_) => "Webhooks turned off.".to_owned(),
            Err(e) => ApiError::from(e).description,
        })
    })
    .await
}

/// `POST /dashboard/webhooks/secret`: a new webhook secret; the current one signs beside it
/// for the overlap the confirmation page chose.
pub async fn regenerate_secret(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        let Some(overlap) = rotate::overlap_of(&f) else {
            return Ok("Choose when the current secret stops signing.".to_owned());
        };
        match app.webhooks.rotate_secret(&s.actor, overlap, None).await {
            Ok(m) => Ok(format!(
                "New webhook secret generated. {}",
                rotate::old_secret_notice(
                    m.previous.webhook_secret_until(now()),
                    "also signs deliveries"
                )
            )),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// `POST /dashboard/webhooks/test`: sends a `webhook.test` event now.
pub async fn test(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        Ok(match app.webhooks.send_test(&s.actor, None).await {
            Ok(d) => {
                let answer = d
                    .response_code
                    .map_or_else(|| "no answer".into(), |c| c.to_string());
                format!("Test webhook sent: {} ({answer}).", d.status)
            }
            Err(e) => ApiError::from(e).description,
        })
    })
    .await
}

/// `POST /dashboard/webhooks/{id}/retry`: a new cycle of attempts, now.
pub async fn retry(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        Ok(match app.webhooks.retry(&s.actor, &id, None).await {
            Ok(_) => "Webhook retry scheduled.".to_owned(),
            Err(e) => ApiError::from(e).description,
        })
    })
    .await
}

/// `POST /dashboard/webhooks/retry-failed`: a new cycle of attempts, now, for every failed
/// delivery (every endpoint's and the webhook URL's).
pub async fn retry_all_failed(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        Ok(match app.webhooks.retry_all_failed(&s.actor).await {
            Ok(0) => "No failed deliveries to retry.".to_owned(),
            Ok(1) => "1 failed delivery is being retried.".to_owned(),
            Ok(n) => format!("{n} failed deliveries are being retried."),
            Err(e) => ApiError::from(e).description,
        })
    })
    .await
}
