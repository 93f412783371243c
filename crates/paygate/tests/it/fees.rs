//! Fees: every successful payment carries its fee and the tax on it, from the merchant's
//! pricing for the method (2 % and GST 18 % by default), rounded half up to the paisa, in its
//! events too; a failed payment carries none, a refund returns none; `paygate merchant pricing`
//! changes the pricing.

use std::process::Command;

use paygate::{merchants::test_merchant, store::events};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, every_backend};

/// A UPI collect payment of `amount` with the test VPA `vpa`, once final.
async fn paid(t: &TestApp, amount: i64, vpa: &str) -> Value {
    let order = t.order(amount).await;
    let (status, p) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "upi", "vpa": vpa}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    assert!(
        p.get("fee").is_none(),
        "the create answer keeps its shape: {p}"
    );
    t.wait_final(p["id"].as_str().unwrap()).await
}

fn cli(t: &TestApp, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .env_clear()
        .env("DATABASE_URL", t.db.url())
        .args(["merchant", "pricing", test_merchant::EMAIL])
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn a_successful_payment_carries_its_fee_and_tax(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    // The defaults: 2 % and GST 18 % of the fee, each rounded half up.
    for (amount, fee, tax) in [(50_000, 1_000, 180), (12_345, 247, 44), (125, 3, 1)] {
        let p = paid(&t, amount, "success@paygate").await;
        assert_eq!(p["status"], "success");
        assert_eq!(
            (p["fee"].clone(), p["tax"].clone()),
            (json!(fee), json!(tax)),
            "{p}"
        );
    }
    // Its event carries them too.
    let p = paid(&t, 50_000, "success@paygate").await;
    let id = p["id"].as_str().unwrap();
    let evs = events::for_resource(&t.app.store, id).await.unwrap();
    let success = evs
        .iter()
        .find(|e| e.event_type == "payment.success")
        .unwrap();
    assert_eq!(success.data["payment"]["fee"], 1_000);
    assert_eq!(success.data["payment"]["tax"], 180);
    // A refund returns the money, not the fee.
    let (status, refund) = t
        .post(&format!("/api/v1/payments/{id}/refunds"), &json!({}))
        .await;
    assert_eq!(status, 201, "{refund}");
    let (_, after) = t.get(&format!("/api/v1/payments/{id}")).await;
    assert_eq!(after["amount_refunded"], 50_000);
    assert_eq!(after["fee"], 1_000);
    // A failed payment carries none.
    let failed = paid(&t, 50_000, "failure@paygate").await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["fee"], Value::Null);
    assert_eq!(failed["tax"], Value::Null);
}

async fn the_merchant_pricing_command_changes_the_fees_of_later_payments(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let shown = cli(&t, &[]);
    assert_eq!(
        shown["pricing"],
        json!([
            {"method": "upi", "fee_bps": 200, "tax_bps": 1800, "default": true},
            {"method": "card", "fee_bps": 200, "tax_bps": 1800, "default": true},
        ])
    );
    let set = cli(&t, &["--method", "card", "--fee", "2.5"]);
    assert_eq!(
        set["pricing"][1],
        json!({"method": "card", "fee_bps": 250, "tax_bps": 1800, "default": false})
    );
    assert_eq!(set["pricing"][0]["default"], true);
    // A card payment of ₹100.01: 2.5 % is 250.025 paise → 250; 18 % of it 45.
    let order = t.order(10_001).await;
    let card = json!({"number": "4111111111111111", "expiry_month": "12", "expiry_year": "30",
                      "cvv": "123", "holder_name": "Asha Rao"});
    let (status, p) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "card", "card": card}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let done = t.wait_final(p["id"].as_str().unwrap()).await;
    assert_eq!(
        (done["fee"].clone(), done["tax"].clone()),
        (json!(250), json!(45))
    );
    // UPI keeps the default.
    let upi = paid(&t, 10_001, "success@paygate").await;
    assert_eq!(upi["fee"], 200);
    // Nothing outside 0–100 % with two decimals.
    for bad in [["--fee", "101"], ["--tax", "1.234"], ["--fee", "2.5.1"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_paygate"))
            .env_clear()
            .env("DATABASE_URL", t.db.url())
            .args(["merchant", "pricing", test_merchant::ID])
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} refused");
    }
    assert_eq!(cli(&t, &[])["pricing"][1]["fee_bps"], 250);
}

every_backend!(
    a_successful_payment_carries_its_fee_and_tax,
    the_merchant_pricing_command_changes_the_fees_of_later_payments,
);
