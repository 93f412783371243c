//! Payment links.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use paygate_core::{Currency, OrderAmount};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::{
    Answer, ApiError, ApiResult, ApiState, Authed, IdParam, IdPath, Idempotency, Page, Paging,
    PagingParams, orders::parse_notes, render,
};
use crate::{
    http::extract::ApiJson,
    payment_links::{self, NewLink},
    store::{now, payment_links::PaymentLink},
    views::PaymentLinkBody,
};
#[allow(unused_imports)] // named by the OpenAPI annotations only
use std::collections::HashMap;

/// Longest `description`, characters.
const DESCRIPTION_MAX: usize = 2048;
/// Longest `reference_id`, characters.
const REFERENCE_MAX: usize = 40;
/// Longest customer `name` and `email`, characters.
const CUSTOMER_FIELD_MAX: usize = 255;
/// Longest customer `contact`, characters.
const CONTACT_MAX: usize = 20;
/// The latest `expire_by` taken: 2100-01-01T00:00:00Z.
const EXPIRE_BY_MAX: i64 = 4_102_444_800;

/// Who the link is for; shown on the link's page.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// At most 255 characters.
    #[schema(example = "Asha Rao")]
    pub name: Option<String>,
    /// An email address, at most 255 characters.
    #[schema(example = "asha@example.com")]
    pub email: Option<String>,
    /// A phone number: digits, spaces, `+` and `-`, at most 20 characters.
    #[schema(example = "+919876543210")]
    pub contact: Option<String>,
}

/// The body of `POST /api/v1/payment_links`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentLink {
    /// What the link asks for, in the currency's smallest unit: at least 100.
    #[schema(minimum = 100, maximum = 9007199254740991_i64, example = 100000)]
    pub amount: i64,
    /// An ISO 4217 currency code (any case); INR when absent.
    #[schema(example = "INR")]
    pub currency: Option<String>,
    /// What it is for, shown on the link's page; at most 2048 characters.
    #[schema(example = "Invoice 1042")]
    pub description: Option<String>,
    /// Who the link is for (each field optional).
    pub customer: Option<Customer>,
    /// The merchant's own reference, unique among its links; at most 40 characters.
    #[schema(example = "INV-1042")]
    pub reference_id: Option<String>,
    /// When the link expires, Unix seconds: in the future (and before 2100). Never, when
    /// absent.
    #[schema(example = 1798761600)]
    pub expire_by: Option<i64>,
    /// Whether the customer may pay in parts (default `false`).
    pub accept_partial: Option<bool>,
    /// With `accept_partial`: the least the first payment may be (at least 100, at most
    /// `amount`).
    #[schema(minimum = 100, example = 40000)]
    pub first_min_partial_amount: Option<i64>,
    /// An `http(s)` URL the customer is sent to after paying, with `payment_link_id`,
    /// `payment_id`, `status` and `signature` in its query string.
    #[schema(example = "https://shop.example/paid")]
    pub callback_url: Option<String>,
    /// `get` (the only method), when given.
    #[schema(example = "get")]
    pub callback_method: Option<String>,
    /// Up to 15 keys of the merchant's choosing (each 1 to 256 characters), each a string of
    /// at most 256 characters.
    #[schema(value_type = Option<HashMap<String, String>>)]
    pub notes: Option<Map<String, Value>>,
}

