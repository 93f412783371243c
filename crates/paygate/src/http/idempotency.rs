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
//! died is taken over after `IDEMPOTENCY_TAKEOVER_MS` (60 s).
//!
//! The response is stored in the same transaction as the change it reports: the middleware
//! hands the handler its claim ([`Idempotency`]), the handler passes it to the service with the
//! way to render the response, and the service completes the key in its transaction (see
//! `idempotent`). A retry after a crash before that commit runs the request once (after the
//! takeover window); after it, replays the committed answer. Completing and releasing are
//! conditional on the claim's token, so a slow original whose key was taken over cannot
//! overwrite the new holder's answer: its change is rolled back and it answers 409.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes, to_bytes},
    extract::{FromRequestParts, Request, State},
    http::{HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::Duration;
use sha2::{Digest, Sha256};

use super::{ApiResult, ApiState, BODY_LIMIT, error::ApiError, extract::Authed};
use crate::{
    config::FaultPoint,
    idempotent::{Render, Replay},
    store::{
        idempotency::{self, Claim, Held, Stored},
        now,
    },
};

/// Longest accepted key.
pub const KEY_MAX: usize = 255;
/// How long a key and its response are kept.
pub const KEEP_FOR: Duration = Duration::hours(24);

/// The claim of the request's idempotency key, if it sent one (for the handler to pass to its
/// service).
pub struct Idempotency(pub Option<Arc<Held>>);

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<Arc<Held>>().cloned()))
    }
}

impl Idempotency {
    /// Runs `call` (the handler's service call) with the request's claim and how the API
    /// renders its result, so the service stores that response with its change; answers the
    /// result rendered the same way. Without a key, `call` gets no claim and nothing is stored.
    pub async fn answer<T, E, Fut>(
        self,
        render: impl Fn(&T) -> Stored + Send + Sync + 'static,
        call: impl FnOnce(Option<Replay<T>>) -> Fut,
    ) -> ApiResult<Answer>
    where
        Fut: Future<Output = Result<T, E>>,
        ApiError: From<E>,
    {
        let render: Render<T> = Arc::new(render);
        let replay = self.0.map(|held| Replay {
            held,
            render: render.clone(),
        });
        let stored = replay.is_some();
        let value = call(replay).await?;
        Ok(Answer {
            response: render(&value),
            stored,
        })
    }
}

/// Marks a response whose body was stored with the change it reports.
#[derive(Clone, Copy)]
struct StoredWithChange;

/// A JSON answer rendered once: the bytes the client gets are the bytes an idempotency key
/// stores. `stored` says the service stored them with its change.
pub struct Answer {
    pub response: Stored,
    pub stored: bool,
}

impl Answer {
    /// The answer for `view` with `status`.
    pub fn json<T: serde::Serialize>(status: StatusCode, view: &T) -> Stored {
        // Through a `Value`, as every other JSON answer of the API (keys in a fixed order).
        let body = serde_json::to_value(view)
            .and_then(|v| serde_json::to_vec(&v))
            .unwrap_or_default();
        Stored {
            status: status.as_u16(),
            body,
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.response.body));
        *response.status_mut() =
            StatusCode::from_u16(self.response.status).unwrap_or(StatusCode::OK);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.stored {
            response.extensions_mut().insert(StoredWithChange);
        }
        response
    }
}

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
pub async fn idempotency(State(app): State<ApiState>, req: Request, next: Next) -> Response {
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
        Ok(Authed(m, _)) => m,
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
    let takeover = Duration::from_std(app.settings.idempotency_takeover).unwrap_or(Duration::MAX);
    let claim = idempotency::claim(
        &app.store,
        &merchant.id,
        &key,
        &hash,
        at,
        at + KEEP_FOR,
        at - takeover,
        &app.owner,
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
        Ok(Claim::InUse) => ApiError::key_in_use().into_response(),
        Ok(Claim::Replay(stored)) => {
            let mut response = Answer {
                response: stored,
                stored: false,
            }
            .into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
        Ok(Claim::Acquired(held)) => {
            let held = Arc::new(held);
            pause(&app, FaultPoint::AfterClaim).await;
            let mut req = Request::from_parts(parts, Body::from(bytes));
            req.extensions_mut().insert(held.clone());
            let response = next.run(req).await;
            if response.extensions().get::<StoredWithChange>().is_some() {
                pause(&app, FaultPoint::BeforeResponse).await;
                return response;
            }
            let (head, body) = response.into_parts();
            let body = match to_bytes(body, usize::MAX).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = idempotency::release(&app.store, &held).await;
                    return ApiError::internal(&e).into_response();
                }
            };
            // A success its handler did not store with a change of its own (an endpoint's
            // replay, retry of failed deliveries and test: what they queue is delivered at
            // least once anyway) is stored now; a failure frees the key.
            let stored = if head.status.is_success() {
                let response = Stored {
                    status: head.status.as_u16(),
                    body: body.to_vec(),
                };
                idempotency::complete(&app.store, &held, &response)
                    .await
                    .map(|_| ())
            } else {
                idempotency::release(&app.store, &held).await
            };
            if let Err(e) = stored {
                tracing::error!(error = %e, "idempotency key not stored");
            }
            Response::from_parts(head, Body::from(body))
        }
    }
}

/// The `TEST_FAULT_PAUSE` hook: holds the request at `point` so a test can kill the process.
async fn pause(app: &ApiState, point: FaultPoint) {
    if let Some((at, how_long)) = app.settings.fault_pause
        && at == point
    {
        tracing::warn!(?point, ?how_long, "TEST_FAULT_PAUSE: holding the request");
        tokio::time::sleep(how_long).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_ignores_json_key_order_and_whitespace_but_not_values_or_paths() {
        let hash = |path, body: &'static str| request_hash(&Method::POST, path, &Bytes::from(body));
        let a = hash("/api/v1/orders", r#"{"amount":100,"currency":"INR"}"#);
        let b = hash("/api/v1/orders", r#"{ "currency": "INR", "amount": 100 }"#);
        let c = hash("/api/v1/orders", r#"{"amount":101,"currency":"INR"}"#);
        let d = hash("/api/v1/payments", r#"{"amount":100,"currency":"INR"}"#);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
