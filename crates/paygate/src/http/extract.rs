//! Extractors that answer malformed requests with the API's error body: the authenticated
//! merchant, a typed JSON body, a resource id from the path, and pagination (which also renders
//! the page it asked for).

use std::collections::HashMap;

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{StatusCode, request::Parts},
};
use base64::Engine as _;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{ApiResult, ApiState, error::ApiError, render};
use crate::{
    audit::Actor,
    merchants,
    store::{
        merchants::Merchant,
        table::{self, Start, Window},
    },
    views::Page,
};

/// The merchant authenticated by `X-Api-Key`/`X-Api-Secret` or HTTP Basic `key:secret`, and
/// the request's actor for the audit log (the key, the client's address, the user agent).
pub struct Authed(pub Merchant, pub Actor);

impl FromRequestParts<ApiState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let (key, secret) =
            presented_credentials(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
        let merchant = merchants::authenticate(&app.store, &app.credentials, &key, &secret).await?;
        tracing::Span::current().record("merchant_id", merchant.id.as_str());
        let (address, user_agent) = app.settings.trusted_proxies.origin(parts);
        let actor = Actor::api_key(&merchant.id, &key).via(address, user_agent);
        Ok(Self(merchant, actor))
    }
}

/// The API key and secret a request presents: `X-Api-Key` + `X-Api-Secret`, or HTTP Basic.
pub fn presented_credentials(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match (header("x-api-key"), header("x-api-secret")) {
        (Some(k), Some(s)) => Some((k.to_owned(), s.to_owned())),
        _ => header("authorization").and_then(basic_credentials),
    }
}

/// The API key a request presents (unchecked).
pub fn presented_key(headers: &axum::http::HeaderMap) -> Option<String> {
    presented_credentials(headers).map(|(key, _)| key)
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
            Ok(Path(id)) if !id.contains('\0') => Ok(Self(id)),
            _ => Err(ApiError::bad_request(
                "The resource id in the URL is not valid text",
            )),
        }
    }
}

/// A JSON request body of type `T`. Whatever does not fit answers the API's error body: a
/// body that is not JSON or not an object, a missing field (`card.number is required`; a
/// `null` counts as missing), a value of the wrong type (`amount must be an integer`), a field
/// the type does not name (`colour is not a field of this request`: refused, as Stripe and
/// Razorpay do, so a misspelt optional field is not silently dropped).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
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
        let value = match serde_json::from_slice::<Value>(&bytes) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return Err(ApiError::bad_request("Request body must be a JSON object")),
            Err(_) => return Err(ApiError::bad_request("Request body is not valid JSON")),
        };
        if has_nul(&value) {
            // Valid JSON (`\u0000`), but no database stores it in text: refused up front.
            return Err(ApiError::bad_request(
                "Request body must not contain the NUL character (\\u0000)",
            ));
        }
        serde_path_to_error::deserialize(value)
            .map(Self)
            .map_err(|e| ApiError::bad_request(describe(&e)))
    }
}

/// Whether any key or string of `v` holds U+0000.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The API's message for a body that does not fit its type.
fn describe(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let within = |field: &str| {
        if path == "." {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        }
    };
    let inner = e.inner().to_string();
    if let Some(field) = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        return format!("{} is required", within(field));
    }
    if inner.starts_with("unknown field `") {
        // The path names the unknown field itself.
        let expected = inner
            .split_once("expected ")
            .map_or("", |(_, e)| e)
            .replace('`', "");
        return format!("{path} is not a field of this request (expected {expected})");
    }
    if inner.starts_with("invalid type: null") {
        return format!("{path} is required");
    }
    let expected = inner.rsplit("expected ").next().unwrap_or_default();
    let kind = if expected.contains("i64") || expected.contains("integer") {
        "an integer"
    } else if expected.contains("string") {
        "a string"
    } else if expected.contains("map") || expected.contains("struct") {
        "an object"
    } else if expected.contains("bool") {
        "a boolean"
    } else {
        "of another type"
    };
    format!("{path} must be {kind}")
}

