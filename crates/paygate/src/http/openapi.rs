//! The OpenAPI 3.1 document of the API port (`GET /api/v1/openapi.json`, checked in as
//! `docs/openapi.json`).
//!
//! utoipa builds it: each handler's `#[utoipa::path]` gives its operation and success
//! answer, each request and response type derives its schema (`ToSchema`, field comments as
//! descriptions), and utoipa-axum's router registers the route from the same annotation.
//! What every operation of a kind shares is added here once, by rule, rather than repeated on
//! each handler: the credentials (every `/api/v1` route but the checkout's `…/public`, the
//! test endpoints and this document), the `Idempotency-Key` header (authenticated POSTs),
//! and the error answers each kind of route can give (400 on input, 401 and 429 when
//! authenticated, 404 where a path or body names a resource, 409/422 for idempotency keys,
//! 413 on bodies).

use axum::{Extension, http::header, response::IntoResponse};
use utoipa::openapi::{
    Content, Header, Object, ObjectBuilder, OpenApi, Ref, RefOr, Required, ResponseBuilder, Type,
    link::LinkBuilder,
    path::{Operation, ParameterBuilder, ParameterIn},
    security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme},
    tag::Tag,
};

use crate::http::{error::ErrorBody, idempotency::KEY_MAX};

/// The rendered document, as the router serves it.
#[derive(Clone)]
pub struct Document(pub std::sync::Arc<String>);

/// The OpenAPI document.
///
/// This document: OpenAPI 3.1, generated from the code.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi", tag = "Health",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API",
        body = Object, content_type = "application/json")))]
pub async fn serve(Extension(doc): Extension<Document>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.as_str().to_owned(),
    )
}

/// The tags, in the order the document lists them.
const TAGS: &[(&str, &str)] = &[
    (
        "Orders",
        "What a payment collects: amount, currency, receipt, notes.",
    ),
    (
        "Payments",
        "UPI and card payments: created `pending`, processed asynchronously, captured.",
    ),
    (
        "Refunds",
        "Full and partial refunds of successful payments.",
    ),
    (
        "Payment links",
        "Links to a payment page on the checkout, paid at once or in parts; expire or cancel.",
    ),
    (
        "Webhooks",
        "The webhook URL and secret, the delivery log, retries and test deliveries.",
    ),
    ("Events", "The log of every state change."),
    ("Account", "The authenticated merchant."),
    (
        "Audit log",
        "Who changed what, through the API or the dashboard, and every dashboard sign-in.",
    ),
    ("Queue", "The job queues' state."),
    (
        "Checkout",
        "The unauthenticated endpoints of the hosted checkout and `checkout.js`.",
    ),
    ("Health", "Probes, metrics and this document."),
    (
        "Test",
        "Development helpers, served only when `TEST_ENDPOINTS` is on (never in production).",
    ),
];

const DESCRIPTION: &str = "\
A self-hostable payment gateway: orders, UPI and card payments processed asynchronously, \
captures, full and partial refunds, HMAC-signed webhooks with retries.\n\n\
Authenticate with `X-Api-Key` and `X-Api-Secret` together, or HTTP Basic `key:secret`. \
Amounts are integers in the currency's smallest unit. Every error answers \
`{\"error\": {\"code\", \"description\"}}`. Authenticated POSTs honour `Idempotency-Key` \
(kept 24 hours). With `RATE_LIMIT_PER_SECOND` set, each API key is limited and answers carry \
`RateLimit-Limit`, `RateLimit-Remaining` and, on a 429, `Retry-After`.";

/// The error answers, by name: `(name, status, description)`.
const ERRORS: &[(&str, &str, &str)] = &[
    (
        "BadRequest",
        "400",
        "The request is invalid: the description names the field and what it must be",
    ),
    (
        "Unauthorized",
        "401",
        "The API credentials are missing or wrong",
    ),
    ("NotFound", "404", "No such resource for this merchant"),
    (
        "Conflict",
        "409",
        "A request with this Idempotency-Key is still being processed",
    ),
    ("TooLarge", "413", "The body is larger than 64 KiB"),
    (
        "Unprocessable",
        "422",
        "This Idempotency-Key was used for a different request",
    ),
    (
        "TooManyRequests",
        "429",
        "The API key (or, on the checkout endpoints, the client address) is over its rate limit",
    ),
];

/// Completes what the router collected into the published document.
pub fn finish(collected: OpenApi) -> OpenApi {
    let mut doc = collected;
    doc.info.title = "paygate API".to_owned();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.info.description = Some(DESCRIPTION.to_owned());
    doc.tags = Some(
        TAGS.iter()
            .map(|(name, about)| {
                let mut tag = Tag::new(*name);
                tag.description = Some((*about).to_owned());
                tag
            })
            .collect(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "ErrorBody".to_owned(),
        <ErrorBody as utoipa::PartialSchema>::schema(),
    );
    let mut nested = Vec::new();
    <ErrorBody as utoipa::ToSchema>::schemas(&mut nested);
    components.schemas.extend(nested);
    for (name, status, description) in ERRORS {
        let mut response = ResponseBuilder::new().description(*description).content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        );
        if *status == "429" {
            let mut retry = Header::new(Object::with_type(Type::Integer));
            retry.description = Some("Seconds until a request may succeed".to_owned());
            response = response.header("Retry-After", retry);
        }
        components
            .responses
            .insert((*name).to_owned(), response.build().into());
    }
    let key = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retried POST safe: the first request's answer is replayed for 24 hours",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(KEY_MAX)),
        ))
        .build();
    components
        .parameters
        .insert("IdempotencyKey".to_owned(), key.into());
    for (name, scheme) in [
        ("api_key", ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        (
            "api_secret",
            ApiKey::Header(ApiKeyValue::new("X-Api-Secret")),
        ),
    ] {
        components.add_security_scheme(name, SecurityScheme::ApiKey(scheme));
    }
    components.add_security_scheme(
        "basic",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
    );
    add_links(&mut doc);
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, op) in [
            ("get", item.get.as_mut()),
            ("post", item.post.as_mut()),
            ("put", item.put.as_mut()),
            ("patch", item.patch.as_mut()),
            ("delete", item.delete.as_mut()),
        ] {
            if let Some(op) = op {
                complete(path, method, op);
            }
        }
    }
    doc
}

