//! Payments, authenticated and public (checkout).

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse as _, Response},
};
use chrono::Datelike as _;
use paygate_core::{Card, CardError, CardInput, Method, PaymentStatus, Vpa};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    Answer, ApiError, ApiJson, ApiResult, ApiState, Authed, IdParam, IdPath, Idempotency, Page,
    Paging, PagingParams, render, time_range,
};
use crate::{
    payments::{Instrument, NewPayment, UpiFlow, service},
    store::{
        now,
        payments::{Filter, Payment},
    },
    views::{PaymentBody, PublicPaymentBody},
};

/// The body of `POST /api/v1/payments` (and of the checkout's public create).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    /// The order to pay (`order_…`): its amount and currency are the payment's.
    #[schema(example = "order_NXhj67fGH2jk9mPq")]
    pub order_id: String,
    /// How the customer pays: `upi` (with `upi`, or `vpa` for collect) or `card` (with `card`).
    #[schema(example = "upi")]
    pub method: String,
    /// For `upi`: how the customer approves. `{"flow": "intent"}` (a `upi://pay` link that
    /// opens the customer's UPI app) or `{"flow": "qr"}` (the same link as a QR code) need no
    /// VPA; `{"flow": "collect", "vpa": …}` sends a request to the customer's VPA.
    pub upi: Option<UpiRequest>,
    /// The customer's UPI id, `handle@provider`, for UPI collect (a top-level `vpa` without
    /// `upi` means collect). `success@paygate` and `failure@paygate` force the test outcome.
    #[schema(example = "user@paytm")]
    pub vpa: Option<String>,
    /// The card, for `card`. Only its network and last four digits are kept.
    pub card: Option<CardBody>,
}

/// How a UPI payment is approved.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpiRequest {
    /// `intent`, `qr` or `collect`.
    #[schema(example = "intent")]
    pub flow: String,
    /// The customer's VPA, for `collect` only.
    pub vpa: Option<String>,
}

/// A card as a payment request carries it. (No `Debug`: the number and CVV never reach a log.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardBody {
    /// 13–19 digits (spaces and dashes allowed), Luhn-valid.
    #[schema(example = "4111111111111111")]
    pub number: String,
    /// `1`–`12`.
    #[schema(example = "12")]
    pub expiry_month: String,
    /// Two digits (20YY) or four.
    #[schema(example = "2030")]
    pub expiry_year: String,
    /// 3 or 4 digits.
    #[schema(example = "123")]
    pub cvv: String,
    /// The name on the card, 1 to 100 characters.
    #[schema(example = "A Customer")]
    pub holder_name: String,
}

impl CreatePayment {
    /// Validates the request (SPEC A4) into domain types; `today` is the current time.
    fn parse(self, today: chrono::DateTime<chrono::Utc>) -> ApiResult<NewPayment> {
        let instrument = match Method::parse(&self.method) {
            Some(Method::Upi) => {
                let flow = match &self.upi {
                    Some(upi) => UpiFlow::parse(&upi.flow).ok_or_else(|| {
                        ApiError::bad_request("upi.flow must be one of: intent, qr, collect")
                    })?,
                    None => UpiFlow::Collect,
                };
                let vpa = self.upi.and_then(|u| u.vpa).or(self.vpa);
                match flow {
                    UpiFlow::Collect => {
                        let vpa = vpa.ok_or_else(|| {
                            ApiError::bad_request("vpa is required for UPI collect")
                        })?;
                        Instrument::Upi(Vpa::parse(&vpa).ok_or_else(|| {
                            ApiError::new(
                                StatusCode::BAD_REQUEST,
                                "INVALID_VPA",
                                "VPA format is invalid",
                            )
                        })?)
                    }
                    _ if vpa.is_some() => {
                        return Err(ApiError::bad_request(
                            "vpa is only for UPI collect; intent and QR payments take none",
                        ));
                    }
                    app => Instrument::UpiApp(app),
                }
            }
            Some(Method::Card) => {
                if self.upi.is_some() {
                    return Err(ApiError::bad_request("upi is only for UPI payments"));
                }
                let card = self
                    .card
                    .ok_or_else(|| ApiError::bad_request("card is required"))?;
                let input = CardInput {
                    number: &card.number,
                    expiry_month: &card.expiry_month,
                    expiry_year: &card.expiry_year,
                    cvv: &card.cvv,
                    holder_name: &card.holder_name,
                };
                let parsed =
                    Card::parse(input, (today.year(), today.month())).map_err(card_error)?;
                Instrument::Card(parsed)
            }
            None => return Err(ApiError::bad_request("method must be one of: upi, card")),
        };
        Ok(NewPayment {
            order_id: self.order_id,
            instrument,
        })
    }
}

