//! Refunds.

use axum::{extract::State, http::StatusCode};
use paygate_core::MinorUnit;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    Answer, ApiError, ApiJson, ApiResult, ApiState, Authed, IdParam, IdPath, Idempotency, Page,
    Paging, PagingParams, render,
};
use crate::{
    refunds::{self, REASON_MAX},
    store::refunds::Refund,
    views::{RefundBody, RefundList},
};

/// The body of `POST /api/v1/payments/{id}/refunds`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// How much to refund, in the smallest currency unit; all that is left of the payment
    /// when absent.
    #[schema(minimum = 1, example = 10000)]
    pub amount: Option<i64>,
    /// Why, at most 255 characters.
    #[schema(max_length = 255, example = "Customer asked")]
    pub reason: Option<String>,
}

/// Refund a payment, fully or in part.
///
/// Body `{amount?, reason?}`; without `amount`, all that is left of the payment. Answers
/// `201` with the refund, `pending`; `refund.processed` follows by webhook.
#[utoipa::path(post, path = "/api/v1/payments/{id}/refunds", operation_id = "createRefund", tag = "Refunds", params(IdParam),
    request_body = CreateRefund,
    responses((status = 201, description = "The refund, `pending`", body = RefundBody)))]
pub async fn create(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
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
        app.refunds.create(&by, &payment_id, amount, reason, replay)
    })
    .await
}

/// Fetch a refund.
#[utoipa::path(get, path = "/api/v1/refunds/{id}", operation_id = "getRefund", tag = "Refunds", params(IdParam),
    responses((status = 200, description = "The refund", body = RefundBody)))]
pub async fn get(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    IdPath(id): IdPath,
) -> ApiResult {
    let refund = refunds::get(&app.store, &m.id, &id).await?;
    render(RefundBody::new(&refund, true))
}

/// List a payment's refunds, oldest first.
#[utoipa::path(get, path = "/api/v1/payments/{id}/refunds", operation_id = "listPaymentRefunds", tag = "Refunds", params(IdParam),
    responses((status = 200, description = "Every refund of the payment", body = RefundList)))]
pub async fn for_payment(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    IdPath(payment_id): IdPath,
) -> ApiResult {
    let list = refunds::for_payment(&app.store, &m.id, &payment_id).await?;
    render(RefundList {
        data: list.iter().map(|r| RefundBody::new(r, true)).collect(),
        total: list.len(),
    })
}

/// List refunds, newest first.
#[utoipa::path(get, path = "/api/v1/refunds", operation_id = "listRefunds", tag = "Refunds", params(PagingParams),
    responses((status = 200, description = "A page of refunds", body = Page<RefundBody>)))]
pub async fn list(State(app): State<ApiState>, Authed(m, ..): Authed, page: Paging) -> ApiResult {
    let refunds = refunds::list(&app.store, &m.id, page.window()).await?;
    page.render(&refunds, |r| RefundBody::new(r, true))
}
