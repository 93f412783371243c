//! The audit log: who changed what through the API and the dashboard, and every sign-in.

use std::collections::HashMap;

use axum::extract::{Query, State};
use utoipa::IntoParams;

use super::{ApiError, ApiResult, ApiState, Authed, Page, Paging, PagingParams, time_range};
use crate::{
    store::audit_log::{self, Filter},
    views::AuditLogBody,
};

/// Longest filter value, characters.
const FILTER_MAX: usize = 200;

/// The filters of `GET /api/v1/audit_logs` (read by [`filter_of`], which names a bad value).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query string for the OpenAPI document
pub struct AuditLogFilters {
    /// Only what this actor did: an API key, or a user's id.
    actor: Option<String>,
    /// Only this action (`payment.capture`), or every action on one kind of resource when it
    /// ends in a dot (`payment.`).
    action: Option<String>,
    /// Only actions on this kind of resource (`payment`, `user`, …).
    resource_type: Option<String>,
    /// Only actions on this resource (its id).
    resource_id: Option<String>,
    /// Only entries made at or after this time (RFC 3339).
    from: Option<String>,
    /// Only entries made before this time (RFC 3339).
    to: Option<String>,
}

/// List the audit log, newest first.
///
/// Every change made through the API (by API key) or the dashboard (by user), and every
/// dashboard sign-in (successful or not). `actor`, `action`, `resource_type`, `resource_id` and
/// `from`/`to` (RFC 3339, on `created_at`, `to` exclusive) narrow the list.
#[utoipa::path(get, path = "/api/v1/audit_logs", operation_id = "listAuditLogs", tag = "Audit log",
    params(PagingParams, AuditLogFilters),
    responses((status = 200, description = "A page of audit log entries", body = Page<AuditLogBody>)))]
pub async fn list(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    page: Paging,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let filter = filter_of(&q)?;
    let entries = audit_log::list(&app.store, &m.id, &filter, page.window())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    page.render(&entries, AuditLogBody::new)
}

/// The list's filters from its query string; a value it cannot read is a 400 naming it.
pub fn filter_of(q: &HashMap<String, String>) -> Result<Filter, ApiError> {
    let text = |name: &str| match q.get(name) {
        None => Ok(None),
        Some(v)
            if !v.is_empty()
                && v.chars().count() <= FILTER_MAX
                && !v.chars().any(char::is_control) =>
        {
            Ok(Some(v.clone()))
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "{name} must be 1 to {FILTER_MAX} characters, none of them control characters"
        ))),
    };
    let (from, to) = time_range(q)?;
    Ok(Filter {
        actor_id: text("actor")?,
        action: text("action")?,
        resource_type: text("resource_type")?,
        resource_id: text("resource_id")?,
        from,
        to,
    })
}
