//! Who may use which signed-in dashboard route: [`ROUTES`] names the permission each route
//! needs, and [`super::SignedIn`] checks it against the user's role on every request, before
//! the handler runs. A route missing from the table is refused to everyone (deny by default);
//! a test walks the whole table with every role.

use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::{Frame, SignedIn};
use crate::merchants::team::Permission;

/// `(method, route, permission)` for every route that needs a session.
pub const ROUTES: &[(&str, &str, Permission)] = &[
    ("GET", "/dashboard", Permission::Read),
    ("GET", "/dashboard/credentials/rotate", Permission::ApiKeys),
    ("POST", "/dashboard/credentials/rotate", Permission::ApiKeys),
    ("POST", "/dashboard/upi", Permission::Settings),
    ("GET", "/dashboard/settings", Permission::Read),
    ("POST", "/dashboard/settings", Permission::Settings),
    ("GET", "/dashboard/settings/logo", Permission::Read),
    ("POST", "/dashboard/settings/logo", Permission::Settings),
    (
        "POST",
        "/dashboard/settings/logo/remove",
        Permission::Settings,
    ),
    ("GET", "/dashboard/transactions", Permission::Read),
    ("GET", "/dashboard/transactions.csv", Permission::Read),
    ("GET", "/dashboard/audit-log", Permission::AuditLog),
    ("GET", "/dashboard/audit-log.csv", Permission::AuditLog),
    ("GET", "/dashboard/payment-links", Permission::Read),
    ("POST", "/dashboard/payment-links", Permission::PaymentLinks),
    (
        "POST",
        "/dashboard/payment-links/{id}/cancel",
        Permission::PaymentLinks,
    ),
    ("GET", "/dashboard/settlements", Permission::Read),
    ("GET", "/dashboard/settlements/{id}", Permission::Read),
    (
        "GET",
        "/dashboard/settlements/{id}/transactions.csv",
        Permission::Read,
    ),
    (
        "POST",
        "/dashboard/reconciliations",
        Permission::Settlements,
    ),
    ("GET", "/dashboard/reconciliations/{id}", Permission::Read),
    ("GET", "/dashboard/payments/{id}", Permission::Read),
    (
        "POST",
        "/dashboard/payments/{id}/capture",
        Permission::Captures,
    ),
    (
        "POST",
        "/dashboard/payments/{id}/refund",
        Permission::Refunds,
    ),
    ("GET", "/dashboard/webhooks", Permission::Read),
    ("POST", "/dashboard/webhooks/config", Permission::Webhooks),
    ("GET", "/dashboard/webhooks/secret", Permission::Webhooks),
    ("POST", "/dashboard/webhooks/secret", Permission::Webhooks),
    ("POST", "/dashboard/webhooks/test", Permission::Webhooks),
    (
        "POST",
        "/dashboard/webhooks/retry-failed",
        Permission::Webhooks,
    ),
    (
        "POST",
        "/dashboard/webhooks/{id}/retry",
        Permission::Webhooks,
    ),
    (
        "POST",
        "/dashboard/webhooks/endpoints",
        Permission::Webhooks,
    ),
    (
        "POST",
        "/dashboard/webhooks/endpoints/{id}",
        Permission::Webhooks,
    ),
    (
        "POST",
        "/dashboard/webhooks/endpoints/{id}/enabled",
        Permission::Webhooks,
    ),
    (
        "POST",
        "/dashboard/webhooks/endpoints/{id}/rotate",
        Permission::Webhooks,
    ),
    (
        "POST",
        "/dashboard/webhooks/endpoints/{id}/replay",
        Permission::Webhooks,
    ),
    (
        "POST",
        "/dashboard/webhooks/endpoints/{id}/retry-failed",
        Permission::Webhooks,
    ),
    (
        "POST",
        "/dashboard/webhooks/endpoints/{id}/delete",
        Permission::Webhooks,
    ),
    (
        "POST",
        "/dashboard/webhooks/endpoints/{id}/test",
        Permission::Webhooks,
    ),
    ("GET", "/dashboard/docs", Permission::Read),
    ("GET", "/dashboard/openapi.json", Permission::Read),
    ("GET", "/dashboard/docs/api", Permission::Read),
    ("GET", "/dashboard/team", Permission::Team),
    ("POST", "/dashboard/team/invite", Permission::Team),
    ("POST", "/dashboard/team/{id}/role", Permission::Team),
    ("POST", "/dashboard/team/{id}/remove", Permission::Team),
    (
        "POST",
        "/dashboard/team/invitations/{id}/revoke",
        Permission::Team,
    ),
    ("POST", "/dashboard/team/two-factor", Permission::Team),
    ("GET", "/dashboard/account", Permission::Read),
    ("GET", "/dashboard/account/2fa", Permission::Read),
    ("POST", "/dashboard/account/2fa", Permission::Read),
    ("POST", "/dashboard/account/2fa/disable", Permission::Read),
    ("POST", "/dashboard/account/password", Permission::Read),
    (
        "POST",
        "/dashboard/account/sessions/{id}/end",
        Permission::Read,
    ),
    ("POST", "/logout", Permission::Read),
];

/// The permission `route` needs for `method` (HEAD as GET); `None` when the table does not
/// name it.
pub fn required(method: &Method, route: &str) -> Option<Permission> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|(m, r, _)| *m == method && *r == route)
        .map(|(_, _, p)| *p)
}

/// The page a user sees where their role does not reach: 403, inside the dashboard's frame.
#[derive(askama::Template)]
#[template(path = "dashboard/forbidden.html")]
struct Forbidden {
    frame: Frame,
    role: &'static str,
}

/// 403 for `s`, whose role does not allow this route.
pub fn forbidden(s: &SignedIn) -> Response {
    let page = Forbidden {
        frame: Frame::new("Not allowed", "", s),
        role: s.user.role.label(),
    };
    super::super::page(StatusCode::FORBIDDEN, &page)
}
