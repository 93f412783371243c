use base64::Engine as _;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, KEY, SECRET, TestApp, assert_error, every_backend, into_json};

async fn missing_or_wrong_credentials_are_rejected(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let res = t
        .client
        .get(t.url("/api/v1/payments"))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 401, "AUTHENTICATION_ERROR");
    assert_eq!(body["error"]["description"], "Invalid API credentials");
    for (key, secret) in [(KEY, "secret_wrong"), ("key_unknown", SECRET), (KEY, "")] {
        let (status, body) = t
            .call_as(key, secret, Method::GET, "/api/v1/orders", None)
            .await;
        assert_error(status, &body, 401, "AUTHENTICATION_ERROR");
    }
    // A rejected create writes nothing.
    let (status, _) = t
        .call_as(
            KEY,
            "nope",
            Method::POST,
            "/api/v1/orders",
            Some(&json!({"amount": 500})),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(t.count("orders").await, 0);
}

async fn http_basic_credentials_are_accepted(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let basic = |k: &str, s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{k}:{s}"))
        )
    };
    let res = t
        .client
        .get(t.url("/api/v1/orders"))
        .header("Authorization", basic(KEY, SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = t
        .client
        .get(t.url("/api/v1/orders"))
        .header("Authorization", basic(KEY, "bad"))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 401, "AUTHENTICATION_ERROR");
    let res = t
        .client
        .get(t.url("/api/v1/orders"))
        .header("Authorization", "Basic !!!")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

async fn another_merchants_resources_are_not_found(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let other = paygate::merchants::create(&t.app.store, "Other Shop", "other@example.com")
        .await
        .unwrap();
    let (ok, secret) = (other.merchant.api_key.clone(), other.api_secret.clone());
    let payment = t.upi_payment("someone@okaxis").await;
    let order_id = payment["order_id"].as_str().unwrap();
    let pay_id = payment["id"].as_str().unwrap();
    for path in [
        format!("/api/v1/orders/{order_id}"),
        format!("/api/v1/payments/{pay_id}"),
    ] {
        let (status, body) = t.call_as(&ok, &secret, Method::GET, &path, None).await;
        assert_error(status, &body, 404, "NOT_FOUND_ERROR");
    }
    // Paying another merchant's order is a 404 too, and writes nothing.
    let fresh = t.order(1000).await;
    let body = json!({"order_id": fresh, "method": "upi", "vpa": "a@b"});
    let (status, resp) = t
        .call_as(&ok, &secret, Method::POST, "/api/v1/payments", Some(&body))
        .await;
    assert_error(status, &resp, 404, "NOT_FOUND_ERROR");
    // Lists are per merchant.
    let (_, list) = t
        .call_as(&ok, &secret, Method::GET, "/api/v1/payments", None)
        .await;
    assert_eq!(list["total"], 0);
    let (_, list) = t
        .call_as(&ok, &secret, Method::GET, "/api/v1/orders", None)
        .await;
    assert_eq!(list["total"], 0);
    assert_eq!(t.count("payments").await, 1);
}

every_backend!(
    missing_or_wrong_credentials_are_rejected,
    http_basic_credentials_are_accepted,
    another_merchants_resources_are_not_found,
);
