//! The payment processor behind a connector trait, and the simulated bank (SPEC A5).
//!
//! The simulated bank waits a uniform delay (or the fixed test-mode delay), then decides:
//! a documented test value forces its outcome; test mode answers `TEST_PAYMENT_SUCCESS`;
//! otherwise the method's success rate decides. A real processor is another [`Connector`].

use std::time::Duration;

use async_trait::async_trait;
use paygate_core::{ForcedOutcome, Method};
use rand::RngExt as _;

use crate::config::Config;

/// What the processor needs to know about a payment. Never the card number or CVV.
#[derive(Clone, Debug)]
pub struct ChargeRequest {
    pub payment_id: String,
    pub amount: i64,
    pub currency: String,
    pub method: Method,
    pub forced_outcome: Option<ForcedOutcome>,
}

/// The processor's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded,
    Failed { code: String, description: String },
}

/// A payment processor.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Charges the payment. May take seconds; holds no database connection.
    async fn charge(&self, request: &ChargeRequest) -> ChargeOutcome;
    /// Sends a refund back to the customer. May take seconds.
    async fn refund(&self, refund_id: &str, amount: i64);
}

/// The simulated bank.
#[derive(Clone, Debug)]
pub struct SimulatedBank {
    delay: (Duration, Duration),
    refund_delay: (Duration, Duration),
    upi_success_rate: f64,
    card_success_rate: f64,
    test_mode: Option<(Duration, bool)>,
}

impl SimulatedBank {
    /// A bank configured by SPEC A5's settings.
    pub fn from_config(config: &Config) -> Self {
        Self {
            delay: config.processing_delay,
            refund_delay: config.refund_delay,
            upi_success_rate: config.upi_success_rate,
            card_success_rate: config.card_success_rate,
            test_mode: config
                .test_mode
                .then_some((config.test_processing_delay, config.test_payment_success)),
        }
    }

    /// A bank in test mode: a fixed delay and a fixed outcome (test values still win).
    pub fn fixed(delay: Duration, success: bool) -> Self {
        Self {
            delay: (delay, delay),
            refund_delay: (delay, delay),
            upi_success_rate: 1.0,
            card_success_rate: 1.0,
            test_mode: Some((delay, success)),
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
        match (request.forced_outcome, self.test_mode) {
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
    async fn charge(&self, request: &ChargeRequest) -> ChargeOutcome {
        tokio::time::sleep(self.delay()).await;
        if self.succeeds(request) {
            ChargeOutcome::Succeeded
        } else {
            ChargeOutcome::Failed {
                code: "PAYMENT_FAILED".into(),
                description: match request.method {
                    Method::Upi => "UPI payment was declined by the bank".into(),
                    Method::Card => "Card payment was declined by the issuer".into(),
                },
            }
        }
    }

    async fn refund(&self, _refund_id: &str, _amount: i64) {
        tokio::time::sleep(self.refund_delay()).await;
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
        }
    }

    fn request(method: Method, forced: Option<ForcedOutcome>) -> ChargeRequest {
        ChargeRequest {
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

    #[test]
    fn uniform_delays_stay_in_range() {
        let range = (Duration::from_millis(5000), Duration::from_millis(10000));
        for _ in 0..1000 {
            let d = uniform(range);
            assert!(d >= range.0 && d <= range.1);
        }
    }
}