/// How a link hands the created resource's id on.
enum Via {
    /// As the `{id}` path parameter.
    Path,
    /// As `order_id` in the body of a UPI payment, the test VPA deciding its outcome.
    OrderInBody,
}

/// What a created resource leads to, as OpenAPI links (`(from operation, its status, link
/// name, to operation, how)`): an order to its payment, a payment to its capture and refunds, a
/// payment link to its reading and cancelling.
/// Clients and test generators (schemathesis's stateful phase) follow them.
const LINKS: &[(&str, &str, &str, &str, Via)] = &[
    ("createOrder", "201", "GetOrder", "getOrder", Via::Path),
    (
        "createOrder",
        "201",
        "GetPublicOrder",
        "getPublicOrder",
        Via::Path,
    ),
    (
        "createOrder",
        "201",
        "PayOrder",
        "createPayment",
        Via::OrderInBody,
    ),
    (
        "createOrder",
        "201",
        "PayOrderAtCheckout",
        "createPublicPayment",
        Via::OrderInBody,
    ),
    (
        "createPayment",
        "201",
        "GetPayment",
        "getPayment",
        Via::Path,
    ),
    (
        "createPayment",
        "201",
        "GetPublicPayment",
        "getPublicPayment",
        Via::Path,
    ),
    (
        "createPayment",
        "201",
        "CapturePayment",
        "capturePayment",
        Via::Path,
    ),
    (
        "createPayment",
        "201",
        "RefundPayment",
        "createRefund",
        Via::Path,
    ),
    (
        "createPayment",
        "201",
        "ListPaymentRefunds",
        "listPaymentRefunds",
        Via::Path,
    ),
    ("createRefund", "201", "GetRefund", "getRefund", Via::Path),
    (
        "createPaymentLink",
        "201",
        "GetPaymentLink",
        "getPaymentLink",
        Via::Path,
    ),
    (
        "createPaymentLink",
        "201",
        "CancelPaymentLink",
        "cancelPaymentLink",
        Via::Path,
    ),
    (
        "sendTestWebhook",
        "200",
        "RetryDelivery",
        "retryWebhookDelivery",
        Via::Path,
    ),
];

fn add_links(doc: &mut OpenApi) {
    for (from, status, name, to, via) in LINKS {
        let link = LinkBuilder::new().operation_id(*to);
        let link = match via {
            Via::Path => link.parameter("id", "$response.body#/id"),
            Via::OrderInBody => link.request_body(Some(serde_json::json!({
                "order_id": "$response.body#/id", "method": "upi", "vpa": "success@paygate"
            }))),
        };
        let response = doc.paths.paths.values_mut().find_map(|item| {
            [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
            ]
            .into_iter()
            .flatten()
            .find(|op| op.operation_id.as_deref() == Some(*from))
            .and_then(|op| op.responses.responses.get_mut(*status))
        });
        if let Some(RefOr::T(response)) = response {
            response
                .links
                .insert((*name).to_owned(), RefOr::T(link.build()));
        }
    }
}

/// Whether `path` is one of the routes that authenticate the merchant.
fn authenticated(path: &str) -> bool {
    path.starts_with("/api/v1/")
        && !path.ends_with("/public")
        && !path.ends_with("/upi/qr.svg")
        && !path.starts_with("/api/v1/test/")
        && path != "/api/v1/openapi.json"
}

/// Adds to one operation what its kind of route shares.
fn complete(path: &str, method: &str, op: &mut Operation) {
    let api = path.starts_with("/api/v1/") && path != "/api/v1/openapi.json";
    if !api || path.starts_with("/api/v1/test/") {
        return;
    }
    let authed = authenticated(path);
    let post = method == "post";
    let body = op.request_body.is_some();
    let mut errors = vec!["BadRequest"];
    if authed {
        errors.push("Unauthorized");
    }
    if path.contains('{') || post {
        errors.push("NotFound");
    }
    if authed && post {
        errors.extend(["Conflict", "Unprocessable"]);
    }
    if body || (authed && post) {
        errors.push("TooLarge");
    }
    errors.push("TooManyRequests");
    for name in errors {
        let status = ERRORS
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, s, _)| *s)
            .unwrap_or("400");
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
    if authed {
        op.security = Some(vec![
            SecurityRequirement::new("api_key", Vec::<String>::new())
                .add("api_secret", Vec::<String>::new()),
            SecurityRequirement::new("basic", Vec::<String>::new()),
        ]);
        if post {
            op.parameters
                .get_or_insert_with(Vec::new)
                .push(RefOr::Ref(Ref::new(
                    "#/components/parameters/IdempotencyKey",
                )));
        }
    }
}
