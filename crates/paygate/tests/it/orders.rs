use serde_json::json;

use crate::helpers::{Backend, TestApp, assert_error, every_backend, into_json};

async fn order_is_created_with_the_documented_fields(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, body) = t
        .post("/api/v1/orders", &json!({"amount": 50000, "currency": "inr", "receipt": "receipt_1", "notes": {"customer": "Asha"}}))
        .await;
    assert_eq!(status, 201, "{body}");
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "amount",
            "created_at",
            "currency",
            "id",
            "merchant_id",
            "notes",
            "receipt",
            "status"
        ]
    );
    let id = body["id"].as_str().unwrap();
    assert!(paygate_core::OrderId::parse(id).is_some(), "{id}");
    assert_eq!(body["merchant_id"], "550e8400-e29b-41d4-a716-446655440000");
    assert_eq!(body["amount"], 50000);
    assert_eq!(body["currency"], "INR");
    assert_eq!(body["receipt"], "receipt_1");
    assert_eq!(body["notes"], json!({"customer": "Asha"}));
    assert_eq!(body["status"], "created");
    assert!(chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).is_ok());

    let (status, got) = t.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got["id"], body["id"]);
    assert_eq!(got["created_at"], body["created_at"]);
    assert!(got["updated_at"].is_string());

    let (status, minimal) = t.post("/api/v1/orders", &json!({"amount": 100})).await;
    assert_eq!(status, 201);
    assert_eq!(minimal["currency"], "INR");
    assert_eq!(minimal["receipt"], serde_json::Value::Null);
    assert_eq!(minimal["notes"], json!({}));
}

async fn orders_list_newest_first_with_pagination(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for amount in [100, 200, 300] {
        ids.push(t.order(amount).await);
    }
    let (status, page) = t.get("/api/v1/orders?limit=2&offset=0").await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 3);
    assert_eq!(page["limit"], 2);
    let got: Vec<_> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, [ids[2].clone(), ids[1].clone()]);
    let (_, page) = t.get("/api/v1/orders?limit=2&offset=2").await;
    assert_eq!(page["data"][0]["id"], ids[0].as_str());
    assert_eq!(page["offset"], 2);
}

async fn unknown_orders_are_not_found(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    for id in [
        "order_0000000000000000",
        "nonsense",
        "order_'; DROP TABLE orders;--",
    ] {
        let (status, body) = t.get(&format!("/api/v1/orders/{id}")).await;
        assert_error(status, &body, 404, "NOT_FOUND_ERROR");
    }
}

async fn public_order_shows_only_checkout_fields(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.order(12345).await;
    let res = t
        .client
        .get(t.url(&format!("/api/v1/orders/{id}/public")))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"id": id, "amount": 12345, "currency": "INR", "status": "created"})
    );
    let res = t
        .client
        .get(t.url("/api/v1/orders/order_AAAAAAAAAAAAAAAA/public"))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 404, "NOT_FOUND_ERROR");
}

every_backend!(
    order_is_created_with_the_documented_fields,
    orders_list_newest_first_with_pagination,
    unknown_orders_are_not_found,
    public_order_shows_only_checkout_fields,
);
