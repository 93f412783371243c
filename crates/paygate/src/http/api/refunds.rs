//! Refunds.

use axum::{extract::State, http::StatusCode};
use paygate_core::MinorUnit;
use serde::Deserialize;

use super::{
    Answer, ApiError, ApiJson, ApiResult, ApiState, Authed, IdPath, Idempotency, Paging, render,
};
use crate::{
    refunds::{self, REASON_MAX},
    store::refunds::Refund,
    views::RefundBody,
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
    key: Idempotency,
    ApiJson(body): ApiJson<CreateRefund>,
) -> ApiResult<Answer> {
    let amount = super::positive_amount(body.amount)?.map(MinorUnit::new);
    let reason = body.reason;
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > REASON_MAX)
    {
        return Err(ApiError::bad_request(format!(
            "reason must be at most {REASON_MAX} characters"
        )));
    }
    let render = |r: &Refund| Answer::json(StatusCode::CREATED, &RefundBody::new(r, false));
    key.answer(render, |replay| {
        app.refunds
            .create(&m.id, &payment_id, amount, reason, replay)
    })
    .await
}

/// `GET /api/v1/refunds/{id}`.
pub async fn get(State(app): State<ApiState>, Authed(m): Authed, IdPath(id): IdPath) -> ApiResult {
    let refund = refunds::get(&app.store, &m.id, &id).await?;
    render(RefundBody::new(&refund, true))
}

/// `GET /api/v1/payments/{id}/refunds`: `{data, total}`, oldest first.
pub async fn for_payment(
    State(app): State<ApiState>,
    Authed(m): Authed,
    IdPath(payment_id): IdPath,
) -> ApiResult {
    let list = refunds::for_payment(&app.store, &m.id, &payment_id).await?;
    let data: Vec<_> = list.iter().map(|r| RefundBody::new(r, true)).collect();
    render(serde_json::json!({"data": data, "total": list.len()}))
}

/// `GET /api/v1/refunds`: newest first.
pub async fn list(State(app): State<ApiState>, Authed(m): Authed, page: Paging) -> ApiResult {
    let refunds = refunds::list(&app.store, &m.id, page.window()).await?;
    page.render(&refunds, |r| RefundBody::new(r, true))
}
