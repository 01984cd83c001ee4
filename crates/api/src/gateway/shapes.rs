//! Rotor's own errors in the shape of the family the client speaks, so that each official SDK
//! raises its own exception class: Anthropic's `{"type": "error", "error": {"type", "message"}}`
//! and Gemini's `{"error": {"code", "message", "status"}}` (OpenAI's is [`super::OpenAiError`]),
//! and the event that ends a stream cut after it started.

use super::error::GatewayError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use rotor_dispatch::engine::StreamCut;
use rotor_dispatch::target::Family;
use serde::Serialize;
use utoipa::ToSchema;

/// Anthropic's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnthropicError {
    /// Always `error`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The error.
    error: AnthropicErrorDetail,
}

/// Anthropic's error fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnthropicErrorDetail {
    /// Error class, e.g. `authentication_error`, `rate_limit_error`, `overloaded_error`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// Rotor's code, a colon, and a human-readable message (`invalid_api_key: …`).
    message: String,
}

/// Gemini's (Google's) error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct GeminiError {
    /// The error.
    error: GeminiErrorDetail,
}

/// Google's error fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct GeminiErrorDetail {
    /// The HTTP status.
    code: u16,
    /// Rotor's code, a colon, and a human-readable message (`model_not_found: …`).
    message: String,
    /// Google's canonical status, e.g. `RESOURCE_EXHAUSTED`, `UNAUTHENTICATED`.
    status: &'static str,
}

/// Anthropic's error `type` for a status.
fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Google's canonical status name for an HTTP status.
fn gemini_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        400..=499 => "INVALID_ARGUMENT",
        503 | 502 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

fn anthropic_body(status: StatusCode, message: String) -> AnthropicError {
    AnthropicError {
        kind: "error",
        error: AnthropicErrorDetail {
            kind: anthropic_type(status),
            message,
        },
    }
}

fn gemini_body(status: StatusCode, message: String) -> GeminiError {
    GeminiError {
        error: GeminiErrorDetail {
            code: status.as_u16(),
            message,
            status: gemini_status(status),
        },
    }
}

/// `err` as an answer in `family`'s shape (the message keeps Rotor's code in front, so the
/// reason stays visible to programs that only read the message).
pub fn render(err: GatewayError, family: Family) -> Response {
    let (status, retry_after, no_retry) = (err.status(), err.retry_after_s(), err.final_answer());
    let message = || format!("{}: {}", err.code(), err.message());
    let mut r = match family {
        Family::OpenAi => return err.into_response(),
        Family::Anthropic => (status, Json(anthropic_body(status, message()))).into_response(),
        Family::Gemini => (status, Json(gemini_body(status, message()))).into_response(),
    };
    super::error::decorate(&mut r, retry_after, no_retry);
    r
}

/// The event that ends a stream of `family` cut after it started.
pub fn stream_event(family: Family, cut: StreamCut) -> Bytes {
    let message = match cut {
        StreamCut::TooLarge => {
            "upstream_response_too_large: the upstream answer exceeded the maximum size"
        }
        StreamCut::Broken => "upstream_stream_error: the upstream stream ended unexpectedly",
    };
    // A cut chunk is not relayed, so the last one may have stopped inside an event: a blank
    // line ends that first.
    let lead: &[u8] = match cut {
        StreamCut::TooLarge => b"\n\n",
        StreamCut::Broken => b"",
    };
    let status = StatusCode::BAD_GATEWAY;
    let (event, json) = match family {
        Family::OpenAi => return super::error::stream_event(cut),
        Family::Anthropic => (
            Some("error"),
            serde_json::to_vec(&anthropic_body(status, message.to_owned())),
        ),
        Family::Gemini => (
            None,
            serde_json::to_vec(&gemini_body(status, message.to_owned())),
        ),
    };
    let mut out = Vec::with_capacity(192);
    out.extend_from_slice(lead);
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&json.unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    async fn body_of(r: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_come_in_each_familys_shape() {
        let r = render(GatewayError::invalid_key(), Family::Anthropic);
        assert_eq!(r.status(), 401);
        assert_eq!(
            body_of(r).await,
            serde_json::json!({"type": "error", "error": {"type": "authentication_error",
                "message": "invalid_api_key: invalid or expired API key"}})
        );
        let r = render(GatewayError::model_not_found("m"), Family::Gemini);
        assert_eq!(r.status(), 404);
        let body = body_of(r).await;
        assert_eq!(body["error"]["code"], 404);
        assert_eq!(body["error"]["status"], "NOT_FOUND");
        let cooling = GatewayError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "all_credentials_cooling_down",
            "wait",
        )
        .retry_after(7);
        let r = render(cooling, Family::Anthropic);
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
        assert_eq!(body_of(r).await["error"]["type"], "rate_limit_error");
    }

    #[test]
    fn a_cut_stream_ends_with_the_familys_error_event() {
        let a = stream_event(Family::Anthropic, StreamCut::Broken);
        let text = std::str::from_utf8(&a).unwrap();
        assert!(
            text.starts_with(
                "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\""
            ),
            "{text}"
        );
        assert!(text.ends_with("\n\n"));
        let g = stream_event(Family::Gemini, StreamCut::TooLarge);
        let text = std::str::from_utf8(&g).unwrap();
        assert!(
            text.starts_with("\n\ndata: {\"error\":{\"code\":502"),
            "{text}"
        );
    }
}
