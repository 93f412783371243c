//! Payment links: the API (create, read, list, cancel, the validation), paying a link on its
//! page in parts, the signed callback, the webhooks through the endpoints' filters, and expiry
//! exactly once however many workers run it.

use std::time::{Duration, Instant};

use paygate::{
    app::{self, App, Mode},
    merchants::test_merchant,
    store::events,
};
use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};

use crate::{
    endpoints::{endpoint_with_receiver, types},
    helpers::{Backend, TestApp, assert_error, config, every_backend},
};

async fn create(t: &TestApp, body: Value) -> Value {
    let (status, link) = t.post("/api/v1/payment_links", &body).await;
    assert_eq!(status, 201, "{link}");
    link
}

async fn link(t: &TestApp, id: &str) -> Value {
    let (status, link) = t.get(&format!("/api/v1/payment_links/{id}")).await;
    assert_eq!(status, 200, "{link}");
    link
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Starts paying `amount` (as typed, in rupees) on the link's page: the checkout page's
/// address, or the page's status and text when refused.
async fn start(t: &TestApp, id: &str, amount: &str) -> Result<String, (u16, String)> {
    let res = no_redirects()
        .post(format!("http://{}/l/{id}", t.checkout))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("amount", amount)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    if res.status() == StatusCode::SEE_OTHER {
        return Ok(res.headers()["location"].to_str().unwrap().to_owned());
    }
    let status = res.status().as_u16();
    Err((status, res.text().await.unwrap()))
}

/// Pays the order the checkout address names (a UPI collect payment that succeeds); returns
/// the payment id once it succeeded.
async fn pay(t: &TestApp, checkout: &str) -> String {
    let order = checkout.strip_prefix("/checkout?order_id=").unwrap();
    let (status, p) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "upi", "vpa": "success@paygate"}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap();
    assert_eq!(t.wait_final(id).await["status"], "success");
    id.to_owned()
}

fn count(evs: &[events::Event], kind: &str) -> usize {
    evs.iter().filter(|e| e.event_type == kind).count()
}

async fn a_link_is_created_read_listed_and_cancelled(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let expire_by = chrono::Utc::now().timestamp() + 3600;
    let l = create(
        &t,
        json!({
            "amount": 150000, "currency": "inr", "description": "Invoice 7",
            "customer": {"name": "Asha Rao", "email": "asha@example.com", "contact": "+91 98765 43210"},
            "reference_id": "INV-7", "expire_by": expire_by, "accept_partial": true,
            "first_min_partial_amount": 50000, "callback_url": "https://shop.example/paid",
            "callback_method": "get", "notes": {"k": "v"}
        }),
    )
    .await;
    let id = l["id"].as_str().unwrap();
    assert!(id.starts_with("plink_") && id.len() == 22, "{id}");
    assert_eq!(l["status"], "created");
    assert_eq!(l["amount"], 150000);
    assert_eq!(l["amount_paid"], 0);
    assert_eq!(l["amount_due"], 150000);
    assert_eq!(l["currency"], "INR");
    assert_eq!(l["expire_by"], expire_by);
    assert_eq!(l["callback_method"], "get");
    assert_eq!(l["customer"]["contact"], "+91 98765 43210");
    assert_eq!(
        l["short_url"],
        format!("{}/l/{id}", t.app.config.public_checkout_url)
    );
    let mut keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "accept_partial",
            "amount",
            "amount_due",
            "amount_paid",
            "callback_method",
            "callback_url",
            "cancelled_at",
            "created_at",
            "currency",
            "customer",
            "description",
            "expire_by",
            "expired_at",
            "first_min_partial_amount",
            "id",
            "notes",
            "paid_at",
            "reference_id",
            "short_url",
            "status",
            "updated_at",
        ]
    );
    let read = link(&t, id).await;
    assert_eq!(read["payments"], json!([]));
    assert_eq!(read["reference_id"], "INV-7");

    // Listed with the same cursors as the other lists.
    let second = create(&t, json!({"amount": 1000})).await;
    let (_, page) = t.get("/api/v1/payment_links?limit=1").await;
    assert_eq!(page["data"][0]["id"], second["id"]);
    assert_eq!(page["total"], 2);
    assert_eq!(page["has_more"], true);
    let (_, older) = t
        .get(&format!(
            "/api/v1/payment_links?limit=1&starting_after={}",
            second["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(older["data"][0]["id"], l["id"]);
    assert_eq!(older["has_more"], false);

    // Cancelled once, with its event; then it takes no payment, not even for an order a
    // customer started before.
    let started = start(&t, id, "500").await.unwrap();
    let (status, cancelled) = t
        .post(&format!("/api/v1/payment_links/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelled_at"].is_string());
    let (status, again) = t
        .post(&format!("/api/v1/payment_links/{id}/cancel"), &json!({}))
        .await;
    assert_error(status, &again, 400, "BAD_REQUEST_ERROR");
    let evs = events::for_resource(&t.app.store, id).await.unwrap();
    assert_eq!(count(&evs, "payment_link.cancelled"), 1);
    assert_eq!(evs.len(), 1);
    let (status, text) = start(&t, id, "500").await.unwrap_err();
    assert_eq!(status, 410);
    assert!(text.contains("Link cancelled"), "{text}");
    let order = started.strip_prefix("/checkout?order_id=").unwrap();
    let (status, body) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "upi", "vpa": "success@paygate"}),
        )
        .await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    assert!(
        body["error"]["description"]
            .as_str()
            .unwrap()
            .contains("payment link"),
        "{body}"
    );
    assert_eq!(t.count("payments").await, 0);
    let page = reqwest::get(format!("http://{}/l/{id}", t.checkout))
        .await
        .unwrap();
    assert_eq!(page.status(), 410);

    // Another merchant's or a malformed id: not found.
    for path in [
        "/api/v1/payment_links/plink_0000000000000000",
        "/api/v1/payment_links/nope",
    ] {
        let (status, body) = t.get(path).await;
        assert_error(status, &body, 404, "NOT_FOUND_ERROR");
    }
}

