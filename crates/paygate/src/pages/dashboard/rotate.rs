//! Rotating the API secret and the default webhook secret: a confirmation page first, which
//! asks how long the current secret keeps working beside the new one (now, 1 hour or 24
//! hours), so one click cannot break a live integration; the pages then say until when the
//! old one works.

use std::collections::HashMap;

use axum::{extract::State, http::StatusCode, response::Response};
use chrono::Duration;

use super::{Frame, SignedIn};
use crate::pages::{PagesState, Time, page as render};

/// A choice of overlap: the form's value, what the page says, how long.
pub struct Choice {
    pub value: &'static str,
    pub text: &'static str,
    pub overlap: Duration,
}

/// The overlaps offered, the longest (and preselected) last.
pub const CHOICES: [Choice; 3] = [
    Choice {
        value: "now",
        text: "Now (for a secret that leaked)",
        overlap: Duration::zero(),
    },
    Choice {
        value: "1h",
        text: "In 1 hour",
        overlap: Duration::hours(1),
    },
    Choice {
        value: "24h",
        text: "In 24 hours",
        overlap: Duration::hours(24),
    },
];

/// The overlap a rotation form chose; `None` for a missing or unknown choice.
pub fn overlap_of(form: &HashMap<String, String>) -> Option<Duration> {
    let chosen = form.get("overlap")?;
    CHOICES
        .iter()
        .find(|c| c.value == chosen)
        .map(|c| c.overlap)
}

/// What a rotation's notice says of the old secret: `works` is what it does while it lasts.
pub fn old_secret_notice(until: Option<chrono::DateTime<chrono::Utc>>, works: &str) -> String {
    match until {
        Some(t) => format!("The old secret {works} until {}.", Time::from(t).readable),
        None => "The old secret stopped working now.".to_owned(),
    }
}

#[derive(askama::Template)]
#[template(path = "dashboard/rotate_confirm.html")]
struct Confirm {
    frame: Frame,
    heading: &'static str,
    explain: &'static str,
    after: &'static str,
    button: &'static str,
    action: &'static str,
    back: &'static str,
    choices: &'static [Choice],
}

/// `GET /dashboard/credentials/rotate`: confirms rotating the API secret.
pub async fn api_secret(State(_): State<PagesState>, s: SignedIn) -> Response {
    render(
        StatusCode::OK,
        &Confirm {
            frame: Frame::new("Rotate the API secret", "Overview", &s),
            heading: "Rotate the API secret",
            explain: "A new API secret is made and shown once. Requests signed in with the \
                      current secret keep working until the time you choose, so the systems \
                      using it can be switched to the new one first.",
            after: "Anyone holding the current secret can call the API until it stops working.",
            button: "Rotate API secret",
            action: "/dashboard/credentials/rotate",
            back: "/dashboard",
            choices: &CHOICES,
        },
    )
}

/// `GET /dashboard/webhooks/secret`: confirms replacing the webhook URL's secret.
pub async fn webhook_secret(State(_): State<PagesState>, s: SignedIn) -> Response {
    render(
        StatusCode::OK,
        &Confirm {
            frame: Frame::new("Regenerate the webhook secret", "Webhooks", &s),
            heading: "Regenerate the webhook secret",
            explain: "A new secret signs the deliveries to the webhook URL. Until the time you \
                      choose, the current secret signs them too (the webhook-signature header \
                      carries both signatures), so your receiver keeps verifying while you \
                      switch it to the new secret.",
            after: "X-Webhook-Signature carries the new secret's signature from now on.",
            button: "Regenerate secret",
            action: "/dashboard/webhooks/secret",
            back: "/dashboard/webhooks",
            choices: &CHOICES,
        },
    )
}
