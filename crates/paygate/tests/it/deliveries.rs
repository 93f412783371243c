//! The dashboard's delivery log (issue 35): each delivery's state (a failed attempt with more
//! to come reads `retrying`, with its next attempt), filters by state, event and destination,
//! "retry all failed", and empty states.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, every_backend},
    team::{owner, page, post},
    webhooks::Receiver,
};

/// The merchant's deliveries through the API.
async fn deliveries(t: &TestApp) -> Vec<Value> {
    let (status, body) = t.get("/api/v1/webhooks?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().clone()
}

/// Waits until every delivery is final (at most 20 s).
async fn all_final(t: &TestApp, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = deliveries(t).await;
        if got.len() == n && got.iter().all(|d| d["status"] != "pending") {
            return got;
        }
        assert!(Instant::now() < deadline, "not final: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rows(html: &str) -> usize {
    html.matches("data-test-id=\"webhook-log-item\"").count()
}

async fn the_delivery_log_reads_filters_and_retries_all_failed(backend: Backend) {
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        // The second attempt waits 1.5 s (time to read the page meanwhile), the rest 50 ms.
        &["--webhook-retry-schedule", "0,1500,50,50,50"],
    )
    .await;
    let owner = owner(&t).await;
    let (_, empty) = page(&t, &owner.cookie, "/dashboard/webhooks").await;
    assert!(
        empty.contains("data-test-id=\"endpoints-empty\""),
        "{empty}"
    );
    assert!(empty.contains("data-test-id=\"deliveries-empty\""));
    let receiver = Receiver::start("whsec_test_abc123").await;
    // The webhook URL always fails; an endpoint always answers.
    let url = json!({"webhook_url": receiver.url("/fail")});
    let (status, _) = t
        .call(Method::PUT, "/api/v1/webhooks/config", Some(&url))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, endpoint) = t
        .post(
            "/api/v1/webhooks/endpoints",
            &json!({"url": "http://127.0.0.1:9/later", "events": ["payment.created"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let we = endpoint["id"].as_str().unwrap();
    // Its receiver checks its own secret.
    let answering = Receiver::start(endpoint["secret"].as_str().unwrap()).await;
    let to = json!({"url": answering.url("/webhook")});
    let path = format!("/api/v1/webhooks/endpoints/{we}");
    assert_eq!(
        t.call(Method::PATCH, &path, Some(&to)).await.0,
        StatusCode::OK
    );
    // An endpoint nothing listens at: its attempts get no answer at all.
    let (status, dead) = t
        .post(
            "/api/v1/webhooks/endpoints",
            &json!({"url": "http://127.0.0.1:9/gone", "events": ["payment.created"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{dead}");
    let dead = dead["id"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(
            t.post("/api/v1/webhooks/test", &json!({})).await.0,
            StatusCode::OK
        );
    }
    // While the first failed attempt waits for the next: `retrying`, with its next attempt.
    let (_, retrying) = page(&t, &owner.cookie, "/dashboard/webhooks?state=retrying").await;
    assert_eq!(rows(&retrying), 2, "{retrying}");
    assert!(retrying.contains(">retrying<br>"), "{retrying}");
    assert_eq!(
        retrying
            .matches("data-test-id=\"webhook-next-retry\"")
            .count(),
        2
    );
    for id in [we, dead] {
        let (status, _) = t
            .post(&format!("/api/v1/webhooks/endpoints/{id}/test"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let log = all_final(&t, 4).await;
    assert_eq!(
        log.iter().filter(|d| d["status"] == "failed").count(),
        3,
        "{log:?}"
    );

    let count = |query: &'static str| {
        let (t, cookie) = (&t, owner.cookie.clone());
        async move {
            let (status, html) = page(t, &cookie, &format!("/dashboard/webhooks?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{html}");
            rows(&html)
        }
    };
    assert_eq!(count("state=failed").await, 3);
    assert_eq!(count("state=success").await, 1);
    assert_eq!(count("state=retrying").await, 0);
    assert_eq!(count("endpoint=default").await, 2);
    assert_eq!(count("event=webhook.test").await, 4);
    assert_eq!(count("event=payment.created").await, 0);
    let (_, by_endpoint) = page(
        &t,
        &owner.cookie,
        &format!("/dashboard/webhooks?endpoint={we}&state=success"),
    )
    .await;
    assert_eq!(rows(&by_endpoint), 1);
    assert!(by_endpoint.contains("data-test-id=\"filter-clear\""));
    let (_, none) = page(
        &t,
        &owner.cookie,
        "/dashboard/webhooks?event=nothing.like.it",
    )
    .await;
    assert!(none.contains("No delivery matches these filters."));
    // A failed attempt that got no answer shows why; one with an answer shows its status.
    let (_, unanswered) = page(
        &t,
        &owner.cookie,
        &format!("/dashboard/webhooks?endpoint={dead}"),
    )
    .await;
    assert_eq!(rows(&unanswered), 1);
    assert!(
        unanswered.contains("data-test-id=\"webhook-error\""),
        "{unanswered}"
    );
    let (_, answered) = page(&t, &owner.cookie, "/dashboard/webhooks?endpoint=default").await;
    assert!(answered.contains(">500<") && !answered.contains("data-test-id=\"webhook-error\""));

    // Retry all failed: the three start a new cycle at once (and fail again), the endpoint's
    // delivered one is left alone; the audit log has it.
    let before = receiver.received().await.len();
    let (status, location, _) = post(&t, &owner, "/dashboard/webhooks/retry-failed", &[]).await;
    assert_eq!((status, location.as_str()), (303, "/dashboard/webhooks"));
    let (_, after) = page(&t, &owner.cookie, "/dashboard/webhooks").await;
    assert!(
        after.contains("3 failed deliveries are being retried."),
        "{after}"
    );
    receiver
        .wait_for("the retried attempts", |got| got.len() >= before + 2)
        .await;
    let log = all_final(&t, 4).await;
    let retried: Vec<&Value> = log.iter().filter(|d| d["status"] == "failed").collect();
    assert_eq!(retried.len(), 3);
    assert!(retried.iter().all(|d| d["attempts"] == 5), "{retried:?}");
    let (_, audit) = t
        .get("/api/v1/audit_logs?action=webhook.retry_all_failed")
        .await;
    assert_eq!(audit["total"], 1, "{audit}");
    // The owner has the button (the role walk covers who may use it).
    assert!(after.contains("data-test-id=\"retry-all-failed-button\""));
}

every_backend!(the_delivery_log_reads_filters_and_retries_all_failed);
