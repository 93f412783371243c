//! Settlements and reconciliation (issue 33): a settlement pays out captured payments less
//! processed refunds, fees and tax, each transaction exactly once whatever runs at once; a
//! negative balance is carried; a refused transfer is retried; the recon list and its CSV; the
//! bank's report checked line by line; kill -9 while a transfer is in flight.

use std::{collections::HashMap, process::Command, time::Duration};

use paygate::{
    app::App,
    merchants::test_merchant,
    store::{Store, events, table::Window},
};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, TestDb, assert_error, config, every_backend, http},
    process::{Gateway, temp_dir},
};

/// The flags of a gateway that settles at once, only when a test runs a cycle by hand (the
/// worker does not settle).
const BY_HAND: [&str; 4] = ["--settlement-delay", "0", "--settlement-interval", "0"];

/// A successful card payment of `amount`, captured when `capture`.
async fn paid(t: &TestApp, amount: i64, capture: bool) -> String {
    let order = t.order(amount).await;
    let (status, p) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "upi", "vpa": "success@upi"}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(t.wait_final(&id).await["status"], "success");
    if capture {
        let (status, c) = t
            .post(&format!("/api/v1/payments/{id}/capture"), &json!({}))
            .await;
        assert_eq!(status, 200, "{c}");
    }
    id
}

