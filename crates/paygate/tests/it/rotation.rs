//! Rotating the API secret and the webhook URL's secret from the dashboard (issue 35): a
//! confirmation page first, then an overlap in which the old secret keeps working (the API
//! secret) or signing beside the new one (the webhook secret), shown on the page with its end;
//! "now" revokes it at once, and the seeded public secret never lingers.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{
    endpoints::standard_verifies,
    helpers::{Backend, KEY, SECRET, TestApp, every_backend},
    team::{User, owner, page, post},
    webhooks::Receiver,
};

/// The text of the first element carrying `data-test-id="ID"`.
fn text_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("data-test-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id} in {html}"));
    let start = at + html[at..].find('>').unwrap() + 1;
    html[start..start + html[start..].find('<').unwrap()].to_owned()
}

/// Rotates the API secret from the dashboard with `overlap`; the page it answers.
async fn rotate_api_secret(t: &TestApp, u: &User, overlap: &str) -> String {
    let (status, _, html) = post(
        t,
        u,
        "/dashboard/credentials/rotate",
        &[("overlap", overlap)],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    html
}

/// The status of listing payments with `secret`.
async fn with_secret(t: &TestApp, secret: &str) -> StatusCode {
    t.call_as(KEY, secret, Method::GET, "/api/v1/payments", None)
        .await
        .0
}

async fn the_api_secret_rotates_after_a_confirmation_with_the_overlap_chosen(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let u = owner(&t).await;
    // The overview links to a confirmation page, which offers now, 1 hour and 24 hours.
    let (_, overview) = page(&t, &u.cookie, "/dashboard").await;
    assert!(overview.contains("href=\"/dashboard/credentials/rotate\""));
    let (status, confirm) = page(&t, &u.cookie, "/dashboard/credentials/rotate").await;
    assert_eq!(status, 200);
    for choice in ["overlap-now", "overlap-1h", "overlap-24h"] {
        assert!(confirm.contains(choice), "{confirm}");
    }
    assert_eq!(with_secret(&t, SECRET).await, 200, "nothing rotated yet");
    // A form without a choice changes nothing.
    let (status, location, _) = post(&t, &u, "/dashboard/credentials/rotate", &[]).await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/dashboard/credentials/rotate")
    );
    assert_eq!(with_secret(&t, SECRET).await, 200);
    // The seeded public secret stops at once, whatever overlap was chosen.
    let html = rotate_api_secret(&t, &u, "24h").await;
    let first = text_of(&html, "api-secret");
    assert!(first.starts_with("secret_"), "{first}");
    assert!(
        html.contains("The old secret stopped working now."),
        "{html}"
    );
    assert!(!html.contains("api-secret-overlap"));
    assert_eq!(with_secret(&t, SECRET).await, 401);
    assert_eq!(with_secret(&t, &first).await, 200);
    // With 1 hour: both work, and the page says until when.
    let html = rotate_api_secret(&t, &u, "1h").await;
    let second = text_of(&html, "api-secret");
    assert_ne!(second, first);
    assert!(html.contains("The old secret works until"), "{html}");
    let (_, overview) = page(&t, &u.cookie, "/dashboard").await;
    let until = &overview[overview
        .find("data-test-id=\"api-secret-overlap\"")
        .expect("overlap shown")..];
    let exact = &until[until.find("datetime=\"").unwrap() + 10..];
    let exact = chrono::DateTime::parse_from_rfc3339(&exact[..exact.find('"').unwrap()]).unwrap();
    let left = exact.signed_duration_since(chrono::Utc::now());
    assert!(
        (chrono::Duration::minutes(59)..=chrono::Duration::hours(1)).contains(&left),
        "{left}"
    );
    assert_eq!(with_secret(&t, &second).await, 200);
    assert_eq!(
        with_secret(&t, &first).await,
        200,
        "the old one, in its overlap"
    );
    // When the overlap ends (moved into the past here), the old secret stops working within
    // the credential cache's second.
    t.execute("UPDATE merchants SET previous_api_secret_until = created_at")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while with_secret(&t, &first).await != 401 {
        assert!(Instant::now() < deadline, "the old secret still works");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(with_secret(&t, &second).await, 200);
    let (_, overview) = page(&t, &u.cookie, "/dashboard").await;
    assert!(
        !overview.contains("api-secret-overlap"),
        "the overlap has ended"
    );
    // "Now": the previous secret stops at once, with no overlap left to any.
    let html = rotate_api_secret(&t, &u, "1h").await;
    let third = text_of(&html, "api-secret");
    assert_eq!(with_secret(&t, &second).await, 200);
    let html = rotate_api_secret(&t, &u, "now").await;
    let fourth = text_of(&html, "api-secret");
    assert_eq!(with_secret(&t, &third).await, 401);
    assert_eq!(with_secret(&t, &second).await, 401);
    assert_eq!(with_secret(&t, &fourth).await, 200);
    // Each rotation is in the audit log.
    let (status, log) = t
        .call_as(
            KEY,
            &fourth,
            Method::GET,
            "/api/v1/audit_logs?action=api_key.rotate_secret",
            None,
        )
        .await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["data"].as_array().unwrap().len(), 4, "{log}");
}

