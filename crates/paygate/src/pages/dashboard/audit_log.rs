//! The audit log (owners and admins): who changed what, newest first, filtered by actor,
//! action and resource, in pages of 50, and its CSV export.

use std::{collections::HashMap, fmt::Write as _};

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};

use super::{
    Frame, Pager, Q, SignedIn,
    export::{self, csv_field},
    internal, read_page, window_of, with_query,
};
use crate::{
    pages::{PagesState, page as render},
    store::{
        audit_log::{self, Entry, Filter},
        users,
    },
    views::iso,
};

const PAGE_SIZE: i64 = 50;
const HERE: &str = "/dashboard/audit-log";

/// The filters of the page's query string: `actor` (a user's id or the API key), `action`
/// (an action, or every action on a resource when it ends in `.`), `resource` (an id). A
/// value that could not be stored (empty, too long, control characters) filters nothing.
fn filter_of(q: &HashMap<String, String>) -> Filter {
    let text = |name: &str| {
        q.get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 200 && !v.chars().any(char::is_control))
    };
    Filter {
        actor_id: text("actor"),
        action: text("action"),
        resource_id: text("resource"),
        ..Filter::default()
    }
}

fn query_of(f: &Filter) -> String {
    let mut u = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("actor", &f.actor_id),
        ("action", &f.action),
        ("resource", &f.resource_id),
    ] {
        if let Some(v) = v {
            u.append_pair(k, v);
        }
    }
    u.finish()
}

#[derive(askama::Template)]
#[template(path = "dashboard/audit_log.html")]
struct AuditLog {
    frame: Frame,
    /// `(value, text, selected)` of the actor filter: the team's users and the API key.
    actors: Vec<(String, String, bool)>,
    action: String,
    resource: String,
    query: String,
    rows: Vec<Row>,
    pager: Pager,
}

/// An entry as the table shows it.
struct Row {
    id: String,
    at: String,
    actor: String,
    action: String,
    resource: String,
    address: String,
    outcome: String,
}

/// `GET /dashboard/audit-log`.
pub async fn page(State(app): State<PagesState>, s: SignedIn, Query(q): Q) -> Response {
    let f = filter_of(&q);
    let qs = query_of(&f);
    let base = with_query(HERE, &qs);
    let listed = read_page!(window_of(&q, PAGE_SIZE), |w| audit_log::list(
        &app.store,
        &s.merchant.id,
        &f,
        w
    ))
    .await;
    let (page, start) = match listed {
        Ok(x) => x,
        Err(e) => return internal(&e),
    };
    let team = match users::list(&app.store, &s.merchant.id).await {
        Ok(team) => team,
        Err(e) => return internal(&e),
    };
    let chosen = f.actor_id.clone().unwrap_or_default();
    let actors = std::iter::once((String::new(), "Everyone".to_owned()))
        .chain(team.into_iter().map(|u| (u.id, u.email)))
        .chain(std::iter::once((
            s.merchant.api_key.clone(),
            format!("API key {}", s.merchant.api_key),
        )))
        .map(|(value, text)| {
            let selected = value == chosen;
            (value, text, selected)
        })
        .collect();
    let pager = Pager::new(&page, &start, &base, |e| &e.id);
    let view = AuditLog {
        frame: Frame::new("Audit log", "Audit log", &s),
        actors,
        action: f.action.clone().unwrap_or_default(),
        resource: f.resource_id.clone().unwrap_or_default(),
        query: qs,
        rows: page
            .rows
            .iter()
            .map(|e| Row {
                id: e.id.clone(),
                at: iso(e.created_at),
                actor: e.actor_name.clone(),
                action: e.action.clone(),
                resource: match &e.resource_id {
                    Some(id) => format!("{} {id}", e.resource_type),
                    None => e.resource_type.clone(),
                },
                address: e.address.clone().unwrap_or_default(),
                outcome: e.outcome.clone(),
            })
            .collect(),
        pager,
    };
    render(StatusCode::OK, &view)
}

/// `GET /dashboard/audit-log.csv`: the filtered log, newest first, streamed.
pub async fn export_csv(State(app): State<PagesState>, s: SignedIn, Query(q): Q) -> Response {
    let head = "id,created_at,actor_type,actor_id,actor_name,action,resource_type,resource_id,\
                ip,user_agent,outcome\n";
    export::csv(
        (app.store.clone(), s.merchant.id.clone()),
        filter_of(&q).conditions(),
        (head, "audit-log.csv"),
        |e: &Entry, out| {
            write!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&e.id),
                iso(e.created_at),
                csv_field(&e.actor_type),
                csv_field(&e.actor_id),
                csv_field(&e.actor_name),
                csv_field(&e.action),
                csv_field(&e.resource_type),
                csv_field(e.resource_id.as_deref().unwrap_or_default()),
                csv_field(e.address.as_deref().unwrap_or_default()),
                csv_field(e.user_agent.as_deref().unwrap_or_default()),
                csv_field(&e.outcome)
            )
        },
    )
}
