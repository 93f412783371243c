//! Every validation rule of SPEC A4 and every error code of A2: each bad request answers the
//! JSON error shape with a 4xx, and writes no row.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, every_backend, into_json};

fn card(overrides: Value) -> Value {
    let mut c = json!({"number": "4111111111111111", "expiry_month": "12", "expiry_year": "2099", "cvv": "123", "holder_name": "Asha Rao"});
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// Sends a raw body as the test merchant.
async fn post_raw(
    t: &TestApp,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> (reqwest::StatusCode, Value) {
    let res = t
        .client
        .post(t.url(path))
        .header("X-Api-Key", crate::helpers::KEY)
        .header("X-Api-Secret", crate::helpers::SECRET)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    into_json(res).await
}

async fn bad_order_requests_get_clear_errors_and_write_nothing(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let cases = [
        json!({}),
        json!({"amount": "50000"}),
        json!({"amount": 99}),
        json!({"amount": 0}),
        json!({"amount": -500}),
        json!({"amount": 100.5}),
        json!({"amount": 9_007_199_254_740_992_i64}),
        json!({"amount": 500, "currency": "XYZ"}),
        json!({"amount": 500, "currency": "RUPEES"}),
        json!({"amount": 500, "currency": 356}),
        json!({"amount": 500, "receipt": 7}),
        json!({"amount": 500, "receipt": "r".repeat(41)}),
        json!({"amount": 500, "notes": "text"}),
        json!({"amount": 500, "notes": {"n": {"nested": true}}}),
        json!({"amount": 500, "notes": (0..16).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
        json!([1, 2, 3]),
        json!("amount"),
    ];
    for case in cases {
        let (status, body) = t.post("/api/v1/orders", &case).await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    }
    for raw in ["{\"amount\": 500", "", "amount=500", "{\"amount\": 500}}"] {
        let (status, body) = post_raw(&t, "/api/v1/orders", raw).await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    }
    assert_eq!(t.count("orders").await, 0);
}

async fn bad_payment_requests_get_the_documented_codes_and_write_nothing(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let order = t.order(50000).await;
    let o = order.as_str();
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"method": "upi", "vpa": "a@b"}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": 5, "method": "upi", "vpa": "a@b"}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": "order_AAAAAAAAAAAAAAAA", "method": "upi", "vpa": "a@b"}),
            404,
            "NOT_FOUND_ERROR",
        ),
        (
            json!({"order_id": "nonsense", "method": "upi", "vpa": "a@b"}),
            404,
            "NOT_FOUND_ERROR",
        ),
        (json!({"order_id": o}), 400, "BAD_REQUEST_ERROR"),
        (
            json!({"order_id": o, "method": "netbanking"}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "UPI", "vpa": "a@b"}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": 1}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "upi"}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "upi", "vpa": 42}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "upi", "vpa": "no-at-sign"}),
            400,
            "INVALID_VPA",
        ),
        (
            json!({"order_id": o, "method": "upi", "vpa": "user@bank.com"}),
            400,
            "INVALID_VPA",
        ),
        (
            json!({"order_id": o, "method": "upi", "vpa": "us er@bank"}),
            400,
            "INVALID_VPA",
        ),
        (
            json!({"order_id": o, "method": "upi", "vpa": "@bank"}),
            400,
            "INVALID_VPA",
        ),
        (
            json!({"order_id": o, "method": "upi", "vpa": "user@"}),
            400,
            "INVALID_VPA",
        ),
        (
            json!({"order_id": o, "method": "upi", "vpa": "a@b@c"}),
            400,
            "INVALID_VPA",
        ),
        (
            json!({"order_id": o, "method": "card"}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "card", "card": "4111111111111111"}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"number": null}))}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"expiry_month": null}))}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"expiry_year": null}))}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"cvv": null}))}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"holder_name": null}))}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"holder_name": "  "}))}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"number": 4111111111111111_i64}))}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"expiry_month": 12}))}),
            400,
            "BAD_REQUEST_ERROR",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"number": "4111111111111112"}))}),
            400,
            "INVALID_CARD",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"number": "411111111111"}))}),
            400,
            "INVALID_CARD",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"number": "41111111111111111111"}))}),
            400,
            "INVALID_CARD",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"number": "4111-1111-1111-111a"}))}),
            400,
            "INVALID_CARD",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"cvv": "12"}))}),
            400,
            "INVALID_CARD",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"cvv": "12345"}))}),
            400,
            "INVALID_CARD",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"cvv": "12a"}))}),
            400,
            "INVALID_CARD",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"expiry_year": "2020"}))}),
            400,
            "EXPIRED_CARD",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"expiry_year": "20"}))}),
            400,
            "EXPIRED_CARD",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"expiry_month": "13"}))}),
            400,
            "EXPIRED_CARD",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"expiry_month": "0"}))}),
            400,
            "EXPIRED_CARD",
        ),
        (
            json!({"order_id": o, "method": "card", "card": card(json!({"expiry_year": "209"}))}),
            400,
            "EXPIRED_CARD",
        ),
    ];
    for (body, want_status, want_code) in &cases {
        let (status, resp) = t.post("/api/v1/payments", body).await;
        assert_error(status, &resp, *want_status, want_code);
        let text = resp.to_string();
        assert!(
            !text.contains("4111111111111111"),
            "an error echoes the card number: {text}"
        );
    }
    for raw in [
        "{\"order_id\": ",
        "null",
        "[]",
        "{\"order_id\": \"x\", \"method\": \"upi\",}",
    ] {
        let (status, body) = post_raw(&t, "/api/v1/payments", raw).await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    }
    assert_eq!(t.count("payments").await, 0);
    assert_eq!(t.count("events").await, 0);
    assert_eq!(t.count("jobs").await, 0);
}

