//! Idempotency keys on every authenticated POST (SPEC A7, B).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, KEY, SECRET, TestApp, assert_error, every_backend};

/// POSTs with an idempotency key; returns status, the replay header, and the raw body.
async fn post_with_key(
    t: &TestApp,
    path: &str,
    key: &str,
    body: &Value,
) -> (StatusCode, bool, String) {
    let res = t
        .client
        .post(t.url(path))
        .header("X-Api-Key", KEY)
        .header("X-Api-Secret", SECRET)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let replayed = res
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    (status, replayed, res.text().await.unwrap())
}

async fn a_repeat_returns_the_stored_response_and_creates_nothing(backend: Backend) {
    let t = TestApp::spawn_with(backend, paygate::app::Mode::Serve, &[]).await;
    let (s1, r1, order) =
        post_with_key(&t, "/api/v1/orders", "order-key-1", &json!({"amount": 700})).await;
    assert_eq!(s1, 201);
    assert!(!r1);
    let (s2, r2, again) =
        post_with_key(&t, "/api/v1/orders", "order-key-1", &json!({"amount": 700})).await;
    assert_eq!(s2, 201);
    assert!(r2, "the replay is marked");
    assert_eq!(order, again, "byte for byte");
    assert_eq!(t.count("orders").await, 1);

    let order_id = serde_json::from_str::<Value>(&order).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pay = json!({"order_id": order_id, "method": "upi", "vpa": "a@b"});
    let (s, _, first) = post_with_key(&t, "/api/v1/payments", "pay-key-1", &pay).await;
    assert_eq!(s, 201);
    // The payment changes status; the replay still shows the stored (pending) body.
    t.run_jobs(1).await;
    let (s, replayed, second) = post_with_key(&t, "/api/v1/payments", "pay-key-1", &pay).await;
    assert_eq!(s, 201);
    assert!(replayed);
    assert_eq!(first, second);
    assert!(second.contains("\"status\":\"pending\""));
    assert_eq!(t.count("payments").await, 1);
    assert_eq!(t.count("events").await, 3, "no events from the replay");
    let counts = t.app.queue.counts(Some("payments")).await.unwrap();
    assert_eq!(
        counts.queued + counts.active,
        0,
        "nothing enqueued by the replay"
    );
}

