//! Capture and refunds (SPEC A3, A5): every rule and message, the refund invariant under
//! concurrency, and refund jobs that run twice.

use paygate::{refunds, store::events};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, every_backend};

/// A successful UPI payment of `amount`.
async fn paid(t: &TestApp, amount: i64) -> String {
    let order = t.order(amount).await;
    let (status, p) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "upi", "vpa": "success@upi"}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(t.wait_final(&id).await["status"], "success");
    id
}

async fn wait_refund(t: &TestApp, id: &str) -> Value {
    for _ in 0..500 {
        let (status, r) = t.get(&format!("/api/v1/refunds/{id}")).await;
        assert_eq!(status, 200, "{r}");
        if r["status"] == "processed" {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("refund {id} not processed");
}

async fn capture_follows_the_documented_rules(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = paid(&t, 5000).await;
    let path = format!("/api/v1/payments/{id}/capture");
    let (status, body) = t.post(&path, &json!({"amount": 4000})).await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    assert_eq!(
        body["error"]["description"],
        "Capture amount must equal the payment amount"
    );
    let (status, body) = t.post(&path, &json!({"amount": "5000"})).await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    let (status, body) = t.post(&path, &json!({"amount": 5000})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["captured"], true);
    assert_eq!(body["id"], id.as_str());
    // A second capture is refused.
    let (status, body) = t.post(&path, &json!({"amount": 5000})).await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    assert_eq!(
        body["error"]["description"],
        "Payment not in capturable state"
    );
    let (_, got) = t.get(&format!("/api/v1/payments/{id}")).await;
    assert_eq!(got["captured"], true);
    let types: Vec<_> = events::for_resource(&t.app.store, &id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types.iter().filter(|t| *t == "payment.captured").count(),
        1,
        "{types:?}"
    );

    // Pending and failed payments are not capturable.
    let failed = t.upi_payment("failure@upi").await;
    let failed_id = failed["id"].as_str().unwrap();
    t.wait_final(failed_id).await;
    let (status, body) = t
        .post(&format!("/api/v1/payments/{failed_id}/capture"), &json!({}))
        .await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    assert_eq!(
        body["error"]["description"],
        "Payment not in capturable state"
    );
    let (status, body) = t
        .post("/api/v1/payments/pay_AAAAAAAAAAAAAAAA/capture", &json!({}))
        .await;
    assert_error(status, &body, 404, "NOT_FOUND_ERROR");
}

async fn refunds_follow_the_documented_rules(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = paid(&t, 10_000).await;
    let path = format!("/api/v1/payments/{id}/refunds");
    let (status, r1) = t
        .post(&path, &json!({"amount": 4000, "reason": "damaged"}))
        .await;
    assert_eq!(status, 201, "{r1}");
    let keys: Vec<_> = r1.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "amount",
            "created_at",
            "id",
            "payment_id",
            "reason",
            "status"
        ]
    );
    assert_eq!(r1["status"], "pending");
    assert!(paygate_core::RefundId::parse(r1["id"].as_str().unwrap()).is_some());
    // The pending refund counts: 6000 are left.
    let (status, body) = t.post(&path, &json!({"amount": 6001})).await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    assert_eq!(
        body["error"]["description"],
        "Refund amount exceeds available amount"
    );
    for bad in [
        json!({"amount": 0}),
        json!({"amount": -5}),
        json!({"amount": "10"}),
        json!({"reason": 5}),
    ] {
        let (status, body) = t.post(&path, &bad).await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    }
    let (status, r2) = t.post(&path, &json!({"amount": 6000})).await;
    assert_eq!(status, 201, "{r2}");
    let done = wait_refund(&t, r1["id"].as_str().unwrap()).await;
    assert!(done["processed_at"].is_string());
    assert_eq!(done["reason"], "damaged");
    wait_refund(&t, r2["id"].as_str().unwrap()).await;
    let (status, body) = t.post(&path, &json!({"amount": 1})).await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    assert_eq!(
        body["error"]["description"],
        "Refund amount exceeds available amount"
    );

    let (_, payment) = t.get(&format!("/api/v1/payments/{id}")).await;
    assert_eq!(payment["amount_refunded"], 10_000);
    assert_eq!(payment["refund_status"], "full");
    let (_, list) = t.get(&path).await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["data"][0]["id"], r1["id"]);
    let (_, all) = t.get("/api/v1/refunds?limit=1").await;
    assert_eq!(all["total"], 2);
    assert_eq!(all["data"][0]["id"], r2["id"], "newest first");
    let types: Vec<_> = events::for_resource(&t.app.store, r1["id"].as_str().unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types, ["refund.created", "refund.processed"]);
}

async fn only_successful_payments_are_refundable(backend: Backend) {
    let t = TestApp::spawn_with(backend, paygate::app::Mode::Serve, &[]).await;
    let pending = t.upi_payment("someone@upi").await;
    let pid = pending["id"].as_str().unwrap();
    let (status, body) = t
        .post(
            &format!("/api/v1/payments/{pid}/refunds"),
            &json!({"amount": 100}),
        )
        .await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    assert_eq!(
        body["error"]["description"],
        "Payment not in refundable state"
    );
    let failed = t.upi_payment("failure@upi").await;
    t.run_jobs(2).await;
    let fid = failed["id"].as_str().unwrap();
    let (status, body) = t
        .post(&format!("/api/v1/payments/{fid}/refunds"), &json!({}))
        .await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    assert_eq!(
        body["error"]["description"],
        "Payment not in refundable state"
    );
    assert_eq!(t.count("refunds").await, 0);
}

