//! Orders.

use axum::{extract::State, http::StatusCode};
use paygate_core::{Currency, OrderAmount};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    Answer, ApiError, ApiJson, ApiResult, ApiState, Authed, IdPath, Idempotency, Paging, render,
};
use crate::{
    orders::{self, NewOrder},
    store::orders::Order,
    views::{OrderBody, PublicOrderBody},
};

/// Longest `receipt`, characters.
const RECEIPT_MAX: usize = 40;
/// Most `notes` keys.
const NOTES_MAX_KEYS: usize = 15;
/// Longest `notes` value, characters.
const NOTE_MAX_LEN: usize = 256;

/// The body of `POST /api/v1/orders`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// What the order costs, in the currency's smallest unit (paise for INR): at least 100,
    /// at most 9007199254740991.
    pub amount: i64,
    /// An ISO 4217 currency code (any case); INR when absent.
    pub currency: Option<String>,
    /// The merchant's own reference for the order, at most 40 characters.
    pub receipt: Option<String>,
    /// Up to 15 keys of the merchant's choosing, each a string of at most 256 characters.
    pub notes: Option<Map<String, Value>>,
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
        let notes = self.notes.unwrap_or_default();
        if notes.len() > NOTES_MAX_KEYS {
            return Err(ApiError::bad_request(format!(
                "notes may have at most {NOTES_MAX_KEYS} keys"
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
        Ok(NewOrder {
            amount,
            currency,
            receipt: self.receipt,
            notes: Value::Object(notes),
        })
    }
}

/// `POST /api/v1/orders`.
pub async fn create(
    State(app): State<ApiState>,
    Authed(m): Authed,
    key: Idempotency,
    ApiJson(body): ApiJson<CreateOrder>,
) -> ApiResult<Answer> {
    let new = body.parse()?;
    let render = |o: &Order| Answer::json(StatusCode::CREATED, &OrderBody::new(o, false));
    key.answer(render, |replay| app.orders.create(&m.id, new, replay))
        .await
}

/// `GET /api/v1/orders/{id}`.
pub async fn get(State(app): State<ApiState>, Authed(m): Authed, IdPath(id): IdPath) -> ApiResult {
    let order = orders::get(&app.store, Some(&m.id), &id).await?;
    render(OrderBody::new(&order, true))
}

/// `GET /api/v1/orders`: newest first.
pub async fn list(State(app): State<ApiState>, Authed(m): Authed, page: Paging) -> ApiResult {
    let orders = orders::list(&app.store, &m.id, page.window()).await?;
    page.render(&orders, |o| OrderBody::new(o, true))
}

/// `GET /api/v1/orders/{id}/public`: what the checkout page may show.
pub async fn get_public(State(app): State<ApiState>, IdPath(id): IdPath) -> ApiResult {
    let order = orders::get(&app.store, None, &id).await?;
    render(PublicOrderBody::from(&order))
}
