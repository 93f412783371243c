//! What operators and integrators reach besides payments: the account endpoint, the payment
//! list's filters, `/health` on every port, JSON logs, the container health check and key
//! rotation from the command line — each on every backend.

use std::process::Command;

use serde_json::{Value, json};

use crate::{
    helpers::{
        Backend, KEY, SECRET, TestApp, TestDb, assert_error, every_backend, http, into_json,
    },
    process::{BIN, Gateway, temp_dir},
};

async fn the_merchant_endpoint_shows_the_account_and_no_secret(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, body) = t.get("/api/v1/merchant").await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "api_key",
            "created_at",
            "email",
            "id",
            "name",
            "upi_id",
            "webhook_url"
        ]
    );
    assert_eq!(body["id"], "550e8400-e29b-41d4-a716-446655440000");
    assert_eq!(body["upi_id"], "testmerchant@paygate");
    assert_eq!(body["email"], "test@example.com");
    assert_eq!(body["api_key"], KEY);
    let text = body.to_string();
    assert!(!text.contains(SECRET) && !text.contains("whsec_"), "{text}");
    let res = http().get(t.url("/api/v1/merchant")).send().await.unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 401, "AUTHENTICATION_ERROR");
}

async fn payments_filter_by_status_method_and_time(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let upi = t.upi_payment("asha@okaxis").await;
    let order = t.order(20_000).await;
    let card = json!({"number": "4000000000000002", "expiry_month": "12", "expiry_year": "2099",
        "cvv": "123", "holder_name": "Asha Rao"});
    let (status, card) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "card", "card": card}),
        )
        .await;
    assert_eq!(status, 201, "{card}");
    let upi = t.wait_final(upi["id"].as_str().unwrap()).await;
    let card = t.wait_final(card["id"].as_str().unwrap()).await;
    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = t.get("/api/v1/payments?method=card").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), [card["id"].as_str().unwrap()]);
    assert_eq!(body["total"], 1);
    for s in ["success", "failed", "pending"] {
        let (_, body) = t.get(&format!("/api/v1/payments?status={s}")).await;
        let want: Vec<&str> = [&card, &upi]
            .iter()
            .filter(|p| p["status"] == s)
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids(&body), want, "status={s}");
    }
    let first = upi["created_at"].as_str().unwrap();
    let (_, body) = t
        .get(&format!("/api/v1/payments?from={first}&method=upi"))
        .await;
    assert_eq!(ids(&body), [upi["id"].as_str().unwrap()]);
    let (_, body) = t.get(&format!("/api/v1/payments?to={first}")).await;
    assert_eq!(ids(&body), Vec::<String>::new(), "to is exclusive");
    let (_, body) = t.get("/api/v1/payments?from=2999-01-01T00:00:00Z").await;
    assert_eq!(body["total"], 0);
    for (query, message) in [
        ("status=settled", "status must be one of"),
        ("method=cash", "method must be one of"),
        ("from=yesterday", "from must be an RFC 3339 time"),
        (
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from must not be after to",
        ),
    ] {
        let (status, body) = t.get(&format!("/api/v1/payments?{query}")).await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
        let got = body["error"]["description"].as_str().unwrap();
        assert!(got.starts_with(message), "{query}: {got}");
    }
}

async fn health_answers_on_every_port(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    for addr in [t.addr, t.dashboard, t.checkout] {
        let res = http()
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .unwrap();
        let (status, body) = into_json(res).await;
        assert_eq!(status, 200, "{addr}: {body}");
        assert_eq!(body["database"], "connected", "{addr}");
        let redis = if backend.uses_redis() {
            "connected"
        } else {
            "not_configured"
        };
        assert_eq!(body["redis"], redis, "{addr}");
    }
}