async fn the_link_requests_are_validated(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let past = chrono::Utc::now().timestamp() - 10;
    let cases = [
        json!({"amount": 99}),
        json!({"amount": 1000, "currency": "XYZ"}),
        json!({"amount": 1000, "first_min_partial_amount": 500}),
        json!({"amount": 1000, "accept_partial": true, "first_min_partial_amount": 1001}),
        json!({"amount": 1000, "accept_partial": true, "first_min_partial_amount": 99}),
        json!({"amount": 1000, "expire_by": past}),
        json!({"amount": 1000, "expire_by": 99_999_999_999_i64}),
        json!({"amount": 1000, "callback_url": "javascript:alert(1)"}),
        json!({"amount": 1000, "callback_url": "https://x.example", "callback_method": "post"}),
        json!({"amount": 1000, "customer": {"email": "not-an-email"}}),
        json!({"amount": 1000, "customer": {"contact": "call me"}}),
        json!({"amount": 1000, "reference_id": "x".repeat(41)}),
        json!({"amount": 1000, "notes": {"k": 1}}),
        json!({"amount": 1000, "colour": "red"}),
    ];
    for body in cases {
        let (status, answer) = t.post("/api/v1/payment_links", &body).await;
        assert_error(status, &answer, 400, "BAD_REQUEST_ERROR");
    }
    assert_eq!(t.count("payment_links").await, 0, "nothing half-written");
    // A reference is unique per merchant.
    create(&t, json!({"amount": 1000, "reference_id": "R-1"})).await;
    let (status, answer) = t
        .post(
            "/api/v1/payment_links",
            &json!({"amount": 2000, "reference_id": "R-1"}),
        )
        .await;
    assert_error(status, &answer, 400, "BAD_REQUEST_ERROR");
    assert!(
        answer["error"]["description"]
            .as_str()
            .unwrap()
            .contains("reference_id"),
        "{answer}"
    );
    assert_eq!(t.count("payment_links").await, 1);
}

