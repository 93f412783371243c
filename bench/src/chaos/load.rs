//! The chaos run's load: a steady mix of requests, spread over the gateway's `serve`
//! processes, every write with an `Idempotency-Key`, and a log of what each answered (status,
//! a digest of the body) for the auditor.
//!
//! The mix: orders paid by UPI and card with each forced outcome (success, failure); status
//! checks that learn which payments succeeded; captures; partial refunds and full refunds,
//! three at once on one payment; retries of earlier writes with the same key (some sent twice
//! at once); requests dropped mid-way by the client (a tiny timeout), retried later.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use rand::RngExt as _;
use serde_json::{Value, json};
use sha2::Digest as _;

/// A merchant the load acts as.
#[derive(Clone, Debug)]
pub struct Merchant {
    pub key: String,
    pub secret: String,
}

/// One answered (or failed) request.
#[derive(Clone, Debug)]
pub struct Answer {
    /// `POST /api/v1/payments` and so on.
    pub what: String,
    pub key: Option<String>,
    /// HTTP status; 0 when no answer came (refused, reset, dropped by the client).
    pub status: u16,
    /// SHA-256 of the answer's body, hex (empty without one).
    pub digest: String,
    /// The created resource's id, for a 201.
    pub created: Option<String>,
    /// Milliseconds since the run started, when the request was sent and when the answer came.
    pub sent_ms: u64,
    pub at_ms: u64,
    /// Whether the client gave up on purpose (a connection dropped mid-request).
    pub dropped: bool,
}

/// A payment the load knows of.
#[derive(Clone, Debug)]
struct Known {
    id: String,
    merchant: usize,
    amount: i64,
    /// `pending` until a status check learns otherwise.
    status: String,
    captured: bool,
    refunded: i64,
}

/// A write that may be sent again: its merchant, method, path, body and key.
#[derive(Clone, Debug)]
struct Write {
    merchant: usize,
    path: String,
    body: Value,
    key: String,
}

/// The load generator's state and log.
pub struct Load {
    pub started: Instant,
    serves: Vec<String>,
    merchants: Vec<Merchant>,
    client: reqwest::Client,
    next: AtomicUsize,
    payments: Mutex<Vec<Known>>,
    writes: Mutex<Vec<Write>>,
    dropped: Mutex<Vec<Write>>,
    pub answers: Mutex<Vec<Answer>>,
}

fn digest(body: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(body))
}

