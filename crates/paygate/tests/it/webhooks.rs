//! Webhooks: signed deliveries verified by the public `standardwebhooks` library, retries on
//! the configured schedule, manual retry, blocked destinations, redirects, and the event log.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, every_backend, into_json};

/// A webhook receiver (the `paygate webhook-receiver` router) on a free port of this process.
pub(crate) struct Receiver {
    pub addr: SocketAddr,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(secret: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = paygate::http::receiver::router(secret);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            addr,
            _server: server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn received(&self) -> Vec<Value> {
        let res = crate::helpers::http()
            .get(self.url("/received"))
            .send()
            .await
            .unwrap();
        res.json::<Vec<Value>>().await.unwrap()
    }

    /// Waits until `pred` holds for what was received (at most 20 s).
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received().await;
            if pred(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn set_url(t: &TestApp, url: &str) -> Value {
    let (status, body) = t
        .call(
            Method::PUT,
            "/api/v1/webhooks/config",
            Some(&json!({"webhook_url": url})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Verifies a received request with the public Standard Webhooks library (the
/// `standardwebhooks` crate from the Standard Webhooks project, an implementation that is not
/// ours) and its `X-Webhook-Signature` with the `hmac` crate. `Err` names what failed.
pub(crate) fn verify_with_public_library(secret: &str, r: &Value) -> Result<(), String> {
    use axum::http::{HeaderMap, HeaderValue};
    use hmac::{KeyInit as _, Mac as _};
    let text = |k: &str| {
        r[k].as_str()
            .ok_or(format!("{k} missing"))
            .map(str::to_owned)
    };
    let body = text("body")?;
    let mut headers = HeaderMap::new();
    for (name, key) in [
        ("webhook-id", "webhook_id"),
        ("webhook-timestamp", "webhook_timestamp"),
        ("webhook-signature", "webhook_signature"),
    ] {
        let value = HeaderValue::from_str(&text(key)?).map_err(|e| e.to_string())?;
        headers.insert(name, value);
    }
    standardwebhooks::Webhook::new(secret)
        .map_err(|e| format!("secret: {e}"))?
        .verify(body.as_bytes(), &headers)
        .map_err(|e| format!("Standard Webhooks: {e}"))?;
    let given = hex::decode(text("x_webhook_signature")?).map_err(|e| e.to_string())?;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(body.as_bytes());
    mac.verify_slice(&given)
        .map_err(|_| "X-Webhook-Signature does not match".to_owned())
}

/// A copy of a received request with one byte of `field` changed.
fn tampered(r: &Value, field: &str, at: usize) -> Value {
    let mut bytes = r[field].as_str().unwrap().as_bytes().to_vec();
    let i = at % bytes.len();
    // Another digit: printable (a valid header), and a different value in hex and base64.
    bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
    let mut copy = r.clone();
    copy[field] = json!(String::from_utf8(bytes).unwrap());
    copy
}

async fn payment_events_arrive_signed_and_verify_with_the_public_library(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, config) = t.post("/api/v1/webhooks/config/secret", &json!({})).await;
    assert_eq!(status, 200, "{config}");
    let secret = config["webhook_secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 40,
        "{secret}"
    );
    let receiver = Receiver::start(&secret).await;
    set_url(&t, &receiver.url("/webhook")).await;
    let payment = t.upi_payment("success@upi").await;
    let id = payment["id"].as_str().unwrap();
    t.wait_final(id).await;
    let got = receiver
        .wait_for("payment.success", |r| {
            r.iter()
                .any(|x| x["body"].as_str().unwrap().contains("payment.success"))
        })
        .await;
    let success = got
        .iter()
        .find(|x| x["body"].as_str().unwrap().contains("payment.success"))
        .unwrap();
    assert_eq!(success["hex_signature_valid"], true);
    assert_eq!(success["standard_signature_valid"], true);
    assert_eq!(success["answered"], 200);
    let body: Value = serde_json::from_str(success["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["event"], "payment.success");
    assert_eq!(body["data"]["payment"]["id"], id);
    assert_eq!(body["data"]["payment"]["status"], "success");
    assert!(body["timestamp"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(
        success["webhook_id"], body["id"],
        "webhook-id is the event id"
    );
    verify_with_public_library(&secret, success).expect("the public library verifies");
    // One changed byte anywhere breaks verification (so the check above can fail).
    let body_len = success["body"].as_str().unwrap().len();
    for at in [0, body_len / 2, body_len - 1] {
        let err = verify_with_public_library(&secret, &tampered(success, "body", at)).unwrap_err();
        assert!(err.contains("Standard Webhooks"), "{err}");
    }
    let err = verify_with_public_library(&secret, &tampered(success, "webhook_signature", 10))
        .unwrap_err();
    assert!(err.contains("Standard Webhooks"), "{err}");
    let err = verify_with_public_library(&secret, &tampered(success, "x_webhook_signature", 3))
        .unwrap_err();
    assert!(err.contains("X-Webhook-Signature"), "{err}");
    let other = paygate::merchants::new_webhook_secret();
    assert!(
        verify_with_public_library(&other, success).is_err(),
        "another secret fails"
    );
    // The log shows every event delivered.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, log) = t.get("/api/v1/webhooks?limit=10").await;
        let events: Vec<_> = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == "success")
            .map(|d| d["event"].as_str().unwrap().to_owned())
            .collect();
        if events.len() == 3 {
            assert_eq!(log["total"], 3);
            assert!(
                events.contains(&"payment.created".to_owned())
                    && events.contains(&"payment.pending".to_owned())
            );
            let row = &log["data"][0];
            for key in [
                "id",
                "event",
                "status",
                "attempts",
                "created_at",
                "last_attempt_at",
                "response_code",
            ] {
                assert!(row.get(key).is_some(), "{key} missing: {row}");
            }
            assert_eq!(row["response_code"], 200);
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_failing_receiver_gets_five_attempts_on_schedule_then_a_manual_retry_succeeds(
    backend: Backend,
) {
    let schedule = [0u64, 300, 600, 900, 1200];
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &["--webhook-retry-schedule", "0,300,600,900,1200"],
    )
    .await;
    let receiver = Receiver::start("whsec_test_abc123").await;
    set_url(&t, &receiver.url("/fail")).await;
    let (status, first) = t.post("/api/v1/webhooks/test", &json!({})).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        first["attempts"], 1,
        "the first attempt is made at once: {first}"
    );
    assert_eq!(first["response_code"], 500);
    assert_eq!(first["status"], "pending");
    let id = first["id"].as_str().unwrap().to_owned();
    let got = receiver.wait_for("five attempts", |r| r.len() >= 5).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_after = receiver.received().await;
    assert_eq!(got_after.len(), 5, "exactly five attempts");
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = got
        .iter()
        .map(|r| chrono::DateTime::parse_from_rfc3339(r["received_at"].as_str().unwrap()).unwrap())
        .collect();
    for i in 1..5 {
        let gap = (times[i] - times[i - 1]).num_milliseconds();
        assert!(
            gap >= schedule[i] as i64 - 5 && gap < schedule[i] as i64 + 1500,
            "gap {i}: {gap} ms, planned {}",
            schedule[i]
        );
    }
    let ids: std::collections::HashSet<_> = got
        .iter()
        .map(|r| r["webhook_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "the same event id on every attempt");
    let (_, log) = t.get("/api/v1/webhooks").await;
    let row = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["status"], "failed");
    assert_eq!(row["attempts"], 5);
    assert_eq!(row["response_code"], 500);
    assert!(
        row["response_body"]
            .as_str()
            .unwrap()
            .contains("failing on purpose")
    );

    // The receiver recovers; a manual retry starts a new cycle.
    set_url(&t, &receiver.url("/webhook")).await;
    let (status, retried) = t
        .post(&format!("/api/v1/webhooks/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(
        retried,
        json!({"id": id, "status": "pending", "message": "Webhook retry scheduled"})
    );
    receiver
        .wait_for("the retried delivery", |r| {
            r.iter().any(|x| x["path"] == "/webhook")
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, log) = t.get("/api/v1/webhooks").await;
        let row = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id.as_str())
            .unwrap()
            .clone();
        if row["status"] == "success" {
            assert_eq!(row["attempts"], 1, "a new cycle: {row}");
            assert_eq!(row["response_code"], 200);
            break;
        }
        assert!(Instant::now() < deadline, "{row}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = t
        .post(
            "/api/v1/webhooks/00000000-0000-4000-8000-000000000000/retry",
            &json!({}),
        )
        .await;
    assert_error(status, &body, 404, "NOT_FOUND_ERROR");
}

async fn blocked_destinations_are_refused_and_redirects_not_followed(backend: Backend) {
    let t = TestApp::spawn_with(
        backend,
        paygate::app::Mode::All,
        &[
            "--webhook-allow-loopback",
            "false",
            "--webhook-allow-private",
            "false",
        ],
    )
    .await;
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:4000/webhook",
        "http://[::1]/x",
        "http://10.0.0.8/hook",
        "ftp://example.com/",
        "not a url",
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
    let (_, config) = t.get("/api/v1/webhooks/config").await;
    assert_eq!(config["webhook_url"], Value::Null, "nothing was saved");
    // A name is accepted at configuration but refused at delivery once it resolves to loopback.
    let receiver = Receiver::start("whsec_test_abc123").await;
    set_url(
        &t,
        &format!("http://localhost:{}/webhook", receiver.addr.port()),
    )
    .await;
    let (status, d) = t.post("/api/v1/webhooks/test", &json!({})).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["response_code"], Value::Null);
    assert!(
        d["response_body"]
            .as_str()
            .unwrap()
            .contains("destination refused"),
        "{d}"
    );
    assert!(
        d["response_body"].as_str().unwrap().contains("loopback"),
        "{d}"
    );
    assert!(
        receiver.received().await.is_empty(),
        "nothing reached the receiver"
    );

    // Loopback allowed (the default): a redirect is recorded, not followed.
    let t = TestApp::spawn(backend).await;
    set_url(&t, &receiver.url("/redirect")).await;
    let (_, d) = t.post("/api/v1/webhooks/test", &json!({})).await;
    assert_eq!(d["response_code"], 302);
    assert_eq!(d["status"], "pending", "a redirect is a failed attempt");
    let got = receiver.received().await;
    assert!(got.iter().all(|r| r["path"] == "/redirect"), "{got:?}");
}

async fn webhook_config_and_events_endpoints(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, config) = t.get("/api/v1/webhooks/config").await;
    assert_eq!(status, 200);
    assert_eq!(
        config,
        json!({"webhook_url": null, "webhook_secret": "whsec_test_abc123"})
    );
    let (status, body) = t.post("/api/v1/webhooks/test", &json!({})).await;
    assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    for bad in [json!({}), json!({"webhook_url": 5})] {
        let (status, body) = t
            .call(Method::PUT, "/api/v1/webhooks/config", Some(&bad))
            .await;
        assert_error(status, &body, 400, "BAD_REQUEST_ERROR");
    }
    let set = set_url(&t, "https://merchant.example.com/hooks").await;
    assert_eq!(set["webhook_url"], "https://merchant.example.com/hooks");
    let cleared = t
        .call(
            Method::PUT,
            "/api/v1/webhooks/config",
            Some(&json!({"webhook_url": null})),
        )
        .await
        .1;
    assert_eq!(cleared["webhook_url"], Value::Null);
    // Without a URL, events make no deliveries.
    let p = t.upi_payment("success@upi").await;
    t.wait_final(p["id"].as_str().unwrap()).await;
    let (_, log) = t.get("/api/v1/webhooks").await;
    assert_eq!(log["total"], 0);
    let (status, events) = t.get("/api/v1/events?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(events["total"], 3);
    assert_eq!(
        events["data"][0]["event"], "payment.success",
        "newest first"
    );
    assert_eq!(events["data"][1]["event"], "payment.pending");
    assert_eq!(events["data"][0]["data"]["payment"]["id"], p["id"]);
    let res = t.client.get(t.url("/api/v1/events")).send().await.unwrap();
    let (status, body) = into_json(res).await;
    assert_error(status, &body, 401, "AUTHENTICATION_ERROR");
}

async fn a_manual_retry_of_a_delivery_waiting_for_its_next_attempt_runs_now(backend: Backend) {
    // The real schedule: the second attempt would come a minute later.
    let t = TestApp::spawn(backend).await;
    let receiver = Receiver::start("whsec_test_abc123").await;
    set_url(&t, &receiver.url("/fail")).await;
    let (_, first) = t.post("/api/v1/webhooks/test", &json!({})).await;
    assert_eq!(first["status"], "pending");
    assert!(first["next_retry_at"].is_string());
    set_url(&t, &receiver.url("/webhook")).await;
    let id = first["id"].as_str().unwrap();
    let (status, _) = t
        .post(&format!("/api/v1/webhooks/{id}/retry"), &json!({}))
        .await;
    assert_eq!(status, 200);
    receiver
        .wait_for("the retried attempt", |r| {
            r.iter().any(|x| x["path"] == "/webhook")
        })
        .await;
}

every_backend!(
    a_manual_retry_of_a_delivery_waiting_for_its_next_attempt_runs_now,
    payment_events_arrive_signed_and_verify_with_the_public_library,
    a_failing_receiver_gets_five_attempts_on_schedule_then_a_manual_retry_succeeds,
    blocked_destinations_are_refused_and_redirects_not_followed,
    webhook_config_and_events_endpoints,
);
