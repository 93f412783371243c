//! Group commit: requests written together in one batch each get their own answer, a
//! disconnecting client leaves no payment without its job, and a gateway killed with batches in
//! flight loses nothing it answered and leaves nothing half-written.

use std::{collections::HashSet, time::Duration};

use paygate::{
    app::Mode,
    payments::{Instrument, NewPayment, service::Error, writes::Create},
};
use paygate_core::Vpa;
use serde_json::json;

use crate::helpers::{Backend, TestApp, every_backend};

fn upi(order_id: &str) -> NewPayment {
    NewPayment {
        order_id: order_id.to_owned(),
        instrument: Instrument::Upi(Vpa::parse("success@upi").unwrap()),
    }
}

async fn one_batch_answers_each_request_for_itself(backend: Backend) {
    let t = TestApp::spawn_with(backend, Mode::Serve, &[]).await;
    let me = paygate::merchants::test_merchant::ID;
    let mut good = Vec::new();
    for _ in 0..10 {
        good.push(t.order(1000).await);
    }
    let twice = t.order(2000).await;
    let paid = {
        let p = t.upi_payment("success@upi").await;
        t.run_jobs(1).await;
        p["order_id"].as_str().unwrap().to_owned()
    };
    // Another merchant's order, and one that does not exist.
    let other = paygate::merchants::create(&t.app.store, "Other", "other@example.com")
        .await
        .unwrap();
    let theirs = {
        let (status, o) = t
            .call_as(
                &other.merchant.api_key,
                &other.api_secret,
                reqwest::Method::POST,
                "/api/v1/orders",
                Some(&json!({"amount": 500})),
            )
            .await;
        assert_eq!(status, 201);
        o["id"].as_str().unwrap().to_owned()
    };
    let mut ops = Vec::new();
    let mut expected = Vec::new();
    for (i, order) in good.iter().enumerate() {
        ops.push(upi(order));
        expected.push("ok");
        if i % 3 == 0 {
            ops.push(upi(&twice));
            expected.push(if i == 0 { "ok" } else { "open" });
        }
    }
    ops.push(upi(&paid));
    expected.push("paid");
    ops.push(upi(&theirs));
    expected.push("missing");
    ops.push(upi("order_AAAAAAAAAAAAAAAA"));
    expected.push("missing");
    let answers = t
        .app
        .payments
        .writer()
        .create_batch(
            ops.into_iter()
                .map(|new| Create {
                    merchant_id: Some(me.to_owned()),
                    by: Some(paygate::audit::Actor::api_key(me, "key_batch")),
                    new,
                    replay: None,
                    upi: None,
                    awaits_customer: false,
                })
                .collect(),
        )
        .await;
    assert_eq!(answers.len(), expected.len());
    let mut created = Vec::new();
    for (answer, want) in answers.iter().zip(&expected) {
        match (answer, *want) {
            (Ok(p), "ok") => created.push(p.id.clone()),
            (Err(Error::OrderHasOpenPayment), "open")
            | (Err(Error::OrderPaid), "paid")
            | (Err(Error::OrderNotFound), "missing") => {}
            (got, want) => panic!("wanted {want}, got {got:?}"),
        }
    }
    assert_eq!(
        created.len(),
        11,
        "ten orders and the first payment of the doubled one"
    );
    // The audit log has the payments made, none of those refused, in the same batch.
    let filter = paygate::store::audit_log::Filter {
        actor_id: Some("key_batch".into()),
        ..Default::default()
    };
    let window = paygate::store::table::Window::first(100);
    let logged = paygate::store::audit_log::list(&t.app.store, me, &filter, window)
        .await
        .unwrap()
        .unwrap();
    let mut logged: Vec<String> = logged
        .rows
        .into_iter()
        .map(|e| {
            assert_eq!(
                (e.action.as_str(), e.outcome.as_str()),
                ("payment.create", "success")
            );
            e.resource_id.unwrap()
        })
        .collect();
    logged.sort();
    let mut made = created.clone();
    made.sort();
    assert_eq!(logged, made);
    // Each created payment has its two events and its job; the refused ones left nothing.
    for id in &created {
        let events = paygate::store::events::for_resource(&t.app.store, id)
            .await
            .unwrap();
        assert_eq!(events.len(), 2, "{id}");
    }
    assert_eq!(
        t.count("payments").await,
        12,
        "the eleven and the earlier paid one"
    );
    let jobs = t.app.queue.counts(Some("payments")).await.unwrap();
    assert_eq!(jobs.queued, 11, "{jobs:?}");

    // Refunds: one batch with a refund over what is left among valid ones.
    let p = t.upi_payment("success@upi").await;
    t.run_jobs(1).await;
    let pid = p["id"].as_str().unwrap().to_owned();
    let refund = |amount: i64| paygate::refunds::Create {
        merchant_id: me.to_owned(),
        by: None,
        payment_id: pid.clone(),
        amount: Some(amount.into()),
        reason: None,
        replay: None,
    };
    let answers = t
        .app
        .refunds
        .writer()
        .create_batch(vec![
            refund(20_000),
            refund(40_000),
            refund(20_000),
            refund(10_000),
        ])
        .await;
    let outcome: Vec<&str> = answers
        .iter()
        .map(|a| match a {
            Ok(_) => "ok",
            Err(paygate::refunds::Error::ExceedsAvailable) => "exceeds",
            Err(e) => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(
        outcome,
        ["ok", "exceeds", "ok", "ok"],
        "50,000 paise: 20,000 + 20,000 + 10,000"
    );
    let payment = paygate::store::payments::get(&t.app.store, &pid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(payment.amount_refunded, 50_000);
}

async fn a_client_that_disconnects_leaves_no_payment_without_its_job(backend: Backend) {
    // No worker: every job stays where the gateway put it.
    let t = TestApp::spawn_with(backend, Mode::Serve, &[]).await;
    // Rounds of clients that give up after 1 to 25 ms, until some gave up on a payment whose
    // batch committed anyway (a disconnect in the middle of the write): at most ten rounds.
    let (mut sent, mut answered) = (0usize, 0usize);
    for round in 0..10 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50u64 {
            let order = t.order(1000).await;
            let client = reqwest::Client::builder()
                .timeout(Duration::from_millis(1 + (i * 7 + round) % 25))
                .build()
                .unwrap();
            let url = t.url("/api/v1/payments");
            tasks.spawn(async move {
                client
                    .post(url)
                    .header("X-Api-Key", crate::helpers::KEY)
                    .header("X-Api-Secret", crate::helpers::SECRET)
                    .json(&json!({"order_id": order, "method": "upi", "vpa": "a@b"}))
                    .send()
                    .await
                    .is_ok()
            });
        }
        while let Some(done) = tasks.join_next().await {
            answered += usize::from(done.unwrap());
        }
        sent += 50;
        if (all_payments(&t).await.len()) > answered {
            break;
        }
    }
    // Every committed payment has its job at once: within a second (no sweep runs here, and
    // the lease, after which one would look, is two).
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let payments = loop {
        let payments = all_payments(&t).await;
        let jobs = t.app.queue.counts(Some("payments")).await.unwrap();
        if jobs.queued == i64::try_from(payments.len()).unwrap() {
            break payments;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} payments, {} jobs",
            payments.len(),
            jobs.queued
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        payments.len() > answered && answered < sent,
        "some clients left after their payment committed ({} committed, {answered} of {sent} answered)",
        payments.len()
    );
    for id in &payments {
        let events = paygate::store::events::for_resource(&t.app.store, id)
            .await
            .unwrap();
        assert_eq!(events.len(), 2, "{id} is whole");
    }
}

async fn all_payments(t: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for offset in (0..600).step_by(100) {
        let (_, page) = t
            .get(&format!("/api/v1/payments?limit=100&offset={offset}"))
            .await;
        ids.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned()),
        );
    }
    ids
}

