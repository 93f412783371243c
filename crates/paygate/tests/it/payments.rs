use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, every_backend, into_json};

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn card(number: &str) -> Value {
    json!({"number": number, "expiry_month": "12", "expiry_year": "2099", "cvv": "123", "holder_name": "Asha Rao"})
}

async fn upi_payment_is_pending_at_once_then_succeeds(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let order = t.order(50000).await;
    let (status, body) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "upi", "vpa": "user@paytm"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        keys(&body),
        [
            "amount",
            "created_at",
            "currency",
            "id",
            "method",
            "order_id",
            "status",
            "vpa"
        ]
    );
    assert_eq!(body["status"], "pending");
    assert_eq!(body["amount"], 50000);
    assert_eq!(body["currency"], "INR");
    assert_eq!(body["vpa"], "user@paytm");
    let id = body["id"].as_str().unwrap();
    assert!(paygate_core::PaymentId::parse(id).is_some());

    let done = t.wait_final(id).await;
    assert_eq!(done["status"], "success");
    assert_eq!(done["captured"], false);
    assert!(done["updated_at"].is_string());
    assert!(done.get("error_code").is_none());
    let (_, order_now) = t.get(&format!("/api/v1/orders/{order}")).await;
    assert_eq!(order_now["status"], "paid");
}

async fn card_payment_shows_network_and_last_four_only(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let order = t.order(1000).await;
    let (status, body) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "card", "card": card("5555 5555 5555 4444")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        keys(&body),
        [
            "amount",
            "card_last4",
            "card_network",
            "created_at",
            "currency",
            "id",
            "method",
            "order_id",
            "status"
        ]
    );
    assert_eq!(body["card_network"], "mastercard");
    assert_eq!(body["card_last4"], "4444");
    assert_eq!(
        t.wait_final(body["id"].as_str().unwrap()).await["status"],
        "success"
    );
}

async fn test_values_force_failures_with_payment_failed(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let upi = t.upi_payment("failure@okaxis").await;
    let failed = t.wait_final(upi["id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error_code"], "PAYMENT_FAILED");
    assert!(
        failed["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );

    let order = t.order(1000).await;
    let (_, declined) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "card", "card": card("4000000000000002")}),
        )
        .await;
    let declined = t.wait_final(declined["id"].as_str().unwrap()).await;
    assert_eq!(declined["status"], "failed");
    assert_eq!(declined["error_code"], "PAYMENT_FAILED");
    // The order stays payable after a failure.
    let (status, retry) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "upi", "vpa": "success@upi"}),
        )
        .await;
    assert_eq!(status, 201, "{retry}");
    assert_eq!(
        t.wait_final(retry["id"].as_str().unwrap()).await["status"],
        "success"
    );
}

async fn a_paid_or_busy_order_takes_no_second_payment(backend: Backend) {
    let t = TestApp::spawn_with(backend, paygate::app::Mode::Serve, &[]).await;
    let order = t.order(1000).await;
    let body = json!({"order_id": order, "method": "upi", "vpa": "a@b"});
    let (status, _) = t.post("/api/v1/payments", &body).await;
    assert_eq!(status, 201);
    // No worker runs in `serve`: the first payment is still pending.
    let (status, second) = t.post("/api/v1/payments", &body).await;
    assert_error(status, &second, 400, "BAD_REQUEST_ERROR");
    assert_eq!(t.count("payments").await, 1);
    t.run_jobs(1).await;
    let (status, third) = t.post("/api/v1/payments", &body).await;
    assert_error(status, &third, 400, "BAD_REQUEST_ERROR");
    assert_eq!(third["error"]["description"], "Order is already paid");
    assert_eq!(t.count("payments").await, 1);
}

async fn payments_list_newest_first_with_pagination(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            t.upi_payment("x@y").await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (status, page) = t.get("/api/v1/payments?limit=2").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 3);
    assert_eq!(page["data"][0]["id"], ids[2].as_str());
    assert_eq!(page["data"][1]["id"], ids[1].as_str());
    let (_, page) = t.get("/api/v1/payments?limit=2&offset=2").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["id"], ids[0].as_str());
}

