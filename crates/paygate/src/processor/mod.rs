//! The payment processor behind a connector trait, and the simulated bank (SPEC A5).
//!
//! The contract of a [`Connector`]: every request carries an idempotency key (one per payment,
//! one per refund); the processor performs at most one charge or refund per key, and a repeated
//! call with a key returns the first call's outcome. paygate sends a repeat only when it
//! cannot know whether a call went through (its worker died mid-call, or the call failed in
//! transit), and a run holds the payment's processor lease while it calls, so two runs of one
//! job never ask at once.
//!
//! The simulated bank honours that contract durably: it remembers each key's answer in the
//! database (`processor_operations`), so a repeat gets the first answer back, across restarts.
//! It decides an answer on the first call: a documented test value forces its outcome; test
//! mode answers `TEST_PAYMENT_SUCCESS`; otherwise the method's success rate decides. The answer
//! is ready after a uniform delay (or the fixed test-mode delay).

use std::{collections::HashMap, sync::Mutex, time::Duration};

use async_trait::async_trait;
use paygate_core::{ForcedOutcome, Method};
use rand::RngExt as _;

use crate::{
    config::Config,
    store::{
        Store, now,
        processor::{self as memory, Operation},
    },
};

/// What the processor needs to know about a payment. Never the card number or CVV.
#[derive(Clone, Debug)]
pub struct ChargeRequest {
    /// The same for every call about this payment: the processor charges once per key.
    pub idempotency_key: String,
    pub payment_id: String,
    pub amount: i64,
    pub currency: String,
    pub method: Method,
    pub forced_outcome: Option<ForcedOutcome>,
}

/// What the processor needs to know about a refund.
#[derive(Clone, Debug)]
pub struct RefundRequest {
    /// The same for every call about this refund: the processor refunds once per key.
    pub idempotency_key: String,
    pub refund_id: String,
    pub payment_id: String,
    pub amount: i64,
    pub currency: String,
}

/// The processor's answer to a charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded,
    Failed { code: String, description: String },
}

/// A payment processor. An `Err` means the answer is not known (the call may or may not have
/// gone through): the job tries again later with the same idempotency key.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Charges the payment, at most once per `request.idempotency_key`. May take seconds;
    /// the caller holds no database connection meanwhile.
    async fn charge(&self, request: &ChargeRequest) -> anyhow::Result<ChargeOutcome>;
    /// Sends a refund back to the customer, at most once per `request.idempotency_key`.
    async fn refund(&self, request: &RefundRequest) -> anyhow::Result<()>;
    /// What the processor did with the call carrying `idempotency_key`: `Some` with its
    /// outcome (waiting for it if the call is still being processed), `None` when it never
    /// saw the key. Asked before repeating a call whose first run died without an answer, so
    /// the repeat is made only when the processor never got the first. A connector that
    /// cannot tell answers `None` (the repeat, with the same key, is still safe).
    async fn status(&self, _idempotency_key: &str) -> anyhow::Result<Option<ChargeOutcome>> {
        Ok(None)
    }
    /// Transfers a settlement to the merchant's bank account, at most once per
    /// `request.idempotency_key`; answers the transfer's bank reference (UTR), the same for the
    /// same key, so a transfer asked again after a crash is the one made before.
    async fn payout(&self, request: &PayoutRequest) -> anyhow::Result<String> {
        Ok(utr(&request.idempotency_key))
    }
}

/// A settlement's transfer to the merchant.
#[derive(Clone, Debug)]
pub struct PayoutRequest {
    /// `payout_<settlement id>`.
    pub idempotency_key: String,
    pub merchant_id: String,
    /// In the currency's smallest unit.
    pub amount: i64,
    pub currency: String,
}

/// The simulated bank's reference of the transfer made for `idempotency_key`: `PGSB` and 16
/// hexadecimal digits derived from the key, so the same transfer always has the same one.
pub fn utr(idempotency_key: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(idempotency_key.as_bytes());
    format!("PGSB{}", hex::encode_upper(&digest[..8]))
}

/// How long a run may ask the processor about one payment or refund (its processor lease), and
/// how long it waits for the answer (within the lease).
#[derive(Clone, Copy, Debug)]
pub struct CallLimits {
    pub lease: Duration,
    pub timeout: Duration,
}

impl CallLimits {
    /// Waits for the processor's answer to `call` at most `timeout`. No connection is held
    /// meanwhile; a call that outlives its time is abandoned (another run will ask again, with
    /// the same key).
    pub async fn call<T>(
        &self,
        call: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| anyhow::anyhow!("the processor did not answer in time"))?
    }
}

/// The idempotency key of a payment's charge.
pub fn charge_key(payment_id: &str) -> String {
    format!("charge_{payment_id}")
}

/// The idempotency key of a refund.
pub fn refund_key(refund_id: &str) -> String {
    format!("refund_{refund_id}")
}