/// The body of `POST /api/v1/payments/{id}/capture`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    /// The amount to capture: the payment's whole amount (partial capture is not offered).
    pub amount: Option<i64>,
}

fn card_error(e: CardError) -> ApiError {
    let code = match e {
        CardError::InvalidNumber | CardError::InvalidCvv => "INVALID_CARD",
        CardError::InvalidExpiry | CardError::Expired => "EXPIRED_CARD",
        CardError::InvalidHolderName => "BAD_REQUEST_ERROR",
    };
    ApiError::new(StatusCode::BAD_REQUEST, code, e.description())
}

/// Create a payment.
///
/// Answers `201` at once with the payment, `pending`; the processor's outcome arrives by
/// webhook (`payment.success` / `payment.failed`) or by polling.
#[utoipa::path(post, path = "/api/v1/payments", operation_id = "createPayment", tag = "Payments", request_body = CreatePayment,
    responses((status = 201, description = "The payment, `pending`", body = PaymentBody)))]
pub async fn create(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    key: Idempotency,
    ApiJson(body): ApiJson<CreatePayment>,
) -> ApiResult<Answer> {
    let new = body.parse(now())?;
    let render = |p: &Payment| Answer::json(StatusCode::CREATED, &PaymentBody::new(p, false));
    key.answer(render, |replay| app.payments.create(Some(&by), new, replay))
        .await
}

/// Create a payment from the checkout page (public).
///
/// The same as the authenticated create; the merchant is the order's.
#[utoipa::path(post, path = "/payments/public", operation_id = "createPublicPayment", tag = "Checkout", request_body = CreatePayment,
    responses((status = 201, description = "The payment, `pending`", body = PaymentBody)))]
pub async fn create_public(
    State(app): State<ApiState>,
    ApiJson(body): ApiJson<CreatePayment>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let payment = app.payments.create(None, body.parse(now())?, None).await?;
    Ok((
        StatusCode::CREATED,
        render(PaymentBody::new(&payment, false))?,
    ))
}

/// Fetch a payment.
#[utoipa::path(get, path = "/api/v1/payments/{id}", operation_id = "getPayment", tag = "Payments", params(IdParam),
    responses((status = 200, description = "The payment", body = PaymentBody)))]
pub async fn get(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    IdPath(id): IdPath,
) -> ApiResult {
    let payment = service::get(&app.store, Some(&m.id), &id).await?;
    render(PaymentBody::new(&payment, true))
}

/// Poll a payment's status from the checkout page (public).
#[utoipa::path(get, path = "/payments/{id}/public", operation_id = "getPublicPayment", tag = "Checkout", params(IdParam),
    responses((status = 200, description = "The payment's status fields", body = PublicPaymentBody)))]
pub async fn get_public(State(app): State<ApiState>, IdPath(id): IdPath) -> ApiResult {
    let payment = service::get(&app.store, None, &id).await?;
    render(PublicPaymentBody::from(&payment))
}

/// The QR code of a UPI intent or QR payment (public).
///
/// An SVG image of the payment's `upi://pay` link, for the customer's UPI app to scan.
#[utoipa::path(get, path = "/payments/{id}/upi/qr.svg", operation_id = "getPaymentQr", tag = "Checkout", params(IdParam),
    responses((status = 200, description = "The QR code", content_type = "image/svg+xml", body = String)))]
pub async fn qr(State(app): State<ApiState>, IdPath(id): IdPath) -> ApiResult<Response> {
    let payment = service::get(&app.store, None, &id).await?;
    // Only while it can be paid: a final payment's QR would only mislead.
    let uri = payment
        .upi_uri
        .filter(|_| payment.status == PaymentStatus::Pending)
        .ok_or_else(|| ApiError::not_found("This payment has no UPI QR code to pay"))?;
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|_| ApiError::not_found("This payment has no UPI QR code"))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            // The code is shown only while the payment is pending: never kept.
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
}

/// The customer's answer to a UPI intent or QR payment, in test mode.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpiAnswer {
    /// The payer's VPA, recorded on the payment (optional).
    pub vpa: Option<String>,
}