/// A processed refund of `amount` of payment `id`.
async fn refunded(t: &TestApp, id: &str, amount: i64) -> String {
    let (status, r) = t
        .post(
            &format!("/api/v1/payments/{id}/refunds"),
            &json!({"amount": amount}),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let refund = r["id"].as_str().unwrap().to_owned();
    for _ in 0..500 {
        let (_, r) = t.get(&format!("/api/v1/refunds/{refund}")).await;
        if r["status"] == "processed" {
            return refund;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("refund {refund} not processed");
}

/// The settlement's transactions through the recon list, every page of `limit`.
async fn recon(t: &TestApp, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = t
            .get(&format!(
                "/api/v1/settlements/recon?limit={limit}&{query}{after}"
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap().clone();
        assert!(data.len() <= limit);
        out.extend(data.iter().cloned());
        if page["has_more"] != true {
            return out;
        }
        after = format!(
            "&starting_after={}",
            data.last().unwrap()["id"].as_str().unwrap()
        );
    }
}

/// The sum over a settlement's transactions (payments less refunds) equals its amount + fees
/// + tax, and its count is theirs.
async fn assert_adds_up(t: &TestApp, s: &Value) {
    let txs = recon(
        t,
        &format!("settlement_id={}", s["id"].as_str().unwrap()),
        2,
    )
    .await;
    let money: i64 = txs
        .iter()
        .map(|x| match x["type"].as_str().unwrap() {
            "payment" => x["amount"].as_i64().unwrap(),
            _ => -x["amount"].as_i64().unwrap(),
        })
        .sum();
    let fees: i64 = txs.iter().map(|x| x["fee"].as_i64().unwrap()).sum();
    let tax: i64 = txs.iter().map(|x| x["tax"].as_i64().unwrap()).sum();
    assert_eq!(txs.len() as i64, s["count"].as_i64().unwrap(), "{s}");
    assert_eq!(
        money,
        s["amount"].as_i64().unwrap() + s["fees"].as_i64().unwrap() + s["tax"].as_i64().unwrap(),
        "{s}"
    );
    assert_eq!(
        (fees, tax),
        (s["fees"].as_i64().unwrap(), s["tax"].as_i64().unwrap())
    );
    for x in &txs {
        assert_eq!(x["settlement_id"], s["id"]);
        assert_eq!(x["utr"], s["utr"]);
    }
}

async fn settlements(t: &TestApp) -> Vec<Value> {
    let (status, page) = t.get("/api/v1/settlements?limit=100").await;
    assert_eq!(status, 200, "{page}");
    page["data"].as_array().unwrap().clone()
}

async fn a_settlement_pays_captures_less_refunds_fees_and_tax(backend: Backend) {
    let t = TestApp::spawn_with(backend, paygate::app::Mode::All, &BY_HAND).await;
    let a = paid(&t, 50_000, true).await;
    let b = paid(&t, 20_000, true).await;
    let uncaptured = paid(&t, 10_000, false).await;
    let refund = refunded(&t, &a, 5_000).await;
    let cycle = t.app.settlements.run().await.unwrap();
    assert_eq!((cycle.created, cycle.processed, cycle.failed), (1, 1, 0));
    let listed = settlements(&t).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let s = &listed[0];
    // 50,000 + 20,000 captured, 5,000 refunded, fees 1,000 + 400, GST 180 + 72.
    assert_eq!(
        (
            s["gross"].as_i64(),
            s["refunds"].as_i64(),
            s["fees"].as_i64(),
            s["tax"].as_i64(),
            s["amount"].as_i64(),
            s["count"].as_i64()
        ),
        (
            Some(70_000),
            Some(5_000),
            Some(1_400),
            Some(252),
            Some(63_348),
            Some(3)
        ),
        "{s}"
    );
    assert_eq!(s["status"], "processed");
    assert_eq!(s["currency"], "INR");
    let id = s["id"].as_str().unwrap();
    assert!(id.starts_with("setl_") && id.len() == 21, "{id}");
    let utr = s["utr"].as_str().unwrap();
    assert!(utr.starts_with("PGSB") && utr.len() == 20, "{utr}");
    assert!(s["processed_at"].is_string());
    assert_adds_up(&t, s).await;
    // The payment carries its settlement; the uncaptured one is not settled.
    let (_, p) = t.get(&format!("/api/v1/payments/{a}")).await;
    assert_eq!(p["settlement_id"], s["id"], "{p}");
    let (_, p) = t.get(&format!("/api/v1/payments/{uncaptured}")).await;
    assert_eq!(p["settlement_id"], Value::Null, "{p}");
    // One settlement.processed event with the settlement.
    let store = &t.app.store;
    let evs = events::for_resource(store, id).await.unwrap();
    assert_eq!(
        evs.iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        ["settlement.processed"]
    );
    assert_eq!(evs[0].data["settlement"]["amount"], 63_348);
    // Read by id; another cycle settles nothing again.
    let (status, one) = t.get(&format!("/api/v1/settlements/{id}")).await;
    assert_eq!((status.as_u16(), &one), (200, s));
    let cycle = t.app.settlements.run().await.unwrap();
    assert_eq!((cycle.created, cycle.processed), (0, 0));
    assert_eq!(settlements(&t).await.len(), 1);
    // The recon list: every captured payment and processed refund, with the settlement.
    let all = recon(&t, "", 1).await;
    let ids: Vec<&str> = all.iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    for want in [&a, &b, &refund] {
        assert!(ids.contains(&want.as_str()), "{want} in {ids:?}");
    }
    // And as CSV, streamed.
    let res = http()
        .get(t.url("/api/v1/settlements/recon"))
        .header("X-Api-Key", crate::helpers::KEY)
        .header("X-Api-Secret", crate::helpers::SECRET)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "type,id,payment_id,amount,fee,tax,currency,at,settlement_id,settled_at,utr"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines.iter().any(
            |l| l.starts_with(&format!("refund,{refund},{a},5000,0,0,INR,"))
                && l.ends_with(&format!(
                    ",{id},{},{utr}",
                    &one["processed_at"].as_str().unwrap()
                ))
        ),
        "{csv}"
    );
    // The list's filters and errors.
    let (status, page) = t.get("/api/v1/settlements?from=2100-01-01T00:00:00Z").await;
    assert_eq!(status, 200);
    assert_eq!(page["data"], json!([]));
    let (status, body) = t.get("/api/v1/settlements?from=yesterday").await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    let (status, body) = t.get("/api/v1/settlements/setl_0000000000000000").await;
    assert_error(status, &body, 404, "NOT_FOUND_ERROR");
    let (status, body) = t
        .get("/api/v1/settlements/recon?starting_after=pay_0000000000000000")
        .await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    let (status, body) = t.get("/api/v1/settlements/recon?limit=0").await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    let (status, body) = t.get("/api/v1/settlements/recon?settlement_id=x").await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
}

async fn a_negative_balance_is_carried_into_the_next_settlement(backend: Backend) {
    let t = TestApp::spawn_with(backend, paygate::app::Mode::All, &BY_HAND).await;
    let a = paid(&t, 10_000, true).await;
    assert_eq!(t.app.settlements.run().await.unwrap().created, 1);
    // The whole payment comes back after it was settled: the merchant owes 10,000.
    let refund = refunded(&t, &a, 10_000).await;
    let cycle = t.app.settlements.run().await.unwrap();
    assert_eq!(cycle.created, 0, "nothing is paid out as negative");
    assert_eq!(settlements(&t).await.len(), 1);
    let merchant = test_merchant::ID;
    let unsettled = paygate::store::settlements::unsettled(&t.app.store, merchant)
        .await
        .unwrap();
    assert_eq!(unsettled.len(), 1);
    assert_eq!((unsettled[0].balance, unsettled[0].count), (-10_000, 1));
    let (_, r) = t.get("/api/v1/settlements/recon?limit=10").await;
    let r = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == refund.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        r["settlement_id"],
        Value::Null,
        "the refund is carried: {r}"
    );
    // The next capture covers it: one settlement takes both.
    let b = paid(&t, 50_000, true).await;
    assert_eq!(t.app.settlements.run().await.unwrap().created, 1);
    let listed = settlements(&t).await;
    assert_eq!(listed.len(), 2);
    let s = &listed[0];
    assert_eq!(
        (
            s["gross"].as_i64(),
            s["refunds"].as_i64(),
            s["amount"].as_i64(),
            s["count"].as_i64()
        ),
        (
            Some(50_000),
            Some(10_000),
            Some(50_000 - 10_000 - 1_000 - 180),
            Some(2)
        ),
        "{s}"
    );
    assert_adds_up(&t, s).await;
    let (_, p) = t.get(&format!("/api/v1/payments/{b}")).await;
    assert_eq!(p["settlement_id"], s["id"]);
}

async fn a_refused_transfer_fails_and_is_retried(backend: Backend) {
    let mut flags = BY_HAND.to_vec();
    flags.extend(["--payout-failure-rate", "1"]);
    let t = TestApp::spawn_with(backend, paygate::app::Mode::All, &flags).await;
    paid(&t, 30_000, true).await;
    let cycle = t.app.settlements.run().await.unwrap();
    assert_eq!((cycle.created, cycle.processed, cycle.failed), (1, 0, 1));
    let cycle = t.app.settlements.run().await.unwrap();
    assert_eq!((cycle.created, cycle.processed, cycle.failed), (0, 0, 1));
    let s = settlements(&t).await.remove(0);
    assert_eq!(
        (s["status"].as_str(), s["attempts"].as_i64()),
        (Some("failed"), Some(2)),
        "{s}"
    );
    assert!(
        s["failure_reason"]
            .as_str()
            .unwrap()
            .contains("did not take"),
        "a fixed reason, not the bank's words: {s}"
    );
    assert_eq!(s["utr"], Value::Null);
    // The bank takes it again: the next cycle (another process's) transfers it, once.
    let mut ok = BY_HAND.to_vec();
    ok.extend(["--payout-failure-rate", "0"]);
    let other = App::build(config(&t.db, &ok)).await.unwrap();
    let cycle = other.settlements.run().await.unwrap();
    assert_eq!((cycle.created, cycle.processed, cycle.failed), (0, 1, 0));
    let s = settlements(&t).await.remove(0);
    assert_eq!(
        (s["status"].as_str(), s["attempts"].as_i64()),
        (Some("processed"), Some(3)),
        "{s}"
    );
    assert_eq!(s["failure_reason"], Value::Null);
    let evs = events::for_resource(&t.app.store, s["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(evs.len(), 1);
}

async fn concurrent_cycles_settle_each_transaction_once(backend: Backend) {
    let t = TestApp::spawn_with(backend, paygate::app::Mode::All, &BY_HAND).await;
    let other = App::build(config(&t.db, &BY_HAND)).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(paid(&t, 1_000, true).await);
    }
    // Four cycles at once from two processes, while more payments are captured.
    let late = async {
        let mut late = Vec::new();
        for _ in 0..6 {
            late.push(paid(&t, 2_000, true).await);
        }
        late
    };
    let (a, b, c, d, late) = tokio::join!(
        t.app.settlements.run(),
        other.settlements.run(),
        t.app.settlements.run(),
        other.settlements.run(),
        late
    );
    for cycle in [a, b, c, d] {
        cycle.unwrap();
    }
    ids.extend(late);
    // A last cycle takes whatever became final meanwhile.
    t.app.settlements.run().await.unwrap();
    let listed = settlements(&t).await;
    let counted: i64 = listed.iter().map(|s| s["count"].as_i64().unwrap()).sum();
    assert_eq!(
        counted,
        ids.len() as i64,
        "each transaction in one settlement: {listed:?}"
    );
    for s in &listed {
        assert_eq!(s["status"], "processed");
        assert_adds_up(&t, s).await;
    }
    let mut by_settlement: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let (_, p) = t.get(&format!("/api/v1/payments/{id}")).await;
        let s = p["settlement_id"].as_str().expect("settled").to_owned();
        *by_settlement.entry(s).or_default() += 1;
    }
    assert_eq!(by_settlement.len(), listed.len());
}

/// `paygate processor report` for the test merchant on `date`.
fn bank_report(db: &TestDb, date: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .env_clear()
        .env("DATABASE_URL", db.url())
        .args([
            "processor",
            "report",
            "--date",
            date,
            "--merchant",
            test_merchant::EMAIL,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `POST /api/v1/reconciliation` of `report`, answered 201.
async fn reconcile(t: &TestApp, date: &str, report: &str) -> Value {
    let (status, r) = t
        .post(
            "/api/v1/reconciliation",
            &json!({"date": date, "report": report}),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    r
}

/// Matched, mismatched, unknown and missing.
fn counts(r: &Value) -> [i64; 4] {
    ["matched", "mismatched", "unknown", "missing"].map(|k| r[k].as_i64().unwrap())
}

async fn reconciliation_finds_each_kind_of_mismatch(backend: Backend) {
    let t = TestApp::spawn_with(backend, paygate::app::Mode::All, &BY_HAND).await;
    let a = paid(&t, 40_000, true).await;
    let b = paid(&t, 25_000, true).await;
    let c = paid(&t, 12_000, true).await;
    let refund = refunded(&t, &a, 1_000).await;
    let uncaptured = paid(&t, 9_000, false).await;
    t.app.settlements.run().await.unwrap();
    let s = settlements(&t).await.remove(0);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let report = bank_report(&t.db, &today);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], "reference,type,amount,fee,utr");
    assert_eq!(lines.len(), 5, "{report}");
    let utr = s["utr"].as_str().unwrap();
    assert!(
        lines.contains(&format!("{a},payment,40000,944,{utr}").as_str()),
        "fee with its tax, the transfer's UTR: {report}"
    );
    assert!(
        lines.contains(&format!("{refund},refund,1000,0,{utr}").as_str()),
        "{report}"
    );
    // The report as the bank sent it matches.
    let r = reconcile(&t, &today, &report).await;
    assert_eq!(counts(&r), [4, 0, 0, 0], "{r}");
    // Plant one of each: b's amount changed, a reported twice, c left out, a line paygate
    // never saw, and one of a payment that was never captured.
    let a_line = report
        .lines()
        .find(|l| l.starts_with(&a))
        .unwrap()
        .to_owned();
    let planted: String = report
        .lines()
        .filter(|l| !l.starts_with(&c))
        .map(|l| {
            if l.starts_with(&b) {
                l.replace(",25000,", ",24000,")
            } else {
                l.to_owned()
            }
        })
        .chain([
            a_line,
            format!("pay_Zz9Zz9Zz9Zz9Zz9Z,payment,5000,118,{utr}"),
            format!("{uncaptured},payment,9000,212,"),
        ])
        .collect::<Vec<_>>()
        .join("\n");
    let r = reconcile(&t, &today, &planted).await;
    assert_eq!(counts(&r), [2, 2, 2, 1], "{r}");
    let results = |reference: &str| -> Vec<(String, String)> {
        r["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["reference"] == reference)
            .map(|l| {
                let text = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
                (text("result"), text("reason"))
            })
            .collect()
    };
    let mismatch = r["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["reference"] == b.as_str())
        .unwrap();
    assert_eq!(
        (
            mismatch["result"].as_str(),
            mismatch["expected_amount"].as_i64(),
            mismatch["reported_amount"].as_i64(),
            mismatch["reason"].as_str()
        ),
        (
            Some("amount_mismatch"),
            Some(25_000),
            Some(24_000),
            Some("the amount differs")
        )
    );
    let pair = |result: &str, reason: &str| (result.to_owned(), reason.to_owned());
    assert_eq!(
        results(&a),
        [
            pair("matched", ""),
            pair("amount_mismatch", "reported more than once")
        ]
    );
    assert_eq!(
        results(&c),
        [pair("missing", "in paygate, not in the report")]
    );
    assert_eq!(results("pay_Zz9Zz9Zz9Zz9Zz9Z")[0].0, "unknown");
    assert_eq!(results(&uncaptured)[0].0, "unknown", "not captured");
    assert_eq!(results(&refund), [pair("matched", "")]);
    // A UTR that is not the transfer's is a mismatch too.
    let wrong_utr = report.replace(utr, "PGSB0000000000000000");
    let r2 = reconcile(&t, &today, &wrong_utr).await;
    assert_eq!(counts(&r2), [0, 4, 0, 0], "{r2}");
    // A report of another day: paygate's transactions are on today's, not that one's.
    let r3 = reconcile(&t, "2026-01-01", &report).await;
    assert_eq!(counts(&r3), [0, 0, 4, 0], "{r3}");
    // Kept and listed, newest first; read whole by id.
    let (status, list) = t.get("/api/v1/reconciliation").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 4);
    assert_eq!(list["data"][2]["id"], r["id"]);
    assert!(list["data"][0].get("lines").is_none());
    let (status, one) = t
        .get(&format!(
            "/api/v1/reconciliation/{}",
            r["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!((status.as_u16(), &one), (200, &r));
    // Reports that cannot be read are refused whole, naming the line.
    for (body, why) in [
        (json!({"date": "07/12/2026", "report": report}), "date"),
        (json!({"date": today, "report": "id,amount\n"}), "header"),
        (
            json!({"date": today, "report": "reference,type,amount,fee,utr\npay_x,payment,ten,0,\n"}),
            "line 2",
        ),
        (
            json!({"date": today, "report": "reference,type,amount,fee,utr\npay_x,charge,10,0,\n"}),
            "type",
        ),
    ] {
        let (status, e) = t.post("/api/v1/reconciliation", &body).await;
        assert_error(status, &e, 400, "BAD_REQUEST_ERROR");
        assert!(
            e["error"]["description"].as_str().unwrap().contains(why),
            "{why}: {e}"
        );
    }
    let (_, list) = t.get("/api/v1/reconciliation").await;
    assert_eq!(list["total"], 4, "nothing kept of a refused report");
}

every_backend!(
    a_settlement_pays_captures_less_refunds_fees_and_tax,
    a_negative_balance_is_carried_into_the_next_settlement,
    a_refused_transfer_fails_and_is_retried,
    concurrent_cycles_settle_each_transaction_once,
    reconciliation_finds_each_kind_of_mismatch,
);

/// Kill -9 while a settlement's transfer is in flight (claimed, `created`, the bank not yet
/// answered): after a restart it is transferred, every transaction settled once, announced
/// once.
async fn a_killed_worker_finishes_the_settlement_in_flight(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let env = [
        ("TEST_MODE", "true"),
        ("TEST_PROCESSING_DELAY", "3000"),
        ("JOB_LEASE_MS", "1000"),
        ("SETTLEMENT_DELAY", "0"),
        ("SETTLEMENT_INTERVAL", "1"),
    ];
    let mut g = Gateway::start(&db, &dir, &env).await;
    let store = Store::connect(&db.url(), 2).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(g.upi_payment().await);
    }
    let captured = wait_captured(&g, &ids).await;
    assert_eq!(captured, ids.len());
    // Wait for a claim to commit: a settlement exists, its transfer not answered (the bank
    // takes 3 s).
    let in_flight = loop {
        let page =
            paygate::settlements::list(&store, test_merchant::ID, None, None, Window::first(10))
                .await
                .unwrap()
                .unwrap();
        if let Some(s) = page.rows.first() {
            break s.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    g.kill9();
    let s = paygate::settlements::get(&store, test_merchant::ID, &in_flight.id)
        .await
        .unwrap();
    assert_eq!(s.status, "created", "the kill hit a transfer in flight");
    let g2 = Gateway::start(
        &db,
        &dir,
        &[
            ("TEST_MODE", "true"),
            ("TEST_PROCESSING_DELAY", "100"),
            ("SETTLEMENT_DELAY", "0"),
            ("SETTLEMENT_INTERVAL", "1"),
        ],
    )
    .await;
    // Every payment settled, every settlement transferred.
    let listed = loop {
        let page =
            paygate::settlements::list(&store, test_merchant::ID, None, None, Window::first(10))
                .await
                .unwrap()
                .unwrap();
        let counted: i64 = page.rows.iter().map(|s| s.count).sum();
        if counted == ids.len() as i64 && page.rows.iter().all(|s| s.status == "processed") {
            break page.rows;
        }
        assert!(
            counted <= ids.len() as i64,
            "nothing settled twice: {:?}",
            page.rows
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(listed.iter().any(|s| s.id == in_flight.id));
    let mut settled: HashMap<String, i64> = HashMap::new();
    for id in &ids {
        let p = paygate::store::payments::get(&store, id)
            .await
            .unwrap()
            .unwrap();
        *settled
            .entry(p.settlement_id.expect("settled"))
            .or_default() += 1;
    }
    for s in &listed {
        assert_eq!(settled.get(&s.id).copied(), Some(s.count), "{s:?}");
        let evs = events::for_resource(&store, &s.id).await.unwrap();
        assert_eq!(evs.len(), 1, "announced once");
    }
    drop(g2);
    let _ = std::fs::remove_dir_all(dir);
}

/// Waits for the payments to succeed and captures them; returns how many were captured.
async fn wait_captured(g: &Gateway, ids: &[String]) -> usize {
    let mut captured = 0;
    for id in ids {
        for _ in 0..400 {
            let (status, body) = g
                .post(&format!("/api/v1/payments/{id}/capture"), &json!({}))
                .await;
            if status == 200 {
                captured += 1;
                break;
            }
            assert_eq!(status, 400, "{body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    captured
}

mod killed {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_killed_worker_finishes_the_settlement_in_flight(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_redis() {
        a_killed_worker_finishes_the_settlement_in_flight(Backend::PostgresRedis).await
    }
}
