//! The settings page (issue 35): the name customers see and the logo on the checkout, the
//! dashboard's time zone, and the transactions' date range, which is read in that zone.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    hardening::no_redirects,
    helpers::{Backend, TestApp, every_backend},
    team::{User, owner, page, post},
};
use paygate::merchants::test_merchant::ID;

/// A PNG of one pixel.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82";

/// Uploads `bytes` as the logo (multipart, as the page's form sends it); status and location.
async fn upload(t: &TestApp, u: &User, bytes: &[u8]) -> (u16, String) {
    let boundary = "paygate-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"logo.png\"\r\n\
         Content-Type: image/png\r\n\r\n",
        u.csrf
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = no_redirects()
        .post(format!("http://{}/dashboard/settings/logo", t.dashboard))
        .header("cookie", &u.cookie)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status().as_u16(), location)
}

/// The notice the settings page shows next.
async fn notice(t: &TestApp, u: &User) -> String {
    let (_, html) = page(t, &u.cookie, "/dashboard/settings").await;
    let at = html
        .find("class=\"notice\"")
        .unwrap_or_else(|| panic!("no notice: {html}"));
    let start = at + html[at..].find('>').unwrap() + 1;
    html[start..start + html[start..].find('<').unwrap()].to_owned()
}

async fn checkout_page(t: &TestApp) -> String {
    let order = t.order(50_000).await;
    let res = crate::helpers::http()
        .get(format!("http://{}/checkout?order_id={order}", t.checkout))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

async fn the_checkout_shows_the_display_name_and_the_logo_uploaded(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let u = owner(&t).await;
    let before = checkout_page(&t).await;
    assert!(
        before.contains("<h1 class=\"merchant\">Test Merchant</h1>"),
        "{before}"
    );
    assert!(!before.contains("/logo/"));
    // The profile: a display name and a time zone; bad values are refused with a reason.
    let (status, _, _) = post(
        &t,
        &u,
        "/dashboard/settings",
        &[
            ("display_name", "Asha's Store"),
            ("time_zone", "Mars/Olympus"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert!(notice(&t, &u).await.contains("IANA name"));
    let long = "x".repeat(101);
    post(
        &t,
        &u,
        "/dashboard/settings",
        &[("display_name", &long), ("time_zone", "UTC")],
    )
    .await;
    assert!(notice(&t, &u).await.contains("at most 100 characters"));
    post(
        &t,
        &u,
        "/dashboard/settings",
        &[
            ("display_name", " Asha's Store "),
            ("time_zone", "Asia/Kolkata"),
        ],
    )
    .await;
    assert_eq!(notice(&t, &u).await, "Profile saved.");
    let (_, settings) = page(&t, &u.cookie, "/dashboard/settings").await;
    assert!(settings.contains("value=\"Asia/Kolkata\""), "{settings}");
    assert!(
        settings.contains("value=\"Asha&#39;s Store\"")
            || settings.contains("value=\"Asha&#x27;s Store\""),
        "{settings}"
    );
    let html = checkout_page(&t).await;
    assert!(
        html.contains("Asha&#39;s Store") || html.contains("Asha&#x27;s Store"),
        "{html}"
    );
    assert!(
        !html.contains("Test Merchant"),
        "the account's name is not shown"
    );
    // The logo: only PNG, JPEG or WebP (known by their bytes), at most 256 KiB.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    assert_eq!(
        upload(&t, &u, svg).await,
        (303, "/dashboard/settings".into())
    );
    assert!(notice(&t, &u).await.contains("PNG, JPEG or WebP"));
    let mut big = PNG.to_vec();
    big.resize(256 * 1024 + 1, 0);
    upload(&t, &u, &big).await;
    assert!(notice(&t, &u).await.contains("at most 256 KiB"));
    let (status, _) = page(&t, &u.cookie, "/dashboard/settings/logo").await;
    assert_eq!(status, 404, "nothing stored");
    assert_eq!(upload(&t, &u, PNG).await.0, 303);
    assert!(notice(&t, &u).await.starts_with("Logo saved"));
    // Served from the database on the dashboard and on the checkout, with its digest as ETag.
    let res = crate::helpers::http()
        .get(format!("http://{}/logo/{ID}", t.checkout))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(res.bytes().await.unwrap().as_ref(), PNG);
    let again = crate::helpers::http()
        .get(format!("http://{}/logo/{ID}", t.checkout))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let html = checkout_page(&t).await;
    assert!(html.contains(&format!("src=\"/logo/{ID}?v=")), "{html}");
    let (status, _) = page(&t, &u.cookie, "/dashboard/settings/logo").await;
    assert_eq!(status, 200);
    // Removed: gone from both.
    let (status, _, _) = post(&t, &u, "/dashboard/settings/logo/remove", &[]).await;
    assert_eq!(status, 303);
    let res = crate::helpers::http()
        .get(format!("http://{}/logo/{ID}", t.checkout))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(!checkout_page(&t).await.contains("/logo/"));
    // Each change is in the audit log, by the owner.
    let (status, log) = t.get("/api/v1/audit_logs?action=settings.").await;
    assert_eq!(status, 200, "{log}");
    let actions: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["settings.logo_removed", "settings.logo", "settings.profile"],
        "{log}"
    );
}

/// The payment ids of a transactions page.
fn listed(html: &str) -> Vec<String> {
    html.split("data-test-id=\"transaction-row\" data-payment-id=\"")
        .skip(1)
        .map(|r| r[..r.find('"').unwrap()].to_owned())
        .collect()
}

async fn the_transactions_date_range_is_read_in_the_merchants_time_zone(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let u = owner(&t).await;
    let upi = t.upi_payment("asha@okaxis").await;
    let id = upi["id"].as_str().unwrap().to_owned();
    let created: DateTime<Utc> = upi["created_at"].as_str().unwrap().parse().unwrap();
    let order = t.order(20_000).await;
    let card = json!({"number": "4111111111111111", "expiry_month": "12", "expiry_year": "2099",
        "cvv": "123", "holder_name": "Asha Rao"});
    let (status, card): (StatusCode, Value) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order, "method": "card", "card": card}),
        )
        .await;
    assert_eq!(status, 201, "{card}");
    // Kiritimati is UTC+14 and Pago Pago UTC-11: the payment's day differs between them.
    let day_in = |zone: chrono_tz::Tz| created.with_timezone(&zone).format("%Y-%m-%d").to_string();
    let (east, west) = (
        day_in(chrono_tz::Pacific::Kiritimati),
        day_in(chrono_tz::Pacific::Pago_Pago),
    );
    assert_ne!(east, west);
    let range = |d: &str| format!("/dashboard/transactions?method=upi&from={d}&to={d}");
    for (zone, mine, other) in [
        ("Pacific/Kiritimati", &east, &west),
        ("Pacific/Pago_Pago", &west, &east),
    ] {
        post(
            &t,
            &u,
            "/dashboard/settings",
            &[("display_name", ""), ("time_zone", zone)],
        )
        .await;
        let (status, html) = page(&t, &u.cookie, &range(mine)).await;
        assert_eq!(status, 200);
        assert_eq!(
            listed(&html),
            std::slice::from_ref(&id),
            "{zone} {mine}: {html}"
        );
        assert!(
            html.contains(&format!("Dates in {zone}")),
            "the zone is shown"
        );
        assert!(html.contains("1 payment<"), "one payment, singular: {html}");
        let (_, html) = page(&t, &u.cookie, &range(other)).await;
        assert!(listed(&html).is_empty(), "{zone} {other}");
        assert!(html.contains("No payments match these filters."));
        assert!(html.contains("data-test-id=\"clear-filters\""));
    }
    // The presets reach from today in the zone; the column says how each was paid; times
    // read in the zone.
    post(
        &t,
        &u,
        "/dashboard/settings",
        &[("display_name", ""), ("time_zone", "Asia/Kolkata")],
    )
    .await;
    let (_, html) = page(&t, &u.cookie, "/dashboard/transactions").await;
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .date_naive();
    let week = (today - chrono::Duration::days(6)).format("%Y-%m-%d");
    assert!(
        html.contains(&format!("from={week}&amp;to={}", today.format("%Y-%m-%d"))),
        "{html}"
    );
    assert!(html.contains(">asha@okaxis<"), "{html}");
    assert!(html.contains(">Visa •••• 1111<"), "{html}");
    assert!(html.contains(" IST</time>"), "{html}");
    assert!(html.contains("2 payments<"));
    assert!(
        !html.contains("data-test-id=\"clear-filters\""),
        "nothing to clear"
    );
    // The CSV export takes the same range.
    let res = crate::helpers::http()
        .get(format!(
            "http://{}/dashboard/transactions.csv?from={}&to={}",
            t.dashboard,
            today.succ_opt().unwrap(),
            today.succ_opt().unwrap()
        ))
        .header("cookie", &u.cookie)
        .send()
        .await
        .unwrap();
    let csv = res.text().await.unwrap();
    assert_eq!(csv.lines().count(), 1, "only the header: {csv}");
}

every_backend!(
    the_checkout_shows_the_display_name_and_the_logo_uploaded,
    the_transactions_date_range_is_read_in_the_merchants_time_zone,
);