async fn current_month_expiry_is_accepted(backend: Backend) {
    use chrono::Datelike as _;
    let t = TestApp::spawn(backend).await;
    let now = chrono::Utc::now();
    let order = t.order(1000).await;
    let c = card(
        json!({"expiry_month": now.month().to_string(), "expiry_year": (now.year() % 100).to_string()}),
    );
    let (status, body) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "card", "card": c}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let prev = now.with_day(1).unwrap() - chrono::Duration::days(1);
    let order = t.order(1000).await;
    let c = card(
        json!({"expiry_month": prev.month().to_string(), "expiry_year": prev.year().to_string()}),
    );
    let (status, body) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "card", "card": c}),
        )
        .await;
    assert_error(status, &body, 400, "EXPIRED_CARD");
}

async fn oversized_bodies_and_unknown_routes_answer_json_errors(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let big = format!(
        "{{\"amount\": 500, \"receipt\": \"{}\"}}",
        "x".repeat(200 * 1024)
    );
    // A client of its own: the server may close the connection of a refused body before
    // reading it, and a pooled connection would fail the next request.
    let res = reqwest::Client::new()
        .post(t.url("/api/v1/orders"))
        .header("X-Api-Key", crate::helpers::KEY)
        .header("X-Api-Secret", crate::helpers::SECRET)
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 413, "BAD_REQUEST_ERROR");
    assert_eq!(t.count("orders").await, 0);

    let (status, body) = t.get("/api/v1/nothing-here").await;
    assert_error(status, &body, 404, "NOT_FOUND_ERROR");
    let (status, body) = t
        .call(reqwest::Method::DELETE, "/api/v1/orders", None)
        .await;
    assert_error(status, &body, 405, "BAD_REQUEST_ERROR");
    for q in ["limit=0", "limit=101", "limit=abc", "offset=-1", "offset=x"] {
        let (status, body) = t.get(&format!("/api/v1/payments?{q}")).await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    }
}

/// A field a request type does not name is refused with a message that names it (a misspelt
/// optional field is not silently dropped), and nothing is written.
async fn unknown_fields_are_refused_by_name(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, body) = t
        .post("/api/v1/orders", &json!({"amount": 500, "reciept": "r1"}))
        .await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    let description = body["error"]["description"].as_str().unwrap();
    assert!(
        description.starts_with("reciept is not a field of this request"),
        "{body}"
    );
    assert!(
        description.contains("receipt"),
        "the fields it takes are named: {body}"
    );
    assert_eq!(t.count("orders").await, 0);

    let (_, order) = t.post("/api/v1/orders", &json!({"amount": 500})).await;
    let with_card =
        json!({"order_id": order["id"], "method": "card", "card": card(json!({"cvc": "123"}))});
    let (status, body) = t.post("/api/v1/payments", &with_card).await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    let description = body["error"]["description"].as_str().unwrap();
    assert!(description.starts_with("card.cvc is not a field"), "{body}");
    assert_eq!(t.count("payments").await, 0);
}

every_backend!(
    unknown_fields_are_refused_by_name,
    bad_order_requests_get_clear_errors_and_write_nothing,
    bad_payment_requests_get_the_documented_codes_and_write_nothing,
    current_month_expiry_is_accepted,
    oversized_bodies_and_unknown_routes_answer_json_errors,
);
