//! The authenticated merchant's own account.

use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiResult, Authed, render};
use crate::views::iso;

/// `GET /api/v1/merchant`: who the credentials belong to. No secret is shown: the API secret
/// is stored only as a digest, and the webhook secret is read through
/// `GET /api/v1/webhooks/config`.
#[derive(Serialize, ToSchema)]
pub struct MerchantBody {
    /// The merchant's id.
    pub id: String,
    /// The business name.
    pub name: String,
    /// The account's email (the dashboard login).
    pub email: String,
    /// The API key (public half of the credentials).
    pub api_key: String,
    /// The default webhook URL, `null` when webhooks are off.
    pub webhook_url: Option<String>,
    /// The VPA UPI intent and QR payments are paid to; `null` when not set (set it on the
    /// dashboard).
    pub upi_id: Option<String>,
    /// When the account was created (ISO 8601).
    pub created_at: String,
}

/// The authenticated merchant.
///
/// Who the credentials belong to; no secret is shown.
#[utoipa::path(get, path = "/api/v1/merchant", operation_id = "getMerchant", tag = "Account",
    responses((status = 200, description = "The merchant", body = MerchantBody)))]
pub async fn merchant(Authed(m, ..): Authed) -> ApiResult {
    render(MerchantBody {
        id: m.id,
        name: m.name,
        email: m.email,
        api_key: m.api_key,
        webhook_url: m.webhook_url,
        upi_id: m.upi_id,
        created_at: iso(m.created_at),
    })
}
