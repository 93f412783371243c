//! The suite's own preflight: when PostgreSQL or Redis is not reachable, the run stops at once
//! with one message naming the URL tried and the variable that sets it.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use crate::process::free_port;

/// Runs this test binary's `filter` tests with `variable` pointing at a closed port; returns
/// the URL used, whether it failed, how long it took and what it printed.
fn run_against_closed_port(
    variable: &str,
    scheme: &str,
    filter: &str,
) -> (String, bool, Duration, String) {
    let url = format!("{scheme}://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([filter, "--test-threads", "4"])
        .env(variable, &url)
        .output()
        .expect("run the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (url, out.status.success(), started.elapsed(), text)
}

#[test]
fn an_unreachable_postgres_stops_the_suite_at_once_with_one_message() {
    let (url, ok, took, text) =
        run_against_closed_port("PAYGATE_TEST_POSTGRES_URL", "postgres", "postgres::");
    assert!(!ok, "the run passed without PostgreSQL:\n{text}");
    assert!(took < Duration::from_secs(20), "took {took:?}:\n{text}");
    let message = format!("PostgreSQL is not reachable at {url}");
    assert_eq!(text.matches(&message).count(), 1, "{text}");
    assert!(text.contains("PAYGATE_TEST_POSTGRES_URL"), "{text}");
    assert!(
        !text.contains("panicked"),
        "tests failed one by one:\n{text}"
    );
}

#[test]
fn an_unreachable_redis_stops_the_suite_at_once_with_one_message() {
    let (url, ok, took, text) =
        run_against_closed_port("PAYGATE_TEST_REDIS_URL", "redis", "redis::");
    assert!(!ok, "the run passed without Redis:\n{text}");
    assert!(took < Duration::from_secs(20), "took {took:?}:\n{text}");
    let message = format!("Redis is not reachable at {url}");
    assert_eq!(text.matches(&message).count(), 1, "{text}");
    assert!(text.contains("PAYGATE_TEST_REDIS_URL"), "{text}");
    assert!(
        !text.contains("panicked"),
        "tests failed one by one:\n{text}"
    );
}