/// Where the simulated bank remembers its answers.
enum Memory {
    /// In the database: durable across restarts and shared by every process.
    Durable(Store),
    /// In this process (tests that drive the bank without a database).
    Local(Mutex<HashMap<String, Operation>>),
}

/// The simulated bank.
pub struct SimulatedBank {
    delay: (Duration, Duration),
    refund_delay: (Duration, Duration),
    upi_success_rate: f64,
    card_success_rate: f64,
    test_mode: Option<(Duration, bool)>,
    /// Whether test values (`success@…`, test cards) force their outcome: in development
    /// and test mode, never in production (SPEC B).
    test_values: bool,
    /// Probability that a transfer is refused (`PAYOUT_FAILURE_RATE`).
    payout_failure_rate: f64,
    memory: Memory,
}

impl SimulatedBank {
    /// A bank configured by SPEC A5's settings, remembering its answers in `store`.
    pub fn from_config(config: &Config, store: Store) -> Self {
        Self {
            delay: config.processing_delay,
            refund_delay: config.refund_delay,
            upi_success_rate: config.upi_success_rate,
            card_success_rate: config.card_success_rate,
            test_mode: config
                .test_mode
                .then_some((config.test_processing_delay, config.test_payment_success)),
            test_values: config.environment != crate::config::Environment::Production,
            payout_failure_rate: config.payout_failure_rate,
            memory: Memory::Durable(store),
        }
    }

    /// A bank in test mode: a fixed delay and a fixed outcome (test values still win),
    /// remembering its answers in this process.
    pub fn fixed(delay: Duration, success: bool) -> Self {
        Self {
            delay: (delay, delay),
            refund_delay: (delay, delay),
            upi_success_rate: 1.0,
            card_success_rate: 1.0,
            test_mode: Some((delay, success)),
            test_values: true,
            payout_failure_rate: 0.0,
            memory: Memory::Local(Mutex::new(HashMap::new())),
        }
    }

    fn delay(&self) -> Duration {
        match self.test_mode {
            Some((delay, _)) => delay,
            None => uniform(self.delay),
        }
    }

    /// Refunds take `REFUND_DELAY_*`, or the test-mode delay in test mode.
    fn refund_delay(&self) -> Duration {
        match self.test_mode {
            Some((delay, _)) => delay,
            None => uniform(self.refund_delay),
        }
    }

    fn succeeds(&self, request: &ChargeRequest) -> bool {
        let forced = request.forced_outcome.filter(|_| self.test_values);
        match (forced, self.test_mode) {
            (Some(forced), _) => forced == ForcedOutcome::Success,
            (None, Some((_, success))) => success,
            (None, None) => {
                let rate = match request.method {
                    Method::Upi => self.upi_success_rate,
                    Method::Card => self.card_success_rate,
                };
                rand::rng().random_bool(rate)
            }
        }
    }

