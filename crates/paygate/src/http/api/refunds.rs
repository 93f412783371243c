//! Refunds.

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode};
use paygate_core::{MinorUnit, OrderAmount};
use serde::Deserialize;
use serde_json::Value;

use crate::{
    http::{
        ApiState,
        error::ApiError,
        extract::{ApiJson, Authed, IdPath, Paging},
        idempotency::{Answer, Idempotency},
        render,
    },
    idempotent::{Render, Replay},
    refunds::{self, REASON_MAX},
    store::refunds::Refund,
    views::{Page, RefundBody},
};

/// The body of `POST /api/v1/payments/{id}/refunds`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// How much to refund, in the smallest currency unit; all that is left of the payment
    /// when absent.
    pub amount: Option<i64>,
    /// Why, at most 255 characters.
    pub reason: Option<String>,
}

/// `POST /api/v1/payments/{id}/refunds`: body `{amount?, reason?}`; without `amount`, all that
/// is left of the payment.
pub async fn create(
    State(app): State<ApiState>,
    Authed(m): Authed,
    IdPath(payment_id): IdPath,
    Idempotency(held): Idempotency,
    ApiJson(body): ApiJson<CreateRefund>,
) -> Result<Answer, ApiError> {
    let amount = body.amount;
    if amount.is_some_and(|a| !(1..=OrderAmount::MAX).contains(&a)) {
        return Err(ApiError::bad_request(format!(
            "amount must be a positive integer of at most {}",
            OrderAmount::MAX
        )));
    }
    let reason = body.reason;
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > REASON_MAX)
    {
        return Err(ApiError::bad_request(format!(
            "reason must be at most {REASON_MAX} characters"
        )));
    }
    let render: Render<Refund> =
        Arc::new(|r: &Refund| Answer::json(StatusCode::CREATED, &RefundBody::new(r, false)));
    let replay = held.map(|held| Replay {
        held,
        render: render.clone(),
    });
    let refund = app
        .refunds
        .create(
            &m.id,
            &payment_id,
            amount.map(MinorUnit::new),
            reason,
            replay.clone(),
        )
        .await?;
    Ok(Answer {
        response: render(&refund),
        stored: replay.is_some(),
    })
}

/// `GET /api/v1/refunds/{id}`.
pub async fn get(
    State(app): State<ApiState>,
    Authed(m): Authed,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let refund = refunds::get(&app.store, &m.id, &id).await?;
    render(RefundBody::new(&refund, true))
}

/// `GET /api/v1/payments/{id}/refunds`: `{data, total}`, oldest first.
pub async fn for_payment(
    State(app): State<ApiState>,
    Authed(m): Authed,
    IdPath(payment_id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let list = refunds::for_payment(&app.store, &m.id, &payment_id).await?;
    let data: Vec<_> = list.iter().map(|r| RefundBody::new(r, true)).collect();
    render(serde_json::json!({"data": data, "total": list.len()}))
}

/// `GET /api/v1/refunds`: newest first.
pub async fn list(
    State(app): State<ApiState>,
    Authed(m): Authed,
    page: Paging,
) -> Result<Json<Value>, ApiError> {
    let (list, total) = refunds::list(&app.store, &m.id, page.limit, page.offset).await?;
    let data = list.iter().map(|r| RefundBody::new(r, true)).collect();
    render(Page {
        data,
        total,
        limit: page.limit,
        offset: page.offset,
    })
}
