//! Orders.

use axum::{extract::State, http::StatusCode};
use paygate_core::{Currency, OrderAmount};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{
    Answer, ApiError, ApiJson, ApiResult, ApiState, Authed, IdParam, IdPath, Idempotency, Page,
    Paging, PagingParams, render,
};
use crate::{
    orders::{self, NewOrder},
    store::orders::Order,
    views::{OrderBody, PublicOrderBody},
};
#[allow(unused_imports)] // named by the OpenAPI annotations only
use std::collections::HashMap;

/// Longest `receipt`, characters.
const RECEIPT_MAX: usize = 40;
/// Most `notes` keys.
const NOTES_MAX_KEYS: usize = 15;
/// Longest `notes` key and value, characters.
const NOTE_MAX_LEN: usize = 256;

/// The body of `POST /api/v1/orders`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// What the order costs, in the currency's smallest unit (paise for INR): at least 100,
    /// at most 9007199254740991.
    #[schema(minimum = 100, maximum = 9007199254740991_i64, example = 50000)]
    pub amount: i64,
    /// An ISO 4217 currency code (any case); INR when absent.
    #[schema(example = "INR")]
    pub currency: Option<String>,
    /// The merchant's own reference for the order, at most 40 characters.
    #[schema(max_length = 40, example = "receipt_123")]
    pub receipt: Option<String>,
    /// Up to 15 keys of the merchant's choosing (each 1 to 256 characters), each a string of
    /// at most 256 characters.
    #[schema(value_type = Option<HashMap<String, String>>)]
    pub notes: Option<Map<String, Value>>,
    /// Where the hosted checkout sends the customer after a successful payment ("Return to
    /// <merchant>", then at once), with `payment_id` added to its query: an http(s) URL of at
    /// most 2048 characters. Check the payment with the API there; the URL proves nothing.
    #[schema(max_length = 2048, example = "https://shop.example/thanks")]
    pub callback_url: Option<String>,
}

impl CreateOrder {
    /// The order, validated into domain types.
    fn parse(self) -> ApiResult<NewOrder> {
        let amount = OrderAmount::parse(self.amount).ok_or_else(|| {
            ApiError::bad_request(format!(
                "amount must be at least {} and at most {}",
                OrderAmount::MIN,
                OrderAmount::MAX
            ))
        })?;
        let currency = match self.currency.as_deref() {
            None => Currency::INR,
            Some(c) => Currency::parse(c).ok_or_else(|| {
                ApiError::bad_request("currency must be a 3-letter ISO 4217 code")
            })?,
        };
        if self
            .receipt
            .as_ref()
            .is_some_and(|r| r.chars().count() > RECEIPT_MAX)
        {
            return Err(ApiError::bad_request(format!(
                "receipt must be at most {RECEIPT_MAX} characters"
            )));
        }
        let notes = parse_notes(self.notes)?;
        check_callback_url(self.callback_url.as_ref())?;
        Ok(NewOrder {
            amount,
            currency,
            receipt: self.receipt,
            notes,
            callback_url: self.callback_url,
        })
    }
}

/// Longest `callback_url`, characters.
const URL_MAX: usize = 2048;

/// A `callback_url`, checked: an absolute http(s) URL with a host, at most [`URL_MAX`]
/// characters.
pub(super) fn check_callback_url(url: Option<&String>) -> ApiResult<()> {
    let Some(u) = url else { return Ok(()) };
    if u.chars().count() > URL_MAX {
        return Err(ApiError::bad_request(format!(
            "callback_url must be at most {URL_MAX} characters"
        )));
    }
    let ok = url::Url::parse(u)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request("callback_url must be an http(s) URL"))
    }
}

/// The `notes` of a request, checked: at most [`NOTES_MAX_KEYS`] keys of 1 to
/// [`NOTE_MAX_LEN`] characters, each a string of at most [`NOTE_MAX_LEN`].
pub(super) fn parse_notes(notes: Option<Map<String, Value>>) -> ApiResult<Value> {
    let notes = notes.unwrap_or_default();
    if notes.len() > NOTES_MAX_KEYS {
        return Err(ApiError::bad_request(format!(
            "notes may have at most {NOTES_MAX_KEYS} keys"
        )));
    }
    if notes
        .keys()
        .any(|k| k.is_empty() || k.chars().count() > NOTE_MAX_LEN)
    {
        return Err(ApiError::bad_request(format!(
            "notes keys must be 1 to {NOTE_MAX_LEN} characters"
        )));
    }
    if notes
        .values()
        .any(|v| !matches!(v, Value::String(s) if s.chars().count() <= NOTE_MAX_LEN))
    {
        return Err(ApiError::bad_request(format!(
            "notes values must be strings of at most {NOTE_MAX_LEN} characters"
        )));
    }
    Ok(Value::Object(notes))
}

/// Create an order.
///
/// The amount and currency a payment will collect. Answers `201` with the order, `created`.
#[utoipa::path(post, path = "/api/v1/orders", operation_id = "createOrder", tag = "Orders", request_body = CreateOrder,
    responses((status = 201, description = "The order, `created`", body = OrderBody)))]
pub async fn create(
    State(app): State<ApiState>,
    Authed(m, by): Authed,
    key: Idempotency,
    ApiJson(body): ApiJson<CreateOrder>,
) -> ApiResult<Answer> {
    let new = body.parse()?;
    let render = |o: &Order| Answer::json(StatusCode::CREATED, &OrderBody::new(o, false));
    key.answer(render, |replay| {
        app.orders.create(&m.id, Some(&by), new, replay)
    })
    .await
}

/// Fetch an order.
#[utoipa::path(get, path = "/api/v1/orders/{id}", operation_id = "getOrder", tag = "Orders", params(IdParam),
    responses((status = 200, description = "The order", body = OrderBody)))]
pub async fn get(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    IdPath(id): IdPath,
) -> ApiResult {
    let order = orders::get(&app.store, Some(&m.id), &id).await?;
    render(OrderBody::new(&order, true))
}

/// List orders, newest first.
#[utoipa::path(get, path = "/api/v1/orders", operation_id = "listOrders", tag = "Orders", params(PagingParams),
    responses((status = 200, description = "A page of orders", body = Page<OrderBody>)))]
pub async fn list(State(app): State<ApiState>, Authed(m, ..): Authed, page: Paging) -> ApiResult {
    let orders = orders::list(&app.store, &m.id, page.window()).await?;
    page.render(&orders, |o| OrderBody::new(o, true))
}

/// Fetch an order for the checkout page (public).
///
/// No credentials: what the hosted checkout and `checkout.js` show before a payment.
#[utoipa::path(get, path = "/orders/{id}/public", operation_id = "getPublicOrder", tag = "Checkout", params(IdParam),
    responses((status = 200, description = "The order's public fields", body = PublicOrderBody)))]
pub async fn get_public(State(app): State<ApiState>, IdPath(id): IdPath) -> ApiResult {
    let order = orders::get(&app.store, None, &id).await?;
    render(PublicOrderBody::from(&order))
}