async fn a_key_reused_for_another_request_is_rejected(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (s, _, _) = post_with_key(&t, "/api/v1/orders", "k", &json!({"amount": 700})).await;
    assert_eq!(s, 201);
    let (s, _, body) = post_with_key(&t, "/api/v1/orders", "k", &json!({"amount": 701})).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_error(s, &body, 422, "IDEMPOTENCY_KEY_REUSED");
    // Same body on another path.
    let (s, _, body) = post_with_key(&t, "/api/v1/payments", "k", &json!({"amount": 700})).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_error(s, &body, 422, "IDEMPOTENCY_KEY_REUSED");
    // Keys are per merchant: another merchant may use "k".
    let other = paygate::merchants::create(&t.app.store, "Other", "o@example.com")
        .await
        .unwrap();
    let res = t
        .client
        .post(t.url("/api/v1/orders"))
        .header("X-Api-Key", &other.merchant.api_key)
        .header("X-Api-Secret", &other.api_secret)
        .header("Idempotency-Key", "k")
        .json(&json!({"amount": 999}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(t.count("orders").await, 2);
}

async fn failed_requests_store_nothing_and_long_keys_are_refused(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (s, _, body) = post_with_key(&t, "/api/v1/orders", "fix-me", &json!({"amount": 5})).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_error(s, &body, 400, "BAD_REQUEST_ERROR");
    // The same key with a corrected body now runs.
    let (s, replayed, _) =
        post_with_key(&t, "/api/v1/orders", "fix-me", &json!({"amount": 500})).await;
    assert_eq!(s, 201);
    assert!(!replayed);
    let long = "x".repeat(256);
    let (s, _, body) = post_with_key(&t, "/api/v1/orders", &long, &json!({"amount": 500})).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_error(s, &body, 400, "BAD_REQUEST_ERROR");
    let (s, _, _) = post_with_key(
        &t,
        "/api/v1/orders",
        &"y".repeat(255),
        &json!({"amount": 500}),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(t.count("orders").await, 2);
    // Wrong credentials with a key: 401, nothing stored.
    let res = t
        .client
        .post(t.url("/api/v1/orders"))
        .header("X-Api-Key", KEY)
        .header("X-Api-Secret", "wrong")
        .header("Idempotency-Key", "z")
        .json(&json!({"amount": 500}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(t.count("idempotency_keys").await, 2);
}

async fn fifty_concurrent_requests_with_one_key_create_one_payment(backend: Backend) {
    let t = TestApp::spawn_with(backend, paygate::app::Mode::Serve, &[]).await;
    let order = t.order(2500).await;
    let body = json!({"order_id": order, "method": "upi", "vpa": "buyer@okaxis"});
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (client, url, body) = (t.client.clone(), t.url("/api/v1/payments"), body.clone());
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .header("X-Api-Key", KEY)
                .header("X-Api-Secret", SECRET)
                .header("Idempotency-Key", "same-key")
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        let (status, text) = task.await.unwrap();
        match status {
            201 => created.push(text),
            409 => assert!(text.contains("IDEMPOTENCY_KEY_IN_USE"), "{text}"),
            other => panic!("unexpected {other}: {text}"),
        }
    }
    assert!(!created.is_empty());
    assert!(
        created.windows(2).all(|w| w[0] == w[1]),
        "every 201 is the same body"
    );
    assert_eq!(t.count("payments").await, 1);
    let counts = t.app.queue.counts(Some("payments")).await.unwrap();
    // One job (on Redis it may still be on its way from the dispatch task).
    let mut jobs = counts.queued + counts.active;
    for _ in 0..100 {
        if jobs == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let c = t.app.queue.counts(Some("payments")).await.unwrap();
        jobs = c.queued + c.active;
    }
    assert_eq!(jobs, 1);
}

async fn capture_and_refunds_honour_keys(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let payment = t.upi_payment("success@upi").await;
    let id = payment["id"].as_str().unwrap();
    t.wait_final(id).await;
    let path = format!("/api/v1/payments/{id}/refunds");
    let (s1, _, a) = post_with_key(&t, &path, "refund-1", &json!({"amount": 100})).await;
    let (s2, replayed, b) = post_with_key(&t, &path, "refund-1", &json!({"amount": 100})).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (201, 201));
    assert!(replayed);
    assert_eq!(a, b);
    assert_eq!(t.count("refunds").await, 1);
    // Once the refund is processed, the replay still shows it pending, as first answered.
    let rid = serde_json::from_str::<Value>(&a).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..500 {
        let (_, r) = t.get(&format!("/api/v1/refunds/{rid}")).await;
        if r["status"] == "processed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, r) = t.get(&format!("/api/v1/refunds/{rid}")).await;
    assert_eq!(r["status"], "processed");
    let (_, _, c) = post_with_key(&t, &path, "refund-1", &json!({"amount": 100})).await;
    assert_eq!(a, c);
    assert!(c.contains("\"status\":\"pending\""));
    // Capture a payment of its own (one with refunds is not captured).
    let other = t.upi_payment("success@upi").await;
    let id = other["id"].as_str().unwrap();
    t.wait_final(id).await;
    let cap = format!("/api/v1/payments/{id}/capture");
    let (s1, _, a) = post_with_key(&t, &cap, "cap-1", &json!({})).await;
    let (s2, replayed, b) = post_with_key(&t, &cap, "cap-1", &json!({})).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (200, 200));
    assert!(replayed, "a replayed capture, not a 'not capturable' error");
    assert_eq!(a, b);
}

async fn expired_keys_count_as_new_and_are_purged(backend: Backend) {
    use paygate::store::idempotency::{self, Claim};
    let t = TestApp::spawn(backend).await;
    let (store, m) = (&t.app.store, paygate::merchants::test_merchant::ID);
    let now = paygate::store::now();
    let day = chrono::Duration::hours(24);
    let claim = |at: chrono::DateTime<chrono::Utc>, hash: &'static str| {
        idempotency::claim(
            store,
            m,
            "old",
            hash,
            at,
            at + day,
            at - chrono::Duration::seconds(60),
            "test",
        )
    };
    let Claim::Acquired(held) = claim(now, "h1").await.unwrap() else {
        panic!("a new key is acquired")
    };
    let stored = idempotency::Stored {
        status: 201,
        body: b"{}".to_vec(),
    };
    assert!(idempotency::complete(store, &held, &stored).await.unwrap());
    assert_eq!(claim(now, "h2").await.unwrap(), Claim::Mismatch);
    let later = now + day + chrono::Duration::seconds(1);
    let Claim::Acquired(_) = claim(later, "h2").await.unwrap() else {
        panic!("an expired key is new")
    };
    assert_eq!(
        idempotency::purge_expired(store, later + day + day)
            .await
            .unwrap(),
        1
    );
    assert_eq!(t.count("idempotency_keys").await, 0);
}

/// A request that ran past the takeover window cannot store its answer over the request that
/// took its key over, nor free the key under it.
async fn a_taken_over_claim_can_neither_complete_nor_release(backend: Backend) {
    use paygate::store::idempotency::{self, Claim, Stored};
    let t = TestApp::spawn(backend).await;
    let (store, m) = (&t.app.store, paygate::merchants::test_merchant::ID);
    let now = paygate::store::now();
    let takeover = chrono::Duration::seconds(60);
    let claim = |at: chrono::DateTime<chrono::Utc>| {
        idempotency::claim(
            store,
            m,
            "slow",
            "h",
            at,
            at + chrono::Duration::hours(24),
            at - takeover,
            "test",
        )
    };
    let Claim::Acquired(slow) = claim(now).await.unwrap() else {
        panic!("acquired")
    };
    assert_eq!(
        claim(now).await.unwrap(),
        Claim::InUse,
        "held within the window"
    );
    let Claim::Acquired(retry) = claim(now + takeover + chrono::Duration::seconds(1))
        .await
        .unwrap()
    else {
        panic!("taken over after the window")
    };
    assert_ne!(slow.token, retry.token);
    let answer = |body: &str| Stored {
        status: 201,
        body: body.as_bytes().to_vec(),
    };
    assert!(
        !idempotency::complete(store, &slow, &answer("slow"))
            .await
            .unwrap()
    );
    idempotency::release(store, &slow).await.unwrap();
    assert_eq!(
        claim(now).await.unwrap(),
        Claim::InUse,
        "the slow request freed nothing"
    );
    assert!(
        idempotency::complete(store, &retry, &answer("retry"))
            .await
            .unwrap()
    );
    assert!(
        !idempotency::complete(store, &slow, &answer("slow"))
            .await
            .unwrap()
    );
    assert_eq!(claim(now).await.unwrap(), Claim::Replay(answer("retry")));
}

every_backend!(
    a_taken_over_claim_can_neither_complete_nor_release,
    expired_keys_count_as_new_and_are_purged,
    a_repeat_returns_the_stored_response_and_creates_nothing,
    a_key_reused_for_another_request_is_rejected,
    failed_requests_store_nothing_and_long_keys_are_refused,
    fifty_concurrent_requests_with_one_key_create_one_payment,
    capture_and_refunds_honour_keys,
);
