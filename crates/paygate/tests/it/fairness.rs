//! Fair queues: a backlog of slow payments never keeps a refund or a webhook waiting for a
//! free slot (each queue has its own).

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
        };
        let order = t.app.orders.create(merchant, new, None).await.unwrap();
        let pay = NewPayment {
            order_id: order.id,
            instrument: Instrument::Upi(Vpa::parse("someone@okaxis").unwrap()),
        };
        t.app
            .payments
            .create(Some(merchant), pay, None)
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

every_backend!(a_refund_and_a_webhook_pass_a_backlog_of_slow_payments);
