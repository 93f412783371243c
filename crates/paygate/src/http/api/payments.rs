//! Payments, authenticated and public (checkout).

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode};
use chrono::Datelike as _;
use paygate_core::{Card, CardError, CardInput, Method, OrderAmount, Vpa};
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
    payments::{Instrument, NewPayment, service},
    store::{now, payments::Payment},
    views::{Page, PaymentBody, PublicPaymentBody},
};

/// Validates a payment request (SPEC A4) into domain types.
fn parse(body: &JsonObject) -> Result<NewPayment, ApiError> {
    let f = Fields(&body.0);
    let order_id = f.str("order_id")?.to_owned();
    let method = f.str("method")?;
    let instrument = match Method::parse(method) {
        Some(Method::Upi) => {
            let vpa = f.str("vpa")?;
            Instrument::Upi(Vpa::parse(vpa).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_VPA",
                    "VPA format is invalid",
                )
            })?)
        }
        Some(Method::Card) => {
            let card = f.object("card")?;
            let input = CardInput {
                number: card.str("number").map_err(|e| prefixed(e, "card."))?,
                expiry_month: card.str("expiry_month").map_err(|e| prefixed(e, "card."))?,
                expiry_year: card.str("expiry_year").map_err(|e| prefixed(e, "card."))?,
                cvv: card.str("cvv").map_err(|e| prefixed(e, "card."))?,
                holder_name: card.str("holder_name").map_err(|e| prefixed(e, "card."))?,
            };
            let today = now();
            Instrument::Card(Card::parse(input, (today.year(), today.month())).map_err(card_error)?)
        }
        None => return Err(ApiError::bad_request("method must be one of: upi, card")),
    };
    Ok(NewPayment {
        order_id,
        instrument,
    })
}

fn prefixed(mut e: ApiError, prefix: &str) -> ApiError {
    e.description.insert_str(0, prefix);
    e
}

fn card_error(e: CardError) -> ApiError {
    let code = match e {
        CardError::InvalidNumber | CardError::InvalidCvv => "INVALID_CARD",
        CardError::InvalidExpiry | CardError::Expired => "EXPIRED_CARD",
        CardError::InvalidHolderName => "BAD_REQUEST_ERROR",
    };
    ApiError::new(StatusCode::BAD_REQUEST, code, e.description())
}

/// `POST /api/v1/payments`: 201 with the payment, `pending`.
pub async fn create(
    State(app): State<App>,
    Authed(m): Authed,
    Idempotency(held): Idempotency,
    body: JsonObject,
) -> Result<Answer, ApiError> {
    let new = parse(&body)?;
    let render: Render<Payment> =
        Arc::new(|p: &Payment| Answer::json(StatusCode::CREATED, &PaymentBody::new(p, false)));
    let replay = held.map(|held| Replay {
        held,
        render: render.clone(),
    });
    let payment = service::create(&app, Some(&m.id), new, replay.clone()).await?;
    Ok(Answer {
        response: render(&payment),
        stored: replay.is_some(),
    })
}

/// `POST /api/v1/payments/public`: the same, for the checkout page; the merchant is the
/// order's.
pub async fn create_public(
    State(app): State<App>,
    body: JsonObject,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let payment = service::create(&app, None, parse(&body)?, None).await?;
    Ok((
        StatusCode::CREATED,
        render(PaymentBody::new(&payment, false))?,
    ))
}

/// `GET /api/v1/payments/{id}`.
pub async fn get(
    State(app): State<App>,
    Authed(m): Authed,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let payment = service::get(&app.store, Some(&m.id), &id).await?;
    render(PaymentBody::new(&payment, true))
}

/// `GET /api/v1/payments/{id}/public`: status fields for polling.
pub async fn get_public(
    State(app): State<App>,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let payment = service::get(&app.store, None, &id).await?;
    render(PublicPaymentBody::from(&payment))
}

/// `POST /api/v1/payments/{id}/capture`: body `{"amount"}` (optional; if given, the payment's
/// amount).
pub async fn capture(
    State(app): State<App>,
    Authed(m): Authed,
    IdPath(id): IdPath,
    Idempotency(held): Idempotency,
    body: JsonObject,
) -> Result<Answer, ApiError> {
    let amount = Fields(&body.0).opt_i64("amount")?;
    if amount.is_some_and(|a| !(1..=OrderAmount::MAX).contains(&a)) {
        return Err(ApiError::bad_request(format!(
            "amount must be a positive integer of at most {}",
            OrderAmount::MAX
        )));
    }
    let render: Render<Payment> =
        Arc::new(|p: &Payment| Answer::json(StatusCode::OK, &PaymentBody::new(p, true)));
    let replay = held.map(|held| Replay {
        held,
        render: render.clone(),
    });
    let payment = service::capture(&app, &m.id, &id, amount, replay.clone()).await?;
    Ok(Answer {
        response: render(&payment),
        stored: replay.is_some(),
    })
}

/// `GET /api/v1/payments`: newest first.
pub async fn list(
    State(app): State<App>,
    Authed(m): Authed,
    page: Paging,
) -> Result<Json<Value>, ApiError> {
    let (payments, total) = service::list(&app.store, &m.id, page.limit, page.offset).await?;
    let data = payments.iter().map(|p| PaymentBody::new(p, true)).collect();
    render(Page {
        data,
        total,
        limit: page.limit,
        offset: page.offset,
    })
}