async fn a_link_paid_in_two_parts_moves_once_per_payment_and_signs_the_callback(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (_, by_type) = endpoint_with_receiver(&t, json!(["payment_link.*"])).await;
    let (_, refunds_only) = endpoint_with_receiver(&t, json!(["refund.*"])).await;
    let l = create(
        &t,
        json!({"amount": 100000, "accept_partial": true, "first_min_partial_amount": 40000,
               "callback_url": "https://shop.example/paid?cart=9", "reference_id": "INV-9"}),
    )
    .await;
    let id = l["id"].as_str().unwrap();

    // The page shows what is due; amounts it does not take are refused with the reason.
    let page = reqwest::get(format!("http://{}/l/{id}", t.checkout))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("₹1,000.00"), "{page}");
    let (status, text) = start(&t, id, "300").await.unwrap_err();
    assert_eq!(status, 400);
    assert!(text.contains("Pay at least ₹400.00"), "{text}");
    let (status, _) = start(&t, id, "1000.50").await.unwrap_err();
    assert_eq!(status, 400);
    let (status, _) = start(&t, id, "ten").await.unwrap_err();
    assert_eq!(status, 400);
    assert_eq!(t.count("orders").await, 0, "no order for a refused amount");

    // First part.
    let checkout = start(&t, id, "400").await.unwrap();
    // The checkout page of a link's order comes back to the link.
    let checkout_page = reqwest::get(format!("http://{}{checkout}", t.checkout))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        checkout_page.contains(&format!("data-return-url=\"/l/{id}/return\"")),
        "{checkout_page}"
    );

    let first = pay(&t, &checkout).await;
    let after_first = link(&t, id).await;
    assert_eq!(after_first["status"], "partially_paid");
    assert_eq!(after_first["amount_paid"], 40000);
    assert_eq!(after_first["amount_due"], 60000);
    // The return sends the customer to the callback with the signed outcome.
    let back = no_redirects()
        .get(format!(
            "http://{}/l/{id}/return?payment_id={first}",
            t.checkout
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    let to = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(to.host_str(), Some("shop.example"));
    let q: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["cart"], "9");
    assert_eq!(q["payment_link_id"], id);
    assert_eq!(q["payment_id"], first);
    assert_eq!(q["status"], "partially_paid");
    let signed = format!("{id}|{first}|partially_paid");
    assert_eq!(
        q["signature"],
        paygate_core::webhook::hex_signature(test_merchant::WEBHOOK_SECRET, signed.as_bytes())
    );
    let tampered = paygate::payment_links::callback_signature(
        test_merchant::WEBHOOK_SECRET,
        id,
        &first,
        "paid",
    );
    assert_ne!(q["signature"], tampered, "the status is signed");
    // A payment that is not this link's goes back to the link's page, unsigned.
    let other = t.upi_payment("success@paygate").await;
    t.wait_final(other["id"].as_str().unwrap()).await;
    let back = no_redirects()
        .get(format!(
            "http://{}/l/{id}/return?payment_id={}",
            t.checkout,
            other["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(back.headers()["location"], format!("/l/{id}"));

    // The rest: paid.
    let (status, text) = start(&t, id, "599.50").await.unwrap_err();
    assert_eq!(status, 400, "would leave less than ₹1.00: {text}");
    let checkout = start(&t, id, "600").await.unwrap();
    let second = pay(&t, &checkout).await;
    let done = link(&t, id).await;
    assert_eq!(done["status"], "paid");
    assert_eq!(done["amount_paid"], 100000);
    assert!(done["paid_at"].is_string());
    let paid: Vec<&Value> = done["payments"].as_array().unwrap().iter().collect();
    assert_eq!(paid.len(), 2);
    assert_eq!(paid[0]["payment_id"], first.as_str());
    assert_eq!(paid[1]["payment_id"], second.as_str());
    assert_eq!(paid[1]["amount"], 60000);

    // A paid link takes nothing more and cannot be cancelled.
    let (status, text) = start(&t, id, "1").await.unwrap_err();
    assert_eq!(status, 200);
    assert!(text.contains("paid in full"), "{text}");
    let (status, body) = t
        .post(&format!("/api/v1/payment_links/{id}/cancel"), &json!({}))
        .await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");

    // One event per change, after the payment's own, delivered by the endpoints' filters.
    let evs = events::for_resource(&t.app.store, id).await.unwrap();
    let kinds: Vec<&str> = evs.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["payment_link.partially_paid", "payment_link.paid"],
        "{kinds:?}"
    );
    assert_eq!(evs[1].data["payment"]["id"], second.as_str());
    let got = by_type
        .wait_for("the link's events", |r| r.len() >= 2)
        .await;
    assert_eq!(
        types(&got),
        ["payment_link.paid", "payment_link.partially_paid"]
    );
    assert!(refunds_only.received().await.is_empty());
}

/// Waits until `at` (Unix seconds) has passed.
async fn until(at: i64) {
    while chrono::Utc::now().timestamp() <= at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_link_expires_once_however_many_workers_run(backend: Backend) {
    // Two processes' expiry at once, by hand: one of them expires the link.
    let t = TestApp::spawn_with(backend, Mode::Serve, &[]).await;
    let other = App::build(config(&t.db, &[])).await.expect("second app");
    let expire_by = chrono::Utc::now().timestamp() + 2;
    let l = create(&t, json!({"amount": 5000, "expire_by": expire_by})).await;
    let id = l["id"].as_str().unwrap();
    // Still payable until then: one payment starts (its job runs later), another order waits.
    let under_way = start(&t, id, "50").await.unwrap();
    let order = under_way.strip_prefix("/checkout?order_id=").unwrap();
    let (status, pending) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "upi", "vpa": "success@paygate"}),
        )
        .await;
    assert_eq!(status, 201, "{pending}");
    let late = start(&t, id, "50").await.unwrap();
    until(expire_by).await;
    // Past expire_by the page refuses payment even before the expiry ran.
    let (status, text) = start(&t, id, "50").await.unwrap_err();
    assert_eq!(status, 410);
    assert!(text.contains("Link expired"), "{text}");
    let (a, b) = tokio::join!(
        t.app.payment_links.expire_due(),
        other.payment_links.expire_due()
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "expired once");
    let (a, b) = tokio::join!(
        t.app.payment_links.expire_due(),
        other.payment_links.expire_due()
    );
    assert_eq!(a.unwrap() + b.unwrap(), 0, "and only once");
    let expired = link(&t, id).await;
    assert_eq!(expired["status"], "expired");
    assert!(expired["expired_at"].is_string());
    let evs = events::for_resource(&t.app.store, id).await.unwrap();
    assert_eq!(count(&evs, "payment_link.expired"), 1);
    // An order started before the expiry takes no payment now...
    let order = late.strip_prefix("/checkout?order_id=").unwrap();
    let (status, body) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "card", "card": {"number": "4111111111111111",
                "expiry_month": "12", "expiry_year": "30", "cvv": "123", "holder_name": "A"}}),
        )
        .await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    // ...and the payment under way at the expiry still succeeds: the money counts on the link,
    // which stays expired and announces nothing more.
    t.run_jobs(1).await;
    let done = t.wait_final(pending["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "success");
    let after = link(&t, id).await;
    assert_eq!(after["status"], "expired");
    assert_eq!(after["amount_paid"], 5000);
    assert_eq!(
        events::for_resource(&t.app.store, id).await.unwrap().len(),
        1
    );
    other.store.close().await;
}

async fn running_workers_expire_a_link_once(backend: Backend) {
    // Two worker processes over one database (and queue): the sweep's chore expires it.
    let t = TestApp::spawn(backend).await;
    let second = App::build(config(&t.db, &[])).await.expect("second app");
    let running = app::start(second, Mode::Worker)
        .await
        .expect("second worker");
    let expire_by = chrono::Utc::now().timestamp() + 1;
    let l = create(&t, json!({"amount": 5000, "expire_by": expire_by})).await;
    let id = l["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, now) = t.get(&format!("/api/v1/payment_links/{id}")).await;
        if now["status"] == "expired" {
            break;
        }
        assert!(Instant::now() < deadline, "not expired: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A few more sweeps of both workers change nothing.
    until(chrono::Utc::now().timestamp() + 2).await;
    let evs = events::for_resource(&t.app.store, id).await.unwrap();
    assert_eq!(count(&evs, "payment_link.expired"), 1, "{evs:?}");
    running.stop();
    running.wait().await.expect("clean stop");
}

every_backend!(
    a_link_is_created_read_listed_and_cancelled,
    the_link_requests_are_validated,
    a_link_paid_in_two_parts_moves_once_per_payment_and_signs_the_callback,
    a_link_expires_once_however_many_workers_run,
    running_workers_expire_a_link_once,
);
