//! The production configuration, from outside the process: the production switch, and
//! idempotency across a crash at either side of the commit (kill -9 while a request holds its
//! key), on SQLite and on PostgreSQL + Redis.

use std::{process::Command, time::Duration};

use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::{
    helpers::{Backend, KEY, SECRET, TestDb, every_backend, into_json},
    process::{BIN, Gateway, SECRET_KEY, temp_dir},
};

/// A request as a given merchant, with an optional idempotency key: status, whether it was
/// replayed, body.
async fn call(
    g: &Gateway,
    (key, secret): (&str, &str),
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
    idempotency_key: Option<&str>,
) -> reqwest::Result<(u16, bool, Value)> {
    let mut req = crate::helpers::http()
        .request(method, g.url(path))
        .header("X-Api-Key", key)
        .header("X-Api-Secret", secret);
    if let Some(b) = body {
        req = req.json(b);
    }
    if let Some(k) = idempotency_key {
        req = req.header("Idempotency-Key", k);
    }
    let res = req.send().await?;
    let replayed = res.headers().contains_key("idempotent-replayed");
    let (status, body) = into_json(res).await;
    Ok((status.as_u16(), replayed, body))
}

/// One number from the database.
async fn scalar(db: &TestDb, sql: &str, bind: &str) -> i64 {
    let url = db.url();
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(bind)
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(bind)
            .fetch_one(&mut c)
            .await
            .unwrap()
    }
}

/// Waits until `sql` (one number) is at least 1.
async fn wait_for_row(db: &TestDb, what: &str, sql: &str, bind: &str) {
    for _ in 0..500 {
        if scalar(db, sql, bind).await > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} never appeared");
}

