//! Fair queues: a backlog of slow payments never keeps a refund or a webhook waiting for a
//! free slot (each queue has its own), and a webhook endpoint that takes the whole timeout
//! holds only its own lanes, whatever waits for it: another merchant's delivery passes.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use paygate::{
    app::Mode,
    orders::NewOrder,
    payments::{Instrument, NewPayment},
    processor::{ChargeOutcome, ChargeRequest, Connector, RefundRequest},
};
use paygate_core::{Currency, ForcedOutcome, OrderAmount, Vpa};
use serde_json::json;

use crate::helpers::{Backend, TestApp, every_backend};

/// A bank that takes 5 s for every payment, except the forced-success test values (at once);
/// refunds are instant.
struct SlowPayments;

#[async_trait::async_trait]
impl Connector for SlowPayments {
    async fn charge(&self, request: &ChargeRequest) -> anyhow::Result<ChargeOutcome> {
        if request.forced_outcome != Some(ForcedOutcome::Success) {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        Ok(ChargeOutcome::Succeeded)
    }

    async fn refund(&self, _: &RefundRequest) -> anyhow::Result<()> {
        Ok(())
    }
}

const BACKLOG: usize = 2000;

async fn a_refund_and_a_webhook_pass_a_backlog_of_slow_payments(backend: Backend) {
    let t = TestApp::spawn_with_connector(
        backend,
        Arc::new(SlowPayments),
        Mode::All,
        &[
            "--test-processing-delay",
            "5000",
            "--worker-concurrency",
            "64",
        ],
    )
    .await;
    // A payment that succeeds at once, to refund later.
    let paid = t.upi_payment("success@upi").await;
    let paid = paid["id"].as_str().unwrap().to_owned();
    assert_eq!(t.wait_final(&paid).await["status"], "success");
    // 2,000 payments that take 5 s each: far more than the payments queue's 64 slots.
    let merchant = paygate::merchants::test_merchant::ID;
    for _ in 0..BACKLOG {
        let new = NewOrder {
            amount: OrderAmount::parse(1000).unwrap(),
            currency: Currency::INR,
            receipt: None,
            notes: json!({}),
            callback_url: None,
        };
        let order = t
            .app
            .orders
            .create(merchant, None, new, None)
            .await
            .unwrap();
        let pay = NewPayment {
            order_id: order.id,
            instrument: Instrument::Upi(Vpa::parse("someone@okaxis").unwrap()),
        };
        t.app
            .payments
            .create(
                Some(&paygate::audit::Actor::api_key(merchant, "key_fair")),
                pay,
                None,
            )
            .await
            .unwrap();
    }
    // The payment slots are all taken and the backlog waits.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = t.app.queue.counts(Some("payments")).await.unwrap();
        if c.active == 64 && c.queued >= 1000 {
            break;
        }
        assert!(Instant::now() < deadline, "no backlog: {c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let receiver = crate::webhooks::Receiver::start("whsec_test_abc123").await;
    let (status, _) = t
        .call(
            reqwest::Method::PUT,
            "/api/v1/webhooks/config",
            Some(&json!({"webhook_url": receiver.url("/webhook")})),
        )
        .await;
    assert_eq!(status, 200);
    let started = Instant::now();
    let (status, refund) = t
        .post(
            &format!("/api/v1/payments/{paid}/refunds"),
            &json!({"amount": 100}),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    let refund_id = refund["id"].as_str().unwrap().to_owned();
    // Both the refund and its webhooks are through within 2 s.
    loop {
        let (_, r) = t.get(&format!("/api/v1/refunds/{refund_id}")).await;
        let got = receiver.received().await;
        let delivered = |event: &str| {
            got.iter()
                .any(|x| x["body"].as_str().unwrap().contains(event) && x["answered"] == 200)
        };
        if r["status"] == "processed"
            && delivered("refund.created")
            && delivered("refund.processed")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "after {:?}: refund {}, webhooks {got:?}",
            started.elapsed(),
            r["status"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = t.app.queue.counts(Some("payments")).await.unwrap();
    assert!(c.queued >= 1000, "the backlog was still there: {c:?}");
}

/// A destination that accepts connections and never answers (the webhook client gives up
/// after its 5 s timeout): counts the connections it holds.
async fn silent_destination() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    (format!("http://{addr}/hook"), accepted)
}

/// `n` deliveries of the test merchant to `endpoint_id`, due now, with their jobs.
pub(crate) async fn backlog(t: &TestApp, endpoint_id: &str, n: usize) {
    let now = paygate::store::now();
    let deliveries: Vec<paygate::store::webhooks::NewDelivery> = (0..n)
        .map(|i| paygate::store::webhooks::NewDelivery {
            id: uuid::Uuid::new_v4().to_string(),
            merchant_id: paygate::merchants::test_merchant::ID.to_owned(),
            event_id: format!("evt_backlog{i:05}"),
            event: "payment.created".to_owned(),
            payload: format!("{{\"backlog\":{i}}}"),
            endpoint_id: Some(endpoint_id.to_owned()),
            sequence: i64::try_from(i).unwrap(),
        })
        .collect();
    let mut tx = t.app.store.begin().await.unwrap();
    let mut jobs = Vec::new();
    for chunk in deliveries.chunks(250) {
        let ids = paygate::store::webhooks::insert_for_endpoints(&mut tx, chunk, now)
            .await
            .unwrap();
        let chunk_jobs: Vec<_> = ids
            .into_iter()
            .map(|id| paygate::queue::JobSpec::at(paygate::queue::WEBHOOKS, id, now))
            .collect();
        t.app.queue.stage(&mut tx, &chunk_jobs).await.unwrap();
        jobs.extend(chunk_jobs);
    }
    tx.commit().await.unwrap();
    t.app.queue.dispatch(&jobs).await;
}

async fn a_slow_endpoint_with_a_backlog_does_not_delay_another_merchant(backend: Backend) {
    use std::sync::atomic::Ordering::SeqCst;
    let t = TestApp::spawn_with(backend, Mode::All, &["--webhook-endpoint-concurrency", "4"]).await;
    let (slow_url, accepted) = silent_destination().await;
    let (status, slow) = t
        .post(
            "/api/v1/webhooks/endpoints",
            &json!({"url": "https://example.com/placeholder"}),
        )
        .await;
    assert_eq!(status, 201, "{slow}");
    let slow_id = slow["id"].as_str().unwrap().to_owned();
    let (status, _) = t
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/webhooks/endpoints/{slow_id}"),
            Some(&json!({"url": slow_url})),
        )
        .await;
    assert_eq!(status, 200);
    // 1,000 deliveries waiting for it.
    backlog(&t, &slow_id, 1000).await;
    // The slow endpoint's attempts are in flight: all four of its lanes.
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepted.load(SeqCst) < 4 {
        assert!(
            Instant::now() < deadline,
            "the slow endpoint was not attempted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let in_flight_since = Instant::now();
    // Another merchant's event, delivered to its own URL within 1 s.
    let other = paygate::merchants::create(&t.app.store, "Other", "other@example.com")
        .await
        .unwrap();
    let (key, secret) = (other.merchant.api_key.clone(), other.api_secret.clone());
    let (_, config) = t
        .call_as(
            &key,
            &secret,
            reqwest::Method::GET,
            "/api/v1/webhooks/config",
            None,
        )
        .await;
    let rx = crate::webhooks::Receiver::start(config["webhook_secret"].as_str().unwrap()).await;
    let (status, _) = t
        .call_as(
            &key,
            &secret,
            reqwest::Method::PUT,
            "/api/v1/webhooks/config",
            Some(&json!({"webhook_url": rx.url("/webhook")})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, order) = t
        .call_as(
            &key,
            &secret,
            reqwest::Method::POST,
            "/api/v1/orders",
            Some(&json!({"amount": 10000})),
        )
        .await;
    let started = Instant::now();
    let (status, _) = t
        .call_as(
            &key,
            &secret,
            reqwest::Method::POST,
            "/api/v1/payments",
            Some(&json!({"order_id": order["id"], "method": "upi", "vpa": "success@upi"})),
        )
        .await;
    assert_eq!(status, 201);
    rx.wait_for("the other merchant's payment.created", |r| {
        r.iter()
            .any(|x| x["body"].as_str().unwrap().contains("payment.created"))
    })
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "delivered after {took:?}");
    // Meanwhile (before the first attempts time out) the slow endpoint had only its four
    // attempts in flight.
    let held = accepted.load(SeqCst);
    if in_flight_since.elapsed() < Duration::from_millis(4500) {
        assert_eq!(held, 4, "at most 4 attempts at once to one endpoint");
    }
}

every_backend!(
    a_refund_and_a_webhook_pass_a_backlog_of_slow_payments,
    a_slow_endpoint_with_a_backlog_does_not_delay_another_merchant,
);