/// A field that may be given as `null` (`Some(None)`), or left out (`None`).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The query parameters [`Paging`] reads, for the OpenAPI document (the extractor reads them
/// itself, to name a bad value in the API's error body).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query string for the OpenAPI document
pub struct PagingParams {
    /// Page size, 1–100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// A cursor: the id of a row of this list; the page holds the rows after it (older).
    /// Pass the last id of a page to read the next one. Not with `ending_before` or `offset`.
    starting_after: Option<String>,
    /// A cursor: the id of a row of this list; the page holds the rows just before it
    /// (newer). Pass the first id of a page to read the previous one.
    ending_before: Option<String>,
    /// Rows to skip (default 0). Deep offsets are slow on long lists (every skipped row is
    /// read): page with `starting_after` instead.
    #[param(minimum = 0, maximum = 2147483647)]
    offset: Option<i64>,
}

/// The `{id}` path parameter, for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // describes the path for the OpenAPI document
pub struct IdParam {
    /// The resource's id, e.g. `order_NXhj67fGH2jk9mPq`.
    id: String,
}

/// `limit` (1–100, default 10) and where the page starts: `offset` (≥ 0, default 0), or a
/// cursor, `starting_after` or `ending_before` (a row's id).
pub struct Paging {
    pub limit: i64,
    pub start: Start,
}

impl Paging {
    /// The rows asked for, as the services take them.
    pub fn window(&self) -> Window {
        Window {
            limit: self.limit,
            start: self.start.clone(),
        }
    }

    /// `{data, total, limit, offset, has_more}`: a page of the rows, each as `view` shows it;
    /// a cursor that is not one of the list's rows (`None`) is a 400.
    pub fn render<'a, T, V: Serialize>(
        &self,
        page: &'a Option<table::Page<T>>,
        view: impl Fn(&'a T) -> V,
    ) -> ApiResult {
        let Some(page) = page else {
            let name = match &self.start {
                Start::Before(_) => "ending_before",
                _ => "starting_after",
            };
            return Err(ApiError::bad_request(format!(
                "{name} must be the id of a row of this list"
            )));
        };
        render(Page {
            data: page.rows.iter().map(view).collect(),
            total: page.total,
            limit: self.limit,
            offset: match self.start {
                Start::Offset(n) => n,
                _ => 0,
            },
            has_more: page.has_more,
        })
    }
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
        let limit = read("limit", 10, 1..=100)?;
        let offset = read("offset", 0, 0..=i64::from(i32::MAX))?;
        let cursor = |name: &str| match q.get(name).map(|v| v.trim()) {
            None => Ok(None),
            Some(id) if !id.is_empty() && id.len() <= 64 => Ok(Some(id.to_owned())),
            Some(_) => Err(ApiError::bad_request(format!(
                "{name} must be the id of a row of this list"
            ))),
        };
        let start = match (cursor("starting_after")?, cursor("ending_before")?) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "Pass starting_after or ending_before, not both",
                ));
            }
            (Some(_), None) | (None, Some(_)) if q.contains_key("offset") => {
                return Err(ApiError::bad_request(
                    "Pass a cursor (starting_after or ending_before) or offset, not both",
                ));
            }
            (Some(id), None) => Start::After(id),
            (None, Some(id)) => Start::Before(id),
            (None, None) => Start::Offset(offset),
        };
        Ok(Self { limit, start })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::describe;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        amount: i64,
        card: Option<Card>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Card {
        number: String,
    }

    fn message(json: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let e = serde_path_to_error::deserialize::<_, Body>(value).unwrap_err();
        describe(&e)
    }

    #[test]
    fn each_kind_of_misfit_names_its_field() {
        assert_eq!(message(r#"{}"#), "amount is required");
        assert_eq!(message(r#"{"amount": null}"#), "amount is required");
        assert_eq!(message(r#"{"amount": "5"}"#), "amount must be an integer");
        assert_eq!(
            message(r#"{"amount": 5, "card": {}}"#),
            "card.number is required"
        );
        assert_eq!(
            message(r#"{"amount": 5, "card": {"number": 4}}"#),
            "card.number must be a string"
        );
        assert_eq!(
            message(r#"{"amount": 5, "colour": "red"}"#),
            "colour is not a field of this request (expected amount or card)"
        );
        assert_eq!(
            message(r#"{"amount": 5, "card": {"number": "4", "cvc": "1"}}"#),
            "card.cvc is not a field of this request (expected number)"
        );
    }
}
