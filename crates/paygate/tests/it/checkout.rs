//! The checkout listener, server side: pages, headers, the SDK, the demo shop, and the public
//! endpoints on the checkout origin. (The browser flows are in `e2e/`.)

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, every_backend};

async fn get(t: &TestApp, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let res = crate::helpers::http()
        .get(format!("http://{}{}", t.checkout, path))
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.text().await.unwrap())
}

async fn the_checkout_page_shows_the_order_and_every_test_id(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (_, order) = t.post("/api/v1/orders", &json!({"amount": 50000})).await;
    let id = order["id"].as_str().unwrap();
    let (status, headers, html) = get(&t, &format!("/checkout?order_id={id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("₹500.00"));
    assert!(html.contains(id));
    assert!(html.contains("Test Merchant"));
    for tid in [
        "checkout-container",
        "order-summary",
        "order-amount",
        "order-id",
        "payment-methods",
        "method-upi",
        "method-card",
        "upi-form",
        "vpa-input",
        "card-form",
        "card-number-input",
        "expiry-input",
        "cvv-input",
        "cardholder-name-input",
        "pay-button",
        "processing-state",
        "processing-message",
        "success-state",
        "payment-id",
        "success-message",
        "error-state",
        "error-message",
        "retry-button",
    ] {
        assert!(
            html.contains(&format!("data-test-id=\"{tid}\"")),
            "{tid} missing"
        );
    }
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors *"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        !headers.contains_key("x-frame-options"),
        "the checkout may be framed"
    );
    assert!(
        !html.contains("secret_test_xyz789") && !html.contains("whsec_"),
        "no merchant secret on the page"
    );
    // Attacker-controlled query values are escaped.
    let (_, _, html) = get(
        &t,
        &format!("/checkout?order_id={id}&embedded=true&origin=javascript:alert(1)"),
    )
    .await;
    assert!(
        html.contains("data-parent-origin=\"\""),
        "only an http(s) origin is kept"
    );
}

async fn unknown_missing_and_paid_orders_get_a_clear_page(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, _, html) = get(&t, "/checkout?order_id=order_AAAAAAAAAAAAAAAA").await;
    assert_eq!(status, 404);
    assert!(html.contains("Order not found") && !html.contains("pay-button"));
    let (status, _, html) = get(&t, "/checkout?order_id=%3Cscript%3E").await;
    assert_eq!(status, 404);
    assert!(!html.contains("<script>"));
    let (status, _, _) = get(&t, "/checkout").await;
    assert_eq!(status, 400);
    let p = t.upi_payment("success@upi").await;
    t.wait_final(p["id"].as_str().unwrap()).await;
    let (status, _, html) = get(
        &t,
        &format!("/checkout?order_id={}", p["order_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("already been paid") && !html.contains("pay-button"));
}

async fn the_sdk_demo_and_same_origin_endpoints_are_served(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, headers, js) = get(&t, "/checkout.js").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.contains("global.PaymentGateway = PaymentGateway"));
    assert!(!js.contains("__PUBLIC_CHECKOUT_URL__"));
    let (status, _, html) = get(&t, "/demo").await;
    assert_eq!(status, 200);
    assert!(html.contains("/checkout.js") && html.contains("key_test_abc123"));
    let res = crate::helpers::http()
        .post(format!("http://{}/demo/order", t.checkout))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let order: Value = res.json().await.unwrap();
    let id = order["id"].as_str().unwrap();
    // The page's calls, on the checkout origin.
    let base = format!("http://{}", t.checkout);
    let res = crate::helpers::http()
        .get(format!("{base}/api/v1/orders/{id}/public"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["amount"], 49900);
    let res = crate::helpers::http()
        .post(format!("{base}/api/v1/payments/public"))
        .json(&json!({"order_id": id, "method": "upi", "vpa": "a@b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Nothing authenticated is reachable on the checkout origin.
    let (status, _, _) = get(&t, "/api/v1/payments").await;
    assert_eq!(status, 404);
}

/// The `data-return-url` of a checkout page.
fn return_url(html: &str) -> &str {
    let at = html.find("data-return-url=\"").unwrap() + 17;
    &html[at..at + html[at..].find('"').unwrap()]
}

async fn an_orders_callback_url_is_checked_kept_and_where_the_page_returns(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let callback = "https://shop.example/thanks?cart=7";
    let (status, order) = t
        .post(
            "/api/v1/orders",
            &json!({"amount": 50000, "callback_url": callback}),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["callback_url"], callback);
    let id = order["id"].as_str().unwrap();
    let (_, read) = t.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(read["callback_url"], callback);
    let (_, _, html) = get(&t, &format!("/checkout?order_id={id}")).await;
    assert_eq!(
        return_url(&html),
        "https://shop.example/thanks?cart=7".replace('&', "&amp;")
    );
    assert!(html.contains("data-test-id=\"return-link\""));
    // In the widget the page does not navigate away: the merchant's page gets a message.
    let (_, _, framed) = get(&t, &format!("/checkout?order_id={id}&embedded=true")).await;
    assert_eq!(return_url(&framed), "");
    // Without one there is nowhere to return to.
    let (_, plain) = t.post("/api/v1/orders", &json!({"amount": 50000})).await;
    assert_eq!(plain["callback_url"], Value::Null);
    let plain = plain["id"].as_str().unwrap();
    let (_, _, html) = get(&t, &format!("/checkout?order_id={plain}")).await;
    assert_eq!(return_url(&html), "");
    // Only an http(s) URL with a host, at most 2048 characters; nothing is written otherwise.
    let before = t.count("orders").await;
    let long = format!("https://shop.example/{}", "a".repeat(2048));
    for bad in [
        "javascript:alert(1)",
        "ftp://shop.example/x",
        "/thanks",
        "https://",
        &long,
    ] {
        let (status, body) = t
            .post(
                "/api/v1/orders",
                &json!({"amount": 50000, "callback_url": bad}),
            )
            .await;
        crate::helpers::assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
        assert!(
            body["error"]["description"]
                .as_str()
                .unwrap()
                .contains("callback_url"),
            "{body}"
        );
    }
    assert_eq!(t.count("orders").await, before);
}

every_backend!(
    an_orders_callback_url_is_checked_kept_and_where_the_page_returns,
    the_checkout_page_shows_the_order_and_every_test_id,
    unknown_missing_and_paid_orders_get_a_clear_page,
    the_sdk_demo_and_same_origin_endpoints_are_served,
);