async fn public_checkout_endpoints_create_and_poll(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let order = t.order(2500).await;
    let res = t
        .client
        .post(t.url("/api/v1/payments/public"))
        .json(&json!({"order_id": order, "method": "upi", "vpa": "buyer@okicici"}))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["amount"], 2500);
    let id = body["id"].as_str().unwrap();
    let done = t.wait_final(id).await;
    assert_eq!(done["status"], "success");
    let res = t
        .client
        .get(t.url(&format!("/api/v1/payments/{id}/public")))
        .send()
        .await
        .unwrap();
    let (status, public) = into_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(public["status"], "success");
    assert!(public.get("vpa").is_none() && public.get("merchant_id").is_none());
    // Public creation validates like the authenticated one.
    let res = t
        .client
        .post(t.url("/api/v1/payments/public"))
        .json(&json!({"order_id": order, "method": "upi", "vpa": "bad"}))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 400, "INVALID_VPA");
    let res = t
        .client
        .post(t.url("/api/v1/payments/public"))
        .json(&json!({"order_id": "order_AAAAAAAAAAAAAAAA", "method": "upi", "vpa": "a@b"}))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 404, "NOT_FOUND_ERROR");
}

async fn health_and_status_endpoints_report_real_state(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, health) = into_json(t.client.get(t.url("/health")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["database"], "connected");
    let redis = if backend.uses_redis() {
        "connected"
    } else {
        "not_configured"
    };
    assert_eq!(health["redis"], redis);
    assert_eq!(health["worker"], "running");
    let (_, merchant) = into_json(
        t.client
            .get(t.url("/api/v1/test/merchant"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        merchant,
        json!({"id": "550e8400-e29b-41d4-a716-446655440000", "email": "test@example.com", "api_key": "key_test_abc123", "seeded": true})
    );
    let p = t.upi_payment("a@b").await;
    t.wait_final(p["id"].as_str().unwrap()).await;
    // The job is acknowledged just after the payment's final status commits.
    let mut jobs = Value::Null;
    for _ in 0..200 {
        let res = t
            .client
            .get(t.url("/api/v1/test/jobs/status"))
            .send()
            .await
            .unwrap();
        jobs = into_json(res).await.1;
        if jobs["completed"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(jobs["completed"], 1, "{jobs}");
    assert_eq!(jobs["processing"], 0, "{jobs}");
    assert_eq!(jobs["pending"], 0);
    assert_eq!(jobs["worker_status"], "running");
    let (status, queues) = t.get("/api/v1/queue/status").await;
    assert_eq!(status, 200);
    assert_eq!(queues["queues"]["payments"]["completed"], 1, "{queues}");
    assert_eq!(queues["queues"]["refunds"]["completed"], 0);

    // A serve-only process sees no worker.
    let api_only = TestApp::spawn_with(backend, paygate::app::Mode::Serve, &[]).await;
    let (_, health) = into_json(
        api_only
            .client
            .get(api_only.url("/health"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(health["worker"], "stopped");
}

async fn test_endpoints_can_be_turned_off(backend: Backend) {
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &["--test-endpoints", "false"],
    )
    .await;
    let (status, body) = into_json(
        t.client
            .get(t.url("/api/v1/test/merchant"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 404, "NOT_FOUND_ERROR");
}

every_backend!(
    upi_payment_is_pending_at_once_then_succeeds,
    card_payment_shows_network_and_last_four_only,
    test_values_force_failures_with_payment_failed,
    a_paid_or_busy_order_takes_no_second_payment,
    payments_list_newest_first_with_pagination,
    public_checkout_endpoints_create_and_poll,
    health_and_status_endpoints_report_real_state,
    test_endpoints_can_be_turned_off,
);
