//! The API's error body: `{"error":{"code","description"}}` with a fitting status. Service
//! errors map here exhaustively; internal errors answer a generic 500 and are logged.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{merchants, orders, payment_links, payments, refunds, settlements, webhooks};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    /// 400 `BAD_REQUEST_ERROR`.
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR", description)
    }

    /// 404 `NOT_FOUND_ERROR`.
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND_ERROR", description)
    }

    /// 401 `AUTHENTICATION_ERROR`.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "AUTHENTICATION_ERROR",
            "Invalid API credentials",
        )
    }

    /// 409 `IDEMPOTENCY_KEY_IN_USE`.
    pub fn key_in_use() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_KEY_IN_USE",
            "A request with this Idempotency-Key is still being processed",
        )
    }

    /// 409 `IDEMPOTENCY_KEY_IN_USE`, for a request whose key a retry took over while it ran.
    fn key_taken_over() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "IDEMPOTENCY_KEY_IN_USE",
            "This request's Idempotency-Key was taken over by a retry; nothing was changed",
        )
    }

    /// 500, logging the cause (never shown to the client).
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal server error",
        )
    }
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    /// A stable code: `BAD_REQUEST_ERROR`, `AUTHENTICATION_ERROR`, `NOT_FOUND_ERROR`,
    /// `INVALID_VPA`, `UPI_ID_NOT_SET`, `INVALID_CARD`, `EXPIRED_CARD`, `PAYMENT_FAILED`,
    /// `IDEMPOTENCY_KEY_IN_USE`, `IDEMPOTENCY_KEY_REUSED`, `RATE_LIMIT_ERROR`,
    /// `INTERNAL_ERROR`.
    #[schema(example = "BAD_REQUEST_ERROR")]
    pub code: &'a str,
    /// A sentence for a person: which field, and what it must be.
    #[schema(example = "amount must be at least 100 and at most 9007199254740991")]
    pub description: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                description: &self.description,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<merchants::AuthError> for ApiError {
    fn from(e: merchants::AuthError) -> Self {
        match e {
            merchants::AuthError::Invalid => Self::unauthenticated(),
            merchants::AuthError::Store(e) => Self::internal(&e),
        }
    }
}

impl From<orders::Error> for ApiError {
    fn from(e: orders::Error) -> Self {
        match e {
            orders::Error::NotFound => Self::not_found("Order not found"),
            orders::Error::KeyTakenOver(_) => Self::key_taken_over(),
            orders::Error::Store(e) => Self::internal(&e),
        }
    }
}

impl From<payments::service::Error> for ApiError {
    fn from(e: payments::service::Error) -> Self {
        use payments::service::Error as E;
        match e {
            E::NotFound => Self::not_found("Payment not found"),
            E::OrderNotFound => Self::not_found("Order not found"),
            E::OrderPaid => Self::bad_request("Order is already paid"),
            E::OrderHasOpenPayment => {
                Self::bad_request("Order already has a pending or successful payment")
            }
            E::PaymentLinkClosed => Self::bad_request(
                "The order's payment link takes no more payments: it is paid, expired or \
                 cancelled, or less than the order's amount is still due",
            ),
            E::NotCapturable => Self::bad_request("Payment not in capturable state"),
            E::NoUpiId => Self::new(
                StatusCode::BAD_REQUEST,
                "UPI_ID_NOT_SET",
                "The merchant has no UPI id (upi_id) to receive intent and QR payments: set it on \
                 the dashboard's overview, or use UPI collect",
            ),
            E::UpiNotInr => Self::bad_request("UPI intent and QR payments are in INR only"),
            E::NotAwaitingApproval => Self::bad_request(
                "Payment is not awaiting approval: it is not a pending UPI intent or QR payment, \
                 was answered already, or has expired",
            ),
            E::HasRefunds => Self::bad_request(
                "Payment has been refunded (fully or partly) and cannot be captured",
            ),
            E::CaptureAmountMismatch => {
                Self::bad_request("Capture amount must equal the payment amount")
            }
            E::KeyTakenOver(_) => Self::key_taken_over(),
            E::Store(e) => Self::internal(&e),
        }
    }
}

impl From<payment_links::Error> for ApiError {
    fn from(e: payment_links::Error) -> Self {
        use payment_links::Error as E;
        match e {
            E::NotFound => Self::not_found("Payment link not found"),
            E::DuplicateReference => {
                Self::bad_request("A payment link with this reference_id exists already")
            }
            E::NotCancellable(status) => Self::bad_request(format!(
                "Payment link is {status}: only a created or partially_paid link can be cancelled"
            )),
            E::Closed(status) => {
                Self::bad_request(format!("Payment link is {status}: it takes no payments"))
            }
            E::AmountNotAllowed(why) => Self::bad_request(why),
            E::Order(e) => e.into(),
            E::KeyTakenOver(_) => Self::key_taken_over(),
            E::Store(e) => Self::internal(&e),
        }
    }
}

impl From<settlements::Error> for ApiError {
    fn from(e: settlements::Error) -> Self {
        use settlements::Error as E;
        match e {
            E::NotFound => Self::not_found("Settlement not found"),
            E::ReconciliationNotFound => Self::not_found("Reconciliation not found"),
            E::BadReport(why) => Self::bad_request(why),
            E::Overflow => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "SERVER_ERROR",
                "The settlement's sums overflow",
            ),
            E::KeyTakenOver(_) => Self::key_taken_over(),
            E::Store(e) => Self::internal(&e),
        }
    }
}

impl From<refunds::Error> for ApiError {
    fn from(e: refunds::Error) -> Self {
        use refunds::Error as E;
        match e {
            E::PaymentNotFound => Self::not_found("Payment not found"),
            E::NotFound => Self::not_found("Refund not found"),
            E::NotRefundable => Self::bad_request("Payment not in refundable state"),
            E::ExceedsAvailable => Self::bad_request("Refund amount exceeds available amount"),
            E::KeyTakenOver(_) => Self::key_taken_over(),
            E::Store(e) => Self::internal(&e),
        }
    }
}

impl From<webhooks::Error> for ApiError {
    fn from(e: webhooks::Error) -> Self {
        use webhooks::Error as E;
        match e {
            E::NotFound => Self::not_found("Webhook delivery not found"),
            E::InvalidUrl(reason) => Self::bad_request(reason),
            E::NotConfigured => Self::bad_request("No webhook URL is configured"),
            E::EndpointNotFound => Self::not_found("Webhook endpoint not found"),
            E::InvalidEndpoint(reason) => Self::bad_request(reason),
            E::TooManyEndpoints(n) => Self::bad_request(format!(
                "A merchant may have at most {n} webhook endpoints (WEBHOOK_ENDPOINTS_MAX)"
            )),
            E::ReplayRunning(id) => Self::new(
                StatusCode::CONFLICT,
                "REPLAY_IN_PROGRESS",
                format!(
                    "Replay {id} of this endpoint is still running: wait for its deliveries to end"
                ),
            ),
            E::ReplayCap { cap, left } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMIT_ERROR",
                format!(
                    "Replays may queue at most {cap} deliveries in 24 hours \
                     (WEBHOOK_REPLAY_DAILY_MAX); {left} are left"
                ),
            ),
            E::KeyTakenOver(_) => Self::key_taken_over(),
            E::Store(e) => Self::internal(&e),
        }
    }
}