fn too_long(field: &str, value: Option<&String>, max: usize) -> ApiResult<()> {
    if value.is_some_and(|v| v.chars().count() > max) {
        return Err(ApiError::bad_request(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(())
}

impl Customer {
    fn parse(self) -> ApiResult<Value> {
        too_long("customer.name", self.name.as_ref(), CUSTOMER_FIELD_MAX)?;
        too_long("customer.email", self.email.as_ref(), CUSTOMER_FIELD_MAX)?;
        too_long("customer.contact", self.contact.as_ref(), CONTACT_MAX)?;
        if let Some(email) = &self.email
            && !email
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !email.contains(' '))
        {
            return Err(ApiError::bad_request(
                "customer.email must be an email address",
            ));
        }
        if let Some(contact) = &self.contact
            && (contact.trim().is_empty()
                || !contact
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ')))
        {
            return Err(ApiError::bad_request(
                "customer.contact must be a phone number: digits, spaces, + and -",
            ));
        }
        let mut out = Map::new();
        for (k, v) in [
            ("name", self.name),
            ("email", self.email),
            ("contact", self.contact),
        ] {
            if let Some(v) = v {
                out.insert(k.to_owned(), Value::String(v));
            }
        }
        Ok(Value::Object(out))
    }
}

impl CreatePaymentLink {
    /// The link, validated into domain types, as of `at`.
    pub fn parse(self, at: DateTime<Utc>) -> ApiResult<NewLink> {
        let amount = OrderAmount::parse(self.amount).ok_or_else(|| {
            ApiError::bad_request(format!(
                "amount must be at least {} and at most {}",
                OrderAmount::MIN,
                OrderAmount::MAX
            ))
        })?;
        let currency = match self.currency.as_deref() {
            None => Currency::INR,
            Some(c) => Currency::parse(c).ok_or_else(|| {
                ApiError::bad_request("currency must be a 3-letter ISO 4217 code")
            })?,
        };
        too_long("description", self.description.as_ref(), DESCRIPTION_MAX)?;
        too_long("reference_id", self.reference_id.as_ref(), REFERENCE_MAX)?;
        if self.reference_id.as_ref().is_some_and(|r| r.is_empty()) {
            return Err(ApiError::bad_request("reference_id must not be empty"));
        }
        let expire_by = match self.expire_by {
            None => None,
            Some(t) if t > at.timestamp() && t <= EXPIRE_BY_MAX => DateTime::from_timestamp(t, 0),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "expire_by must be a time in the future (Unix seconds, before 2100)",
                ));
            }
        };
        let accept_partial = self.accept_partial.unwrap_or(false);
        let first = match self.first_min_partial_amount {
            None => None,
            Some(_) if !accept_partial => {
                return Err(ApiError::bad_request(
                    "first_min_partial_amount needs accept_partial: true",
                ));
            }
            Some(f) if f < OrderAmount::MIN || f > self.amount => {
                return Err(ApiError::bad_request(format!(
                    "first_min_partial_amount must be at least {} and at most the amount ({})",
                    OrderAmount::MIN,
                    self.amount
                )));
            }
            Some(f) => Some(f),
        };
        super::orders::check_callback_url(self.callback_url.as_ref())?;
        if self
            .callback_method
            .as_deref()
            .is_some_and(|m| !m.eq_ignore_ascii_case("get"))
        {
            return Err(ApiError::bad_request("callback_method must be get"));
        }
        let customer = match self.customer {
            Some(c) => c.parse()?,
            None => json!({}),
        };
        Ok(NewLink {
            amount,
            currency,
            description: self.description,
            customer,
            reference_id: self.reference_id,
            expire_by,
            accept_partial,
            first_min_partial_amount: first,
            callback_url: self.callback_url,
            notes: parse_notes(self.notes)?,
        })
    }
}

/// Create a payment link.
///
/// A page on the checkout (`short_url`) where the customer pays the amount (in parts, with
/// `accept_partial`) by UPI or card. Answers `201` with the link, `created`.
#[utoipa::path(post, path = "/api/v1/payment_links", operation_id = "createPaymentLink", tag = "Payment links", request_body = CreatePaymentLink,
    responses((status = 201, description = "The link, `created`", body = PaymentLinkBody)))]
pub async fn create(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    key: Idempotency,
    ApiJson(body): ApiJson<CreatePaymentLink>,
) -> ApiResult<Answer> {
    let new = body.parse(now())?;
    let render =
        |l: &PaymentLink| Answer::json(StatusCode::CREATED, &PaymentLinkBody::new(l, None));
    key.answer(render, |replay| app.payment_links.create(&by, new, replay))
        .await
}

/// Fetch a payment link, with the payments made through it.
#[utoipa::path(get, path = "/api/v1/payment_links/{id}", operation_id = "getPaymentLink", tag = "Payment links", params(IdParam),
    responses((status = 200, description = "The link", body = PaymentLinkBody)))]
pub async fn get(
    State(app): State<ApiState>,
    Authed(m, ..): Authed,
    IdPath(id): IdPath,
) -> ApiResult {
    let link = payment_links::get(&app.store, Some(&m.id), &id).await?;
    let payments = payment_links::payments(&app.store, &link.id).await?;
    render(PaymentLinkBody::new(&link, Some(&payments)))
}

/// List payment links, newest first.
#[utoipa::path(get, path = "/api/v1/payment_links", operation_id = "listPaymentLinks", tag = "Payment links", params(PagingParams),
    responses((status = 200, description = "A page of links", body = Page<PaymentLinkBody>)))]
pub async fn list(State(app): State<ApiState>, Authed(m, ..): Authed, page: Paging) -> ApiResult {
    let links = payment_links::list(&app.store, &m.id, page.window()).await?;
    page.render(&links, |l| PaymentLinkBody::new(l, None))
}

/// Cancel a payment link.
///
/// Only a `created` or `partially_paid` link: it takes no more payments (what was paid stays
/// paid). Answers `200` with the link, `cancelled`; `payment_link.cancelled` follows by webhook.
#[utoipa::path(post, path = "/api/v1/payment_links/{id}/cancel", operation_id = "cancelPaymentLink", tag = "Payment links", params(IdParam),
    responses((status = 200, description = "The link, `cancelled`", body = PaymentLinkBody)))]
pub async fn cancel(
    State(app): State<ApiState>,
    Authed(_, by): Authed,
    IdPath(id): IdPath,
    key: Idempotency,
) -> ApiResult<Answer> {
    let render = |l: &PaymentLink| Answer::json(StatusCode::OK, &PaymentLinkBody::new(l, None));
    key.answer(render, |replay| app.payment_links.cancel(&by, &id, replay))
        .await
}
