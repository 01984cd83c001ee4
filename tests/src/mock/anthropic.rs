//! The Anthropic Messages API as the mock speaks it: `POST /v1/messages` (JSON, and SSE with
//! `"stream": true`), `POST /v1/messages/count_tokens`, `GET /v1/models[/{id}]`, with
//! Anthropic's error shape and headers. Matched against the official `anthropic` Python SDK
//! (`tests/it/mock_families.rs`) and the API's documented and observed answers:
//!
//! - the key in `x-api-key` or as `Authorization: Bearer` (the SDK sent `X-Api-Key` up to
//!   its 0.x releases and sends a Bearer since 2.x; 401 `x-api-key header is required` without
//!   either) and a known `anthropic-version` (400 `anthropic-version: header is required`,
//!   or `... is not a valid version`), checked in that order;
//! - every answer carries `request-id`, `anthropic-organization-id` and the four
//!   `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`
//!   headers (reset in RFC 3339, whole seconds, `Z`), scripted by
//!   [`MockKey::anthropic_limit`](super::MockKey::anthropic_limit);
//! - errors are `{"type":"error","error":{"type","message"},"request_id"}`; the
//!   `request_id` (and `request-id` header) of an error carries the body canary;
//! - a stream is `message_start` (usage with input and cache tokens, `output_tokens: 1`),
//!   `content_block_start`, `ping`, one `content_block_delta` `text_delta` per chunk,
//!   `content_block_stop`, `message_delta` (cumulative usage), `message_stop`; a failure
//!   after the start is an `event: error` with `overloaded_error`.

use super::json::{arr, n, obj, s, J};
use super::{id_chars, next_serial, paced, respond, Incoming, BODY_CANARY};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use std::time::{Duration, SystemTime};

/// What the model "says".
const TEXT: &str = "Hello from the mock.";
/// Usage the mock reports (distinct primes, so a mix-up shows).
pub(super) const INPUT_TOKENS: u64 = 5;
const OUTPUT_TOKENS: u64 = 7;
const CACHE_CREATION_TOKENS: u64 = 11;
const CACHE_READ_TOKENS: u64 = 13;
/// The `anthropic-version` values the API accepts: the long-standing `2023-06-01` (the SDK's
/// through 0.x, Rotor's default), its predecessor, and `2026-10-21` (the SDK's since 2.x).
const VERSIONS: [&str; 3] = ["2023-06-01", "2023-01-01", "2026-10-21"];
/// The organization the mock's keys belong to (`anthropic-organization-id`).
const ORGANIZATION: &str = "5f1b6c2e-8d4a-4f3b-9c7e-2a6d8e0f1b3c";

/// The 400 of an account without credit, word for word.
const CREDIT_TOO_LOW: &str = "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.";

/// The 429 message, word for word (with the mock's organization).
fn rate_limited() -> String {
    format!(
        "This request would exceed the rate limit for your organization ({ORGANIZATION}) of 20,000 input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."
    )
}

/// A missing key or `anthropic-version`, refused before any script applies.
pub(super) fn refusal(req: &Incoming) -> Option<Response> {
    let bearer = req
        .header("authorization")
        .is_some_and(|a| a.starts_with("Bearer "));
    if req.header("x-api-key").is_none() && !bearer {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
            req,
        ));
    }
    let message = match req.header("anthropic-version") {
        None => "anthropic-version: header is required".to_owned(),
        Some(v) if !VERSIONS.contains(&v) => {
            format!("anthropic-version: \"{v}\" is not a valid version")
        }
        Some(_) => return None,
    };
    Some(error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &message,
        req,
    ))
}

/// The scripted error `status` as Anthropic answers it. The messages of the credit balance,
/// 401, 429, 529 and the refusals are quoted from answers seen in public reports; those of
/// the prompt too long, 403, 404, 413 and 500 are the API's as remembered; 402 and 504 the
/// mock's own.
pub(super) fn error_answer(status: StatusCode, req: &Incoming) -> Response {
    let model = req.model.as_deref().unwrap_or("claude-mock");
    let (kind, message) = match status.as_u16() {
        400 if req.script.credit_too_low => ("invalid_request_error", CREDIT_TOO_LOW.to_owned()),
        400 => (
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum".to_owned(),
        ),
        401 => ("authentication_error", "invalid x-api-key".to_owned()),
        402 => (
            "billing_error",
            "Your organization's billing needs attention.".to_owned(),
        ),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.".to_owned(),
        ),
        404 => ("not_found_error", format!("model: {model}")),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.".to_owned(),
        ),
        429 => ("rate_limit_error", rate_limited()),
        504 => ("timeout_error", "Request timed out".to_owned()),
        529 => ("overloaded_error", "Overloaded".to_owned()),
        500..=599 => ("api_error", "Internal server error".to_owned()),
        _ => (
            "invalid_request_error",
            status
                .canonical_reason()
                .unwrap_or("Bad request")
                .to_owned(),
        ),
    };
    error(status, kind, &message, req)
}