every_backend!(
    one_batch_answers_each_request_for_itself,
    a_client_that_disconnects_leaves_no_payment_without_its_job,
    two_lanes_answer_each_payment_once,
);

/// On PostgreSQL with `WRITE_LANES=2` two batches of payments are in flight at once: a batch
/// held up in the database (here by another transaction's uncommitted payment of the same
/// order, which the unique index makes it wait for) does not hold up the payments of other
/// orders, which go through the other lane and are answered meanwhile. (SQLite writes one batch
/// at a time on its one writer connection whatever the lanes.)
async fn a_batch_held_in_the_database_does_not_hold_up_the_next(backend: Backend) {
    use sqlx::Connection as _;
    let t = TestApp::spawn_with(backend, Mode::Serve, &["--write-lanes", "2"]).await;
    let (held, free) = (t.order(1000).await, t.order(2000).await);
    let mut other = sqlx::PgConnection::connect(&t.db.url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query(
        "INSERT INTO payments (id, merchant_id, order_id, amount, currency, method, vpa, status, \
         captured, amount_refunded, created_at, updated_at) SELECT 'pay_HeldByATestTx01', \
         merchant_id, id, amount, currency, 'upi', 'held@upi', 'pending', FALSE, 0, now(), now() \
         FROM orders WHERE id = $1",
    )
    .bind(&held)
    .execute(&mut other)
    .await
    .unwrap();
    let pay = |order: String| {
        let (client, url) = (t.client.clone(), t.url("/api/v1/payments"));
        async move {
            let body = json!({"order_id": order, "method": "upi", "vpa": "success@upi"});
            let sent = client
                .post(url)
                .header("X-Api-Key", crate::helpers::KEY)
                .header("X-Api-Secret", crate::helpers::SECRET)
                .json(&body)
                .send()
                .await;
            sent.unwrap().status().as_u16()
        }
    };
    let first = tokio::spawn(pay(held.clone()));
    // Wait until its batch is waiting for the other transaction's lock.
    let mut waiting = 0_i64;
    for _ in 0..500 {
        waiting = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut other)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        waiting, 1,
        "the first payment's batch never waited for the lock"
    );
    let second = tokio::time::timeout(Duration::from_secs(10), pay(free)).await;
    assert_eq!(
        second.ok(),
        Some(201),
        "the second payment waited for the first batch"
    );
    assert!(!first.is_finished(), "the first batch did not wait");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    assert_eq!(first.await.unwrap(), 201);
    assert_eq!(t.count("payments").await, 2);
}

