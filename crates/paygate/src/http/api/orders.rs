//! Orders.

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode};
use paygate_core::{Currency, OrderAmount};
use serde_json::Value;

use crate::{
    app::App,
    http::{
        error::ApiError,
        extract::{Authed, Fields, IdPath, JsonObject, Paging},
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

fn parse(body: &JsonObject) -> Result<NewOrder, ApiError> {
    let f = Fields(&body.0);
    let amount = OrderAmount::parse(f.i64("amount")?).ok_or_else(|| {
        ApiError::bad_request(format!(
            "amount must be at least {} and at most {}",
            OrderAmount::MIN,
            OrderAmount::MAX
        ))
    })?;
    let currency = match f.opt_str("currency")? {
        None => Currency::INR,
        Some(c) => Currency::parse(c)
            .ok_or_else(|| ApiError::bad_request("currency must be a 3-letter ISO 4217 code"))?,
    };
    let receipt = f.opt_str("receipt")?;
    if receipt.is_some_and(|r| r.chars().count() > RECEIPT_MAX) {
        return Err(ApiError::bad_request(format!(
            "receipt must be at most {RECEIPT_MAX} characters"
        )));
    }
    let notes = f.opt_object("notes")?.cloned().unwrap_or_default();
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
        receipt: receipt.map(str::to_owned),
        notes: Value::Object(notes),
    })
}

/// `POST /api/v1/orders`.
pub async fn create(
    State(app): State<App>,
    Authed(m): Authed,
    Idempotency(held): Idempotency,
    body: JsonObject,
) -> Result<Answer, ApiError> {
    let new = parse(&body)?;
    let render: Render<Order> =
        Arc::new(|o: &Order| Answer::json(StatusCode::CREATED, &OrderBody::new(o, false)));
    let replay = held.map(|held| Replay {
        held,
        render: render.clone(),
    });
    let order = orders::create(&app.order_writer, &m.id, new, replay.clone()).await?;
    Ok(Answer {
        response: render(&order),
        stored: replay.is_some(),
    })
}

/// `GET /api/v1/orders/{id}`.
pub async fn get(
    State(app): State<App>,
    Authed(m): Authed,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let order = orders::get(&app.store, Some(&m.id), &id).await?;
    render(OrderBody::new(&order, true))
}

/// `GET /api/v1/orders`: newest first.
pub async fn list(
    State(app): State<App>,
    Authed(m): Authed,
    page: Paging,
) -> Result<Json<Value>, ApiError> {
    let (orders, total) = orders::list(&app.store, &m.id, page.limit, page.offset).await?;
    let data = orders.iter().map(|o| OrderBody::new(o, true)).collect();
    let body = Page {
        data,
        total,
        limit: page.limit,
        offset: page.offset,
    };
    render(body)
}

/// `GET /api/v1/orders/{id}/public`: what the checkout page may show.
pub async fn get_public(
    State(app): State<App>,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let order = orders::get(&app.store, None, &id).await?;
    render(PublicOrderBody::from(&order))
}