async fn json_logs_carry_request_id_merchant_route_and_latency(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let g = Gateway::start(&db, &dir, &[("LOG_FORMAT", "json")]).await;
    let res = http()
        .get(g.url("/api/v1/payments/pay_doesnotexist0001"))
        .header("X-Api-Key", KEY)
        .header("X-Api-Secret", SECRET)
        .header("X-Request-Id", "req-json-log-51c2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let mut found = None;
    for _ in 0..100 {
        found = g
            .logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["span"]["request_id"] == "req-json-log-51c2");
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let line = found.unwrap_or_else(|| panic!("no JSON line of the request:\n{}", g.logs()));
    let lines = g.logs();
    assert!(
        lines
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "every line is a JSON object:\n{lines}"
    );
    assert_eq!(line["target"], "paygate::access", "{line}");
    assert_eq!(line["fields"]["status"], 404, "{line}");
    assert!(
        line["fields"]["latency_ms"].as_f64().unwrap() > 0.0,
        "{line}"
    );
    assert_eq!(line["span"]["route"], "/api/v1/payments/{id}", "{line}");
    assert_eq!(
        line["span"]["merchant_id"], "550e8400-e29b-41d4-a716-446655440000",
        "{line}"
    );
    assert!(!lines.contains(SECRET), "the secret is never logged");
    let _ = std::fs::remove_dir_all(dir);
}

fn paygate(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .env_clear()
        .envs(db.env())
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

async fn the_healthcheck_command_follows_the_api(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let mut g = Gateway::start(&db, &dir, &[]).await;
    let port = g.port.to_string();
    let up = paygate(&db, &[("PORT", &port)], &["healthcheck"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    g.kill9();
    let down = paygate(&db, &[("PORT", &port)], &["healthcheck"]);
    assert!(!down.status.success(), "a stopped API is not healthy");
    let _ = std::fs::remove_dir_all(dir);
}

async fn rotate_keys_replaces_the_api_secret_once(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let g = Gateway::start(&db, &dir, &[]).await;
    let out = paygate(
        &db,
        &[],
        &["merchant", "rotate-keys", "test@example.com", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = rotated["api_secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("secret_") && secret != SECRET,
        "{rotated}"
    );
    assert_eq!(rotated["api_key"], KEY);
    let call = |secret: String| {
        http()
            .get(g.url("/api/v1/merchant"))
            .header("X-Api-Key", KEY)
            .header("X-Api-Secret", secret)
            .send()
    };
    // A running gateway trusts its cached credentials for at most 10 s.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while call(SECRET.to_owned()).await.unwrap().status() != 401 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old secret still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(call(secret).await.unwrap().status(), 200);
    let missing = paygate(&db, &[], &["merchant", "rotate-keys", "nobody@example.com"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no merchant"));
    let _ = std::fs::remove_dir_all(dir);
}

/// The sum of the samples of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(t: &TestApp, token: Option<&str>) -> (u16, String) {
    let mut req = http().get(t.url("/metrics"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn metrics_move_with_requests_jobs_and_deliveries(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    // A webhook URL nobody listens on: each event's first attempt fails.
    let (status, body) = t
        .call(
            reqwest::Method::PUT,
            "/api/v1/webhooks/config",
            Some(&json!({"webhook_url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, before) = scrape(&t, None).await;
    assert_eq!(status, 200);
    let created = [
        r#"route="/api/v1/payments""#,
        r#"method="POST""#,
        r#"status="201""#,
    ];
    let count = |text: &str| {
        (
            sample(text, "paygate_http_requests_total", &created),
            sample(text, "paygate_payments_total", &[]),
            sample(
                text,
                "paygate_jobs_total",
                &[r#"queue="payments""#, r#"outcome="done""#],
            ),
            sample(
                text,
                "paygate_webhook_deliveries_total",
                &[r#"outcome="failure""#, r#"attempt="1""#],
            ),
        )
    };
    let (requests0, payments0, jobs0, deliveries0) = count(&before);
    for _ in 0..3 {
        let p = t.upi_payment("asha@okaxis").await;
        t.wait_final(p["id"].as_str().unwrap()).await;
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let after = loop {
        let (_, text) = scrape(&t, None).await;
        if count(&text).3 >= deliveries0 + 3.0 || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let (requests1, payments1, jobs1, deliveries1) = count(&after);
    assert!(requests1 >= requests0 + 3.0, "{requests0} -> {requests1}");
    assert!(payments1 >= payments0 + 3.0, "{payments0} -> {payments1}");
    assert!(jobs1 >= jobs0 + 3.0, "{jobs0} -> {jobs1}");
    assert!(
        deliveries1 >= deliveries0 + 3.0,
        "{deliveries0} -> {deliveries1}"
    );
    let latency = sample(
        &after,
        "paygate_http_request_duration_seconds_count",
        &created,
    );
    assert!(latency >= 3.0, "the latency histogram counts the requests");
    for queue in ["payments", "refunds", "webhooks"] {
        let q = format!(r#"queue="{queue}""#);
        assert!(
            after
                .lines()
                .any(|l| l.starts_with("paygate_queue_jobs{") && l.contains(&q)),
            "queue depth of {queue}:\n{after}"
        );
    }
    assert!(sample(&after, "paygate_db_pool_connections", &[r#"state="open""#]) >= 1.0);
    assert!(
        !after.contains("/api/v1/payments/pay_"),
        "routes are templates, not paths"
    );
}

async fn metrics_require_the_token_when_one_is_set(backend: Backend) {
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &["--metrics-token", "scrape-token-8d1e"],
    )
    .await;
    let (status, body) = scrape(&t, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("AUTHENTICATION_ERROR"), "{body}");
    assert_eq!(scrape(&t, Some("wrong-token")).await.0, 401);
    let (status, body) = scrape(&t, Some("scrape-token-8d1e")).await;
    assert_eq!(status, 200);
    assert!(body.contains("paygate_db_pool_connections"), "{body}");
}

async fn a_key_at_its_limit_gets_429_and_another_key_is_untouched(backend: Backend) {
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &["--rate-limit-per-second", "2", "--rate-limit-burst", "5"],
    )
    .await;
    let other = paygate::merchants::create(&t.app.store, "Other Shop", "other@example.com")
        .await
        .unwrap();
    let (other_key, other_secret) = (other.merchant.api_key.clone(), other.api_secret.clone());
    let get = |key: String, secret: String| {
        http()
            .get(t.url("/api/v1/merchant"))
            .header("X-Api-Key", key)
            .header("X-Api-Secret", secret)
            .send()
    };
    // The first key spends its burst and more.
    let mut limited = None;
    for i in 0..20 {
        let res = get(KEY.to_owned(), SECRET.to_owned()).await.unwrap();
        match res.status().as_u16() {
            200 => {
                assert!(i < 6, "request {i} passed a burst of 5 at 2/s");
                assert_eq!(res.headers()["ratelimit-limit"], "2");
                assert!(res.headers().contains_key("ratelimit-remaining"));
            }
            429 => {
                limited = Some(res);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let res = limited.expect("the key reached its limit");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1).contains(&retry), "Retry-After {retry}");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    assert!(res.headers().contains_key("ratelimit-reset"));
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 429, "RATE_LIMIT_ERROR");
    // Meanwhile the other merchant's key has its whole burst.
    for _ in 0..5 {
        let res = get(other_key.clone(), other_secret.clone()).await.unwrap();
        assert_eq!(res.status(), 200, "another key is not limited by the first");
    }
    // The public checkout endpoints and /health are not per-key limited.
    let res = http().get(t.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

async fn checkout_endpoints_are_limited_per_client_address(backend: Backend) {
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &[
            "--checkout-rate-limit-per-second",
            "1",
            "--checkout-rate-limit-burst",
            "4",
        ],
    )
    .await;
    let order = t.order(10_000).await;
    let from = |last: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                127, 0, 2, last,
            )))
            .build()
            .unwrap()
    };
    let (first, second) = (from(1), from(2));
    let public = format!("http://{}/api/v1/orders/{order}/public", t.addr);
    let mut limited = None;
    for i in 0..20 {
        let res = first.get(&public).send().await.unwrap();
        match res.status().as_u16() {
            200 => assert!(i < 5, "request {i} passed a burst of 4 at 1/s"),
            429 => {
                limited = Some(res);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let res = limited.expect("the address reached its limit");
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.headers()["ratelimit-limit"], "1");
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 429, "RATE_LIMIT_ERROR");
    assert!(
        body["error"]["description"]
            .as_str()
            .unwrap()
            .contains("client address")
    );
    // The same bucket on the checkout port, where the page calls these endpoints.
    let on_checkout = format!("http://{}/api/v1/orders/{order}/public", t.checkout);
    assert_eq!(first.get(&on_checkout).send().await.unwrap().status(), 429);
    // Another address is untouched, on both ports, and so is the merchant's own API.
    for url in [&public, &on_checkout] {
        let res = second.get(url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
    }
    let res = first
        .get(t.url(&format!("/api/v1/orders/{order}")))
        .header("X-Api-Key", KEY)
        .header("X-Api-Secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "the authenticated API is not limited per address"
    );
}

async fn the_oldest_due_job_age_is_measured_per_queue(backend: Backend) {
    // An API without workers: payments wait in their queue.
    let t = TestApp::spawn_with(backend, paygate::app::Mode::Serve, &[]).await;
    let (_, text) = scrape(&t, None).await;
    assert_eq!(
        sample(
            &text,
            "paygate_queue_oldest_due_job_age_seconds",
            &["queue=\"payments\""]
        ),
        0.0,
        "{text}"
    );
    let payment = t.upi_payment("success@paygate").await;
    let id = payment["id"].as_str().unwrap();
    // The job is due at once; its age grows while nobody claims it.
    let mut age = 0.0;
    for _ in 0..100 {
        let (_, text) = scrape(&t, None).await;
        age = sample(
            &text,
            "paygate_queue_oldest_due_job_age_seconds",
            &["queue=\"payments\""],
        );
        if age >= 0.5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(age >= 0.5, "the waiting payment's job is {age} s old");
    let (_, text) = scrape(&t, None).await;
    assert_eq!(
        sample(
            &text,
            "paygate_queue_oldest_due_job_age_seconds",
            &["queue=\"refunds\""]
        ),
        0.0
    );
    // A worker takes it: nothing is due any more.
    t.run_jobs(1).await;
    let done = t.wait_final(id).await;
    assert_eq!(done["status"], "success");
    let (_, text) = scrape(&t, None).await;
    assert_eq!(
        sample(
            &text,
            "paygate_queue_oldest_due_job_age_seconds",
            &["queue=\"payments\""]
        ),
        0.0,
        "{text}"
    );
}

async fn a_worker_process_serves_health_and_its_job_metrics(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let api = Gateway::start_command(&db, &dir, &[], &["serve"]).await;
    let mut worker = Gateway::start_command(&db, &dir, &[("WORKER_PORT", "0")], &["worker"]).await;
    let port = worker.listening("worker").await.to_string();
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let done = |text: &str| sample(text, "paygate_jobs_total", &[r#"queue="payments""#]);
    let order = http()
        .post(api.url("/api/v1/orders"))
        .header("X-Api-Key", KEY)
        .header("X-Api-Secret", SECRET)
        .json(&json!({"amount": 1000}))
        .send()
        .await
        .unwrap();
    let (status, order) = into_json(order).await;
    assert_eq!(status, 201, "{order}");
    let payment = http()
        .post(api.url("/api/v1/payments"))
        .header("X-Api-Key", KEY)
        .header("X-Api-Secret", SECRET)
        .json(&json!({"order_id": order["id"], "method": "upi", "vpa": "asha@okaxis"}))
        .send()
        .await
        .unwrap();
    assert_eq!(payment.status(), 201);
    // The worker processed it and counted it; its own port answers /health and /metrics.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok(res) = http().get(&metrics_url).send().await
            && let Ok(text) = res.text().await
            && done(&text) >= 1.0
        {
            assert!(text.contains("paygate_payments_total"), "{text}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker's metrics never counted the job:\n{}",
            api.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let health = http()
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let probe = paygate(&db, &[], &["healthcheck", "--port", &port]);
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

every_backend!(
    checkout_endpoints_are_limited_per_client_address,
    the_oldest_due_job_age_is_measured_per_queue,
    a_worker_process_serves_health_and_its_job_metrics,
    a_key_at_its_limit_gets_429_and_another_key_is_untouched,
    metrics_move_with_requests_jobs_and_deliveries,
    metrics_require_the_token_when_one_is_set,
    the_merchant_endpoint_shows_the_account_and_no_secret,
    payments_filter_by_status_method_and_time,
    health_answers_on_every_port,
    json_logs_carry_request_id_merchant_route_and_latency,
    the_healthcheck_command_follows_the_api,
    rotate_keys_replaces_the_api_secret_once,
);
