//! Webhook endpoints: several per merchant, each getting exactly the event types it asked for
//! (the seed's default endpoint still getting all), secret rotation with an overlap in which
//! a receiver holding either secret verifies (checked with the public `standardwebhooks`
//! library), and the endpoints API's rules.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, assert_error, every_backend},
    webhooks::Receiver,
};

async fn create(t: &TestApp, body: Value) -> Value {
    let (status, e) = t.post("/api/v1/webhooks/endpoints", &body).await;
    assert_eq!(status, 201, "{e}");
    e
}

async fn patch(t: &TestApp, id: &str, body: Value) -> Value {
    let (status, e) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/endpoints/{id}"),
            Some(&body),
        )
        .await;
    assert_eq!(status, 200, "{e}");
    e
}

/// An endpoint created with `events`, delivering to a receiver holding its secret.
pub(crate) async fn endpoint_with_receiver(t: &TestApp, events: Value) -> (Value, Receiver) {
    let e = create(
        t,
        json!({"url": "https://example.com/placeholder", "events": events}),
    )
    .await;
    let receiver = Receiver::start(e["secret"].as_str().unwrap()).await;
    let id = e["id"].as_str().unwrap();
    let e = patch(t, id, json!({"url": receiver.url("/webhook")})).await;
    (e, receiver)
}

/// The event types received, each once (a receiver answering 200 gets each event once).
pub(crate) fn types(received: &[Value]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<String> = received
        .iter()
        .map(|r| {
            assert_eq!(r["answered"], 200, "{r}");
            assert!(
                seen.insert(r["webhook_id"].as_str().unwrap().to_owned()),
                "an event arrived twice: {r}"
            );
            let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            body["event"].as_str().unwrap().to_owned()
        })
        .collect();
    out.sort();
    out
}