impl Load {
    pub fn new(serves: Vec<String>, merchants: Vec<Merchant>) -> anyhow::Result<Self> {
        Ok(Self {
            started: Instant::now(),
            serves,
            merchants,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .pool_max_idle_per_host(64)
                .build()?,
            next: AtomicUsize::new(0),
            payments: Mutex::default(),
            writes: Mutex::default(),
            dropped: Mutex::default(),
            answers: Mutex::default(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A `serve` in turn.
    fn base(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.serves.len();
        &self.serves[i]
    }

    /// Sends one request and logs its answer; the parsed body when it came. `drop_after`:
    /// the client gives up after this long (a connection dropped mid-request).
    async fn send(
        &self,
        merchant: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
        drop_after: Option<Duration>,
    ) -> Option<(u16, Value)> {
        let m = &self.merchants[merchant];
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base()))
            .header("X-Api-Key", &m.key)
            .header("X-Api-Secret", &m.secret);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(d) = drop_after {
            req = req.timeout(d);
        }
        let what = format!("{method} {}", path_kind(path));
        let sent_ms = self.now_ms();
        let answer = async {
            let res = req.send().await.ok()?;
            let status = res.status().as_u16();
            let bytes = res.bytes().await.ok()?;
            Some((status, bytes))
        }
        .await;
        let (status, bytes) = answer.unwrap_or((0, Default::default()));
        let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let created = (status == 201)
            .then(|| parsed["id"].as_str().map(str::to_owned))
            .flatten();
        if let Ok(mut log) = self.answers.lock() {
            log.push(Answer {
                what,
                key: key.map(str::to_owned),
                status,
                digest: if bytes.is_empty() {
                    String::new()
                } else {
                    digest(&bytes)
                },
                created,
                sent_ms,
                at_ms: self.now_ms(),
                dropped: drop_after.is_some(),
            });
        }
        (status != 0).then_some((status, parsed))
    }

    /// A write with a fresh key, remembered so it can be sent again.
    async fn write(&self, merchant: usize, path: &str, body: Value) -> Option<(u16, Value)> {
        let key = format!("chaos-{}", uuid::Uuid::new_v4().simple());
        if let Ok(mut w) = self.writes.lock() {
            if w.len() > 2000 {
                w.drain(..1000);
            }
            w.push(Write {
                merchant,
                path: path.to_owned(),
                body: body.clone(),
                key: key.clone(),
            });
        }
        self.send(
            merchant,
            reqwest::Method::POST,
            path,
            Some(&body),
            Some(&key),
            None,
        )
        .await
    }

    /// One step of the mix, chosen at random.
    pub async fn step(self: Arc<Self>) {
        let pick: u32 = rand::rng().random_range(0..100);
        match pick {
            0..30 => self.pay().await,
            30..52 => self.check().await,
            52..60 => self.capture().await,
            60..72 => self.refund(false).await,
            72..76 => self.refund(true).await,
            76..88 => self.retry().await,
            88..94 => self.drop_one().await,
            _ => self.retry_dropped().await,
        }
    }

    async fn pay(&self) {
        let merchant = rand::rng().random_range(0..self.merchants.len());
        let amount = rand::rng().random_range(1_000..200_000_i64);
        let Some((201, order)) = self
            .write(merchant, "/api/v1/orders", json!({"amount": amount}))
            .await
        else {
            return;
        };
        let body = match rand::rng().random_range(0..4) {
            0 => json!({"order_id": order["id"], "method": "upi", "vpa": "success@okaxis"}),
            1 => json!({"order_id": order["id"], "method": "upi", "vpa": "failure@okaxis"}),
            2 => json!({"order_id": order["id"], "method": "card", "card": {
                "number": "4111111111111111", "expiry_month": "12", "expiry_year": "2030",
                "cvv": "123", "holder_name": "Chaos"}}),
            _ => json!({"order_id": order["id"], "method": "card", "card": {
                "number": "4000000000000002", "expiry_month": "12", "expiry_year": "2030",
                "cvv": "123", "holder_name": "Chaos"}}),
        };
        if let Some((201, p)) = self.write(merchant, "/api/v1/payments", body).await
            && let Some(id) = p["id"].as_str()
            && let Ok(mut known) = self.payments.lock()
        {
            if known.len() > 5000 {
                known.drain(..2500);
            }
            known.push(Known {
                id: id.to_owned(),
                merchant,
                amount,
                status: "pending".into(),
                captured: false,
                refunded: 0,
            });
        }
    }

    /// A known payment matching `want`, at random.
    fn pick(&self, want: impl Fn(&Known) -> bool) -> Option<Known> {
        let known = self.payments.lock().ok()?;
        let fits: Vec<&Known> = known.iter().filter(|k| want(k)).collect();
        if fits.is_empty() {
            return None;
        }
        Some(fits[rand::rng().random_range(0..fits.len())].clone())
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut Known)) {
        if let Ok(mut known) = self.payments.lock()
            && let Some(k) = known.iter_mut().find(|k| k.id == id)
        {
            change(k);
        }
    }

    async fn check(&self) {
        let Some(k) = self.pick(|k| k.status == "pending") else {
            return;
        };
        let path = format!("/api/v1/payments/{}", k.id);
        if let Some((200, p)) = self
            .send(k.merchant, reqwest::Method::GET, &path, None, None, None)
            .await
            && let Some(status) = p["status"].as_str()
        {
            let status = status.to_owned();
            self.update(&k.id, |k| k.status = status);
        }
    }

    async fn capture(&self) {
        let Some(k) = self.pick(|k| k.status == "success" && !k.captured && k.refunded == 0) else {
            return;
        };
        self.update(&k.id, |k| k.captured = true);
        let path = format!("/api/v1/payments/{}/capture", k.id);
        self.write(k.merchant, &path, json!({})).await;
    }

    /// A partial refund, or (`race`) three refunds of half the payment at once: at most two
    /// may succeed.
    async fn refund(&self, race: bool) {
        let Some(k) = self.pick(|k| k.status == "success" && k.refunded < k.amount) else {
            return;
        };
        let path = format!("/api/v1/payments/{}/refunds", k.id);
        if race {
            let half = (k.amount / 2).max(100);
            self.update(&k.id, |k| k.refunded = k.amount);
            let body = json!({"amount": half});
            let (a, b, c) = tokio::join!(
                self.write(k.merchant, &path, body.clone()),
                self.write(k.merchant, &path, body.clone()),
                self.write(k.merchant, &path, body),
            );
            let _ = (a, b, c);
        } else {
            let left = k.amount - k.refunded;
            let amount = rand::rng()
                .random_range(100..=left.max(100))
                .min(left.max(100));
            self.update(&k.id, |k| k.refunded += amount);
            self.write(k.merchant, &path, json!({"amount": amount}))
                .await;
        }
    }

    /// Sends an earlier write again with its key (half the time twice at once).
    async fn retry(&self) {
        let w = {
            let Ok(writes) = self.writes.lock() else {
                return;
            };
            if writes.is_empty() {
                return;
            }
            writes[rand::rng().random_range(0..writes.len())].clone()
        };
        if rand::rng().random_bool(0.5) {
            tokio::join!(self.resend(&w), self.resend(&w));
        } else {
            self.resend(&w).await;
        }
    }

    /// Sends a write again, with its key.
    async fn resend(&self, w: &Write) {
        let (post, body) = (reqwest::Method::POST, Some(&w.body));
        self.send(w.merchant, post, &w.path, body, Some(&w.key), None)
            .await;
    }

    /// An order whose request the client drops after a few ms; retried later.
    async fn drop_one(&self) {
        let merchant = rand::rng().random_range(0..self.merchants.len());
        let w = Write {
            merchant,
            path: "/api/v1/orders".into(),
            body: json!({"amount": rand::rng().random_range(1_000..50_000_i64)}),
            key: format!("chaos-dropped-{}", uuid::Uuid::new_v4().simple()),
        };
        let after = Duration::from_millis(rand::rng().random_range(1..4));
        self.send(
            merchant,
            reqwest::Method::POST,
            &w.path,
            Some(&w.body),
            Some(&w.key),
            Some(after),
        )
        .await;
        if let Ok(mut d) = self.dropped.lock() {
            d.push(w);
        }
    }

    async fn retry_dropped(&self) {
        let w = self.dropped.lock().ok().and_then(|mut d| d.pop());
        if let Some(w) = w {
            self.resend(&w).await;
        }
    }
}

/// `/api/v1/payments/pay_x/refunds` → `/api/v1/payments/{id}/refunds`.
fn path_kind(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with("pay_") || s.starts_with("order_") || s.starts_with("rfnd_") {
                "{id}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Answers grouped by idempotency key.
pub fn by_key(answers: &[Answer]) -> HashMap<&str, Vec<&Answer>> {
    let mut groups: HashMap<&str, Vec<&Answer>> = HashMap::new();
    for a in answers {
        if let Some(k) = &a.key {
            groups.entry(k.as_str()).or_default().push(a);
        }
    }
    groups
}
