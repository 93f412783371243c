//! Hardening found by reading the code, each with the test that failed before: sign-in floods
//! cost the API nothing, amounts cannot overflow, huge page numbers, non-UTF-8 ids and the
//! checkout port's API routes answer the JSON error shape, the recovery sweep reads an index,
//! a manual retry of a delivery in flight is not lost, and the dashboard shows no text from
//! its query string.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, every_backend, into_json};

/// An `application/x-www-form-urlencoded` body.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The CSRF field of a page.
pub(crate) fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// The `name=value` of the first cookie an answer sets.
pub(crate) fn first_cookie(res: &reqwest::Response) -> String {
    res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The sign-in form (`GET /login` on `dashboard`): the cookie carrying its token, and the
/// token, for a `POST /login` to send back.
pub(crate) async fn login_form(client: &reqwest::Client, dashboard: &str) -> (String, String) {
    let res = client
        .get(format!("http://{dashboard}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = first_cookie(&res);
    (cookie, csrf_of(&res.text().await.unwrap()))
}

/// A dashboard session: its cookie and CSRF token.
pub(crate) struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// Signs in on the dashboard with the test merchant's password.
pub(crate) async fn sign_in(t: &TestApp) -> Session {
    sign_in_as(t, "test@example.com", "password123")
        .await
        .expect("signed in")
}

/// A client that does not follow redirects (a sign-in answers 303 with its cookie).
pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts the sign-in form (with its token) as `email`: the answer.
pub(crate) async fn post_login(t: &TestApp, email: &str, password: &str) -> reqwest::Response {
    let client = no_redirects();
    let (form_cookie, token) = login_form(&client, &t.dashboard.to_string()).await;
    client
        .post(format!("http://{}/login", t.dashboard))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", form_cookie)
        .body(form(&[
            ("csrf", token.as_str()),
            ("email", email),
            ("password", password),
        ]))
        .send()
        .await
        .unwrap()
}

/// Signs in on the dashboard as `email`; `None` when the sign-in is refused.
pub(crate) async fn sign_in_as(t: &TestApp, email: &str, password: &str) -> Option<Session> {
    let res = post_login(t, email, password).await;
    if res.status() != StatusCode::SEE_OTHER {
        return None;
    }
    let cookie = first_cookie(&res);
    let (status, page) = page(t, &cookie, "/dashboard").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    Some(Session {
        cookie,
        csrf: csrf_of(&page),
    })
}

/// GETs a dashboard page with a session cookie.
pub(crate) async fn page(t: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let res = crate::helpers::http()
        .get(format!("http://{}{path}", t.dashboard))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

async fn a_sign_in_flood_leaves_the_api_answering(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The API is called every 20 ms while the flood runs; the slowest answer is kept.
    let prober = {
        let (client, url, stop) = (
            t.client.clone(),
            t.url("/api/v1/payments?limit=1"),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let res = client
                    .get(&url)
                    .header("X-Api-Key", crate::helpers::KEY)
                    .header("X-Api-Secret", crate::helpers::SECRET)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                slowest = slowest.max(started.elapsed());
                answered += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (slowest, answered)
        })
    };
    // 500 sign-ins with random emails, from 25 loopback addresses (20 each), 50 at a time.
    let throttled = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let url = format!("http://{}/login", t.dashboard);
    let mut tasks = tokio::task::JoinSet::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(50));
    for i in 0..500u32 {
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 1, u8::try_from(i % 25 + 1).unwrap()));
        let client = reqwest::Client::builder()
            .local_address(from)
            .build()
            .unwrap();
        let (url, throttled, refused, gate) = (
            url.clone(),
            throttled.clone(),
            refused.clone(),
            gate.clone(),
        );
        let dashboard = t.dashboard.to_string();
        tasks.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let email = format!("nobody-{i}@example.com");
            let (cookie, token) = login_form(&client, &dashboard).await;
            let res = client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", cookie)
                .body(form(&[
                    ("csrf", token.as_str()),
                    ("email", email.as_str()),
                    ("password", "not the password"),
                ]))
                .send()
                .await
                .unwrap();
            match res.status().as_u16() {
                401 => refused.fetch_add(1, Ordering::Relaxed),
                429 => {
                    assert!(res.headers().contains_key("retry-after"));
                    throttled.fetch_add(1, Ordering::Relaxed)
                }
                other => panic!("sign-in answered {other}"),
            };
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (slowest, answered) = prober.await.unwrap();
    let (refused, throttled) = (
        refused.load(Ordering::Relaxed),
        throttled.load(Ordering::Relaxed),
    );
    assert_eq!(refused + throttled, 500);
    assert!(
        refused >= 250,
        "each address had its ten tries: {refused} refused"
    );
    assert!(
        throttled >= 100,
        "the addresses were slowed down: {throttled} throttled"
    );
    assert!(
        answered >= 3,
        "the API was called during the flood ({answered})"
    );
    assert!(
        slowest < Duration::from_millis(750),
        "an API call took {slowest:?} during the flood"
    );
    // One address, one sign-in at a time, a new email each time: the eleventh waits.
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1)))
        .build()
        .unwrap();
    let (cookie, token) = login_form(&client, &t.dashboard.to_string()).await;
    for i in 0..11 {
        let email = format!("someone-{i}@example.com");
        let res = client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &cookie)
            .body(form(&[
                ("csrf", token.as_str()),
                ("email", email.as_str()),
                ("password", "wrong"),
            ]))
            .send()
            .await
            .unwrap();
        let want = if i < 10 { 401 } else { 429 };
        assert_eq!(res.status().as_u16(), want, "sign-in {}", i + 1);
    }
}