    /// Stores `decided` as the answer to its key unless the key has one; returns the answer
    /// that stands, once it is ready.
    async fn answer(&self, decided: Operation) -> anyhow::Result<Operation> {
        let at = now();
        let stands = match &self.memory {
            Memory::Durable(store) => memory::record(store, &decided, at).await?,
            Memory::Local(map) => {
                let mut map = map
                    .lock()
                    .map_err(|_| anyhow::anyhow!("bank memory poisoned"))?;
                let entry = map
                    .entry(decided.idempotency_key.clone())
                    .and_modify(|op| op.calls += 1)
                    .or_insert(decided);
                entry.clone()
            }
        };
        if let Ok(wait) = (stands.ready_at - now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        Ok(stands)
    }
}

/// A uniform duration in `[min, max]`.
pub fn uniform((min, max): (Duration, Duration)) -> Duration {
    if max <= min {
        return min;
    }
    let ms = rand::rng().random_range(min.as_millis()..=max.as_millis());
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

#[async_trait]
impl Connector for SimulatedBank {
    async fn charge(&self, request: &ChargeRequest) -> anyhow::Result<ChargeOutcome> {
        let (succeeded, error) = if self.succeeds(request) {
            (true, None)
        } else {
            let description = match request.method {
                Method::Upi => "UPI payment was declined by the bank",
                Method::Card => "Card payment was declined by the issuer",
            };
            (
                false,
                Some(("PAYMENT_FAILED".to_owned(), description.to_owned())),
            )
        };
        let decided = Operation {
            idempotency_key: request.idempotency_key.clone(),
            kind: "charge".into(),
            succeeded,
            error_code: error.as_ref().map(|e| e.0.clone()),
            error_description: error.map(|e| e.1),
            calls: 1,
            ready_at: now() + self.delay(),
        };
        let stands = self.answer(decided).await?;
        Ok(if stands.succeeded {
            ChargeOutcome::Succeeded
        } else {
            ChargeOutcome::Failed {
                code: stands.error_code.unwrap_or_else(|| "PAYMENT_FAILED".into()),
                description: stands.error_description.unwrap_or_default(),
            }
        })
    }

    async fn status(&self, key: &str) -> anyhow::Result<Option<ChargeOutcome>> {
        let found = match &self.memory {
            Memory::Durable(store) => memory::get(store, key).await?,
            Memory::Local(map) => map
                .lock()
                .map_err(|_| anyhow::anyhow!("the bank's memory is poisoned"))?
                .get(key)
                .cloned(),
        };
        let Some(op) = found else {
            return Ok(None);
        };
        if let Ok(wait) = (op.ready_at - now()).to_std() {
            tokio::time::sleep(wait).await;
        }
        Ok(Some(if op.succeeded {
            ChargeOutcome::Succeeded
        } else {
            ChargeOutcome::Failed {
                code: op.error_code.unwrap_or_else(|| "PAYMENT_FAILED".into()),
                description: op.error_description.unwrap_or_default(),
            }
        }))
    }

    async fn refund(&self, request: &RefundRequest) -> anyhow::Result<()> {
        let decided = Operation {
            idempotency_key: request.idempotency_key.clone(),
            kind: "refund".into(),
            succeeded: true,
            error_code: None,
            error_description: None,
            calls: 1,
            ready_at: now() + self.refund_delay(),
        };
        self.answer(decided).await?;
        Ok(())
    }

    async fn payout(&self, request: &PayoutRequest) -> anyhow::Result<String> {
        // A transfer takes as long as a refund (the test-mode delay in test mode).
        tokio::time::sleep(self.refund_delay()).await;
        if self.payout_failure_rate > 0.0 && rand::rng().random_bool(self.payout_failure_rate) {
            anyhow::bail!("the bank refused the transfer (simulated)");
        }
        Ok(utr(&request.idempotency_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank(rate: f64, test_mode: Option<(Duration, bool)>) -> SimulatedBank {
        SimulatedBank {
            delay: (Duration::ZERO, Duration::ZERO),
            refund_delay: (Duration::ZERO, Duration::ZERO),
            upi_success_rate: rate,
            card_success_rate: rate,
            test_mode,
            test_values: true,
            payout_failure_rate: 0.0,
            memory: Memory::Local(Mutex::new(HashMap::new())),
        }
    }

    fn request(method: Method, forced: Option<ForcedOutcome>) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: charge_key("pay_x"),
            payment_id: "pay_x".into(),
            amount: 100,
            currency: "INR".into(),
            method,
            forced_outcome: forced,
        }
    }

    #[test]
    fn forced_outcomes_win_over_test_mode_and_rates() {
        let b = bank(1.0, Some((Duration::ZERO, true)));
        assert!(!b.succeeds(&request(Method::Card, Some(ForcedOutcome::Failure))));
        let b = bank(0.0, None);
        assert!(b.succeeds(&request(Method::Upi, Some(ForcedOutcome::Success))));
    }

    #[test]
    fn in_production_test_values_force_nothing() {
        let mut b = bank(0.0, None);
        b.test_values = false;
        assert!(!b.succeeds(&request(Method::Upi, Some(ForcedOutcome::Success))));
        b.upi_success_rate = 1.0;
        assert!(b.succeeds(&request(Method::Upi, Some(ForcedOutcome::Failure))));
    }

    #[test]
    fn test_mode_fixes_the_outcome_and_the_delay() {
        let b = bank(0.0, Some((Duration::from_millis(1000), true)));
        assert!(b.succeeds(&request(Method::Upi, None)));
        assert_eq!(b.delay(), Duration::from_millis(1000));
        let b = bank(1.0, Some((Duration::ZERO, false)));
        assert!(!b.succeeds(&request(Method::Upi, None)));
    }

    #[test]
    fn rates_decide_outside_test_mode() {
        assert!((0..200).all(|_| bank(1.0, None).succeeds(&request(Method::Upi, None))));
        assert!((0..200).all(|_| !bank(0.0, None).succeeds(&request(Method::Card, None))));
        let b = bank(0.9, None);
        let wins = (0..10_000)
            .filter(|_| b.succeeds(&request(Method::Upi, None)))
            .count();
        assert!((8700..=9300).contains(&wins), "{wins} of 10000 at rate 0.9");
    }

    #[tokio::test]
    async fn a_repeated_key_gets_the_first_answer_and_is_counted() {
        // At a 50 % rate, twenty repeats of one key all get the first call's outcome.
        let b = bank(0.5, None);
        let first = b.charge(&request(Method::Upi, None)).await.unwrap();
        for _ in 0..20 {
            assert_eq!(b.charge(&request(Method::Upi, None)).await.unwrap(), first);
        }
        let Memory::Local(map) = &b.memory else {
            unreachable!()
        };
        assert_eq!(map.lock().unwrap()[&charge_key("pay_x")].calls, 21);
    }

    #[test]
    fn uniform_delays_stay_in_range() {
        let range = (Duration::from_millis(5000), Duration::from_millis(10000));
        for _ in 0..1000 {
            let d = uniform(range);
            assert!(d >= range.0 && d <= range.1);
        }
    }
}