async fn another_merchants_payments_and_refunds_are_not_found(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let other = paygate::merchants::create(&t.app.store, "Other", "other@example.com")
        .await
        .unwrap();
    let (k, s) = (other.merchant.api_key.clone(), other.api_secret.clone());
    let id = paid(&t, 1000).await;
    let (_, refund) = t
        .post(
            &format!("/api/v1/payments/{id}/refunds"),
            &json!({"amount": 100}),
        )
        .await;
    let rid = refund["id"].as_str().unwrap();
    let post = reqwest::Method::POST;
    for (method, path) in [
        (post.clone(), format!("/api/v1/payments/{id}/refunds")),
        (post.clone(), format!("/api/v1/payments/{id}/capture")),
        (reqwest::Method::GET, format!("/api/v1/refunds/{rid}")),
        (
            reqwest::Method::GET,
            format!("/api/v1/payments/{id}/refunds"),
        ),
    ] {
        let (status, body) = t
            .call_as(&k, &s, method, &path, Some(&json!({"amount": 100})))
            .await;
        assert_error(status, &body, 404, "NOT_FOUND_ERROR");
    }
    let (_, mine) = t
        .call_as(&k, &s, reqwest::Method::GET, "/api/v1/refunds", None)
        .await;
    assert_eq!(mine["total"], 0);
}

async fn concurrent_refunds_never_exceed_the_payment(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = paid(&t, 10_000).await;
    let path = format!("/api/v1/payments/{id}/refunds");
    // 50 refunds of 100..=2550 (sum 66,250) against 10,000.
    let mut tasks = Vec::new();
    for i in 0..50i64 {
        let (client, url) = (t.client.clone(), t.url(&path));
        tasks.push(tokio::spawn(async move {
            let amount = 100 + i * 50;
            let res = client
                .post(url)
                .header("X-Api-Key", crate::helpers::KEY)
                .header("X-Api-Secret", crate::helpers::SECRET)
                .json(&json!({"amount": amount}))
                .send()
                .await
                .unwrap();
            let (status, body) = crate::helpers::into_json(res).await;
            (amount, status.as_u16(), body)
        }));
    }
    let mut accepted = 0;
    let mut accepted_count = 0;
    for task in tasks {
        let (amount, status, body) = task.await.unwrap();
        match status {
            201 => {
                accepted += amount;
                accepted_count += 1;
                assert_eq!(body["amount"], amount);
            }
            400 => assert_eq!(
                body["error"]["description"],
                "Refund amount exceeds available amount"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(accepted <= 10_000, "accepted {accepted}");
    assert!(accepted_count > 0);
    let rows = paygate::store::refunds::for_payment(&t.app.store, &id)
        .await
        .unwrap();
    assert_eq!(rows.len(), accepted_count);
    assert_eq!(rows.iter().map(|r| r.amount.get()).sum::<i64>(), accepted);
    let payment = paygate::store::payments::get(&t.app.store, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(payment.amount_refunded, accepted);
}

async fn a_refund_job_run_twice_processes_once(backend: Backend) {
    let bank = crate::helpers::Counting::new(crate::helpers::slow_bank(50));
    let t = TestApp::spawn_api_with_connector(backend, bank.clone()).await;
    let payment = t.upi_payment("success@upi").await;
    let pid = payment["id"].as_str().unwrap();
    t.run_jobs(1).await;
    let (status, refund) = t
        .post(
            &format!("/api/v1/payments/{pid}/refunds"),
            &json!({"amount": 500}),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    let rid = refund["id"].as_str().unwrap();
    let (a, b) = tokio::join!(t.app.refunds.process(rid), t.app.refunds.process(rid));
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| matches!(o, refunds::Processed::Busy(_)));
    assert_eq!(outcomes[0], refunds::Processed::Processed);
    assert!(
        matches!(outcomes[1], refunds::Processed::Busy(_)),
        "{outcomes:?}"
    );
    let key = paygate::processor::refund_key(rid);
    assert_eq!(
        bank.calls(&key),
        1,
        "one call to the processor for the refund"
    );
    t.run_jobs(1).await;
    assert_eq!(
        t.app.refunds.process(rid).await.unwrap(),
        refunds::Processed::AlreadyProcessed
    );
    assert_eq!(bank.calls(&key), 1, "a later run asks nothing");
    let types: Vec<_> = events::for_resource(&t.app.store, rid)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types, ["refund.created", "refund.processed"]);
}

every_backend!(
    capture_follows_the_documented_rules,
    refunds_follow_the_documented_rules,
    only_successful_payments_are_refundable,
    another_merchants_payments_and_refunds_are_not_found,
    concurrent_refunds_never_exceed_the_payment,
    a_refund_job_run_twice_processes_once,
);
