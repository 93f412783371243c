//! The payment links page: create a link from a form (amounts in rupees), the links with their
//! status and what was paid, each link's address to copy, and cancel.

use std::collections::HashMap;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::NaiveDateTime;
use paygate_core::{Currency, display_amount};

use super::{F, Frame, Pager, Q, SignedIn, answer_form, read_page, refusal, window_of};
use crate::{
    http::{api::payment_links::CreatePaymentLink, error::ApiError},
    pages::{PagesState, Time, page as render},
    payment_links,
    store::{now, payment_links::PaymentLink},
};

const PAGE_SIZE: i64 = 20;
/// Where every form of the page returns.
const HERE: &str = "/dashboard/payment-links";

#[derive(askama::Template)]
#[template(path = "dashboard/links.html")]
struct LinksPage {
    frame: Frame,
    /// The address of the link just created.
    created: Option<String>,
    /// Why the form was refused.
    error: Option<String>,
    draft: Draft,
    pager: Pager,
    rows: Vec<Row>,
}

/// What the form holds: empty, or what was typed when it was refused.
#[derive(Default)]
struct Draft {
    amount: String,
    reference_id: String,
    description: String,
    customer_name: String,
    customer_email: String,
    customer_contact: String,
    accept_partial: bool,
    first_min: String,
    expire_by: String,
    callback_url: String,
}

impl Draft {
    fn from_form(f: &HashMap<String, String>) -> Self {
        let field = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        Self {
            amount: field("amount"),
            reference_id: field("reference_id"),
            description: field("description"),
            customer_name: field("customer_name"),
            customer_email: field("customer_email"),
            customer_contact: field("customer_contact"),
            accept_partial: f.get("accept_partial").is_some_and(|v| v == "true"),
            first_min: field("first_min_partial_amount"),
            expire_by: field("expire_by"),
            callback_url: field("callback_url"),
        }
    }

    /// The API's request for this form (amounts typed in rupees).
    fn request(&self) -> Result<CreatePaymentLink, String> {
        let inr = Currency::INR;
        let opt = |s: &String| (!s.is_empty()).then(|| s.clone());
        let amount = inr
            .parse_major(&self.amount)
            .ok_or("Enter the amount in rupees, like 1000 or 1000.50")?;
        let first_min_partial_amount = match opt(&self.first_min) {
            None => None,
            Some(t) => Some(
                inr.parse_major(&t)
                    .ok_or("Enter the least first payment in rupees, like 400")?,
            ),
        };
        let expire_by = match opt(&self.expire_by) {
            None => None,
            Some(t) => Some(
                NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M")
                    .or_else(|_| NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S"))
                    .map_err(|_| "Enter the expiry as a date and time")?
                    .and_utc()
                    .timestamp(),
            ),
        };
        let customer = [
            &self.customer_name,
            &self.customer_email,
            &self.customer_contact,
        ]
        .iter()
        .any(|v| !v.is_empty())
        .then(|| crate::http::api::payment_links::Customer {
            name: opt(&self.customer_name),
            email: opt(&self.customer_email),
            contact: opt(&self.customer_contact),
        });
        Ok(CreatePaymentLink {
            amount,
            currency: None,
            description: opt(&self.description),
            customer,
            reference_id: opt(&self.reference_id),
            expire_by,
            accept_partial: Some(self.accept_partial),
            first_min_partial_amount,
            callback_url: opt(&self.callback_url),
            callback_method: None,
            notes: None,
        })
    }
}

/// A link as the table shows it.
struct Row {
    id: String,
    url: String,
    reference: String,
    amount: String,
    paid: String,
    status: String,
    open: bool,
    created: Time,
}

impl From<PaymentLink> for Row {
    fn from(l: PaymentLink) -> Self {
        Self {
            open: l.is_open(),
            amount: display_amount(l.amount, &l.currency),
            paid: display_amount(l.amount_paid, &l.currency),
            reference: l.reference_id.unwrap_or_default(),
            created: Time::from(l.created_at),
            id: l.id,
            url: l.short_url,
            status: l.status,
        }
    }
}

/// `GET /dashboard/payment-links`.
pub async fn page(State(app): State<PagesState>, s: SignedIn, Query(q): Q) -> Response {
    show(&app, &s, &q, None, Draft::default(), None).await
}

async fn show(
    app: &PagesState,
    s: &SignedIn,
    q: &HashMap<String, String>,
    created: Option<String>,
    draft: Draft,
    error: Option<String>,
) -> Response {
    let listed = read_page!(window_of(q, PAGE_SIZE), |w| payment_links::list(
        &app.store,
        &s.merchant.id,
        w
    ))
    .await;
    let (page, start) = match listed {
        Ok(x) => x,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let pager = Pager::new(&page, &start, HERE, |l: &PaymentLink| &l.id);
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let view = LinksPage {
        frame: Frame::new("Payment links", "Payment links", s),
        created,
        error,
        draft,
        pager,
        rows: page.rows.into_iter().map(Row::from).collect(),
    };
    render(status, &view)
}

/// `POST /dashboard/payment-links`: creates a link; the page shows its address to copy, or
/// the form again with what was typed and why it was refused.
pub async fn create(State(app): State<PagesState>, s: SignedIn, F(f): F) -> Response {
    if let Err(r) = s.check_csrf(&f) {
        return r.into_response();
    }
    let draft = Draft::from_form(&f);
    let none = HashMap::new();
    let new = match draft.request() {
        Ok(request) => request.parse(now()),
        Err(why) => return show(&app, &s, &none, None, draft, Some(why)).await,
    };
    let new = match new {
        Ok(n) => n,
        Err(e) => return show(&app, &s, &none, None, draft, Some(e.description)).await,
    };
    match app.payment_links.create(&s.actor, new, None).await {
        Ok(link) => {
            show(
                &app,
                &s,
                &none,
                Some(link.short_url),
                Draft::default(),
                None,
            )
            .await
        }
        Err(e) => match refusal(e) {
            Ok(why) => show(&app, &s, &none, None, draft, Some(why)).await,
            Err(e) => e.into_response(),
        },
    }
}

/// `POST /dashboard/payment-links/{id}/cancel`.
pub async fn cancel(
    State(app): State<PagesState>,
    s: SignedIn,
    Path(id): Path<String>,
    F(f): F,
) -> Response {
    answer_form(&app, &s, &f, HERE, async {
        match app.payment_links.cancel(&s.actor, &id, None).await {
            Ok(l) => Ok(format!("Payment link {} cancelled.", l.id)),
            Err(e) => refusal(e),
        }
    })
    .await
}
