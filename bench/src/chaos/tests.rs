//! The auditor can fail: a small, consistent set of books (a payment, a refund, their events
//! and every delivery, signed) audits clean; each kind of violation planted in a copy of it is
//! reported.

use std::{path::PathBuf, sync::Arc, time::Duration};

use paygate::{
    app::App,
    config::Config,
    merchants::test_merchant,
    orders::NewOrder,
    payments::{Instrument, NewPayment},
    processor::SimulatedBank,
    store::{Store, audit as books, processor::Operation},
};
use paygate_core::{Currency, MinorUnit, OrderAmount, Vpa, webhook};
use serde_json::json;

use super::{
    audit::{Findings, audit},
    load::Answer,
};

const URL: &str = "http://127.0.0.1:9/m1";

/// A fresh SQLite database with the test merchant (webhook URL set), one successful payment
/// and a processed partial refund; what the load would have logged of them.
async fn books(dir: &std::path::Path) -> (Store, Vec<Answer>) {
    let url = format!("sqlite://{}", dir.join("books.db").display());
    let config = Config::from_args([
        "paygate",
        "--database-url",
        url.as_str(),
        "--test-mode",
        "true",
        "--test-processing-delay",
        "0",
    ])
    .unwrap();
    let store = Store::connect(&url, 2).await.unwrap();
    store.migrate().await.unwrap();
    paygate::merchants::seed_test_merchant(&store)
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    paygate::store::merchants::set_webhook_url(
        &mut tx,
        test_merchant::ID,
        Some(URL),
        paygate::store::now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let by = paygate::audit::Actor::api_key(test_merchant::ID, "key_chaos");
    let bank = Arc::new(SimulatedBank::from_config(&config, store.clone()));
    let app = App::new(config, store.clone(), bank).unwrap();
    let order = app
        .orders
        .create(
            test_merchant::ID,
            Some(&by),
            NewOrder {
                amount: OrderAmount::parse(10_000).unwrap(),
                currency: Currency::INR,
                receipt: None,
                notes: json!({}),
                callback_url: None,
            },
            None,
        )
        .await
        .unwrap();
    let payment = app
        .payments
        .create(
            Some(&by),
            NewPayment {
                order_id: order.id.clone(),
                instrument: Instrument::Upi(Vpa::parse("success@okaxis").unwrap()),
            },
            None,
        )
        .await
        .unwrap();
    app.payments.process(&payment.id).await.unwrap();
    let refund = app
        .refunds
        .create(&by, &payment.id, Some(MinorUnit::new(2_500)), None, None)
        .await
        .unwrap();
    app.refunds.process(&refund.id).await.unwrap();
    let answer = |id: &str| Answer {
        what: "POST".into(),
        key: Some(format!("k-{id}")),
        status: 201,
        digest: format!("d-{id}"),
        created: Some(id.to_owned()),
        sent_ms: 0,
        at_ms: 1,
        dropped: false,
    };
    (store, vec![answer(&payment.id), answer(&refund.id)])
}

/// A receiver's log holding one signed delivery of each event (but `skip`).
async fn deliveries(store: &Store, dir: &std::path::Path, skip: usize) -> PathBuf {
    let events = books::events(store).await.unwrap();
    let mut lines = String::new();
    for (i, e) in events.iter().enumerate() {
        if i == skip {
            continue;
        }
        let body = json!({"id": e.id, "event": e.event_type, "sequence": e.seq}).to_string();
        let ts = 1_700_000_000;
        let sig =
            webhook::standard_signature(test_merchant::WEBHOOK_SECRET, &e.id, ts, body.as_bytes());
        let line = json!({"path": "/m1", "id": e.id, "timestamp": ts.to_string(),
            "signature": sig, "status": 200, "body": body});
        lines.push_str(&format!("{line}\n"));
    }
    let path = dir.join(format!("receiver-{skip}.jsonl"));
    std::fs::write(&path, lines).unwrap();
    path
}

async fn findings(store: &Store, answers: &[Answer], log: &PathBuf) -> Findings {
    audit(store, answers, std::slice::from_ref(log))
        .await
        .unwrap()
}

fn temp() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("paygate-audit-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn consistent_books_audit_clean_and_every_planted_violation_is_reported() {
    let dir = temp();
    let (store, answers) = books(&dir).await;
    // Wait for the jobs the services queued to be irrelevant: nothing runs them, so the
    // deliveries stay pending; mark what the receiver "got" below instead.
    let all = deliveries(&store, &dir, usize::MAX).await;
    let clean = findings(&store, &answers, &all).await;
    assert_eq!(clean.webhooks_missing, 0, "{clean:?}");
    assert!(clean.webhooks_expected >= 5, "{clean:?}");
    assert_eq!(
        Findings {
            still_pending: 0,
            webhooks_expected: 0,
            ..clean.clone()
        },
        Findings::default(),
        "consistent books: {clean:?}"
    );

    // A missing delivery.
    let gap = deliveries(&store, &dir, 0).await;
    assert_eq!(findings(&store, &answers, &gap).await.webhooks_missing, 1);

    // A bad signature, and a duplicate.
    let mut text = std::fs::read_to_string(&all).unwrap();
    let first = text.lines().next().unwrap().to_owned();
    text.push_str(&format!("{first}\n"));
    text.push_str(&first.replace("\"v1,", "\"v1,x"));
    text.push('\n');
    let dup = dir.join("dup.jsonl");
    std::fs::write(&dup, text).unwrap();
    let f = findings(&store, &answers, &dup).await;
    assert_eq!((f.webhooks_duplicated, f.bad_signatures), (1, 1), "{f:?}");

    // A payment answered 201 that does not exist.
    let mut lost = answers.clone();
    lost[0].created = Some("pay_0000000000000000".into());
    assert_eq!(findings(&store, &lost, &all).await.lost, 1);

    // A retry that got another answer.
    let mut twice = answers.clone();
    let mut other = twice[0].clone();
    other.digest = "different".into();
    twice.push(other);
    assert_eq!(
        findings(&store, &twice, &all).await.idempotency_mismatches,
        1
    );

    // A second charge of the payment in the bank's ledger.
    let payment = books::payments(&store).await.unwrap()[0].clone();
    let charge = Operation {
        idempotency_key: format!("charge_{}#again", payment.id),
        kind: "charge".into(),
        succeeded: true,
        error_code: None,
        error_description: None,
        calls: 1,
        ready_at: paygate::store::now(),
    };
    paygate::store::processor::record(&store, &charge, paygate::store::now())
        .await
        .unwrap();
    assert_eq!(findings(&store, &answers, &all).await.duplicate_charges, 1);

    // A refund beyond its payment.
    let refund = paygate::store::refunds::Refund {
        id: "rfnd_planted000000000".into(),
        merchant_id: test_merchant::ID.into(),
        payment_id: payment.id.clone(),
        amount: MinorUnit::new(20_000),
        reason: None,
        status: paygate_core::RefundStatus::Processed,
        created_at: paygate::store::now(),
        updated_at: paygate::store::now(),
        processed_at: Some(paygate::store::now()),
        processor_lease_until: None,
        processor_calls: 0,
    };
    let mut tx = store.begin().await.unwrap();
    paygate::store::refunds::insert_all(&mut tx, &[refund])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let f = findings(&store, &answers, &all).await;
    assert_eq!(f.refund_over_limit, 1, "{f:?}");
    // (Processed without a payout in the ledger, too.)
    assert_eq!(f.duplicate_refunds, 1, "{f:?}");
    store.close().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let _ = std::fs::remove_dir_all(dir);
}
