//! UPI intent and QR: the link and QR a payment is created with, the customer's approval or
//! decline (the test endpoints), expiry, the merchant's VPA, and the validation of the flows.

use paygate::store::events;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, every_backend, into_json};

/// Creates an intent (or QR) payment for a new order of `amount`.
async fn app_payment(t: &TestApp, amount: i64, flow: &str) -> Value {
    let order = t.order(amount).await;
    let (status, body) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "upi", "upi": {"flow": flow}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn answer(t: &TestApp, id: &str, what: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = t
        .client
        .post(t.url(&format!("/api/v1/test/payments/{id}/upi/{what}")));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let (status, body) = into_json(req.send().await.unwrap()).await;
    (status.as_u16(), body)
}

fn types_of(events: &[paygate::store::events::Event], kind: &str) -> usize {
    events.iter().filter(|e| e.event_type == kind).count()
}

async fn an_intent_payment_carries_its_link_and_waits_for_the_customer(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let p = app_payment(&t, 50_000, "intent").await;
    let id = p["id"].as_str().unwrap();
    assert_eq!(p["status"], "pending");
    assert!(p.get("vpa").is_none(), "{p}");
    assert_eq!(p["upi"]["flow"], "intent");
    let order = p["order_id"].as_str().unwrap();
    assert_eq!(
        p["upi"]["uri"],
        format!(
            "upi://pay?pa=testmerchant%40paygate&pn=Test%20Merchant&am=500.00&cu=INR&tr={id}&tn=Order%20{order}"
        )
    );
    let qr = p["upi"]["qr_svg_url"].as_str().unwrap();
    assert!(
        qr.ends_with(&format!("/api/v1/payments/{id}/upi/qr.svg")),
        "{qr}"
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(p["upi"]["expires_at"].as_str().unwrap()).unwrap();
    let left = expires
        .signed_duration_since(chrono::Utc::now())
        .num_seconds();
    assert!((290..=300).contains(&left), "expires in {left} s");

    let (_, now) = t.get(&format!("/api/v1/payments/{id}")).await;
    assert_eq!(now["status"], "pending");

    // The customer approves (the payer's VPA reported); the bank charges it once.
    let (status, body) = answer(&t, id, "approve", Some(json!({"vpa": "asha@okicici"}))).await;
    assert_eq!(status, 200, "{body}");
    let done = t.wait_final(id).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["vpa"], "asha@okicici");
    assert_eq!(done["upi"]["flow"], "intent");
    // A second answer changes nothing.
    let (status, body) = answer(&t, id, "decline", None).await;
    assert_error(
        reqwest::StatusCode::from_u16(status).unwrap(),
        &body,
        400,
        "BAD_REQUEST_ERROR",
    );
    let evs = events::for_resource(&t.app.store, id).await.unwrap();
    assert_eq!(types_of(&evs, "payment.success"), 1);
    assert_eq!(types_of(&evs, "payment.failed"), 0);
    let (_, order_now) = t.get(&format!("/api/v1/orders/{order}")).await;
    assert_eq!(order_now["status"], "paid");
}

async fn a_declined_qr_payment_fails_and_its_qr_is_an_svg(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let p = app_payment(&t, 1_234, "qr").await;
    let id = p["id"].as_str().unwrap();
    assert_eq!(p["upi"]["flow"], "qr");
    assert!(
        p["upi"]["uri"].as_str().unwrap().contains("am=12.34"),
        "{p}"
    );

    let res = t
        .client
        .get(t.url(&format!("/api/v1/payments/{id}/upi/qr.svg")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let svg = res.text().await.unwrap();
    assert!(svg.contains("<svg") && svg.contains("<path"), "{svg}");
    // The public page's origin serves it too (the checkout shows it from there).
    let res = t
        .client
        .get(format!(
            "http://{}/api/v1/payments/{id}/upi/qr.svg",
            t.checkout
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let (status, body) = answer(&t, id, "decline", None).await;
    assert_eq!(status, 200, "{body}");
    let done = t.wait_final(id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error_code"], "PAYMENT_FAILED");
    // A final payment's QR is gone: nothing left to scan and pay.
    let (status, body) = into_json(
        t.client
            .get(t.url(&format!("/api/v1/payments/{id}/upi/qr.svg")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 404, "NOT_FOUND_ERROR");

    // A collect payment has no QR.
    let collect = t.upi_payment("user@paytm").await;
    let (status, body) = into_json(
        t.client
            .get(t.url(&format!(
                "/api/v1/payments/{}/upi/qr.svg",
                collect["id"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 404, "NOT_FOUND_ERROR");
    assert!(
        collect.get("upi").is_none(),
        "collect keeps its shape: {collect}"
    );
}

async fn an_unapproved_payment_expires_once_without_asking_the_bank(backend: Backend) {
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &["--upi-intent-expiry-seconds", "1"],
    )
    .await;
    let p = app_payment(&t, 5_000, "intent").await;
    let id = p["id"].as_str().unwrap();
    let done = t.wait_final(id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error_code"], "PAYMENT_EXPIRED");
    let evs = events::for_resource(&t.app.store, id).await.unwrap();
    assert_eq!(types_of(&evs, "payment.failed"), 1);
    // The bank was never asked.
    assert_eq!(t.count("processor_operations").await, 0);
    // Too late to approve.
    let (status, body) = answer(&t, id, "approve", None).await;
    assert_error(
        reqwest::StatusCode::from_u16(status).unwrap(),
        &body,
        400,
        "BAD_REQUEST_ERROR",
    );
    // The order takes another payment.
    let (status, body) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": p["order_id"], "method": "upi", "vpa": "user@paytm"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn outside_test_mode_the_bank_answers_an_intent_payment(backend: Backend) {
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &[
            "--test-mode",
            "false",
            "--processing-delay-min",
            "0",
            "--processing-delay-max",
            "0",
            "--upi-success-rate",
            "1",
        ],
    )
    .await;
    let p = app_payment(&t, 5_000, "intent").await;
    let done = t.wait_final(p["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "success", "{done}");
    // No simulated answers outside test mode... unless the test endpoints are on; they
    // refuse a payment that is not waiting.
    let (status, body) = answer(&t, p["id"].as_str().unwrap(), "approve", None).await;
    assert_error(
        reqwest::StatusCode::from_u16(status).unwrap(),
        &body,
        400,
        "BAD_REQUEST_ERROR",
    );
}

async fn the_flows_are_validated(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let order = t.order(1_000).await;
    let cases = [
        (
            json!({"method": "upi", "upi": {"flow": "collect"}}),
            "BAD_REQUEST_ERROR",
        ),
        (json!({"method": "upi"}), "BAD_REQUEST_ERROR"),
        (
            json!({"method": "upi", "upi": {"flow": "push"}}),
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"method": "upi", "upi": {"flow": "intent", "vpa": "a@okaxis"}}),
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"method": "upi", "upi": {"flow": "collect", "vpa": "no-at"}}),
            "INVALID_VPA",
        ),
        (
            json!({"method": "card", "upi": {"flow": "intent"}}),
            "BAD_REQUEST_ERROR",
        ),
    ];
    for (mut body, code) in cases {
        body["order_id"] = json!(order);
        let (status, answer) = t.post("/api/v1/payments", &body).await;
        assert_error(status, &answer, 400, code);
    }
    // Collect through `upi` works like a top-level `vpa`.
    let (status, body) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "upi", "upi": {"flow": "collect", "vpa": "success@paygate"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["vpa"], "success@paygate");

    // Intent and QR need INR.
    let (_, usd) = t
        .post(
            "/api/v1/orders",
            &json!({"amount": 1000, "currency": "USD"}),
        )
        .await;
    let (status, body) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": usd["id"], "method": "upi", "upi": {"flow": "qr"}}),
        )
        .await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");

    // And the merchant's VPA: shown by GET /api/v1/merchant, refused clearly when missing.
    let (_, me) = t.get("/api/v1/merchant").await;
    assert_eq!(me["upi_id"], "testmerchant@paygate");
    paygate::merchants::set_upi_id(
        &t.app.store,
        paygate::merchants::test_merchant::ID,
        None,
        None,
    )
    .await
    .unwrap();
    let order = t.order(1_000).await;
    let (status, body) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "upi", "upi": {"flow": "intent"}}),
        )
        .await;
    assert_error(status, &body, 400, "UPI_ID_NOT_SET");
    assert_eq!(t.count("payments").await, 1, "nothing half-written");
    assert!(
        paygate::merchants::set_upi_id(
            &t.app.store,
            paygate::merchants::test_merchant::ID,
            Some("not a vpa"),
            None
        )
        .await
        .is_err()
    );
}

async fn an_answer_recorded_first_wins_over_the_expiry(backend: Backend) {
    // No worker: the test plays the expiry run by hand.
    let t = TestApp::spawn_with(backend, paygate::app::Mode::Serve, &[]).await;
    let p = app_payment(&t, 5_000, "qr").await;
    let id = p["id"].as_str().unwrap();
    let (status, body) = answer(&t, id, "approve", None).await;
    assert_eq!(status, 200, "{body}");
    // An expiry run that read the payment before the answer tries to expire it: refused.
    let expired = t
        .app
        .payments
        .writer()
        .finish(paygate::payments::writes::Outcome {
            id: id.to_owned(),
            status: paygate_core::PaymentStatus::Failed,
            error: Some(("PAYMENT_EXPIRED".into(), "late".into())),
            unanswered_only: true,
        })
        .await
        .unwrap();
    assert!(expired.is_none(), "the answer came first");
    let (_, now) = t.get(&format!("/api/v1/payments/{id}")).await;
    assert_eq!(now["status"], "pending");
    // The job the answer brought forward charges it.
    t.run_jobs(1).await;
    let done = t.wait_final(id).await;
    assert_eq!(done["status"], "success", "{done}");
}

every_backend!(
    an_answer_recorded_first_wins_over_the_expiry,
    an_intent_payment_carries_its_link_and_waits_for_the_customer,
    a_declined_qr_payment_fails_and_its_qr_is_an_svg,
    an_unapproved_payment_expires_once_without_asking_the_bank,
    outside_test_mode_the_bank_answers_an_intent_payment,
    the_flows_are_validated,
);