/// Waits until no delivery of the merchant is pending.
async fn all_delivered(t: &TestApp) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, log) = t.get("/api/v1/webhooks?limit=100").await;
        let rows = log["data"].as_array().unwrap();
        if !rows.is_empty() && rows.iter().all(|d| d["status"] == "success") {
            return log;
        }
        assert!(Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn endpoints_get_exactly_the_events_they_asked_for(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    // The seed's single URL is the default endpoint: it gets every event.
    let (_, config) = t.get("/api/v1/webhooks/config").await;
    let default = Receiver::start(config["webhook_secret"].as_str().unwrap()).await;
    let (status, _) = t
        .call(
            Method::PUT,
            "/api/v1/webhooks/config",
            Some(&json!({"webhook_url": default.url("/webhook")})),
        )
        .await;
    assert_eq!(status, 200);
    let (payments, to_payments) = endpoint_with_receiver(&t, json!(["payment.*"])).await;
    let (mixed, to_mixed) =
        endpoint_with_receiver(&t, json!(["payment.success", "refund.processed"])).await;
    assert_eq!(
        mixed["events"],
        json!(["payment.success", "refund.processed"])
    );
    // A payment that succeeds, then a refund of it.
    let payment = t.upi_payment("success@upi").await;
    let pay_id = payment["id"].as_str().unwrap();
    t.wait_final(pay_id).await;
    let (status, refund) = t
        .post(&format!("/api/v1/payments/{pay_id}/refunds"), &json!({}))
        .await;
    assert_eq!(status, 201, "{refund}");
    default
        .wait_for("refund.processed", |r| {
            r.iter()
                .any(|x| x["body"].as_str().unwrap().contains("refund.processed"))
        })
        .await;
    let log = all_delivered(&t).await;
    // What happened, from the event log: each endpoint got exactly its share.
    let (_, events) = t.get("/api/v1/events?limit=100").await;
    let mut all: Vec<String> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    all.sort();
    assert!(all.len() >= 5, "{all:?}");
    let only = |keep: &dyn Fn(&str) -> bool| -> Vec<String> {
        all.iter().filter(|e| keep(e)).cloned().collect()
    };
    assert_eq!(types(&default.received().await), all);
    assert_eq!(
        types(&to_payments.received().await),
        only(&|e| e.starts_with("payment."))
    );
    assert_eq!(
        types(&to_mixed.received().await),
        only(&|e| e == "payment.success" || e == "refund.processed")
    );
    // Each is signed with its own endpoint's secret, and no other.
    let first = &to_mixed.received().await[0];
    crate::webhooks::verify_with_public_library(mixed["secret"].as_str().unwrap(), first)
        .expect("the endpoint's secret verifies");
    assert!(
        crate::webhooks::verify_with_public_library(payments["secret"].as_str().unwrap(), first)
            .is_err()
    );
    // The delivery log names the endpoint of each delivery (null: the default one).
    let count = |endpoint: &Value| {
        log["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| &d["endpoint_id"] == endpoint)
            .count()
    };
    assert_eq!(count(&Value::Null), all.len());
    assert_eq!(
        count(&payments["id"]),
        only(&|e| e.starts_with("payment.")).len()
    );
    assert_eq!(count(&mixed["id"]), 2);
}

/// Whether the Standard Webhooks signature of a received request verifies with `secret`
/// (the public library, which accepts any one of several `v1,` signatures).
pub(crate) fn standard_verifies(secret: &str, r: &Value) -> bool {
    use axum::http::{HeaderMap, HeaderValue};
    let mut headers = HeaderMap::new();
    for (name, key) in [
        ("webhook-id", "webhook_id"),
        ("webhook-timestamp", "webhook_timestamp"),
        ("webhook-signature", "webhook_signature"),
    ] {
        headers.insert(
            name,
            HeaderValue::from_str(r[key].as_str().unwrap()).unwrap(),
        );
    }
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(r["body"].as_str().unwrap().as_bytes(), &headers)
        .is_ok()
}

/// A new payment's `payment.created`, as the endpoint's current receiver got it.
async fn next_delivery(t: &TestApp, rx: &Receiver) -> Value {
    let before = rx.received().await.len();
    t.upi_payment("success@upi").await;
    let got = rx
        .wait_for("a new payment.created", |r| r.len() > before)
        .await;
    got[before].clone()
}

/// Rotates the endpoint's secret (`overlap_seconds` when given).
async fn rotate(t: &TestApp, id: &str, overlap: Option<i64>) -> Value {
    let body = overlap.map_or(json!({}), |s| json!({"overlap_seconds": s}));
    let path = format!("/api/v1/webhooks/endpoints/{id}/secret/rotate");
    let (status, e) = t.post(&path, &body).await;
    assert_eq!(status, 200, "{e}");
    e
}

async fn a_rotated_secret_keeps_verifying_during_its_overlap_only(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (e, _) = endpoint_with_receiver(&t, json!(["payment.created"])).await;
    let id = e["id"].as_str().unwrap().to_owned();
    let old = e["secret"].as_str().unwrap().to_owned();
    // Rotated with the default overlap (24 h): both secrets sign.
    let rotated = rotate(&t, &id, None).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let until = chrono::DateTime::parse_from_rfc3339(
        rotated["previous_secret_expires_at"].as_str().unwrap(),
    )
    .unwrap();
    let left = until.signed_duration_since(chrono::Utc::now());
    assert!(
        (chrono::Duration::hours(23)..=chrono::Duration::hours(24)).contains(&left),
        "{left}"
    );
    let rx = Receiver::start(&new).await;
    patch(&t, &id, json!({"url": rx.url("/webhook")})).await;
    let r = next_delivery(&t, &rx).await;
    assert!(
        standard_verifies(&old, &r),
        "a receiver with the old secret verifies"
    );
    assert!(
        standard_verifies(&new, &r),
        "a receiver with the new secret verifies"
    );
    assert_eq!(
        r["hex_signature_valid"], true,
        "X-Webhook-Signature is the new one"
    );
    let stranger = paygate::merchants::new_webhook_secret();
    assert!(!standard_verifies(&stranger, &r));
    // Rotated with a 1 s overlap: once it has passed, only the newest secret signs.
    let rotated = rotate(&t, &id, Some(1)).await;
    let newest = rotated["secret"].as_str().unwrap().to_owned();
    let rx = Receiver::start(&newest).await;
    patch(&t, &id, json!({"url": rx.url("/webhook")})).await;
    let until = chrono::DateTime::parse_from_rfc3339(
        rotated["previous_secret_expires_at"].as_str().unwrap(),
    )
    .unwrap();
    while chrono::Utc::now() <= until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = next_delivery(&t, &rx).await;
    assert!(standard_verifies(&newest, &r));
    assert!(!standard_verifies(&new, &r), "the overlap has ended");
    assert!(!standard_verifies(&old, &r));
    // Rotated with overlap 0: the old secret is revoked at once.
    let rotated = rotate(&t, &id, Some(0)).await;
    assert_eq!(rotated["previous_secret_expires_at"], Value::Null);
    let last = rotated["secret"].as_str().unwrap().to_owned();
    let rx = Receiver::start(&last).await;
    patch(&t, &id, json!({"url": rx.url("/webhook")})).await;
    let r = next_delivery(&t, &rx).await;
    assert!(standard_verifies(&last, &r));
    assert!(!standard_verifies(&newest, &r));
    let (status, err) = t
        .post(
            &format!("/api/v1/webhooks/endpoints/{id}/secret/rotate"),
            &json!({"overlap_seconds": -1}),
        )
        .await;
    assert_error(status, &err, 400, "BAD_REQUEST_ERROR");
}

async fn the_endpoints_api_checks_its_input_and_keeps_merchants_apart(backend: Backend) {
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &["--webhook-endpoints-max", "2"],
    )
    .await;
    for (body, says) in [
        (json!({}), "url is required"),
        (json!({"url": "ftp://example.com/x"}), "http"),
        (
            json!({"url": "https://example.com/x", "events": ["order.*"]}),
            "order.*",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["payment"]}),
            "payment",
        ),
        (
            json!({"url": "https://example.com/x", "description": "x".repeat(256)}),
            "description",
        ),
        (
            json!({"url": "https://example.com/x", "colour": "red"}),
            "colour",
        ),
    ] {
        let (status, err) = t.post("/api/v1/webhooks/endpoints", &body).await;
        assert_error(status, &err, 400, "BAD_REQUEST_ERROR");
        assert!(
            err["error"]["description"].as_str().unwrap().contains(says),
            "{body}: {err}"
        );
    }
    let a = create(
        &t,
        json!({"url": "https://example.com/a", "description": "orders", "enabled": false}),
    )
    .await;
    assert!(a["id"].as_str().unwrap().starts_with("we_"));
    assert!(a["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(a["enabled"], false);
    assert_eq!(a["events"], json!([]));
    create(&t, json!({"url": "https://example.com/b"})).await;
    let (status, err) = t
        .post(
            "/api/v1/webhooks/endpoints",
            &json!({"url": "https://example.com/c"}),
        )
        .await;
    assert_error(status, &err, 400, "BAD_REQUEST_ERROR");
    assert!(
        err["error"]["description"]
            .as_str()
            .unwrap()
            .contains("at most 2")
    );
    let (_, list) = t.get("/api/v1/webhooks/endpoints").await;
    assert_eq!(list["total"], 2);
    let id = a["id"].as_str().unwrap();
    let changed = patch(
        &t,
        id,
        json!({"description": null, "events": ["refund.*"], "enabled": true}),
    )
    .await;
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(changed["events"], json!(["refund.*"]));
    assert_eq!(changed["url"], "https://example.com/a");
    // Another merchant sees none of them.
    let other = paygate::merchants::create(&t.app.store, "Other", "other@example.com")
        .await
        .unwrap();
    let (key, secret) = (other.merchant.api_key.clone(), other.api_secret.clone());
    let path = format!("/api/v1/webhooks/endpoints/{id}");
    let (status, err) = t.call_as(&key, &secret, Method::GET, &path, None).await;
    assert_error(status, &err, 404, "NOT_FOUND_ERROR");
    let (status, err) = t.call_as(&key, &secret, Method::DELETE, &path, None).await;
    assert_error(status, &err, 404, "NOT_FOUND_ERROR");
    let (_, theirs) = t
        .call_as(
            &key,
            &secret,
            Method::GET,
            "/api/v1/webhooks/endpoints",
            None,
        )
        .await;
    assert_eq!(theirs["total"], 0);
    // Deleted: gone, and room for another.
    let (status, done) = t.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done, json!({"id": id, "deleted": true}));
    let (status, err) = t.get(&path).await;
    assert_error(status, &err, 404, "NOT_FOUND_ERROR");
    create(&t, json!({"url": "https://example.com/c"})).await;
}

