//! Orders.

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode};
use paygate_core::{Currency, OrderAmount};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    http::{
        ApiState,
        error::ApiError,
        extract::{ApiJson, Authed, IdPath, Paging},
        idempotency::{Answer, Idempotency},
        render,
    },
    idempotent::{Render, Replay},
    orders::{self, NewOrder},
    store::orders::Order,
    views::{OrderBody, Page, PublicOrderBody},
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
    fn parse(self) -> Result<NewOrder, ApiError> {
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
    Idempotency(held): Idempotency,
    ApiJson(body): ApiJson<CreateOrder>,
) -> Result<Answer, ApiError> {
    let new = body.parse()?;
    let render: Render<Order> =
        Arc::new(|o: &Order| Answer::json(StatusCode::CREATED, &OrderBody::new(o, false)));
    let replay = held.map(|held| Replay {
        held,
        render: render.clone(),
    });
    let order = app.orders.create(&m.id, new, replay.clone()).await?;
    Ok(Answer {
        response: render(&order),
        stored: replay.is_some(),
    })
}

/// `GET /api/v1/orders/{id}`.
pub async fn get(
    State(app): State<ApiState>,
    Authed(m): Authed,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let order = orders::get(&app.store, Some(&m.id), &id).await?;
    render(OrderBody::new(&order, true))
}

/// `GET /api/v1/orders`: newest first.
pub async fn list(
    State(app): State<ApiState>,
    Authed(m): Authed,
    page: Paging,
) -> Result<Json<Value>, ApiError> {
    let (orders, total) = orders::list(&app.store, &m.id, page.limit, page.offset).await?;
    let data = orders.iter().map(|o| OrderBody::new(o, true)).collect();
    render(Page {
        data,
        total,
        limit: page.limit,
        offset: page.offset,
    })
}

/// `GET /api/v1/orders/{id}/public`: what the checkout page may show.
pub async fn get_public(
    State(app): State<ApiState>,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let order = orders::get(&app.store, None, &id).await?;
    render(PublicOrderBody::from(&order))
}