/// The error body of Anthropic's shape; its request id carries the canary.
fn error_json(kind: &str, message: &str, request_id: &str) -> J {
    obj([
        ("type", s("error")),
        ("error", obj([("type", s(kind)), ("message", s(message))])),
        ("request_id", s(request_id)),
    ])
}

fn error(status: StatusCode, kind: &str, message: &str, req: &Incoming) -> Response {
    let request_id = format!("req_011C{BODY_CANARY}-{}", id_chars(next_serial(), 8));
    let body = error_json(kind, message, &request_id).compact();
    let mut r = with_headers(respond(status, "application/json", body), req, &request_id);
    let script = &req.script;
    let date = script
        .retry_after_date
        .map(|n| httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(n)));
    for value in [script.retry_after.map(|n| n.to_string()), date]
        .into_iter()
        .flatten()
    {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert("retry-after", v);
        }
    }
    r
}

/// `request-id`, `anthropic-organization-id` and the rate-limit headers, on every answer.
fn with_headers(mut r: Response, req: &Incoming, request_id: &str) -> Response {
    let now = SystemTime::now();
    let mut headers = vec![
        ("request-id".to_owned(), request_id.to_owned()),
        (
            "anthropic-organization-id".to_owned(),
            ORGANIZATION.to_owned(),
        ),
    ];
    for limit in super::AnthropicLimit::ALL {
        let max: u64 = match limit {
            super::AnthropicLimit::Requests => 4_000,
            super::AnthropicLimit::Tokens => 2_400_000,
            super::AnthropicLimit::InputTokens => 2_000_000,
            super::AnthropicLimit::OutputTokens => 400_000,
        };
        let (remaining, reset_secs) =
            req.script.anthropic_limits[limit as usize].unwrap_or((max - 1, 1));
        let name = limit.header_name();
        let reset = chrono::DateTime::<chrono::Utc>::from(now + Duration::from_secs(reset_secs))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        headers.push((format!("anthropic-ratelimit-{name}-limit"), max.to_string()));
        headers.push((
            format!("anthropic-ratelimit-{name}-remaining"),
            remaining.to_string(),
        ));
        headers.push((format!("anthropic-ratelimit-{name}-reset"), reset));
    }
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            r.headers_mut().insert(name, value);
        }
    }
    r
}

/// The first required field of `fields` the body lacks, as Anthropic words it.
fn missing(req: &Incoming, fields: &[&str]) -> Option<Response> {
    let field = fields.iter().find(|f| {
        req.json
            .as_ref()
            .and_then(|j| j.get(**f))
            .is_none_or(|v| v.is_null())
    })?;
    Some(error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &format!("{field}: Field required"),
        req,
    ))
}

/// The answer to a request the script lets through.
pub(super) fn answer(req: &Incoming) -> Response {
    let request_id = format!("req_011C{}", id_chars(next_serial(), 20));
    let path = req.path.as_str();
    let r = if path == "/v1/messages" {
        if let Some(r) = missing(req, &["model", "max_tokens", "messages"]) {
            return r;
        }
        if req.stream() {
            stream(req)
        } else {
            respond(StatusCode::OK, "application/json", message(req).compact())
        }
    } else if path == "/v1/messages/count_tokens" {
        if let Some(r) = missing(req, &["model", "messages"]) {
            return r;
        }
        let body = obj([("input_tokens", n(INPUT_TOKENS))]);
        respond(StatusCode::OK, "application/json", body.compact())
    } else if path == "/v1/models" {
        respond(StatusCode::OK, "application/json", models().compact())
    } else if let Some(id) = path.strip_prefix("/v1/models/") {
        respond(
            StatusCode::OK,
            "application/json",
            model_info(id, "Claude (mock)").compact(),
        )
    } else {
        return error(StatusCode::NOT_FOUND, "not_found_error", "Not Found", req);
    };
    with_headers(r, req, &request_id)
}