/// With `WRITE_LANES=2` concurrent payments are each answered as with one lane, on every
/// backend (on SQLite the second lane waits for the one writer connection): every order paid
/// once, the order paid twice refused once, nothing else written.
async fn two_lanes_answer_each_payment_once(backend: Backend) {
    let t = TestApp::spawn_with(backend, Mode::Serve, &["--write-lanes", "2"]).await;
    let mut orders = Vec::new();
    for _ in 0..24 {
        orders.push(t.order(1000).await);
    }
    let twice = orders[0].clone();
    let t = &t;
    let sent = orders.iter().chain(std::iter::once(&twice)).map(|order| {
        let body = json!({"order_id": order, "method": "upi", "vpa": "success@upi"});
        async move { t.post("/api/v1/payments", &body).await.0.as_u16() }
    });
    let mut statuses = futures_util::future::join_all(sent).await;
    statuses.sort_unstable();
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(created, 24, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&400), "{statuses:?}");
    assert_eq!(t.count("payments").await, 24);
}

mod lanes {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::a_batch_held_in_the_database_does_not_hold_up_the_next(Backend::Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        super::a_batch_held_in_the_database_does_not_hold_up_the_next(Backend::PostgresRedis).await
    }
}

/// A gateway killed while batches are in flight: every payment it answered 201 exists, whole
/// (two events), and reaches its final status once a gateway runs again.
async fn a_gateway_killed_mid_batch_loses_nothing_it_answered(backend: Backend) {
    use crate::{
        helpers::TestDb,
        process::{Gateway, temp_dir, wait_all_final},
    };
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let env = [("TEST_MODE", "true"), ("TEST_PROCESSING_DELAY", "200")];
    let mut g = Gateway::start(&db, &dir, &env).await;
    let mut orders = Vec::new();
    for _ in 0..400 {
        let (_, order) = g.post("/api/v1/orders", &json!({"amount": 1000})).await;
        orders.push(order["id"].as_str().unwrap().to_owned());
    }
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let url = g.url("/api/v1/payments");
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in orders.chunks(25) {
        let (chunk, url, answered) = (chunk.to_vec(), url.clone(), answered.clone());
        tasks.spawn(async move {
            let client = crate::helpers::http();
            for order in chunk {
                let res = client
                    .post(&url)
                    .header("X-Api-Key", crate::helpers::KEY)
                    .header("X-Api-Secret", crate::helpers::SECRET)
                    .json(&json!({"order_id": order, "method": "upi", "vpa": "a@b"}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 201 => {
                        let body: serde_json::Value = r.json().await.unwrap();
                        answered
                            .lock()
                            .unwrap()
                            .push(body["id"].as_str().unwrap().to_owned());
                    }
                    _ => return,
                }
            }
        });
    }
    // Kill it once a good part of the payments was answered, with clients still sending.
    loop {
        let n = answered.lock().unwrap().len();
        if n >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    g.kill9();
    while tasks.join_next().await.is_some() {}
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() < 400, "the kill hit the run in flight");
    let g2 = Gateway::start(&db, &dir, &env).await;
    // Every answered payment exists and finishes (wait_all_final checks its three events).
    wait_all_final(&db.url(), &answered).await;
    // Nothing half-written: every payment in the database has its events.
    let store = paygate::store::Store::connect(&db.url(), 1).await.unwrap();
    let window = paygate::store::table::Window::first(500);
    let all: Vec<paygate::store::payments::Payment> =
        paygate::store::table::page(&store, paygate::merchants::test_merchant::ID, window)
            .await
            .unwrap()
            .unwrap()
            .rows;
    let known: HashSet<&String> = answered.iter().collect();
    assert!(all.iter().filter(|p| known.contains(&p.id)).count() == answered.len());
    for p in &all {
        let events = paygate::store::events::for_resource(&store, &p.id)
            .await
            .unwrap();
        assert!(events.len() >= 2, "{} has {} events", p.id, events.len());
    }
    // The overview's rollups agree with the payments once the recovered ones are final.
    crate::scale::wait_rollups_match(&store, paygate::merchants::test_merchant::ID).await;
    store.close().await;
    drop(g2);
    let _ = std::fs::remove_dir_all(dir);
}

mod killed {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_gateway_killed_mid_batch_loses_nothing_it_answered(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_redis() {
        a_gateway_killed_mid_batch_loses_nothing_it_answered(Backend::PostgresRedis).await
    }
}
