//! Processing is exactly-once in effect: a payment job run twice, or by two workers at once,
//! leaves one final status and one set of events.

use std::time::Duration;

use paygate::{app::Mode, payments::service::Processed, store::events};
use paygate_core::PaymentStatus;

use paygate::processor::charge_key;

use crate::helpers::{Backend, Counting, TestApp, every_backend, slow_bank};

async fn event_types(t: &TestApp, payment_id: &str) -> Vec<String> {
    events::for_resource(&t.app.store, payment_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

async fn a_payment_job_run_twice_at_once_finishes_once(backend: Backend) {
    let bank = Counting::new(slow_bank(100));
    let t = TestApp::spawn_api_with_connector(backend, bank.clone()).await;
    let payment = t.upi_payment("someone@okaxis").await;
    let id = payment["id"].as_str().unwrap();
    let (a, b) = tokio::join!(t.app.payments.process(id), t.app.payments.process(id));
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| matches!(o, Processed::Busy(_)));
    assert_eq!(outcomes[0], Processed::Finished(PaymentStatus::Success));
    assert!(
        matches!(outcomes[1], Processed::Busy(_)),
        "the second run finds the first asking the processor: {outcomes:?}"
    );
    assert_eq!(bank.calls(&charge_key(id)), 1, "one call to the processor");
    assert_eq!(bank.total(), 1);
    // A third run, later, changes nothing either, and asks nothing.
    assert_eq!(
        t.app.payments.process(id).await.unwrap(),
        Processed::AlreadyFinal
    );
    assert_eq!(bank.total(), 1);
    assert_eq!(
        event_types(&t, id).await,
        ["payment.created", "payment.pending", "payment.success"]
    );
    let (_, body) = t.get(&format!("/api/v1/payments/{id}")).await;
    assert_eq!(body["status"], "success");
    // The event carries the payment as the API shows it.
    let evs = events::for_resource(&t.app.store, id).await.unwrap();
    assert_eq!(evs[2].data["payment"]["status"], "success");
    assert_eq!(evs[2].data["payment"]["id"], id);
}

async fn the_queued_job_after_a_manual_run_changes_nothing(backend: Backend) {
    let t = TestApp::spawn_api_with_connector(backend, slow_bank(0)).await;
    let payment = t.upi_payment("failure@okaxis").await;
    let id = payment["id"].as_str().unwrap();
    assert_eq!(
        t.app.payments.process(id).await.unwrap(),
        Processed::Finished(PaymentStatus::Failed)
    );
    // The job that was queued at creation now runs: nothing changes, and it completes.
    t.run_jobs(1).await;
    assert_eq!(
        event_types(&t, id).await,
        ["payment.created", "payment.pending", "payment.failed"]
    );
    let counts = t.app.queue.counts(Some("payments")).await.unwrap();
    assert_eq!((counts.queued, counts.active, counts.completed), (0, 0, 1));
}

async fn two_workers_share_a_batch_without_double_processing(backend: Backend) {
    let t = TestApp::spawn_with(backend, Mode::All, &["--test-processing-delay", "50"]).await;
    // A second worker process on the same database.
    let second = paygate::app::App::build(crate::helpers::config(
        &t.db,
        &["--test-processing-delay", "50"],
    ))
    .await
    .unwrap();
    let other = paygate::app::start(second, Mode::Worker).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..30 {
        ids.push(
            t.upi_payment("buyer@okhdfc").await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for id in &ids {
        assert_eq!(t.wait_final(id).await["status"], "success");
    }
    for id in &ids {
        assert_eq!(
            event_types(&t, id).await,
            ["payment.created", "payment.pending", "payment.success"],
            "{id}"
        );
    }
    assert_eq!(t.count("events").await, 90);
    other.stop();
    other.wait().await.unwrap();
}

async fn a_crashed_worker_s_jobs_are_finished_by_the_next_one(backend: Backend) {
    // The first app dies mid-job (its tasks are aborted, nothing is handed back).
    let mut first =
        TestApp::spawn_with(backend, Mode::All, &["--test-processing-delay", "1500"]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(t_payment(&first).await);
    }
    // Wait until the worker holds all five, then kill it mid-job.
    for _ in 0..100 {
        if first
            .app
            .queue
            .counts(Some("payments"))
            .await
            .unwrap()
            .active
            == 5
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(first.running.take());
    let pending = first.app.queue.counts(Some("payments")).await.unwrap();
    assert_eq!(
        pending.active, 5,
        "the jobs were claimed by the dead worker"
    );
    // A new process on the same database finishes them once the lease runs out.
    let app = paygate::app::App::build(crate::helpers::config(
        &first.db,
        &["--test-processing-delay", "10"],
    ))
    .await
    .unwrap();
    let running = paygate::app::start(app, Mode::All).await.unwrap();
    first.addr = running.api_addr.unwrap();
    first.running = Some(running);
    for id in &ids {
        assert_eq!(first.wait_final(id).await["status"], "success");
        assert_eq!(event_types(&first, id).await.len(), 3);
    }
    first.stop().await;
}

async fn a_job_taken_over_while_its_run_waits_on_the_bank_asks_the_bank_once(backend: Backend) {
    // The bank takes 1.5 s; a job lease lasts 300 ms, so a run that does not beat its
    // heartbeat loses its job to the next worker long before the bank answers.
    let flags = ["--test-processing-delay", "1500", "--job-lease-ms", "300"];
    let bank = Counting::new(slow_bank(1500));
    let t = TestApp::spawn_with_connector(backend, bank.clone(), Mode::Serve, &flags).await;
    let id = t_payment(&t).await;
    // A run of our own claims the job and asks the bank, without a heartbeat.
    let job = loop {
        let claimed = t
            .app
            .queue
            .claim("silent-worker", "payments", 1)
            .await
            .unwrap();
        if let Some(job) = claimed.into_iter().next() {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let first = {
        let app = t.app.clone();
        tokio::spawn(async move {
            app.worker.handle("silent-worker", &job).await;
        })
    };
    for _ in 0..200 {
        if bank.total() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(bank.total(), 1, "the first run is asking the bank");
    // A real worker takes the job over once its lease runs out.
    let config = crate::helpers::config(&t.db, &flags);
    let worker = paygate::app::App::new(config, t.app.store.clone(), bank.clone()).unwrap();
    let running = paygate::app::start(worker, Mode::Worker).await.unwrap();
    let job_id = format!("payments-{id}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        // Held by the worker, or already put back by it (it found the bank busy).
        let holder = t.job_holder("payments", &job_id).await;
        if holder.as_deref() != Some("silent-worker") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job was not taken over: {holder:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !first.is_finished(),
        "taken over while the first run waits on the bank"
    );
    first.await.unwrap();
    assert_eq!(t.wait_final(&id).await["status"], "success");
    // Wait for the worker's run after the first one finished: it finds the payment final.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let c = t.app.queue.counts(Some("payments")).await.unwrap();
        if c.queued == 0 && c.active == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(bank.calls(&charge_key(&id)), 1, "the bank was asked once");
    assert_eq!(
        event_types(&t, &id).await,
        ["payment.created", "payment.pending", "payment.success"]
    );
    running.stop();
    running.wait().await.unwrap();
}

async fn t_payment(t: &TestApp) -> String {
    t.upi_payment("a@b").await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

every_backend!(
    a_payment_job_run_twice_at_once_finishes_once,
    the_queued_job_after_a_manual_run_changes_nothing,
    two_workers_share_a_batch_without_double_processing,
    a_crashed_worker_s_jobs_are_finished_by_the_next_one,
    a_job_taken_over_while_its_run_waits_on_the_bank_asks_the_bank_once,
);