/// Points the webhook URL at a new receiver checking `secret`, sends a test webhook, and
/// returns the request it got.
async fn test_delivery(t: &TestApp, secret: &str) -> serde_json::Value {
    let rx = Receiver::start(secret).await;
    let url = rx.url("/webhook");
    let (status, _) = t
        .call(
            Method::PUT,
            "/api/v1/webhooks/config",
            Some(&json!({"webhook_url": url})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = t.post("/api/v1/webhooks/test", &json!({})).await;
    assert_eq!(status, 200);
    let got = rx.wait_for("the test webhook", |r| !r.is_empty()).await;
    got[0].clone()
}

async fn the_webhook_secret_rotates_with_an_overlap_in_which_both_sign(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let u = owner(&t).await;
    // A generated secret first (the seeded one is not base64, which the library wants).
    let (status, config) = t.post("/api/v1/webhooks/config/secret", &json!({})).await;
    assert_eq!(status, 200, "{config}");
    let old = config["webhook_secret"].as_str().unwrap().to_owned();
    let (status, confirm) = page(&t, &u.cookie, "/dashboard/webhooks/secret").await;
    assert_eq!(status, 200);
    assert!(confirm.contains("overlap-24h"), "{confirm}");
    let (status, location, _) =
        post(&t, &u, "/dashboard/webhooks/secret", &[("overlap", "1h")]).await;
    assert_eq!((status, location.as_str()), (303, "/dashboard/webhooks"));
    let (_, html) = page(&t, &u.cookie, "/dashboard/webhooks").await;
    assert!(html.contains("also signs deliveries until"), "{html}");
    assert!(html.contains("webhook-secret-overlap"), "{html}");
    let new = text_of(&html, "webhook-secret");
    assert_ne!(new, old);
    // A delivery carries both signatures: a receiver holding either secret verifies it, and
    // X-Webhook-Signature is the new secret's.
    let got = test_delivery(&t, &new).await;
    assert!(standard_verifies(&old, &got), "the old secret verifies");
    assert!(standard_verifies(&new, &got), "the new secret verifies");
    assert_eq!(got["hex_signature_valid"], true);
    // "Now": only the newest secret signs.
    let (status, _, _) = post(&t, &u, "/dashboard/webhooks/secret", &[("overlap", "now")]).await;
    assert_eq!(status, 303);
    let (_, html) = page(&t, &u.cookie, "/dashboard/webhooks").await;
    assert!(
        html.contains("The old secret stopped working now."),
        "{html}"
    );
    assert!(!html.contains("webhook-secret-overlap"));
    let newest = text_of(&html, "webhook-secret");
    let got = test_delivery(&t, &newest).await;
    assert!(standard_verifies(&newest, &got));
    assert!(!standard_verifies(&new, &got), "revoked at once");
    assert!(!standard_verifies(&old, &got));
}

every_backend!(
    the_api_secret_rotates_after_a_confirmation_with_the_overlap_chosen,
    the_webhook_secret_rotates_with_an_overlap_in_which_both_sign,
);
