//! Extractors that answer malformed requests with the API's error body: the authenticated
//! merchant, a JSON object body, and pagination.

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{StatusCode, request::Parts},
};
use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::{app::App, merchants, store::merchants::Merchant};

/// The merchant authenticated by `X-Api-Key`/`X-Api-Secret` or HTTP Basic `key:secret`.
pub struct Authed(pub Merchant);

impl FromRequestParts<App> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let (key, secret) = match (header("x-api-key"), header("x-api-secret")) {
            (Some(k), Some(s)) => (k.to_owned(), s.to_owned()),
            _ => header("authorization")
                .and_then(basic_credentials)
                .ok_or_else(ApiError::unauthenticated)?,
        };
        Ok(Self(
            merchants::authenticate(&app.store, &app.credentials, &key, &secret).await?,
        ))
    }
}

/// `Basic base64(key:secret)` → `(key, secret)`.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (key, secret) = text.split_once(':')?;
    Some((key.to_owned(), secret.to_owned()))
}

/// The `{id}` segment of a path, as text. A segment that is not UTF-8 (`%FF`) answers the
/// API's error body (axum's own rejection is plain text).
pub struct IdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Self(id)),
            Err(_) => Err(ApiError::bad_request(
                "The resource id in the URL is not valid text",
            )),
        }
    }
}

/// A request body that must be a JSON object.
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<App> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, app).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "BAD_REQUEST_ERROR",
                    format!("Request body is larger than {} bytes", super::BODY_LIMIT),
                )
            } else {
                ApiError::bad_request("Request body could not be read")
            }
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(ApiError::bad_request("Request body must be a JSON object")),
            Err(_) => Err(ApiError::bad_request("Request body is not valid JSON")),
        }
    }
}

/// Typed access to the fields of a JSON object, with the API's messages. A `null` field
/// counts as absent.
pub struct Fields<'a>(pub &'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A required string.
    pub fn str(&self, name: &str) -> Result<&'a str, ApiError> {
        self.opt_str(name)?
            .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
    }

    /// An optional string.
    pub fn opt_str(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::bad_request(format!("{name} must be a string"))),
        }
    }

    /// A required integer.
    pub fn i64(&self, name: &str) -> Result<i64, ApiError> {
        self.opt_i64(name)?
            .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
    }

    /// An optional integer.
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::bad_request(format!("{name} must be an integer"))),
        }
    }

    /// A required object.
    pub fn object(&self, name: &str) -> Result<Fields<'a>, ApiError> {
        match self.get(name) {
            None => Err(ApiError::bad_request(format!("{name} is required"))),
            Some(Value::Object(map)) => Ok(Fields(map)),
            Some(_) => Err(ApiError::bad_request(format!("{name} must be an object"))),
        }
    }

    /// An optional object, as a JSON value.
    pub fn opt_object(&self, name: &str) -> Result<Option<&'a Map<String, Value>>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(ApiError::bad_request(format!("{name} must be an object"))),
        }
    }
}

/// `limit` (1–100, default 10) and `offset` (≥ 0, default 0).
pub struct Paging {
    pub limit: i64,
    pub offset: i64,
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(q) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("Query string is malformed"))?;
        let read =
            |name: &str, default: i64, range: std::ops::RangeInclusive<i64>| match q.get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "{name} must be an integer from {} to {}",
                            range.start(),
                            range.end()
                        ))
                    }),
            };
        Ok(Self {
            limit: read("limit", 10, 1..=100)?,
            offset: read("offset", 0, 0..=i64::from(i32::MAX))?,
        })
    }
}
