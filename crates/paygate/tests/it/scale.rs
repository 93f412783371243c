//! Flat cost as data grows: cursor pagination on every list, rollups that agree with a full
//! recount, list queries every one of which an index serves, the streamed export.

use std::{collections::HashSet, time::Duration};

use paygate::{
    merchants::test_merchant::ID,
    store::{
        Store, dashboard,
        events::Event,
        orders::Order,
        payments::{Filter, Payment},
        refunds::Refund,
        table::{self, Start, Table, Window},
        webhooks::Delivery,
    },
};
use paygate_core::{Method, PaymentStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    hardening::{page, sign_in},
    helpers::{Backend, TestApp, assert_error, every_backend},
};

/// Waits (at most 60 s) until none of the merchant's payments is pending, then checks its
/// rollups equal a recount of its payments.
pub(crate) async fn wait_rollups_match(store: &Store, merchant_id: &str) {
    let pending = Filter {
        status: Some(PaymentStatus::Pending),
        ..Filter::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = table::count::<Payment>(store, merchant_id, &pending.conditions())
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} payments still pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = dashboard::rollups(store, merchant_id).await.unwrap();
    let counted = dashboard::recount(store, merchant_id).await.unwrap();
    assert_eq!(stored, counted, "rollups against a recount");
    let stats = dashboard::stats(store, merchant_id).await.unwrap();
    assert_eq!(stats.total, counted.iter().map(|d| d.payments).sum::<i64>());
    assert_eq!(
        stats.successful,
        counted.iter().map(|d| d.successful).sum::<i64>()
    );
}