async fn a_disabled_endpoint_gets_nothing_until_enabled(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (e, rx) = endpoint_with_receiver(&t, json!(["payment.created"])).await;
    let id = e["id"].as_str().unwrap();
    patch(&t, id, json!({"enabled": false})).await;
    let (status, err) = t
        .post(&format!("/api/v1/webhooks/endpoints/{id}/test"), &json!({}))
        .await;
    assert_error(status, &err, 400, "BAD_REQUEST_ERROR");
    let quiet = t.upi_payment("success@upi").await;
    t.wait_final(quiet["id"].as_str().unwrap()).await;
    patch(&t, id, json!({"enabled": true})).await;
    let r = next_delivery(&t, &rx).await;
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_ne!(
        body["data"]["payment"]["id"], quiet["id"],
        "the payment made while disabled was not delivered"
    );
    assert_eq!(rx.received().await.len(), 1);
    // A test event goes to this endpoint alone, whatever its filter.
    let (status, d) = t
        .post(&format!("/api/v1/webhooks/endpoints/{id}/test"), &json!({}))
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["event"], "webhook.test");
    assert_eq!(d["endpoint_id"], id);
    let got = rx.wait_for("webhook.test", |r| r.len() == 2).await;
    let body: Value = serde_json::from_str(got[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["event"], "webhook.test");
    assert_eq!(got[1]["answered"], 200);
}