fn usage(output_tokens: u64, with_details: bool) -> J {
    let mut fields = vec![
        ("input_tokens", n(INPUT_TOKENS)),
        ("cache_creation_input_tokens", n(CACHE_CREATION_TOKENS)),
        ("cache_read_input_tokens", n(CACHE_READ_TOKENS)),
    ];
    if with_details {
        fields.push((
            "cache_creation",
            obj([
                ("ephemeral_5m_input_tokens", n(CACHE_CREATION_TOKENS)),
                ("ephemeral_1h_input_tokens", n(0)),
            ]),
        ));
    }
    fields.push(("output_tokens", n(output_tokens)));
    if with_details {
        fields.push(("service_tier", s("standard")));
    }
    J::Obj(fields)
}

/// A `message` object: the whole answer, or (streaming) its start with empty content.
fn message_json(id: &str, model: &str, content: J, done: bool, output_tokens: u64) -> J {
    let stop = if done { s("end_turn") } else { J::Null };
    obj([
        ("id", s(id)),
        ("type", s("message")),
        ("role", s("assistant")),
        ("model", s(model)),
        ("content", content),
        ("stop_reason", stop),
        ("stop_sequence", J::Null),
        ("usage", usage(output_tokens, true)),
    ])
}

fn message_id() -> String {
    format!("msg_01{}", id_chars(next_serial(), 22))
}

fn message(req: &Incoming) -> J {
    let text = obj([("type", s("text")), ("text", s(TEXT))]);
    let model = req.model.as_deref().unwrap_or_default();
    message_json(&message_id(), model, arr([text]), true, OUTPUT_TOKENS)
}

fn event(name: &str, data: &J) -> String {
    format!("event: {name}\ndata: {}\n\n", data.compact())
}

fn stream(req: &Incoming) -> Response {
    let script = &req.script;
    let chunks = script.chunks.unwrap_or(3);
    let model = req.model.as_deref().unwrap_or_default();
    let start = message_json(&message_id(), model, arr([]), false, 1);
    let mut events = vec![
        event(
            "message_start",
            &obj([("type", s("message_start")), ("message", start)]),
        ),
        event(
            "content_block_start",
            &obj([
                ("type", s("content_block_start")),
                ("index", n(0)),
                ("content_block", obj([("type", s("text")), ("text", s(""))])),
            ]),
        ),
        event("ping", &obj([("type", s("ping"))])),
    ];
    for i in 0..chunks {
        events.push(event(
            "content_block_delta",
            &obj([
                ("type", s("content_block_delta")),
                ("index", n(0)),
                (
                    "delta",
                    obj([("type", s("text_delta")), ("text", s(format!("tok{i} ")))]),
                ),
            ]),
        ));
    }
    events.push(event(
        "content_block_stop",
        &obj([("type", s("content_block_stop")), ("index", n(0))]),
    ));
    events.push(event(
        "message_delta",
        &obj([
            ("type", s("message_delta")),
            (
                "delta",
                obj([("stop_reason", s("end_turn")), ("stop_sequence", J::Null)]),
            ),
            ("usage", usage(chunks, false)),
        ]),
    ));
    events.push(event("message_stop", &obj([("type", s("message_stop"))])));
    if let Some(n) = script.error_after {
        events.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        let request_id = format!("req_011C{BODY_CANARY}-{}", id_chars(next_serial(), 8));
        events.push(event(
            "error",
            &error_json("overloaded_error", "Overloaded", &request_id),
        ));
    }
    let mut r = respond(
        StatusCode::OK,
        "text/event-stream; charset=utf-8",
        paced(events, script),
    );
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

fn model_info(id: &str, display_name: &str) -> J {
    let line = ["haiku", "sonnet", "opus"]
        .into_iter()
        .find(|l| id.contains(l))
        .map_or(J::Null, s);
    obj([
        ("type", s("model")),
        ("id", s(id)),
        ("display_name", s(display_name)),
        ("created_at", s("2025-09-29T00:00:00Z")),
        ("lifecycle", s("active")),
        ("deprecated_at", J::Null),
        ("retires_at", J::Null),
        ("line", line),
        ("max_input_tokens", n(200_000)),
        ("max_tokens", n(64_000)),
    ])
}

/// Anthropic's model list (one page); the canary stands in a display name.
fn models() -> J {
    let first = "claude-sonnet-4-5-20250929";
    let last = "claude-haiku-4-5-20251001";
    obj([
        (
            "data",
            arr([
                model_info(first, "Claude Sonnet 4.5"),
                model_info(last, BODY_CANARY),
            ]),
        ),
        ("has_more", J::Bool(false)),
        ("first_id", s(first)),
        ("last_id", s(last)),
    ])
}