/// Reads a whole list with `starting_after`, `limit` at a time; returns the ids in order.
async fn walk(t: &TestApp, path: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut url = format!("{path}?limit={limit}");
    loop {
        let (status, body) = t.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        let data = body["data"].as_array().unwrap();
        assert!(data.len() <= limit);
        ids.extend(data.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        if body["has_more"] == false {
            return ids;
        }
        assert_eq!(data.len(), limit, "a page with more after it is full");
        url = format!(
            "{path}?limit={limit}&starting_after={}",
            ids.last().unwrap()
        );
    }
}

async fn every_list_pages_by_cursor(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    // Deliveries to a closed port: they fail, but they are listed.
    let (status, body) = t
        .call(
            reqwest::Method::PUT,
            "/api/v1/webhooks/config",
            Some(&json!({"webhook_url": "http://127.0.0.1:9/hooks"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // 23 payments (one refunded), so most lists have more than two pages of 7.
    let mut paid = Vec::new();
    for i in 0..23 {
        let vpa = if i % 5 == 4 {
            "failure@upi"
        } else {
            "success@upi"
        };
        paid.push(t.upi_payment(vpa).await["id"].as_str().unwrap().to_owned());
    }
    for id in &paid {
        t.wait_final(id).await;
    }
    let (status, _) = t
        .post(
            &format!("/api/v1/payments/{}/refunds", paid[0]),
            &json!({"amount": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for path in [
        "/api/v1/payments",
        "/api/v1/orders",
        "/api/v1/refunds",
        "/api/v1/events",
        "/api/v1/webhooks",
    ] {
        // Every row once, in the order offset paging gives.
        let (_, all) = t.get(&format!("{path}?limit=100")).await;
        let want: Vec<String> = all["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(all["has_more"], false, "{path}");
        assert_eq!(all["total"], want.len(), "{path}");
        let walked = walk(&t, path, 7).await;
        assert_eq!(walked, want, "{path} walked with starting_after");
        assert_eq!(walked.iter().collect::<HashSet<_>>().len(), walked.len());
        if want.len() > 7 {
            // ending_before the 8th row: the 7 rows before it, has_more false (none newer).
            let (status, body) = t
                .get(&format!("{path}?limit=7&ending_before={}", want[7]))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let ids: Vec<&str> = body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap())
                .collect();
            assert_eq!(
                ids,
                want[..7].iter().map(String::as_str).collect::<Vec<_>>()
            );
            assert_eq!(body["has_more"], false, "{path}");
            let (_, body) = t
                .get(&format!("{path}?limit=3&ending_before={}", want[7]))
                .await;
            assert_eq!(body["data"][0]["id"], want[4].as_str(), "{path}");
            assert_eq!(body["has_more"], true, "{path}");
        }
        // A cursor that is not one of this list's rows, and cursors mixed, are refused.
        let (status, body) = t
            .get(&format!("{path}?starting_after=pay_nothere00000000"))
            .await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
        let (status, body) = t
            .get(&format!("{path}?starting_after=a_1&ending_before=a_2"))
            .await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
        let (status, body) = t.get(&format!("{path}?starting_after=a_1&offset=2")).await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    }
    // Filters and cursors together: the failed payments, 2 at a time.
    let (_, failed) = t.get("/api/v1/payments?status=failed&limit=2").await;
    assert_eq!(failed["total"], 4);
    assert_eq!(failed["has_more"], true);
    let last = failed["data"][1]["id"].as_str().unwrap();
    let (_, next) = t
        .get(&format!(
            "/api/v1/payments?status=failed&limit=2&starting_after={last}"
        ))
        .await;
    assert_eq!(next["data"].as_array().unwrap().len(), 2);
    assert_eq!(next["has_more"], false);
    assert!(
        next["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "failed")
    );
}

async fn rollups_match_a_recount_after_a_mixed_workload(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let vpa = if i % 3 == 0 {
            "failure@upi"
        } else {
            "success@upi"
        };
        ids.push(t.upi_payment(vpa).await["id"].as_str().unwrap().to_owned());
    }
    // A second payment on a failed payment's order, and refunds: neither double-counts.
    let (_, first) = t.get(&format!("/api/v1/payments/{}", ids[0])).await;
    t.wait_final(&ids[0]).await;
    let (status, again) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": first["order_id"], "method": "upi", "vpa": "success@upi"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    t.wait_final(again["id"].as_str().unwrap()).await;
    let ok = t.wait_final(&ids[1]).await;
    assert_eq!(ok["status"], "success");
    let (status, _) = t
        .post(&format!("/api/v1/payments/{}/refunds", ids[1]), &json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    wait_rollups_match(&t.app.store, ID).await;
    let stats = dashboard::stats(&t.app.store, ID).await.unwrap();
    assert_eq!(stats.total, 31);
    assert_eq!(stats.successful, 21);
    assert_eq!(
        stats.amounts,
        vec![("INR".to_owned(), paygate_core::MinorUnit::new(21 * 50_000))]
    );
    assert_eq!(
        stats.refunded,
        vec![("INR".to_owned(), paygate_core::MinorUnit::new(50_000))]
    );
    // The overview shows the rollups' figures: gross, refunded, net.
    let s = sign_in(&t).await;
    let (status, html) = page(&t, &s.cookie, "/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    let stat = |id: &str| {
        let at = html.find(&format!("data-test-id=\"{id}\">")).expect(id) + id.len() + 16;
        html[at..at + html[at..].find("</div>").unwrap()].to_owned()
    };
    assert!(stat("total-amount").contains("₹10,500.00"), "{html}");
    assert_eq!(stat("total-refunded"), "₹500.00");
    assert_eq!(stat("net-amount"), "₹10,000.00");
    assert!(html.contains(">31<"), "transactions on the overview");
    // The chart's value axis: zero, half the day's amount, the day's amount.
    let ticks: Vec<&str> = html
        .split("data-test-id=\"chart-tick\">")
        .skip(1)
        .map(|t| &t[..t.find('<').unwrap()])
        .collect();
    assert_eq!(
        (ticks.len(), ticks[0], ticks[2]),
        (3, "₹0", "₹10.5K"),
        "{ticks:?}"
    );
    // The upgrade that added the refunds to the rollups fills them from the payments: its
    // statement, run again on rollups without them, gives the recount.
    let migration = if backend == Backend::Sqlite {
        include_str!("../../../../migrations/sqlite/0021_refunds_in_rollups.sql")
    } else {
        include_str!("../../../../migrations/postgres/0021_refunds_in_rollups.sql")
    };
    let backfill = &migration[migration.find("UPDATE").unwrap()..];
    t.execute("UPDATE payment_days SET refunded = 0")
        .await
        .unwrap();
    t.execute(backfill).await.unwrap();
    wait_rollups_match(&t.app.store, ID).await;
}

/// The tables a plan could scan (a `SCAN` of anything else reads a subquery's few rows).
const TABLES: [&str; 7] = [
    "orders",
    "payments",
    "refunds",
    "events",
    "webhook_logs",
    "jobs",
    "webhook_endpoints",
];

/// Whether a plan line reads a whole table or sorts.
fn full_scan_or_sort(line: &str) -> bool {
    let l = line.trim_start_matches([' ', '-', '>']);
    l.starts_with("Seq Scan")
        || l.starts_with("Sort")
        || l.starts_with("Incremental Sort")
        || (l.starts_with("SCAN ")
            && !l.contains("USING COVERING INDEX")
            && TABLES.contains(&l.split(' ').nth(1).unwrap_or_default()))
        || l.starts_with("USE TEMP B-TREE")
}

async fn check_plans<T: Table>(store: &Store, filter: &table::Filter, sorts_ok: bool, what: &str) {
    for start in [
        Start::Offset(0),
        Start::After("id_x".into()),
        Start::Before("id_x".into()),
    ] {
        let window = Window { limit: 10, start };
        let plans = table::explain::<T>(store, ID, filter, &window)
            .await
            .unwrap();
        for (i, plan) in plans.iter().enumerate() {
            let bad: Vec<&String> = plan
                .iter()
                .filter(|l| full_scan_or_sort(l))
                .filter(|l| !(sorts_ok && (l.contains("Sort") || l.contains("TEMP B-TREE"))))
                .collect();
            assert!(
                bad.is_empty(),
                "{what} ({:?}, statement {i}) is not served by an index: {plan:#?}",
                window.start
            );
            assert!(!plan.is_empty());
        }
    }
}

async fn every_list_query_is_served_by_an_index(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    t.upi_payment("success@upi").await;
    let store = &t.app.store;
    let none = table::Filter::default();
    check_plans::<Order>(store, &none, false, "orders").await;
    check_plans::<Refund>(store, &none, false, "refunds").await;
    check_plans::<Event>(store, &none, false, "events").await;
    check_plans::<Delivery>(store, &none, false, "webhook deliveries").await;
    let at = chrono::Utc::now();
    let filters = [
        ("payments", Filter::default()),
        (
            "status",
            Filter {
                status: Some(PaymentStatus::Failed),
                ..Filter::default()
            },
        ),
        (
            "method",
            Filter {
                method: Some(Method::Card),
                ..Filter::default()
            },
        ),
        (
            "status and method",
            Filter {
                status: Some(PaymentStatus::Success),
                method: Some(Method::Upi),
                ..Filter::default()
            },
        ),
        (
            "dates",
            Filter {
                from: Some(at - chrono::Duration::days(7)),
                to: Some(at),
                ..Filter::default()
            },
        ),
        (
            "status and dates",
            Filter {
                status: Some(PaymentStatus::Success),
                from: Some(at - chrono::Duration::days(7)),
                ..Filter::default()
            },
        ),
    ];
    for (what, f) in &filters {
        check_plans::<Payment>(store, &f.conditions(), false, what).await;
    }
    // The id search reads at most the two rows it names (by the primary key and the order
    // index): sorting those is no scan.
    let search = Filter {
        search: Some("order_x".into()),
        ..Filter::default()
    };
    check_plans::<Payment>(store, &search.conditions(), true, "id search").await;
}

/// The plan of `sql` must read through `index` (on SQLite every line naming it searches by
/// `status`, or the index is partial) and scan no table; `sorts_ok` lets it sort what the
/// index read (a claim's final pick of at most twice its limit).
async fn check_due_plan(
    store: &Store,
    what: &str,
    sql: &str,
    args: &[table::Arg],
    index: &str,
    sorts_ok: bool,
) {
    let plan = table::plan(store, sql, args).await.unwrap();
    let bad: Vec<&String> = plan
        .iter()
        .filter(|l| full_scan_or_sort(l))
        .filter(|l| !(sorts_ok && (l.contains("Sort") || l.contains("TEMP B-TREE"))))
        .collect();
    assert!(bad.is_empty(), "{what} reads more than due work: {plan:#?}");
    assert!(
        plan.iter().any(|l| l.contains(index)),
        "{what} does not read through {index}: {plan:#?}"
    );
    // The jobs index holds every job: a read through it must seek its status too.
    for line in plan
        .iter()
        .filter(|l| l.contains("jobs_queue_due_idx") && l.contains("SEARCH"))
    {
        assert!(
            line.contains("status=?"),
            "{what} reads every job of its queue: {plan:#?}"
        );
    }
    for line in plan
        .iter()
        .filter(|l| l.contains("Index Cond") && l.contains("queue"))
    {
        assert!(
            line.contains("status"),
            "{what} reads every job of its queue: {plan:#?}"
        );
    }
}

async fn workers_and_the_sweep_read_only_due_work(backend: Backend) {
    use table::{Arg, Pending};
    let t = TestApp::spawn(backend).await;
    t.upi_payment("success@upi").await;
    let store = &t.app.store;
    let now = chrono::Utc::now();
    let claim = match backend {
        Backend::Sqlite => paygate::store::jobs::CLAIM_SQLITE,
        _ => paygate::store::jobs::CLAIM_POSTGRES,
    };
    let claim_args = [
        Arg::Text("worker_x".into()),
        Arg::Time(now + chrono::Duration::seconds(30)),
        Arg::Time(now),
        Arg::Int(64),
        Arg::Text("payments".into()),
    ];
    check_due_plan(
        store,
        "a claim",
        claim,
        &claim_args,
        "jobs_queue_due_idx",
        true,
    )
    .await;
    let before = [Arg::Time(now), Arg::Int(500)];
    check_due_plan(
        store,
        "pending payments",
        <Payment as Pending>::PENDING_BEFORE,
        &before,
        "payments_pending_idx",
        false,
    )
    .await;
    check_due_plan(
        store,
        "pending refunds",
        <Refund as Pending>::PENDING_BEFORE,
        &before,
        "refunds_pending_idx",
        false,
    )
    .await;
    check_due_plan(
        store,
        "due deliveries",
        paygate::store::webhooks::DUE_BEFORE,
        &[
            Arg::Time(now),
            Arg::Int(500),
            Arg::Time(now - chrono::Duration::days(1)),
            Arg::Text("a".into()),
        ],
        "webhook_logs_due_idx",
        false,
    )
    .await;
    // A metrics scrape counts jobs waiting and active through the queue's index, capped.
    check_due_plan(
        store,
        "the queue depth of a scrape",
        paygate::store::jobs::DEPTH,
        &[
            Arg::Text("payments".into()),
            Arg::Text("queued".into()),
            Arg::Int(100_000),
        ],
        "jobs_queue_due_idx",
        false,
    )
    .await;
    check_due_plan(
        store,
        "the purge of completed jobs",
        paygate::store::jobs::PURGE_COMPLETED,
        &[Arg::Time(now)],
        "jobs_status_idx",
        false,
    )
    .await;
}

async fn the_export_streams_every_row_of_any_size(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    // More rows than one read of the export (500), so it takes several.
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..8 {
        let url = t.url("");
        tasks.spawn(async move {
            let client = crate::helpers::http();
            let mut ids = Vec::new();
            for _ in 0..90 {
                let call = |path: &str, body: Value| {
                    client
                        .post(format!("{url}{path}"))
                        .header("X-Api-Key", crate::helpers::KEY)
                        .header("X-Api-Secret", crate::helpers::SECRET)
                        .json(&body)
                        .send()
                };
                let order: Value = call("/api/v1/orders", json!({"amount": 1000 + chunk}))
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let res = call(
                    "/api/v1/payments",
                    json!({"order_id": order["id"], "method": "upi", "vpa": "a@b"}),
                )
                .await
                .unwrap();
                assert_eq!(res.status(), 201);
                let p: Value = res.json().await.unwrap();
                ids.push(p["id"].as_str().unwrap().to_owned());
            }
            ids
        });
    }
    let mut want = HashSet::new();
    while let Some(ids) = tasks.join_next().await {
        want.extend(ids.unwrap());
    }
    assert_eq!(want.len(), 720);
    let s = sign_in(&t).await;
    let res = crate::helpers::http()
        .get(format!("http://{}/dashboard/transactions.csv", t.dashboard))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("content-length").is_none(),
        "streamed, not buffered: {:?}",
        res.headers()
    );
    let csv = res.text().await.unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("payment_id,order_id,amount")
    );
    let got: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(got.len(), 720, "one line per payment");
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 720, "none twice");
    assert!(got.iter().all(|id| want.contains(*id)));
    // The page's table pages by cursor too: the older link leads to the next 20 rows.
    let (_, html) = page(&t, &s.cookie, "/dashboard/transactions").await;
    assert!(html.contains("720 payments"), "the count under the table");
    let marker = "data-test-id=\"next-page\" href=\"";
    let at = html.find(marker).expect("an older page") + marker.len();
    let href = html[at..at + html[at..].find('"').unwrap()].replace("&amp;", "&");
    assert!(href.contains("starting_after=pay_"), "{href}");
    let (status, older) = page(&t, &s.cookie, &href).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        older.contains("data-test-id=\"prev-page\""),
        "a newer link back"
    );
    let first_rows: HashSet<&str> = row_ids(&html).collect();
    assert_eq!(first_rows.len(), 20);
    assert!(row_ids(&older).all(|id| !first_rows.contains(id)));
    assert_eq!(row_ids(&older).count(), 20);
}

/// The payment ids of a transactions page's rows.
fn row_ids(html: &str) -> impl Iterator<Item = &str> {
    html.split("data-payment-id=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
}

every_backend!(
    every_list_pages_by_cursor,
    rollups_match_a_recount_after_a_mixed_workload,
    every_list_query_is_served_by_an_index,
    the_export_streams_every_row_of_any_size,
    workers_and_the_sweep_read_only_due_work,
);