async fn production_turns_the_test_conveniences_off(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    // Test mode is refused at start, with a message.
    let out = Command::new(BIN)
        .env_clear()
        .envs(db.env())
        .env("PAYGATE_ENV", "production")
        .env(SECRET_KEY.0, SECRET_KEY.1)
        .env("TEST_MODE", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TEST_MODE") && err.contains("production"),
        "{err}"
    );

    let mut g = Gateway::start(&db, &dir, &[("PAYGATE_ENV", "production"), SECRET_KEY]).await;
    let (dashboard, checkout) = (
        g.listening("dashboard").await,
        g.listening("checkout").await,
    );
    assert!(
        g.logs().contains(
            "production posture: test merchant off, /api/v1/test/* off, test mode off, webhook destinations public only"
        ),
        "{}",
        g.logs()
    );
    let test_merchant = (KEY, SECRET);
    for path in ["/api/v1/test/merchant", "/api/v1/test/jobs/status"] {
        let (status, _, body) = call(&g, test_merchant, reqwest::Method::GET, path, None, None)
            .await
            .unwrap();
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "NOT_FOUND_ERROR");
    }
    let (status, _, _) = call(
        &g,
        test_merchant,
        reqwest::Method::GET,
        "/api/v1/payments",
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 401, "no test merchant");
    let client = crate::helpers::http();
    let (cookie, token) =
        crate::hardening::login_form(&client, &format!("127.0.0.1:{dashboard}")).await;
    let login = client
        .post(format!("http://127.0.0.1:{dashboard}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(format!(
            "csrf={token}&email=test%40example.com&password=password123"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 401, "no default password");
    let demo = client
        .get(format!("http://127.0.0.1:{checkout}/demo"))
        .send()
        .await
        .unwrap();
    assert_eq!(demo.status(), 404, "no demo shop");

    // A real merchant cannot point webhooks at loopback: refused when configured (a literal
    // address), and at delivery (a name that resolves to it).
    let out = Command::new(BIN)
        .env_clear()
        .envs(db.env())
        .args([
            "merchant",
            "create",
            "--name",
            "Shop",
            "--email",
            "shop@example.com",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let me = (
        m["api_key"].as_str().unwrap(),
        m["api_secret"].as_str().unwrap(),
    );
    let receiver = crate::webhooks::Receiver::start("whsec_test_abc123").await;
    let put = |url: String| {
        let g = &g;
        async move {
            call(
                g,
                me,
                reqwest::Method::PUT,
                "/api/v1/webhooks/config",
                Some(&json!({"webhook_url": url})),
                None,
            )
            .await
            .unwrap()
        }
    };
    let (status, _, body) = put(receiver.url("/webhook")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["description"]
            .as_str()
            .unwrap()
            .contains("loopback"),
        "{body}"
    );
    let (status, _, body) = put(format!("http://localhost:{}/webhook", receiver.addr.port())).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, d) = call(
        &g,
        me,
        reqwest::Method::POST,
        "/api/v1/webhooks/test",
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{d}");
    assert!(
        d["response_body"]
            .as_str()
            .unwrap()
            .contains("destination refused"),
        "{d}"
    );
    assert!(
        receiver.received().await.is_empty(),
        "nothing reached loopback"
    );
    drop(g);
    let _ = std::fs::remove_dir_all(dir);
}

/// Settings of a gateway whose requests with a key pause at `point` for a minute.
fn paused_at(point: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TEST_MODE", "true".into()),
        ("TEST_PROCESSING_DELAY", "0".into()),
        ("TEST_FAULT_PAUSE", format!("{point}:60000")),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn a_crash_between_commit_and_answer_replays_the_committed_result(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let env = paused_at("before-response");
    let mut g = Gateway::start(&db, &dir, &pairs(&env)).await;
    let me = (KEY, SECRET);
    let (_, _, order) = call(
        &g,
        me,
        reqwest::Method::POST,
        "/api/v1/orders",
        Some(&json!({"amount": 25_000})),
        None,
    )
    .await
    .unwrap();
    let order_id = order["id"].as_str().unwrap().to_owned();
    let body = json!({"order_id": order_id, "method": "upi", "vpa": "success@upi"});
    let url = g.url("/api/v1/payments");
    let request = {
        let body = body.clone();
        tokio::spawn(async move {
            crate::helpers::http()
                .post(url)
                .header("X-Api-Key", KEY)
                .header("X-Api-Secret", SECRET)
                .header("Idempotency-Key", "pay-once")
                .json(&body)
                .send()
                .await
        })
    };
    // The change and its stored answer committed; the answer has not been sent.
    wait_for_row(
        &db,
        "the stored answer",
        "SELECT COUNT(*) FROM idempotency_keys WHERE key = $1 AND status = 'done'",
        "pay-once",
    )
    .await;
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM payments WHERE order_id = $1",
            &order_id
        )
        .await,
        1
    );
    g.kill9();
    assert!(
        request.await.unwrap().is_err(),
        "the client got no answer: the kill hit the request in flight"
    );

    // After the takeover window, the same request is answered from what committed.
    let mut env = paused_at("before-response");
    env.retain(|(k, _)| *k != "TEST_FAULT_PAUSE");
    env.push(("IDEMPOTENCY_TAKEOVER_MS", "300".into()));
    let g = Gateway::start(&db, &dir, &pairs(&env)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, replayed, payment) = call(
        &g,
        me,
        reqwest::Method::POST,
        "/api/v1/payments",
        Some(&body),
        Some("pay-once"),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{payment}");
    assert!(replayed, "the committed answer is replayed");
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM payments WHERE order_id = $1",
            &order_id
        )
        .await,
        1
    );
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    crate::process::wait_all_final(&db.url(), std::slice::from_ref(&payment_id)).await;

    // The same for a refund.
    let g2 = {
        drop(g);
        Gateway::start(&db, &dir, &pairs(&paused_at("before-response"))).await
    };
    let mut g2 = g2;
    let refund_path = format!("/api/v1/payments/{payment_id}/refunds");
    let url = g2.url(&refund_path);
    let request = tokio::spawn(async move {
        crate::helpers::http()
            .post(url)
            .header("X-Api-Key", KEY)
            .header("X-Api-Secret", SECRET)
            .header("Idempotency-Key", "refund-once")
            .json(&json!({"amount": 10_000}))
            .send()
            .await
    });
    wait_for_row(
        &db,
        "the refund's stored answer",
        "SELECT COUNT(*) FROM idempotency_keys WHERE key = $1 AND status = 'done'",
        "refund-once",
    )
    .await;
    g2.kill9();
    assert!(
        request.await.unwrap().is_err(),
        "the kill hit the refund in flight"
    );
    let g3 = Gateway::start(&db, &dir, &pairs(&env)).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, replayed, refund) = call(
        &g3,
        me,
        reqwest::Method::POST,
        &refund_path,
        Some(&json!({"amount": 10_000})),
        Some("refund-once"),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{refund}");
    assert!(replayed);
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM refunds WHERE payment_id = $1",
            &payment_id
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT amount_refunded FROM payments WHERE id = $1",
            &payment_id
        )
        .await,
        10_000
    );
    drop(g3);
    let _ = std::fs::remove_dir_all(dir);
}

