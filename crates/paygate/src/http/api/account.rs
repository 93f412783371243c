//! The authenticated merchant's own account.

use serde::Serialize;

use super::{ApiResult, Authed, render};
use crate::views::iso;

/// `GET /api/v1/merchant`: who the credentials belong to. No secret is shown: the API secret
/// is stored only as a digest, and the webhook secret is read through
/// `GET /api/v1/webhooks/config`.
#[derive(Serialize)]
pub struct MerchantBody {
    pub id: String,
    pub name: String,
    pub email: String,
    pub api_key: String,
    pub webhook_url: Option<String>,
    pub created_at: String,
}

/// `GET /api/v1/merchant`.
pub async fn merchant(Authed(m): Authed) -> ApiResult {
    render(MerchantBody {
        id: m.id,
        name: m.name,
        email: m.email,
        api_key: m.api_key,
        webhook_url: m.webhook_url,
        created_at: iso(m.created_at),
    })
}
