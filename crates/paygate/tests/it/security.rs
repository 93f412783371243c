//! The adversarial review's findings, each as the behaviour that closes it: production
//! defaults (private destinations, the seeded credentials, metrics), the sign-in (reserved
//! attempts, no lock-out from elsewhere, proxies, the form's token, cookies, no-store),
//! webhook attempts (answers with U+0000, the sweep's reach, racing edits, replay limits),
//! money and reporting (capture after refunds, currencies, limits in the statement), and the
//! smaller ones (destination filter, credential cache, test values in production).

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::{Duration, Instant},
};

use paygate::app::Mode;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    hardening::{form, login_form, page, sign_in},
    helpers::{Backend, KEY, SECRET, TestApp, TestDb, assert_error, every_backend, into_json},
    process::{BIN, Gateway, SECRET_KEY, free_port, temp_dir},
};

/// A client sending from `addr` (a loopback address of its own) that follows no redirects.
fn client_from(addr: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(addr))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A sign-in attempt through the form from `client`, with `headers`: the status.
async fn attempt(
    client: &reqwest::Client,
    dashboard: &str,
    email: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let (cookie, token) = login_form(client, dashboard).await;
    let mut req = client
        .post(format!("http://{dashboard}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(form(&[
        ("csrf", token.as_str()),
        ("email", email),
        ("password", password),
    ]))
    .send()
    .await
    .unwrap()
}

/// Three wrong passwords for the test merchant, each answered 401.
async fn three_wrong(client: &reqwest::Client, dashboard: &str, headers: &[(&str, &str)]) {
    for _ in 0..3 {
        let res = attempt(client, dashboard, "test@example.com", "guess", headers).await;
        assert_eq!(res.status(), 401);
    }
}

#[test]
fn the_compose_file_keeps_private_destinations_and_the_receiver_to_development() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docker-compose.yml");
    let compose = std::fs::read_to_string(path).unwrap();
    assert!(
        !compose.contains("WEBHOOK_ALLOW_PRIVATE:"),
        "the compose file must not allow private destinations by default"
    );
    let receiver = &compose[compose.find("  webhook-receiver:").expect("the receiver")..];
    let block = &receiver[..receiver[1..].find("\n  ").map_or(receiver.len(), |i| i + 1)];
    let block = &receiver[..receiver.find("\nvolumes:").unwrap_or(block.len())];
    assert!(
        block.contains("profiles: [\"dev\"]"),
        "the receiver runs only in the dev profile:\n{block}"
    );
}