async fn amounts_near_the_integer_limit_are_refused_not_overflowed(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let payment = t.upi_payment("success@upi").await;
    let id = payment["id"].as_str().unwrap();
    t.wait_final(id).await;
    for amount in [i64::MAX, i64::MAX - 1, 9_007_199_254_740_992] {
        let (status, body) = t
            .post(
                &format!("/api/v1/payments/{id}/refunds"),
                &json!({ "amount": amount }),
            )
            .await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
        assert!(
            body["error"]["description"]
                .as_str()
                .unwrap()
                .contains("at most"),
            "{body}"
        );
        let (status, body) = t
            .post(
                &format!("/api/v1/payments/{id}/capture"),
                &json!({ "amount": amount }),
            )
            .await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    }
    // The reservation itself cannot overflow either: refused, not a database error.
    let mut tx = t.app.store.begin().await.unwrap();
    let reserved = paygate::store::payments::reserve_refund(
        &mut tx,
        id,
        i64::MAX.into(),
        paygate::store::now(),
    )
    .await
    .expect("no overflow in the database");
    assert!(reserved.is_none());
    drop(tx);
    assert_eq!(t.count("refunds").await, 0);
}

async fn bad_ids_and_the_checkout_ports_api_answer_json_errors(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    for path in [
        "/api/v1/payments/%FF",
        "/api/v1/orders/%C3%28",
        "/api/v1/refunds/%FF%FE",
    ] {
        let (status, body) = t.get(path).await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    }
    let checkout = |path: &str| format!("http://{}{path}", t.checkout);
    let client = crate::helpers::http();
    let res = client
        .get(checkout("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 404, "NOT_FOUND_ERROR");
    let res = client
        .get(checkout("/api/v1/orders/%FF/public"))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    let res = client
        .delete(checkout("/api/v1/payments/public"))
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 405, "BAD_REQUEST_ERROR");
    let big = format!("{{\"order_id\": \"{}\"}}", "x".repeat(100 * 1024));
    let res = client
        .post(checkout("/api/v1/payments/public"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 413, "BAD_REQUEST_ERROR");
    // Pages keep answering HTML.
    let res = client.get(checkout("/no-such-page")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

async fn dashboard_pages_bound_page_numbers_and_show_no_text_from_the_url(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let s = sign_in(&t).await;
    for path in [
        "/dashboard/transactions?page=9223372036854775807",
        "/dashboard/transactions?page=-5",
        "/dashboard/transactions?page=99999999999999999999999",
        "/dashboard/webhooks?page=9223372036854775807",
    ] {
        let (status, html) = page(&t, &s.cookie, path).await;
        assert_eq!(status, 200, "{path}: {html}");
    }
    for path in [
        "/dashboard",
        "/dashboard/transactions",
        "/dashboard/webhooks",
    ] {
        let (status, html) = page(
            &t,
            &s.cookie,
            &format!("{path}?notice=%3Cb%3Epwned%3C%2Fb%3E+Call+us"),
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            !html.contains("pwned") && !html.contains("Call us"),
            "{path} shows the query"
        );
    }
    // A form's notice is shown once, on the next page, from the session.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .post(format!("http://{}/dashboard/webhooks/config", t.dashboard))
        .header("cookie", &s.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("csrf", s.csrf.as_str()),
            ("webhook_url", "https://merchant.example.com/hooks"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        "/dashboard/webhooks",
        "no text in the URL"
    );
    let (_, html) = page(&t, &s.cookie, "/dashboard/webhooks").await;
    assert!(html.contains("Webhook URL saved."), "the notice is shown");
    let (_, html) = page(&t, &s.cookie, "/dashboard/webhooks").await;
    assert!(!html.contains("Webhook URL saved."), "and only once");
}

async fn the_recovery_sweep_reads_pending_payments_through_an_index(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let sql = "SELECT id FROM payments WHERE status = 'pending' AND created_at < $1 \
               ORDER BY created_at LIMIT $2";
    let plan = explain(&t, sql).await;
    assert!(plan.contains("payments_pending_idx"), "{plan}");
}

/// The query plan of `sql` (with `$1` a timestamp and `$2` a limit), as text. PostgreSQL plans
/// with sequential scans off, so the plan shows whether an index can serve the query at all.
pub(crate) async fn explain(t: &TestApp, sql: &str) -> String {
    use sqlx::Connection as _;
    let url = t.db.url();
    let at = paygate::store::now();
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .bind(at)
                .bind(10i64)
                .fetch_all(&mut c)
                .await
                .unwrap();
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
    } else {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("SET enable_seqscan = off")
            .execute(&mut c)
            .await
            .unwrap();
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
            .bind(at)
            .bind(10i64)
            .fetch_all(&mut c)
            .await
            .unwrap();
        rows.join("\n")
    }
}

/// A receiver whose first request hangs until the test lets it go (then answers 500); later
/// requests answer 200 at once. Each request's `webhook-id` is recorded with its arrival.
struct HangingReceiver {
    addr: std::net::SocketAddr,
    release: Arc<tokio::sync::Notify>,
    got: Arc<std::sync::Mutex<Vec<(String, Instant)>>>,
}

impl HangingReceiver {
    async fn start() -> Self {
        use axum::{http::HeaderMap, routing::post};
        let release = Arc::new(tokio::sync::Notify::new());
        let got: Arc<std::sync::Mutex<Vec<(String, Instant)>>> = Default::default();
        let (r, g) = (release.clone(), got.clone());
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap| {
                let (r, g) = (r.clone(), g.clone());
                async move {
                    let id = headers["webhook-id"].to_str().unwrap().to_owned();
                    let first = {
                        let mut g = g.lock().unwrap();
                        g.push((id, Instant::now()));
                        g.len() == 1
                    };
                    if first {
                        r.notified().await;
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, release, got }
    }
}

async fn a_manual_retry_of_a_delivery_in_flight_runs_once_the_attempt_ends(backend: Backend) {
    // A long lease: were the retry lost, only the recovery sweep would find it, seconds later.
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &["--job-lease-ms", "20000"],
    )
    .await;
    let receiver = HangingReceiver::start().await;
    let (status, _) = t
        .call(
            reqwest::Method::PUT,
            "/api/v1/webhooks/config",
            Some(&json!({"webhook_url": format!("http://{}/hook", receiver.addr)})),
        )
        .await;
    assert_eq!(status, 200);
    t.upi_payment("success@upi").await;
    // Wait until the first attempt is in flight (the receiver holds it).
    let event_id = loop {
        if let Some((id, _)) = receiver.got.lock().unwrap().first() {
            break id.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let (_, log) = t.get("/api/v1/webhooks?limit=10").await;
    let delivery = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event_id"] == event_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = t
        .post(&format!("/api/v1/webhooks/{delivery}/retry"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let attempts_of =
        |got: &[(String, Instant)]| got.iter().filter(|(id, _)| *id == event_id).count();
    assert_eq!(
        attempts_of(&receiver.got.lock().unwrap()),
        1,
        "the first attempt still hangs"
    );
    let released = Instant::now();
    receiver.release.notify_one();
    // The retried cycle's attempt follows as soon as the hanging attempt ends.
    let deadline = released + Duration::from_secs(5);
    let again = loop {
        let got = receiver.got.lock().unwrap().clone();
        if let Some((_, at)) = got.iter().skip(1).find(|(id, _)| *id == event_id) {
            break *at;
        }
        assert!(Instant::now() < deadline, "the retry was lost: {got:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(again.duration_since(released) < Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, log) = t.get("/api/v1/webhooks?limit=10").await;
        let row: Value = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == delivery.as_str())
            .unwrap()
            .clone();
        if row["status"] == "success" {
            assert_eq!(row["attempts"], 1, "the new cycle's first attempt: {row}");
            break;
        }
        assert!(Instant::now() < deadline, "{row}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// U+0000 is valid JSON (`\u0000`) and can be percent-encoded (`%00`), but PostgreSQL stores
/// it in neither text nor JSONB (schemathesis found an order's notes answering 500): every
/// way in answers 400 and writes nothing.
async fn the_nul_character_is_refused_everywhere_with_a_400(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let orders_before = t.count("orders").await;
    for body in [
        json!({"amount": 50000, "notes": {"a": "x\u{0}y"}}),
        json!({"amount": 50000, "notes": {"k\u{0}": "v"}}),
        json!({"amount": 50000, "receipt": "r\u{0}"}),
    ] {
        let (status, err) = t.post("/api/v1/orders", &body).await;
        assert_error(status, &err, 400, "BAD_REQUEST_ERROR");
        assert!(
            err["error"]["description"]
                .as_str()
                .unwrap()
                .contains("NUL"),
            "{err}"
        );
    }
    assert_eq!(t.count("orders").await, orders_before, "nothing written");
    let payment = t.upi_payment("success@paygate").await;
    let id = payment["id"].as_str().unwrap();
    let (status, err) = t
        .post(
            &format!("/api/v1/payments/{id}/refunds"),
            &json!({"reason": "\u{0}"}),
        )
        .await;
    assert_error(status, &err, 400, "BAD_REQUEST_ERROR");
    for path in [
        "/api/v1/orders/order_%00",
        "/api/v1/payments/%00/public",
        "/api/v1/payments?status=%00",
    ] {
        let (status, err) = t.get(path).await;
        assert_error(status, &err, 400, "BAD_REQUEST_ERROR");
    }
    let res = reqwest::get(format!("http://{}/checkout?order_id=%00", t.checkout))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let s = sign_in(&t).await;
    let client = reqwest::Client::new();
    for (path, fields) in [
        (
            "/login",
            vec![("email", "test@example.com\u{0}"), ("password", "x")],
        ),
        (
            "/dashboard/webhooks/config",
            vec![
                ("csrf", s.csrf.as_str()),
                ("webhook_url", "https://a.example/\u{0}"),
            ],
        ),
    ] {
        let res = client
            .post(format!("http://{}{path}", t.dashboard))
            .header("cookie", &s.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&fields))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
    }
    // And the gateway still answers normally.
    let (status, _) = t.get("/api/v1/orders").await;
    assert_eq!(status, 200);
}

every_backend!(
    the_nul_character_is_refused_everywhere_with_a_400,
    a_sign_in_flood_leaves_the_api_answering,
    amounts_near_the_integer_limit_are_refused_not_overflowed,
    bad_ids_and_the_checkout_ports_api_answer_json_errors,
    dashboard_pages_bound_page_numbers_and_show_no_text_from_the_url,
    the_recovery_sweep_reads_pending_payments_through_an_index,
    a_manual_retry_of_a_delivery_in_flight_runs_once_the_attempt_ends,
);
