//! The configuration's parsing and validation.

use super::*;

fn parse(args: &[&str]) -> Result<Config, String> {
    Config::from_args(std::iter::once("paygate").chain(args.iter().copied()))
}

#[test]
fn defaults_follow_the_spec() {
    let c = parse(&[
        "--host",
        "127.0.0.1",
        "--database-url",
        "sqlite://./data/paygate.db",
    ])
    .expect("defaults are valid");
    assert_eq!(
        (c.port, c.dashboard_port, c.checkout_port),
        (8000, 3000, 3001)
    );
    assert_eq!(
        c.processing_delay,
        (Duration::from_millis(5000), Duration::from_millis(10000))
    );
    assert_eq!(
        c.refund_delay,
        (Duration::from_millis(3000), Duration::from_millis(5000))
    );
    assert!(c.test_payment_success);
}

#[test]
fn bad_values_name_the_setting() {
    let e = parse(&["--upi-success-rate", "1.5"]).unwrap_err();
    assert!(e.contains("UPI_SUCCESS_RATE"), "{e}");
    let e = parse(&["--processing-delay-min", "20000"]).unwrap_err();
    assert!(e.contains("PROCESSING_DELAY_MIN"), "{e}");
    let e = parse(&["--database-url", "mysql://x"]).unwrap_err();
    assert!(e.contains("DATABASE_URL"), "{e}");
    let e = parse(&["--port", "eighty"]).unwrap_err();
    assert!(e.contains("PORT"), "{e}");
    let e = parse(&["--refund-delay-min", "9000"]).unwrap_err();
    assert!(e.contains("REFUND_DELAY_MIN"), "{e}");
}

/// A `PAYGATE_SECRET_KEY` for the tests.
const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[test]
fn the_secret_key_is_required_in_production_and_checked() {
    let e = parse(&["--production"]).unwrap_err();
    assert!(e.contains("PAYGATE_SECRET_KEY"), "{e}");
    let e = parse(&["--secret-key", "not hex"]).unwrap_err();
    assert!(
        e.contains("PAYGATE_SECRET_KEY") && e.contains("64 hex"),
        "{e}"
    );
    let e = parse(&["--secret-key", "abcd"]).unwrap_err();
    assert!(e.contains("PAYGATE_SECRET_KEY"), "{e}");
    let c = parse(&["--production", "--secret-key", KEY]).unwrap();
    assert_eq!(c.secret_key.0[..2], [0x00, 0x11]);
    assert_eq!(parse(&[]).unwrap().secret_key, SecretKey::development());
    assert!(
        !format!("{:?}", c.secret_key).contains("0011"),
        "never printed"
    );
}

#[test]
fn production_turns_the_test_conveniences_off_and_refuses_test_mode() {
    let c = parse(&["--env", "production", "--secret-key", KEY])
        .expect("production defaults are valid");
    assert_eq!(c.environment, Environment::Production);
    assert!(!c.seed_test_merchant && !c.test_endpoints && !c.test_mode);
    assert!(!c.webhook_allow_loopback && !c.webhook_allow_private);
    assert!(
        c.posture()
            .starts_with("production posture: test merchant off"),
        "{}",
        c.posture()
    );
    let same = parse(&["--production", "--secret-key", KEY]).unwrap();
    assert_eq!(same.environment, Environment::Production);
    for (flag, name) in [
        ("--test-mode", "TEST_MODE"),
        ("--seed-test-merchant", "SEED_TEST_MERCHANT"),
        ("--test-endpoints", "TEST_ENDPOINTS"),
        ("--webhook-allow-loopback", "WEBHOOK_ALLOW_LOOPBACK"),
    ] {
        let e = parse(&["--production", flag, "true"]).unwrap_err();
        assert!(e.contains(name) && e.contains("production"), "{e}");
    }
    let e = parse(&["--production", "--test-fault-pause", "after-claim:10"]).unwrap_err();
    assert!(e.contains("TEST_FAULT_PAUSE"), "{e}");
    let private = parse(&[
        "--production",
        "--secret-key",
        KEY,
        "--webhook-allow-private",
        "true",
    ])
    .unwrap();
    assert!(
        private.webhook_allow_private,
        "private networks can be allowed on purpose"
    );
    let e = parse(&["--env", "staging"]).unwrap_err();
    assert!(e.contains("PAYGATE_ENV"), "{e}");
    let dev = parse(&[]).unwrap();
    assert!(dev.seed_test_merchant && dev.test_endpoints && dev.webhook_allow_loopback);
    assert!(!dev.test_mode);
}

#[test]
fn test_payment_success_is_true_unless_false() {
    assert!(
        !parse(&["--test-payment-success", "false"])
            .unwrap()
            .test_payment_success
    );
    assert!(
        parse(&["--test-payment-success", "no"])
            .unwrap()
            .test_payment_success
    );
}

#[test]
fn settlement_periods_take_units_and_follow_test_mode() {
    let c = parse(&[]).expect("defaults are valid");
    assert_eq!(c.settlement_delay, Duration::from_secs(2 * 86_400));
    assert_eq!(c.settlement_interval, Duration::from_secs(3600));
    let c = parse(&["--test-mode", "true"]).expect("test mode is valid");
    assert_eq!(c.settlement_delay, Duration::from_secs(5));
    let c = parse(&["--settlement-delay", "90", "--settlement-interval", "15m"]).unwrap();
    assert_eq!(
        (c.settlement_delay, c.settlement_interval),
        (Duration::from_secs(90), Duration::from_secs(900))
    );
    let c = parse(&["--settlement-delay", "0"]).unwrap();
    assert_eq!(c.settlement_delay, Duration::ZERO);
    for bad in ["2w", "-1", "d", "99999d"] {
        let e = parse(&[&format!("--settlement-delay={bad}")]).unwrap_err();
        assert!(e.contains("SETTLEMENT_DELAY"), "{bad}: {e}");
    }
    let e = parse(&["--settlement-interval", "1y"]).unwrap_err();
    assert!(e.contains("SETTLEMENT_INTERVAL"), "{e}");
    let c = parse(&["--settlement-interval", "0"]).unwrap();
    assert!(
        c.settlement_interval.is_zero(),
        "0 turns the worker's settling off"
    );
    let e = parse(&["--payout-failure-rate", "2"]).unwrap_err();
    assert!(e.contains("PAYOUT_FAILURE_RATE"), "{e}");
}

#[test]
fn write_lanes_default_to_one_and_refuse_zero() {
    let lanes = |args: &[&str]| parse(args).map(|c| c.write_lanes);
    assert_eq!(lanes(&["--database-url", "sqlite://./x.db"]), Ok(1));
    assert_eq!(lanes(&["--database-url", "postgres://h/db"]), Ok(1));
    assert_eq!(
        lanes(&["--database-url", "postgres://h/db", "--write-lanes", "4"]),
        Ok(4)
    );
    let e = lanes(&["--write-lanes", "0"]).unwrap_err();
    assert!(e.contains("WRITE_LANES"), "{e}");
}
