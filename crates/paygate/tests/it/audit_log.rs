//! The audit log (issue 34): every change through the API (by key) and the dashboard (by
//! user), and every sign-in, recorded in the transaction of the change, append-only, listed
//! with filters by the API and on the dashboard (owners and admins), exported as CSV.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, KEY, SECRET, TestApp, every_backend, into_json},
    team::{member, owner, page, post},
};

/// The merchant's audit log through the API, oldest first: `(action, resource id)`.
async fn actions(t: &TestApp, query: &str) -> Vec<(String, String)> {
    let (status, body) = t.get(&format!("/api/v1/audit_logs?limit=100{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut rows: Vec<(String, String)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let id = e["resource"]["id"].as_str().unwrap_or_default().to_owned();
            (e["action"].as_str().unwrap().to_owned(), id)
        })
        .collect();
    rows.reverse();
    rows
}

fn named(rows: &[(String, String)]) -> Vec<&str> {
    rows.iter().map(|(a, _)| a.as_str()).collect()
}

async fn api_changes_are_logged_with_their_key_in_order(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    // The first change carries a user agent, and an idempotency key it is retried with.
    let send = || {
        t.client
            .post(t.url("/api/v1/orders"))
            .header("X-Api-Key", KEY)
            .header("X-Api-Secret", SECRET)
            .header("User-Agent", "audit-test/1.0")
            .header("Idempotency-Key", "order-once")
            .json(&json!({"amount": 50_000}))
            .send()
    };
    let (status, order) = into_json(send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (status, again) = into_json(send().await.unwrap()).await;
    assert_eq!((status, &again["id"]), (StatusCode::CREATED, &order["id"]));
    let order_id = order["id"].as_str().unwrap();
    let (status, payment) = t
        .post(
            "/api/v1/payments",
            &json!({"order_id": order_id, "method": "upi", "vpa": "success@upi"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{payment}");
    let pay_id = payment["id"].as_str().unwrap();
    t.wait_final(pay_id).await;
    let (status, _) = t
        .post(&format!("/api/v1/payments/{pay_id}/capture"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let refunds = format!("/api/v1/payments/{pay_id}/refunds");
    let (status, refund) = t.post(&refunds, &json!({"amount": 1_000})).await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    // Refused: more than is left. Nothing changed, nothing logged.
    let (status, _) = t.post(&refunds, &json!({"amount": 49_500})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, link) = t
        .post("/api/v1/payment_links", &json!({"amount": 20_000}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let link_id = link["id"].as_str().unwrap();
    let cancel = format!("/api/v1/payment_links/{link_id}/cancel");
    assert_eq!(t.post(&cancel, &json!({})).await.0, StatusCode::OK);
    let (status, endpoint) = t
        .post(
            "/api/v1/webhooks/endpoints",
            &json!({"url": "https://merchant.example.com/hooks"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let we = endpoint["id"].as_str().unwrap();
    let path = format!("/api/v1/webhooks/endpoints/{we}");
    let (status, _) = t
        .call(
            reqwest::Method::PATCH,
            &path,
            Some(&json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = t.call(reqwest::Method::DELETE, &path, None).await;
    assert!(status.is_success(), "{status}");

    let merchant = paygate::merchants::test_merchant::ID;
    let rows = actions(&t, "").await;
    assert_eq!(
        named(&rows),
        [
            "order.create",
            "payment.create",
            "payment.capture",
            "refund.create",
            "payment_link.create",
            "payment_link.cancel",
            "webhook_endpoint.create",
            "webhook_endpoint.update",
            "webhook_endpoint.delete",
        ],
        "{rows:?}"
    );
    let ids: Vec<&str> = rows.iter().map(|(_, id)| id.as_str()).collect();
    let refund_id = refund["id"].as_str().unwrap();
    assert_eq!(
        ids,
        [
            order_id, pay_id, pay_id, refund_id, link_id, link_id, we, we, we
        ]
    );
    // Who, from where, with what.
    let (_, body) = t.get("/api/v1/audit_logs?action=order.create").await;
    let first = &body["data"][0];
    assert_eq!(
        first["actor"],
        json!({"type": "api_key", "id": KEY, "name": KEY})
    );
    assert_eq!(first["resource"], json!({"type": "order", "id": order_id}));
    assert_eq!(first["ip"], "127.0.0.1");
    assert_eq!(first["user_agent"], "audit-test/1.0");
    assert_eq!(first["outcome"], "success");
    assert!(first["id"].as_str().unwrap().starts_with("audit_"));
    assert_eq!(body["total"], 1, "the retried request logged nothing more");

    // Filters: a kind of action, a resource, an actor, a time range.
    let payment_actions = actions(&t, "&action=payment.").await;
    assert_eq!(
        named(&payment_actions),
        ["payment.create", "payment.capture"]
    );
    let on_payment = actions(&t, &format!("&resource_id={pay_id}")).await;
    assert_eq!(named(&on_payment), ["payment.create", "payment.capture"]);
    let typed = actions(&t, "&resource_type=webhook_endpoint").await;
    assert_eq!(typed.len(), 3);
    assert_eq!(actions(&t, &format!("&actor={KEY}")).await.len(), 9);
    assert!(actions(&t, "&actor=someone-else").await.is_empty());
    assert!(actions(&t, "&from=2999-01-01T00:00:00Z").await.is_empty());
    assert_eq!(actions(&t, "&to=2999-01-01T00:00:00Z").await.len(), 9);
    for bad in ["action=", "from=yesterday", "actor=%07"] {
        let (status, body) = t.get(&format!("/api/v1/audit_logs?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    // Pages by cursor, newest first.
    let (_, first_page) = t.get("/api/v1/audit_logs?limit=4").await;
    assert_eq!(first_page["has_more"], true);
    let last = first_page["data"][3]["id"].as_str().unwrap();
    let (_, next) = t
        .get(&format!("/api/v1/audit_logs?limit=4&starting_after={last}"))
        .await;
    assert_eq!(next["data"][0]["action"], "payment_link.create");
    // Another merchant's key sees none of it.
    let other = paygate::merchants::create(&t.app.store, "Other", "other@shop.example")
        .await
        .unwrap();
    let (status, theirs) = t
        .call_as(
            &other.merchant.api_key,
            &other.api_secret,
            reqwest::Method::GET,
            "/api/v1/audit_logs",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{theirs}");
    assert_eq!(theirs["total"], 0);
    assert_ne!(other.merchant.id, merchant);
}

/// A trigger that refuses every insert into `table` (the fault a test injects).
fn refuse_inserts(backend: Backend, table: &str) -> (String, String) {
    if backend == Backend::Sqlite {
        (
            format!(
                "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            ),
            format!("DROP TRIGGER refuse_{table}"),
        )
    } else {
        (
            format!(
                "CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
                 CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION refuse_{table}()"
            ),
            format!("DROP TRIGGER refuse_{table} ON {table}; DROP FUNCTION refuse_{table}()"),
        )
    }
}

async fn an_entry_commits_with_its_change_or_not_at_all(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let order = t.order(50_000).await;
    assert_eq!(t.count("audit_logs").await, 1);
    // The change fails after its entry was written (its events cannot be stored): the
    // transaction rolls back, the entry with it.
    let (refuse, allow) = refuse_inserts(backend, "events");
    t.execute(&refuse).await.unwrap();
    let body = json!({"order_id": order, "method": "upi", "vpa": "success@upi"});
    let (status, _) = t.post("/api/v1/payments", &body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    t.execute(&allow).await.unwrap();
    assert_eq!(t.count("payments").await, 0);
    assert_eq!(
        t.count("audit_logs").await,
        1,
        "no entry of a change rolled back"
    );
    // The entry cannot be written: the change does not happen either.
    let (refuse, allow) = refuse_inserts(backend, "audit_logs");
    t.execute(&refuse).await.unwrap();
    let (status, _) = t.post("/api/v1/orders", &json!({"amount": 1_000})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (status, _) = t
        .post("/api/v1/payment_links", &json!({"amount": 1_000}))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    t.execute(&allow).await.unwrap();
    assert_eq!(t.count("orders").await, 1);
    assert_eq!(t.count("payment_links").await, 0);
    // Both work again, each with its entry.
    assert_eq!(
        t.post("/api/v1/payments", &body).await.0,
        StatusCode::CREATED
    );
    t.order(1_000).await;
    let rows = actions(&t, "").await;
    assert_eq!(
        named(&rows),
        ["order.create", "payment.create", "order.create"]
    );
}

async fn the_log_is_append_only(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    t.order(50_000).await;
    for sql in [
        "UPDATE audit_logs SET action = 'order.delete'",
        "DELETE FROM audit_logs",
    ] {
        let refused = t.execute(sql).await.expect_err(sql);
        assert!(refused.contains("append-only"), "{sql}: {refused}");
    }
    if backend != Backend::Sqlite {
        let refused = t.execute("TRUNCATE audit_logs").await.unwrap_err();
        assert!(refused.contains("append-only"), "{refused}");
    }
    assert_eq!(named(&actions(&t, "").await), ["order.create"]);
}

async fn dashboard_changes_and_sign_ins_are_logged_in_order(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    // A wrong password for a user's email: a failed sign-in in that merchant's log.
    assert!(
        crate::team::sign_in(&t, "test@example.com", "wrong password")
            .await
            .is_none()
    );
    let owner = owner(&t).await;
    let dev = member(&t, &owner, "developer").await;
    let (status, page_body) = page(&t, &dev.cookie, "/dashboard/audit-log").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page_body}");
    let (status, ..) = post(&t, &owner, "/dashboard/upi", &[("upi_id", "shop@okaxis")]).await;
    assert_eq!(status, 303);
    let (_, team) = page(&t, &owner.cookie, "/dashboard/team").await;
    let dev_id = {
        let at = team.rfind("/role\"").expect("a role form");
        let start = team[..at].rfind("/dashboard/team/").unwrap() + "/dashboard/team/".len();
        team[start..at].to_owned()
    };
    let role = format!("/dashboard/team/{dev_id}/role");
    let (status, ..) = post(&t, &owner, &role, &[("role", "support")]).await;
    assert_eq!(status, 303);

    let (status, body) = t.get("/api/v1/audit_logs?limit=100").await;
    assert_eq!(status, StatusCode::OK);
    let mut entries: Vec<Value> = body["data"].as_array().unwrap().clone();
    entries.reverse();
    let seen: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"]["name"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    let (o, d) = ("test@example.com", "developer@shop.example");
    assert_eq!(
        seen,
        [
            ("user.sign_in", o, "failure"),
            ("user.sign_in", o, "success"),
            ("invitation.create", o, "success"),
            ("user.join", d, "success"),
            ("user.sign_in", d, "success"),
            ("settings.upi_id", o, "success"),
            ("user.role_change", o, "success"),
        ]
    );
    assert!(entries.iter().all(|e| e["actor"]["type"] == "user"));
    assert_eq!(
        entries[6]["resource"],
        json!({"type": "user", "id": dev_id})
    );
    // No invitation token in the log: the invitation is named by its handle.
    assert_eq!(entries[2]["resource"]["id"].as_str().unwrap().len(), 16);

    // The owner's page lists them, newest first; the CSV has them all.
    let (status, html) = page(&t, &owner.cookie, "/dashboard/audit-log").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("data-test-id=\"audit-row\"").count(), 7);
    let first = html.find("user.role_change").unwrap();
    assert!(first < html.find("settings.upi_id").unwrap());
    let (_, filtered) = page(
        &t,
        &owner.cookie,
        &format!("/dashboard/audit-log?actor={dev_id}"),
    )
    .await;
    assert_eq!(filtered.matches("data-test-id=\"audit-row\"").count(), 2);
    let (status, csv) = page(&t, &owner.cookie, "/dashboard/audit-log.csv?action=user.").await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("id,created_at,actor_type"), "{csv}");
    assert_eq!(lines.len(), 1 + 5, "{csv}");
    assert!(lines[1].contains("user.role_change") && lines[5].contains("failure"));
}

every_backend!(
    api_changes_are_logged_with_their_key_in_order,
    an_entry_commits_with_its_change_or_not_at_all,
    the_log_is_append_only,
    dashboard_changes_and_sign_ins_are_logged_in_order,
);