async fn a_production_start_disables_the_seeded_credentials_until_rotate_keys(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    // First started in development: the test merchant is seeded with its public credentials.
    let mut dev = Gateway::start(&db, &dir, &[]).await;
    dev.kill9();
    let mut g = Gateway::start(
        &db,
        &dir,
        &[
            ("PAYGATE_ENV", "production"),
            SECRET_KEY,
            ("UPI_SUCCESS_RATE", "1"),
            ("PROCESSING_DELAY_MIN", "0"),
            ("PROCESSING_DELAY_MAX", "0"),
        ],
    )
    .await;
    let dashboard = g.listening("dashboard").await;
    let logs = g.logs();
    assert_eq!(
        logs.matches("disabled merchants holding the public test credentials")
            .count(),
        1,
        "{logs}"
    );
    let get = |key: &str, secret: &str| {
        crate::helpers::http()
            .get(g.url("/api/v1/payments"))
            .header("X-Api-Key", key)
            .header("X-Api-Secret", secret)
            .send()
    };
    assert_eq!(get(KEY, SECRET).await.unwrap().status(), 401);
    let client = client_from(Ipv4Addr::LOCALHOST);
    let dash = format!("127.0.0.1:{dashboard}");
    let res = attempt(&client, &dash, "test@example.com", "password123", &[]).await;
    assert_eq!(res.status(), 401, "the seeded password is refused");
    // rotate-keys brings the merchant back, with a new secret and without the public password.
    let out = std::process::Command::new(BIN)
        .env_clear()
        .envs(db.env())
        .args(["merchant", "rotate-keys", "test@example.com", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rotated["dashboard_password_removed"], true);
    let secret = rotated["api_secret"].as_str().unwrap();
    assert_eq!(get(KEY, secret).await.unwrap().status(), 200);
    assert_eq!(get(KEY, SECRET).await.unwrap().status(), 401);
    let res = attempt(&client, &dash, "test@example.com", "password123", &[]).await;
    assert_eq!(res.status(), 401, "the public password stays refused");
    // In production a test value forces nothing: `failure@…` succeeds at a 100 % rate.
    let order = crate::helpers::http()
        .post(g.url("/api/v1/orders"))
        .header("X-Api-Key", KEY)
        .header("X-Api-Secret", secret)
        .json(&json!({"amount": 1000}))
        .send()
        .await
        .unwrap();
    let (_, order) = into_json(order).await;
    let pay = crate::helpers::http()
        .post(g.url("/api/v1/payments"))
        .header("X-Api-Key", KEY)
        .header("X-Api-Secret", secret)
        .json(&json!({"order_id": order["id"], "method": "upi", "vpa": "failure@okaxis"}))
        .send()
        .await
        .unwrap();
    let (status, payment) = into_json(pay).await;
    assert_eq!(status, 201, "{payment}");
    let id = payment["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = crate::helpers::http()
            .get(g.url(&format!("/api/v1/payments/{id}")))
            .header("X-Api-Key", KEY)
            .header("X-Api-Secret", secret)
            .send()
            .await
            .unwrap();
        let (_, p) = into_json(res).await;
        if p["status"] != "pending" {
            assert_eq!(p["status"], "success", "{p}");
            break;
        }
        assert!(Instant::now() < deadline, "{p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

async fn metrics_and_the_queue_status_are_for_operators_in_production(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let closed = Gateway::start(&db, &dir, &[("PAYGATE_ENV", "production"), SECRET_KEY]).await;
    let get = |g: &Gateway, path: &str, bearer: Option<&str>| {
        let mut req = crate::helpers::http().get(g.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send()
    };
    assert_eq!(get(&closed, "/metrics", None).await.unwrap().status(), 401);
    let res = get(&closed, "/api/v1/queue/status", None).await.unwrap();
    assert_eq!(res.status(), 401);
    drop(closed);
    let token = "an operator token";
    let open = Gateway::start(
        &db,
        &dir,
        &[
            ("PAYGATE_ENV", "production"),
            SECRET_KEY,
            ("METRICS_TOKEN", token),
        ],
    )
    .await;
    assert_eq!(get(&open, "/metrics", None).await.unwrap().status(), 401);
    assert_eq!(
        get(&open, "/metrics", Some(token)).await.unwrap().status(),
        200
    );
    let res = get(&open, "/api/v1/queue/status", Some(token))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A merchant's key does not open it in production.
    let out = std::process::Command::new(BIN)
        .env_clear()
        .envs(db.env())
        .args([
            "merchant",
            "create",
            "--name",
            "Shop",
            "--email",
            "shop@example.com",
        ])
        .arg("--json")
        .output()
        .unwrap();
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let res = crate::helpers::http()
        .get(open.url("/api/v1/queue/status"))
        .header("X-Api-Key", m["api_key"].as_str().unwrap())
        .header("X-Api-Secret", m["api_secret"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let _ = std::fs::remove_dir_all(dir);
}

async fn parallel_wrong_passwords_reach_the_hash_only_as_often_as_allowed(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let client = client_from(Ipv4Addr::new(127, 0, 3, 1));
    let dash = t.dashboard.to_string();
    // The forms first (each its own token), then 40 wrong passwords at once.
    let mut forms = Vec::new();
    for _ in 0..40 {
        forms.push(login_form(&client, &dash).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (cookie, token) in forms {
        let (client, dash) = (client.clone(), dash.clone());
        tasks.spawn(async move {
            let res = client
                .post(format!("http://{dash}/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", cookie)
                .body(form(&[
                    ("csrf", token.as_str()),
                    ("email", "test@example.com"),
                    ("password", "not the password"),
                ]))
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        });
    }
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(s) = tasks.join_next().await {
        *by_status.entry(s.unwrap()).or_default() += 1;
    }
    let checked = by_status.get(&401).copied().unwrap_or(0);
    assert!(checked >= 1, "{by_status:?}");
    assert!(
        checked <= 3,
        "at most the 3 allowed attempts reach the password check: {by_status:?}"
    );
    assert_eq!(by_status.get(&429).copied().unwrap_or(0), 40 - checked);
}

async fn wrong_passwords_from_one_address_do_not_lock_the_merchant_out_elsewhere(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let dash = t.dashboard.to_string();
    let attacker = client_from(Ipv4Addr::new(127, 0, 4, 1));
    three_wrong(&attacker, &dash, &[]).await;
    let res = attempt(&attacker, &dash, "test@example.com", "password123", &[]).await;
    assert_eq!(res.status(), 429, "the attacker's address is slowed down");
    let merchant = client_from(Ipv4Addr::new(127, 0, 4, 2));
    let res = attempt(&merchant, &dash, "test@example.com", "password123", &[]).await;
    assert_eq!(res.status(), 303, "the merchant signs in from elsewhere");
}

async fn forwarded_addresses_count_only_from_trusted_proxies(backend: Backend) {
    // Not trusted: every client behind the header is the peer itself.
    let t = TestApp::spawn(backend).await;
    let dash = t.dashboard.to_string();
    let proxy = client_from(Ipv4Addr::new(127, 0, 5, 1));
    three_wrong(&proxy, &dash, &[("x-forwarded-for", "203.0.113.1")]).await;
    let h = [("x-forwarded-for", "203.0.113.2")];
    let res = attempt(&proxy, &dash, "test@example.com", "password123", &h).await;
    assert_eq!(
        res.status(),
        429,
        "a header from an untrusted peer changes nothing"
    );
    // Trusted: each forwarded client is itself.
    let t = TestApp::spawn_with(backend, Mode::All, &["--trusted-proxies", "127.0.5.0/24"]).await;
    let dash = t.dashboard.to_string();
    three_wrong(&proxy, &dash, &[("x-forwarded-for", "203.0.113.1")]).await;
    let h = [("x-forwarded-for", "9.9.9.9, 203.0.113.2")];
    let res = attempt(&proxy, &dash, "test@example.com", "password123", &h).await;
    assert_eq!(
        res.status(),
        303,
        "another client behind the proxy signs in"
    );
}

async fn the_sign_in_form_needs_its_own_token(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let dash = t.dashboard.to_string();
    let client = client_from(Ipv4Addr::new(127, 0, 6, 1));
    let post = |cookie: Option<String>, token: Option<String>| {
        let mut req = client
            .post(format!("http://{dash}/login"))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let mut fields = vec![("email", "test@example.com"), ("password", "password123")];
        let token = token.unwrap_or_default();
        if !token.is_empty() {
            fields.push(("csrf", token.as_str()));
        }
        req.body(form(&fields)).send()
    };
    // Another site's form: no cookie, no token.
    assert_eq!(post(None, None).await.unwrap().status(), 403);
    let (cookie, token) = login_form(&client, &dash).await;
    let (_, other_token) = login_form(&client, &dash).await;
    assert_eq!(
        post(Some(cookie.clone()), None).await.unwrap().status(),
        403
    );
    assert_eq!(
        post(Some(cookie.clone()), Some(other_token))
            .await
            .unwrap()
            .status(),
        403,
        "a token of another form"
    );
    assert_eq!(post(Some(cookie), Some(token)).await.unwrap().status(), 303);
}

async fn pages_are_not_stored_and_the_cookie_is_secure_over_https(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let s = sign_in(&t).await;
    let res = crate::helpers::http()
        .get(format!("http://{}/dashboard", t.dashboard))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let res = crate::helpers::http()
        .get(format!("http://{}/login", t.dashboard))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let cookie_of = |res: &reqwest::Response| {
        res.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("paygate_session="))
            .expect("a session cookie")
    };
    let client = client_from(Ipv4Addr::new(127, 0, 7, 1));
    let dash = t.dashboard.to_string();
    let plain = attempt(&client, &dash, "test@example.com", "password123", &[]).await;
    assert!(
        !cookie_of(&plain).contains("Secure"),
        "{}",
        cookie_of(&plain)
    );
    // A header from an untrusted peer does not make it HTTPS.
    let h = [("x-forwarded-proto", "https")];
    let res = attempt(&client, &dash, "test@example.com", "password123", &h).await;
    assert!(!cookie_of(&res).contains("Secure"));
    // Behind a trusted proxy that saw HTTPS, and with an https public URL: Secure.
    let t = TestApp::spawn_with(backend, Mode::All, &["--trusted-proxies", "127.0.7.1"]).await;
    let dash = t.dashboard.to_string();
    let res = attempt(&client, &dash, "test@example.com", "password123", &h).await;
    assert!(cookie_of(&res).contains("; Secure"), "{}", cookie_of(&res));
    let flags = ["--public-dashboard-url", "https://pay.example.com"];
    let t = TestApp::spawn_with(backend, Mode::All, &flags).await;
    let dash = t.dashboard.to_string();
    let res = attempt(&client, &dash, "test@example.com", "password123", &[]).await;
    assert!(cookie_of(&res).contains("; Secure"), "{}", cookie_of(&res));
}

/// A receiver answering 200 with a body holding U+0000 and invalid UTF-8.
async fn poisoned_receiver() -> String {
    use axum::{Router, routing::post};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/hook",
        post(|| async { axum::body::Bytes::from_static(b"ok\0\xff then more") }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

async fn an_answer_holding_nul_is_recorded(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let url = poisoned_receiver().await;
    let (status, _) = t
        .call(
            Method::PUT,
            "/api/v1/webhooks/config",
            Some(&json!({"webhook_url": url})),
        )
        .await;
    assert_eq!(status, 200);
    t.upi_payment("success@upi").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, log) = t.get("/api/v1/webhooks?limit=100").await;
        let rows = log["data"].as_array().unwrap();
        if rows.len() >= 3 && rows.iter().all(|d| d["status"] == "success") {
            for d in rows {
                assert_eq!(d["attempts"], 1, "{d}");
                let body = d["response_body"].as_str().unwrap_or_default();
                assert!(body.starts_with("ok\u{FFFD}\u{FFFD} then"), "{d}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "attempts never recorded: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_sweep_reaches_every_overdue_delivery_in_turn(backend: Backend) {
    use paygate::{
        queue::{JobSpec, WEBHOOKS},
        store::webhooks::{NewDelivery, insert_for_endpoints},
    };
    let t = TestApp::spawn_with(backend, Mode::Serve, &[]).await;
    let (status, ep) = t
        .post(
            "/api/v1/webhooks/endpoints",
            &json!({"url": "https://example.com/hook"}),
        )
        .await;
    assert_eq!(status, 201, "{ep}");
    let endpoint = ep["id"].as_str().unwrap().to_owned();
    let delivery = |i: usize| NewDelivery {
        id: uuid::Uuid::new_v4().to_string(),
        merchant_id: paygate::merchants::test_merchant::ID.to_owned(),
        event_id: format!("evt_sweep{i:05}"),
        event: "payment.created".to_owned(),
        payload: "{}".to_owned(),
        endpoint_id: Some(endpoint.clone()),
        sequence: 0,
    };
    let now = paygate::store::now();
    // 600 overdue deliveries that have jobs (held for a day), then one whose job was lost.
    let held: Vec<NewDelivery> = (0..600).map(delivery).collect();
    let mut tx = t.app.store.begin().await.unwrap();
    for chunk in held.chunks(200) {
        let ids = insert_for_endpoints(&mut tx, chunk, now - chrono::Duration::hours(2))
            .await
            .unwrap();
        let jobs: Vec<JobSpec> = ids
            .into_iter()
            .map(|id| JobSpec::at(WEBHOOKS, id, now + chrono::Duration::days(1)))
            .collect();
        t.app.queue.stage(&mut tx, &jobs).await.unwrap();
        t.app.queue.dispatch(&jobs).await;
    }
    insert_for_endpoints(&mut tx, &[delivery(600)], now - chrono::Duration::hours(1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let queued = |t: &TestApp| {
        let q = t.app.queue.clone();
        async move { q.counts(Some("webhooks")).await.unwrap().queued }
    };
    assert_eq!(queued(&t).await, 600);
    t.app.worker.sweep().await.unwrap();
    t.app.worker.sweep().await.unwrap();
    assert_eq!(
        queued(&t).await,
        601,
        "the lost delivery's job is back, the held ones untouched"
    );
}

/// The test merchant's endpoint as stored.
async fn stored_endpoint(t: &TestApp, id: &str) -> paygate::store::endpoints::Endpoint {
    paygate::store::endpoints::get(&t.app.store, paygate::merchants::test_merchant::ID, id)
        .await
        .unwrap()
        .unwrap()
}

async fn racing_edits_and_rotations_of_an_endpoint_keep_each_change(backend: Backend) {
    let t = Arc::new(TestApp::spawn(backend).await);
    let (status, ep) = t
        .post(
            "/api/v1/webhooks/endpoints",
            &json!({"url": "https://example.com/hook"}),
        )
        .await;
    assert_eq!(status, 201);
    let id = ep["id"].as_str().unwrap().to_owned();
    for round in 0..8 {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..6 {
            let (t, id) = (t.clone(), id.clone());
            tasks.spawn(async move {
                let (status, _) = t
                    .call(
                        Method::PATCH,
                        &format!("/api/v1/webhooks/endpoints/{id}"),
                        Some(&json!({"description": format!("round {round} edit {i}")})),
                    )
                    .await;
                assert_eq!(status, 200);
                None
            });
        }
        let (t2, id2) = (t.clone(), id.clone());
        tasks.spawn(async move {
            let (status, body) = t2
                .post(
                    &format!("/api/v1/webhooks/endpoints/{id2}/secret/rotate"),
                    &json!({"overlap_seconds": 0}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            Some(body["secret"].as_str().unwrap().to_owned())
        });
        let mut rotated = None;
        while let Some(r) = tasks.join_next().await {
            rotated = rotated.or(r.unwrap());
        }
        let stored = stored_endpoint(&t, &id).await;
        assert_eq!(
            Some(stored.secret),
            rotated,
            "round {round}: an edit undid the rotation"
        );
        assert_eq!(
            stored.previous_secret, None,
            "round {round}: a revoked secret came back"
        );
    }
    // An edit never re-enables an endpoint disabled meanwhile.
    for round in 0..8 {
        let long_ago = paygate::store::now() - chrono::Duration::days(30);
        paygate::store::endpoints::record_outcome(&t.app.store, &id, false, long_ago)
            .await
            .unwrap();
        let (t1, id1) = (t.clone(), id.clone());
        let edit = tokio::spawn(async move {
            t1.call(
                Method::PATCH,
                &format!("/api/v1/webhooks/endpoints/{id1}"),
                Some(&json!({"description": format!("round {round}")})),
            )
            .await
        });
        let mut tx = t.app.store.begin().await.unwrap();
        let now = paygate::store::now();
        let disabled = paygate::store::endpoints::auto_disable(
            &mut tx,
            &id,
            now - chrono::Duration::days(5),
            now,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert!(disabled.is_some(), "round {round}");
        assert_eq!(edit.await.unwrap().0, 200);
        let stored = stored_endpoint(&t, &id).await;
        assert!(!stored.enabled, "round {round}: the edit re-enabled it");
        let (status, _) = t
            .call(
                Method::PATCH,
                &format!("/api/v1/webhooks/endpoints/{id}"),
                Some(&json!({"enabled": true})),
            )
            .await;
        assert_eq!(status, 200);
    }
}

async fn replays_run_one_at_a_time_within_a_daily_cap_and_skip_pending_events(backend: Backend) {
    let t = TestApp::spawn_with(backend, Mode::All, &["--webhook-replay-daily-max", "8"]).await;
    // A destination that refuses connections: deliveries to it stay pending (retrying).
    let closed = format!("http://127.0.0.1:{}/hook", free_port());
    async fn create(t: &TestApp, url: &str) -> String {
        let (status, ep) = t
            .post("/api/v1/webhooks/endpoints", &json!({"url": url}))
            .await;
        assert_eq!(status, 201, "{ep}");
        ep["id"].as_str().unwrap().to_owned()
    }
    let first = create(&t, &closed).await;
    let since = paygate::views::iso(paygate::store::now() - chrono::Duration::minutes(5));
    for _ in 0..2 {
        let p = t.upi_payment("success@upi").await;
        t.wait_final(p["id"].as_str().unwrap()).await;
    }
    let replay = |id: String| {
        let (t, since) = (&t, since.clone());
        async move {
            t.post(
                &format!("/api/v1/webhooks/endpoints/{id}/replay"),
                &json!({"since": since}),
            )
            .await
        }
    };
    // Every event has a delivery to the first endpoint pending: none is queued twice.
    let (status, body) = replay(first.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["queued"], 0, "{body}");
    let second = create(&t, &closed).await;
    let (status, body) = replay(second.clone()).await;
    assert_eq!(status, 200, "{body}");
    let queued = body["queued"].as_u64().unwrap();
    assert!((5..=8).contains(&queued), "{body}");
    let running = body["replay_id"].as_str().unwrap().to_owned();
    assert!(running.starts_with("rpl_"), "{body}");
    let (status, body) = replay(second).await;
    assert_error(status, &body, 409, "REPLAY_IN_PROGRESS");
    assert!(
        body["error"]["description"]
            .as_str()
            .unwrap()
            .contains(&running),
        "{body}"
    );
    let third = create(&t, &closed).await;
    let (status, body) = replay(third).await;
    assert_error(status, &body, 429, "RATE_LIMIT_ERROR");
}

async fn a_payment_with_refunds_cannot_be_captured(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    for amount in [1000, 400] {
        let p = t.upi_payment("success@upi").await;
        let id = p["id"].as_str().unwrap().to_owned();
        let p = t.wait_final(&id).await;
        assert_eq!(p["status"], "success");
        assert_eq!(p["captured"], false, "{p}");
        let (status, r) = t
            .post(
                &format!("/api/v1/payments/{id}/refunds"),
                &json!({"amount": amount}),
            )
            .await;
        assert_eq!(status, 201, "{r}");
        let (status, body) = t
            .post(&format!("/api/v1/payments/{id}/capture"), &json!({}))
            .await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
        assert!(
            body["error"]["description"]
                .as_str()
                .unwrap()
                .contains("refunded"),
            "{body}"
        );
        let (_, p) = t.get(&format!("/api/v1/payments/{id}")).await;
        assert_eq!(p["captured"], false);
    }
}

async fn the_overview_totals_each_currency_apart_with_its_decimals(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    for (amount, currency) in [(50_000, "INR"), (1_500, "JPY"), (1_234_567, "KWD")] {
        let (status, order) = t
            .post(
                "/api/v1/orders",
                &json!({"amount": amount, "currency": currency}),
            )
            .await;
        assert_eq!(status, 201, "{order}");
        let (status, p) = t
            .post(
                "/api/v1/payments",
                &json!({"order_id": order["id"], "method": "upi", "vpa": "success@upi"}),
            )
            .await;
        assert_eq!(status, 201, "{p}");
        t.wait_final(p["id"].as_str().unwrap()).await;
    }
    let s = sign_in(&t).await;
    let (status, html) = page(&t, &s.cookie, "/dashboard").await;
    assert_eq!(status, 200);
    for shown in ["₹500.00", "JPY 1,500<", "KWD 1,234.567"] {
        assert!(html.contains(shown), "{shown} missing");
    }
    assert!(!html.contains("₹13,"), "currencies were added up");
}

async fn concurrent_endpoint_creates_stop_at_the_limit(backend: Backend) {
    let t =
        Arc::new(TestApp::spawn_with(backend, Mode::All, &["--webhook-endpoints-max", "3"]).await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let t = t.clone();
        tasks.spawn(async move {
            t.post(
                "/api/v1/webhooks/endpoints",
                &json!({"url": format!("https://example.com/{i}")}),
            )
            .await
            .0
        });
    }
    let mut created = 0;
    while let Some(s) = tasks.join_next().await {
        match s.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::BAD_REQUEST => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(created, 3);
    let (_, list) = t.get("/api/v1/webhooks/endpoints").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3, "{list}");
}

async fn notes_keys_are_bounded(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let long = "k".repeat(257);
    for notes in [json!({ long: "v" }), json!({"": "v"})] {
        let (status, body) = t
            .post("/api/v1/orders", &json!({"amount": 1000, "notes": notes}))
            .await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    }
    let ok = "k".repeat(256);
    let (status, _) = t
        .post(
            "/api/v1/orders",
            &json!({"amount": 1000, "notes": { ok: "v" }}),
        )
        .await;
    assert_eq!(status, 201);
}

async fn destinations_embedding_special_ipv4_are_refused(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    for url in [
        "http://[::10.0.0.1]/hook",
        "http://[2002:a9fe:a9fe::1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
    ] {
        let (status, body) = t
            .call(
                Method::PUT,
                "/api/v1/webhooks/config",
                Some(&json!({"webhook_url": url})),
            )
            .await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    }
}

async fn a_rotated_secret_stops_working_in_every_process_within_a_second(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = temp_dir();
    let a = Gateway::start(&db, &dir, &[]).await;
    let b = Gateway::start_command(&db, &dir, &[], &["serve"]).await;
    let get = |g: &Gateway, secret: &str| {
        crate::helpers::http()
            .get(g.url("/api/v1/payments?limit=1"))
            .header("X-Api-Key", KEY)
            .header("X-Api-Secret", secret)
            .send()
    };
    // Both processes hold the credentials in their caches.
    assert_eq!(get(&a, SECRET).await.unwrap().status(), 200);
    assert_eq!(get(&b, SECRET).await.unwrap().status(), 200);
    let out = std::process::Command::new(BIN)
        .env_clear()
        .envs(db.env())
        .args(["merchant", "rotate-keys", "test@example.com", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new = rotated["api_secret"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for g in [&a, &b] {
        assert_eq!(get(g, SECRET).await.unwrap().status(), 401);
        assert_eq!(get(g, new).await.unwrap().status(), 200);
    }
    let _ = std::fs::remove_dir_all(dir);
}

every_backend!(
    a_production_start_disables_the_seeded_credentials_until_rotate_keys,
    metrics_and_the_queue_status_are_for_operators_in_production,
    parallel_wrong_passwords_reach_the_hash_only_as_often_as_allowed,
    wrong_passwords_from_one_address_do_not_lock_the_merchant_out_elsewhere,
    forwarded_addresses_count_only_from_trusted_proxies,
    the_sign_in_form_needs_its_own_token,
    pages_are_not_stored_and_the_cookie_is_secure_over_https,
    an_answer_holding_nul_is_recorded,
    the_sweep_reaches_every_overdue_delivery_in_turn,
    racing_edits_and_rotations_of_an_endpoint_keep_each_change,
    replays_run_one_at_a_time_within_a_daily_cap_and_skip_pending_events,
    a_payment_with_refunds_cannot_be_captured,
    the_overview_totals_each_currency_apart_with_its_decimals,
    concurrent_endpoint_creates_stop_at_the_limit,
    notes_keys_are_bounded,
    destinations_embedding_special_ipv4_are_refused,
    a_rotated_secret_stops_working_in_every_process_within_a_second,
);