/// The merchant's events, oldest first: `(id, type, resource, created_at)`.
async fn event_log(t: &TestApp) -> Vec<(String, String, String, String)> {
    let (_, events) = t.get("/api/v1/events?limit=100").await;
    let mut out: Vec<_> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap().to_owned();
            (
                text("id"),
                text("event"),
                text("resource_id"),
                text("created_at"),
            )
        })
        .collect();
    out.reverse();
    out
}

async fn a_replay_redelivers_a_range_with_the_same_event_ids(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (e, rx) = endpoint_with_receiver(&t, json!(["payment.*"])).await;
    let id = e["id"].as_str().unwrap().to_owned();
    let first = t.upi_payment("success@upi").await;
    t.wait_final(first["id"].as_str().unwrap()).await;
    all_delivered(&t).await;
    let boundary = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = t.upi_payment("success@upi").await;
    t.wait_final(second["id"].as_str().unwrap()).await;
    all_delivered(&t).await;
    let delivered = rx.received().await.len();
    let log = event_log(&t).await;
    let of_first: BTreeSet<String> = log
        .iter()
        .filter(|(.., resource, _)| resource == first["id"].as_str().unwrap())
        .map(|(id, ..)| id.clone())
        .collect();
    assert!(of_first.len() >= 2, "{log:?}");
    // Everything up to the boundary: the first payment's events, again, with their ids.
    let path = format!("/api/v1/webhooks/endpoints/{id}/replay");
    let (status, done) = t
        .post(
            &path,
            &json!({"since": "2020-01-01T00:00:00Z", "until": boundary}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["queued"], of_first.len(), "{done}");
    assert_eq!(done["has_more"], false);
    let got = rx
        .wait_for("the replay", |r| r.len() >= delivered + of_first.len())
        .await;
    let again: BTreeSet<String> = got[delivered..]
        .iter()
        .map(|r| r["webhook_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(again, of_first, "the same event ids, once each");
    let before: Vec<&Value> = got[..delivered].iter().collect();
    for r in &got[delivered..] {
        let original = before
            .iter()
            .find(|b| b["webhook_id"] == r["webhook_id"])
            .expect("delivered before");
        assert_eq!(original["body"], r["body"], "the same body");
    }
    all_delivered(&t).await;
    // Only one type, over everything.
    let (_, done) = t
        .post(
            &path,
            &json!({"since": "2020-01-01T00:00:00Z", "events": ["payment.success"]}),
        )
        .await;
    assert_eq!(done["queued"], 2, "{done}");
    for (body, says) in [
        (json!({"since": "yesterday"}), "since"),
        (
            json!({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}),
            "before",
        ),
        (
            json!({"since": "2026-12-01T00:00:00Z", "events": ["order.*"]}),
            "order.*",
        ),
        (json!({}), "since is required"),
    ] {
        let (status, err) = t.post(&path, &body).await;
        assert_error(status, &err, 400, "BAD_REQUEST_ERROR");
        assert!(
            err["error"]["description"].as_str().unwrap().contains(says),
            "{err}"
        );
    }
    let (status, err) = t
        .post(
            "/api/v1/webhooks/endpoints/we_nonesuch0000000/replay",
            &json!({"since": "2026-12-01T00:00:00Z"}),
        )
        .await;
    assert_error(status, &err, 404, "NOT_FOUND_ERROR");
}

async fn retry_failed_restarts_every_failed_delivery_of_an_endpoint(backend: Backend) {
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &["--webhook-retry-schedule", "0,10,10,10,10"],
    )
    .await;
    let e = create(
        &t,
        json!({"url": "https://example.com/x", "events": ["payment.created"]}),
    )
    .await;
    let id = e["id"].as_str().unwrap().to_owned();
    let rx = Receiver::start(e["secret"].as_str().unwrap()).await;
    patch(&t, &id, json!({"url": rx.url("/fail")})).await;
    for _ in 0..2 {
        t.upi_payment("success@upi").await;
    }
    // Both deliveries use up their five attempts.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, log) = t.get("/api/v1/webhooks?limit=100").await;
        let failed = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["endpoint_id"] == id.as_str() && d["status"] == "failed")
            .count();
        if failed == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    patch(&t, &id, json!({"url": rx.url("/webhook")})).await;
    let (status, done) = t
        .post(
            &format!("/api/v1/webhooks/endpoints/{id}/retry-failed"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["queued"], 2);
    rx.wait_for("two deliveries that verify", |r| {
        r.iter().filter(|x| x["answered"] == 200).count() == 2
    })
    .await;
    let log = all_delivered(&t).await;
    assert!(
        log["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["attempts"] == 1)
    );
    let (_, again) = t
        .post(
            &format!("/api/v1/webhooks/endpoints/{id}/retry-failed"),
            &json!({}),
        )
        .await;
    assert_eq!(again["queued"], 0, "nothing failed is left");
}

async fn sequence_numbers_increase_with_each_event_of_a_resource(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (_, rx) = endpoint_with_receiver(&t, json!([])).await;
    let payment = t.upi_payment("success@upi").await;
    let pay_id = payment["id"].as_str().unwrap();
    t.wait_final(pay_id).await;
    let (status, _) = t
        .post(&format!("/api/v1/payments/{pay_id}/capture"), &json!({}))
        .await;
    assert_eq!(status, 200);
    all_delivered(&t).await;
    let log = event_log(&t).await;
    let order: Vec<&String> = log
        .iter()
        .filter(|(.., resource, _)| resource == pay_id)
        .map(|(id, ..)| id)
        .collect();
    assert!(order.len() >= 3, "{log:?}");
    let received = rx.received().await;
    let sequence_of = |event_id: &str| -> i64 {
        let r = received
            .iter()
            .find(|r| r["webhook_id"] == event_id)
            .expect("delivered");
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        body["sequence"].as_i64().expect("a sequence number")
    };
    let sequences: Vec<i64> = order.iter().map(|id| sequence_of(id)).collect();
    assert!(
        sequences.windows(2).all(|w| w[0] < w[1]),
        "in the order the events happened: {sequences:?}"
    );
    // The delivery log shows the same numbers.
    let (_, deliveries) = t.get("/api/v1/webhooks?limit=100").await;
    for d in deliveries["data"].as_array().unwrap() {
        assert_eq!(
            d["sequence"].as_i64().unwrap(),
            sequence_of(d["event_id"].as_str().unwrap())
        );
    }
}

/// Polls the endpoint until `pred` holds (at most 20 s).
async fn wait_endpoint(t: &TestApp, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, e) = t.get(&format!("/api/v1/webhooks/endpoints/{id}")).await;
        if pred(&e) {
            return e;
        }
        assert!(Instant::now() < deadline, "waiting for {what}: {e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_failing_endpoint_is_disabled_and_resumes_when_enabled(backend: Backend) {
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &[
            "--webhook-retry-schedule",
            "0,1500,10,10,10",
            "--webhook-endpoint-disable-after",
            "1",
        ],
    )
    .await;
    let (watcher, to_watcher) = endpoint_with_receiver(&t, json!(["webhook_endpoint.*"])).await;
    let (failing, rx) = endpoint_with_receiver(&t, json!(["payment.created"])).await;
    let id = failing["id"].as_str().unwrap().to_owned();
    patch(&t, &id, json!({"url": rx.url("/fail")})).await;
    // Its delivery fails its first attempt (failing since then), and its second 1.5 s
    // later: past the 1 s period, so the endpoint is disabled, once, with the delivery
    // still pending.
    let payment = t.upi_payment("success@upi").await;
    let pay_id = payment["id"].as_str().unwrap().to_owned();
    let e = wait_endpoint(&t, &id, "failing_since", |e| e["failing_since"].is_string()).await;
    assert_eq!(
        e["enabled"], true,
        "not yet: failing for less than the period"
    );
    let e = wait_endpoint(&t, &id, "disabled", |e| e["enabled"] == false).await;
    assert_eq!(e["disabled_reason"], "failing");
    let (_, events) = t.get("/api/v1/events?limit=100").await;
    let disabled: Vec<&Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "webhook_endpoint.disabled")
        .collect();
    assert_eq!(disabled.len(), 1, "{events}");
    assert_eq!(disabled[0]["resource_id"], id.as_str());
    let got = to_watcher
        .wait_for("webhook_endpoint.disabled", |r| !r.is_empty())
        .await;
    let body: Value = serde_json::from_str(got[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["event"], "webhook_endpoint.disabled");
    assert_eq!(body["data"]["webhook_endpoint"]["id"], id.as_str());
    crate::webhooks::verify_with_public_library(watcher["secret"].as_str().unwrap(), &got[0])
        .unwrap();
    let (_, log) = t.get("/api/v1/webhooks?limit=100").await;
    let mine = |log: &Value| -> Value {
        log["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["endpoint_id"] == id.as_str())
            .cloned()
            .unwrap()
    };
    let held = mine(&log);
    assert_eq!(held["status"], "pending", "{held}");
    assert_eq!(held["attempts"], 2, "{held}");
    // Enabled again (and fixed): the held delivery is attempted at once, and arrives.
    let e = patch(&t, &id, json!({"url": rx.url("/webhook"), "enabled": true})).await;
    assert_eq!(e["failing_since"], Value::Null);
    assert_eq!(e["disabled_reason"], Value::Null);
    rx.wait_for("the held delivery", |r| {
        r.iter()
            .any(|x| x["answered"] == 200 && x["body"].as_str().unwrap().contains(&pay_id))
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, log) = t.get("/api/v1/webhooks?limit=100").await;
        let d = mine(&log);
        if d["status"] == "success" {
            assert_eq!(d["attempts"], 3, "no attempt while disabled: {d}");
            break;
        }
        assert!(Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

every_backend!(
    a_failing_endpoint_is_disabled_and_resumes_when_enabled,
    a_replay_redelivers_a_range_with_the_same_event_ids,
    retry_failed_restarts_every_failed_delivery_of_an_endpoint,
    sequence_numbers_increase_with_each_event_of_a_resource,
    endpoints_get_exactly_the_events_they_asked_for,
    a_rotated_secret_keeps_verifying_during_its_overlap_only,
    the_endpoints_api_checks_its_input_and_keeps_merchants_apart,
    a_disabled_endpoint_gets_nothing_until_enabled,
);
