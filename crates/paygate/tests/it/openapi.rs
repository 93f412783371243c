//! The OpenAPI document: the served one is the checked-in `docs/openapi.json`, and it
//! describes every route of the API port — each documented operation reaches its handler
//! (not the router's "no such endpoint" or "method not allowed") and answers a status the
//! document lists; the methods it does not list answer 405. (The router and the document are
//! built from the same `#[utoipa::path]` annotations, so a route cannot be served without
//! being documented; these probes check the other direction and the listed answers.)
//!
//! To refresh the file after changing the API:
//! `PAYGATE_WRITE_OPENAPI=1 cargo test -p paygate --test it openapi::sqlite`.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, KEY, SECRET, TestApp, every_backend, http};

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

async fn served(t: &TestApp) -> (String, Value) {
    let res = http()
        .get(t.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let text = res.text().await.unwrap();
    let doc = serde_json::from_str(&text).expect("the document is JSON");
    (text, doc)
}

async fn the_served_document_is_the_checked_in_one(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (text, doc) = served(&t).await;
    if std::env::var_os("PAYGATE_WRITE_OPENAPI").is_some() {
        std::fs::write(checked_in(), format!("{text}\n")).unwrap();
    }
    let file: Value = serde_json::from_str(&std::fs::read_to_string(checked_in()).unwrap())
        .expect("docs/openapi.json is JSON");
    assert!(
        doc == file,
        "the served OpenAPI document differs from docs/openapi.json; refresh it with \
         PAYGATE_WRITE_OPENAPI=1 cargo test -p paygate --test it openapi::sqlite"
    );
    assert_eq!(doc["openapi"], "3.1.0");
    // Every field of every schema is described.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut undocumented = Vec::new();
    for (name, schema) in schemas {
        let mut parts = vec![schema];
        parts.extend(schema["allOf"].as_array().into_iter().flatten());
        for part in parts {
            for (field, s) in part["properties"].as_object().into_iter().flatten() {
                let flattened = s.get("$ref").is_some();
                let described =
                    |s: &Value| s["description"].as_str().is_some_and(|d| !d.is_empty());
                let nullable_ref = s["oneOf"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(described));
                if !flattened && !described(s) && !nullable_ref {
                    undocumented.push(format!("{name}.{field}"));
                }
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "undescribed fields: {undocumented:?}"
    );
    // Every operation has a summary, a tag and an id of its own.
    let mut ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            assert!(op["tags"][0].is_string(), "{method} {path} has no tag");
            ids.push(op["operationId"].as_str().unwrap().to_owned());
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids repeat");
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn every_documented_operation_reaches_its_handler(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (_, doc) = served(&t).await;
    let order = t.order(10_000).await;
    let paths = doc["paths"].as_object().unwrap();
    // The API's own routes, as the seed contract names them, are all documented.
    for must in [
        "/health",
        "/api/v1/orders",
        "/api/v1/orders/{id}",
        "/api/v1/orders/{id}/public",
        "/api/v1/payments",
        "/api/v1/payments/{id}",
        "/api/v1/payments/public",
        "/api/v1/payments/{id}/public",
        "/api/v1/payments/{id}/capture",
        "/api/v1/payments/{id}/refunds",
        "/api/v1/refunds/{id}",
        "/api/v1/webhooks",
        "/api/v1/webhooks/{id}/retry",
        "/api/v1/webhooks/config",
        "/api/v1/test/merchant",
        "/api/v1/test/jobs/status",
        "/api/v1/queue/status",
    ] {
        assert!(paths.contains_key(must), "{must} is not documented");
    }
    let mut probed = 0;
    for (template, item) in paths {
        let path = template.replace("{id}", &order);
        for method in METHODS {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut req = http()
                .request(m, t.url(&path))
                .header("X-Api-Key", KEY)
                .header("X-Api-Secret", SECRET);
            if method != "get" {
                req = req.json(&json!({}));
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            match item.get(method) {
                None => assert_eq!(
                    status, 405,
                    "{method} {template} is not documented but answered {status}: {text}"
                ),
                Some(op) => {
                    probed += 1;
                    assert!(
                        !text.contains("No such endpoint")
                            && !text.contains("Method not allowed on this endpoint"),
                        "{method} {template} is documented but not routed: {text}"
                    );
                    assert!(
                        op["responses"].get(status.to_string()).is_some(),
                        "{method} {template} answered {status}, which its operation does not \
                         list: {text}"
                    );
                }
            }
        }
    }
    assert!(probed >= 27, "{probed} operations probed");
    // And a path the document does not have is the router's 404.
    let res = http()
        .get(t.url("/api/v1/not-a-route"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

every_backend!(
    the_served_document_is_the_checked_in_one,
    every_documented_operation_reaches_its_handler,
);