async fn answer_upi(app: &ApiState, id: &str, approve: bool, body: &[u8]) -> ApiResult {
    // The body is optional: none, or `{"vpa": …}`.
    let body: UpiAnswer = if body.iter().all(u8::is_ascii_whitespace) {
        UpiAnswer::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let payer = match body.vpa {
        Some(v) => Some(Vpa::parse(&v).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_VPA",
                "VPA format is invalid",
            )
        })?),
        None => None,
    };
    let payment = app
        .payments
        .answer_upi(id, approve, payer.as_ref().map(Vpa::as_str))
        .await?;
    render(PublicPaymentBody::from(&payment))
}

/// Simulate the customer approving a UPI intent or QR payment (test mode only).
///
/// The simulated bank then charges it (after the test processing delay). Refused unless the
/// payment is pending, unanswered and not expired.
#[utoipa::path(post, path = "/test/payments/{id}/upi/approve", operation_id = "approveUpiPayment", tag = "Test", params(IdParam),
    request_body(content = Option<UpiAnswer>),
    responses((status = 200, description = "The payment, still `pending` until processed", body = PublicPaymentBody),
        (status = 400, description = "Not a pending, unanswered, unexpired UPI intent or QR payment; or a malformed body", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such payment", body = crate::http::error::ErrorBody)))]
pub async fn approve_upi(
    State(app): State<ApiState>,
    IdPath(id): IdPath,
    body: axum::body::Bytes,
) -> ApiResult {
    answer_upi(&app, &id, true, &body).await
}

/// Simulate the customer declining a UPI intent or QR payment (test mode only).
#[utoipa::path(post, path = "/test/payments/{id}/upi/decline", operation_id = "declineUpiPayment", tag = "Test", params(IdParam),
    responses((status = 200, description = "The payment, `failed` once processed", body = PublicPaymentBody),
        (status = 400, description = "Not a pending, unanswered, unexpired UPI intent or QR payment", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such payment", body = crate::http::error::ErrorBody)))]
pub async fn decline_upi(State(app): State<ApiState>, IdPath(id): IdPath) -> ApiResult {
    answer_upi(&app, &id, false, &[]).await
}

/// Capture a successful payment.
///
/// Body `{"amount"}` (optional; if given, the payment's whole amount).
#[utoipa::path(post, path = "/api/v1/payments/{id}/capture", operation_id = "capturePayment", tag = "Payments", params(IdParam),
    request_body = Capture,
    responses((status = 200, description = "The payment, `captured: true`", body = PaymentBody)))]
pub async fn capture(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    IdPath(id): IdPath,
    key: Idempotency,
    ApiJson(body): ApiJson<Capture>,
) -> ApiResult<Answer> {
    let amount = super::positive_amount(body.amount)?;
    let render = |p: &Payment| Answer::json(StatusCode::OK, &PaymentBody::new(p, true));
    key.answer(render, |replay| {
        app.payments.capture(&by, &id, amount, replay)
    })
    .await
}

/// The filters of `GET /api/v1/payments` (read by [`filter_of`], which names a bad value).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query string for the OpenAPI document
pub struct PaymentFilters {
    /// Only payments in this status: `pending`, `success` or `failed`.
    status: Option<String>,
    /// Only payments by this method: `upi` or `card`.
    method: Option<String>,
    /// Only payments created at or after this time (RFC 3339).
    from: Option<String>,
    /// Only payments created before this time (RFC 3339).
    to: Option<String>,
}

/// List payments, newest first.
///
/// `status`, `method` and `from`/`to` (RFC 3339, on `created_at`, `to` exclusive) narrow
/// the list.
#[utoipa::path(get, path = "/api/v1/payments", operation_id = "listPayments", tag = "Payments",
    params(PagingParams, PaymentFilters),
    responses((status = 200, description = "A page of payments", body = Page<PaymentBody>)))]
pub async fn list(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    page: Paging,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let filter = filter_of(&q)?;
    let payments = service::search(&app.store, &m.id, &filter, page.window()).await?;
    page.render(&payments, |p| PaymentBody::new(p, true))
}

/// The list's filters from its query string; a value it cannot read is a 400 naming it.
fn filter_of(q: &HashMap<String, String>) -> Result<Filter, ApiError> {
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(PaymentStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request("status must be one of: pending, success, failed")
        })?),
    };
    let method = match q.get("method") {
        None => None,
        Some(s) => Some(
            Method::parse(s)
                .ok_or_else(|| ApiError::bad_request("method must be one of: upi, card"))?,
        ),
    };
    let (from, to) = time_range(q)?;
    Ok(Filter {
        status,
        method,
        from,
        to,
        ..Filter::default()
    })
}
