//! Idempotency keys on authenticated POSTs (Stripe's semantics).
//!
//! A request with `Idempotency-Key` claims the key for its merchant (24 hours). The first
//! request runs; if it succeeds (2xx) its status and body are stored, and a repeat with the
//! same method, path and body gets them back byte for byte with `Idempotent-Replayed: true`,
//! creating and enqueuing nothing. A repeat while the first still runs: 409
//! `IDEMPOTENCY_KEY_IN_USE`. The same key on a different request: 422
//! `IDEMPOTENCY_KEY_REUSED`. A request that fails (4xx, 5xx) stores nothing, so the key can be
//! used again once the request is fixed. The claim is one atomic upsert, so of many
//! concurrent requests with one key exactly one runs. A key held by a request whose process
//! died is taken over after [`STALE_AFTER`].

use axum::{
    body::{Body, Bytes, to_bytes},
    extract::{FromRequestParts, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::Duration;
use sha2::{Digest, Sha256};

use super::{BODY_LIMIT, error::ApiError, extract::Authed};
use crate::{
    app::App,
    store::{
        idempotency::{self, Claim},
        now,
    },
};

/// Longest accepted key.
pub const KEY_MAX: usize = 255;
/// How long a key and its response are kept.
pub const KEEP_FOR: Duration = Duration::hours(24);
/// A key still `running` after this is taken to belong to a request that died.
pub const STALE_AFTER: Duration = Duration::seconds(60);

/// The request's identity: method, path and body (JSON with its keys in a canonical order).
fn request_hash(method: &Method, path: &str, body: &Bytes) -> String {
    let canonical = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => v.to_string().into_bytes(),
        Err(_) => body.to_vec(),
    };
    let mut h = Sha256::new();
    h.update(method.as_str().as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(&canonical);
    hex::encode(h.finalize())
}

/// The middleware.
pub async fn idempotency(State(app): State<App>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get("idempotency-key") else {
        return next.run(req).await;
    };
    let key = match raw.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= KEY_MAX => k.to_owned(),
        _ => {
            return ApiError::bad_request(format!(
                "Idempotency-Key must be 1 to {KEY_MAX} visible ASCII characters"
            ))
            .into_response();
        }
    };
    let (mut parts, body) = req.into_parts();
    let merchant = match Authed::from_request_parts(&mut parts, &app).await {
        Ok(Authed(m)) => m,
        Err(e) => return e.into_response(),
    };
    let Ok(bytes) = to_bytes(body, BODY_LIMIT).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BAD_REQUEST_ERROR",
            format!("Request body is larger than {BODY_LIMIT} bytes"),
        )
        .into_response();
    };
    let hash = request_hash(&parts.method, parts.uri.path(), &bytes);
    let at = now();
    let claim = idempotency::claim(
        &app.store,
        &merchant.id,
        &key,
        &hash,
        at,
        at + KEEP_FOR,
        at - STALE_AFTER,
    )
    .await;
    match claim {
        Err(e) => ApiError::internal(&e).into_response(),
        Ok(Claim::Mismatch) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "This Idempotency-Key was used for a different request",
        )
        .into_response(),
        Ok(Claim::InUse) => ApiError::new(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_KEY_IN_USE",
            "A request with this Idempotency-Key is still being processed",
        )
        .into_response(),
        Ok(Claim::Replay { status, body }) => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
        Ok(Claim::Acquired) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let (head, body) = response.into_parts();
            let body = match to_bytes(body, usize::MAX).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = idempotency::release(&app.store, &merchant.id, &key).await;
                    return ApiError::internal(&e).into_response();
                }
            };
            let stored = if head.status.is_success() {
                idempotency::complete(&app.store, &merchant.id, &key, head.status.as_u16(), &body)
                    .await
            } else {
                idempotency::release(&app.store, &merchant.id, &key).await
            };
            if let Err(e) = stored {
                tracing::error!(error = %e, "idempotency key not stored");
            }
            Response::from_parts(head, Body::from(body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_ignores_json_key_order_and_whitespace_but_not_values_or_paths() {
        let a = request_hash(
            &Method::POST,
            "/api/v1/orders",
            &Bytes::from(r#"{"amount":100,"currency":"INR"}"#),
        );
        let b = request_hash(
            &Method::POST,
            "/api/v1/orders",
            &Bytes::from(r#"{ "currency": "INR", "amount": 100 }"#),
        );
        let c = request_hash(
            &Method::POST,
            "/api/v1/orders",
            &Bytes::from(r#"{"amount":101,"currency":"INR"}"#),
        );
        let d = request_hash(
            &Method::POST,
            "/api/v1/payments",
            &Bytes::from(r#"{"amount":100,"currency":"INR"}"#),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