async fn a_crash_before_commit_runs_the_request_once_when_retried_after_the_restart(
    backend: Backend,
) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let mut g = Gateway::start(&db, &dir, &pairs(&paused_at("after-claim"))).await;
    let me = (KEY, SECRET);
    let (_, _, order) = call(
        &g,
        me,
        reqwest::Method::POST,
        "/api/v1/orders",
        Some(&json!({"amount": 25_000})),
        None,
    )
    .await
    .unwrap();
    let order_id = order["id"].as_str().unwrap().to_owned();
    let body = json!({"order_id": order_id, "method": "upi", "vpa": "success@upi"});
    let url = g.url("/api/v1/payments");
    let request = {
        let body = body.clone();
        tokio::spawn(async move {
            crate::helpers::http()
                .post(url)
                .header("X-Api-Key", KEY)
                .header("X-Api-Secret", SECRET)
                .header("Idempotency-Key", "pay-once")
                .json(&body)
                .send()
                .await
        })
    };
    // The key is claimed, nothing else happened yet.
    wait_for_row(
        &db,
        "the claim",
        "SELECT COUNT(*) FROM idempotency_keys WHERE key = $1 AND status = 'running'",
        "pay-once",
    )
    .await;
    g.kill9();
    assert!(
        request.await.unwrap().is_err(),
        "the kill hit the request in flight"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM payments WHERE order_id = $1",
            &order_id
        )
        .await,
        0
    );

    // Restarted with the default 60 s takeover window: the dead process's key is free at
    // once (its restart finds it gone), and the retry runs the request.
    let env = [("TEST_MODE", "true"), ("TEST_PROCESSING_DELAY", "0")];
    let g = Gateway::start(&db, &dir, &env).await;
    let (status, replayed, payment) = call(
        &g,
        me,
        reqwest::Method::POST,
        "/api/v1/payments",
        Some(&body),
        Some("pay-once"),
    )
    .await
    .unwrap();
    assert_eq!(status, 201, "{payment}");
    assert!(!replayed, "nothing had committed: the request runs now");
    let (status, replayed, again) = call(
        &g,
        me,
        reqwest::Method::POST,
        "/api/v1/payments",
        Some(&body),
        Some("pay-once"),
    )
    .await
    .unwrap();
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again, payment);
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM payments WHERE order_id = $1",
            &order_id
        )
        .await,
        1
    );
    drop(g);
    let _ = std::fs::remove_dir_all(dir);
}

every_backend!(
    production_turns_the_test_conveniences_off,
    a_crash_between_commit_and_answer_replays_the_committed_result,
    a_crash_before_commit_runs_the_request_once_when_retried_after_the_restart,
);
