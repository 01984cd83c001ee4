//! The gateway's error vocabulary in OpenAI's shape: every refusal, every dispatch failure
//! and the event that ends a stream cut after it started are serialised from [`OpenAiError`],
//! mapped in one place each.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use rotor_dispatch::engine::{Failure, StreamCut};
use rotor_dispatch::series::AnswerClass;
use serde::Serialize;
use utoipa::ToSchema;

/// An error in OpenAI's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiError {
    /// The error.
    pub error: OpenAiErrorDetail,
}

/// OpenAI's error fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorDetail {
    /// Human-readable message.
    pub message: String,
    /// Error class, e.g. `invalid_request_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The offending parameter, when there is one.
    pub param: Option<&'static str>,
    /// Stable code, e.g. `invalid_api_key`.
    pub code: &'static str,
}

/// A gateway error answer.
pub struct GatewayError {
    status: StatusCode,
    code: &'static str,
    kind: &'static str,
    param: Option<&'static str>,
    message: String,
    retry_after: Option<u64>,
    no_retry: bool,
}

impl GatewayError {
    /// An error with OpenAI's `type` for `status`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        let kind = match status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "api_error",
        };
        Self {
            status,
            code,
            kind,
            param: None,
            message: message.into(),
            retry_after: None,
            no_retry: false,
        }
    }

    /// Names the offending parameter.
    pub fn param(mut self, p: &'static str) -> Self {
        self.param = Some(p);
        self
    }

    /// Asks the client to retry after `seconds` (`Retry-After`).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Tells the official SDKs not to retry (`x-should-retry: false`): nothing changes soon.
    pub fn no_retry(mut self) -> Self {
        self.no_retry = true;
        self
    }

    /// A missing, unknown or expired API key.
    pub fn invalid_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "invalid or expired API key",
        )
    }

    /// No model of this name in the key's workspace.
    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("the model `{}` does not exist", model.escape_debug()),
        )
        .param("model")
    }

    /// The database did not answer while loading `what` (not cached).
    pub fn database_unavailable(what: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            format!("{what} cannot be loaded; retry shortly"),
        )
    }

    /// The answer to a request no upstream answer can be relayed for, and its class; `model`
    /// is the name the client asked for.
    pub fn of_failure(failure: Failure, model: &str) -> (Self, AnswerClass) {
        use StatusCode as S;
        match failure {
            Failure::AllCooling { retry_after_s } => (
                Self::new(S::TOO_MANY_REQUESTS, "all_credentials_cooling_down", format!("every credential of `{model}` is cooling down after rate limits; retry in {retry_after_s} s"))
                    .retry_after(retry_after_s),
                AnswerClass::RateLimited,
            ),
            Failure::ClientLimited { retry_after_s } => (
                Self::new(S::TOO_MANY_REQUESTS, "api_key_rate_limited", format!("this API key has reached its requests or tokens per minute; retry in {retry_after_s} s"))
                    .retry_after(retry_after_s),
                AnswerClass::RateLimited,
            ),
            Failure::AllAtCapacity { retry_after_s } => (
                Self::new(S::TOO_MANY_REQUESTS, "all_credentials_at_capacity", format!("every credential of `{model}` has reached its requests or tokens per minute; retry in {retry_after_s} s"))
                    .retry_after(retry_after_s),
                AnswerClass::RateLimited,
            ),
            Failure::AllRejected => (
                Self::new(S::BAD_GATEWAY, "all_credentials_rejected", format!("the provider rejects every credential of `{model}`; an admin must replace or validate them")),
                AnswerClass::UpstreamError,
            ),
            Failure::CredentialRejected { credential_id } => (
                Self::new(S::BAD_GATEWAY, "upstream_credential_rejected", format!("the provider rejected credential {credential_id}; an admin must replace it")),
                AnswerClass::UpstreamError,
            ),
            Failure::Timeout => (
                Self::new(S::GATEWAY_TIMEOUT, "upstream_timeout", "the provider did not answer in time"),
                AnswerClass::Timeout,
            ),
            Failure::Unavailable => (
                Self::new(S::BAD_GATEWAY, "upstream_unavailable", "the provider could not be reached"),
                AnswerClass::UpstreamError,
            ),
            Failure::Blocked => (
                Self::new(S::BAD_GATEWAY, "upstream_address_blocked", "the provider's address is refused by this instance's upstream policy"),
                AnswerClass::Blocked,
            ),
            Failure::TooLarge => (
                Self::new(S::BAD_GATEWAY, "upstream_response_too_large", "the provider's answer exceeds this instance's ROTOR_UPSTREAM_MAX_BODY"),
                AnswerClass::UpstreamError,
            ),
            Failure::Unreadable => (
                Self::new(S::INTERNAL_SERVER_ERROR, "credential_unreadable", "no credential of this model can be decrypted"),
                AnswerClass::UpstreamError,
            ),
            Failure::PinnedCredentialGone => (
                Self::new(S::NOT_FOUND, "response_credential_gone", "the credential that created this response is no longer in the model's pool"),
                AnswerClass::UpstreamError,
            ),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code (`invalid_api_key` …).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `Retry-After`, in seconds, when the client should retry.
    pub fn retry_after_s(&self) -> Option<u64> {
        self.retry_after
    }

    /// Whether the client is told not to retry.
    pub fn final_answer(&self) -> bool {
        self.no_retry
    }

    fn body(self) -> OpenAiError {
        OpenAiError {
            error: OpenAiErrorDetail {
                message: self.message,
                kind: self.kind,
                param: self.param,
                code: self.code,
            },
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, retry_after, no_retry) = (self.status, self.retry_after, self.no_retry);
        let mut r = (status, Json(self.body())).into_response();
        decorate(&mut r, retry_after, no_retry);
        r
    }
}

/// The headers of every gateway refusal: `Retry-After`, whether to retry at all, no attempt.
pub fn decorate(r: &mut Response, retry_after: Option<u64>, no_retry: bool) {
    let h = r.headers_mut();
    if let Some(s) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    if no_retry {
        h.insert(SHOULD_RETRY, HeaderValue::from_static("false"));
    }
    h.insert(super::ATTEMPTS, HeaderValue::from_static("0"));
}

/// The header the OpenAI and Anthropic SDKs obey over their own retry rules.
const SHOULD_RETRY: header::HeaderName = header::HeaderName::from_static("x-should-retry");

/// The server-sent event that ends a stream cut after it started (no `[DONE]` follows, so
/// the OpenAI SDKs raise it as an error).
pub fn stream_event(cut: StreamCut) -> Bytes {
    let (code, message, lead) = match cut {
        // The cut chunk is not relayed, so the last one may have stopped inside an event: a
        // blank line ends that first.
        StreamCut::TooLarge => (
            "upstream_response_too_large",
            "the upstream answer exceeded the maximum size",
            &b"\n\n"[..],
        ),
        StreamCut::Broken => (
            "upstream_stream_error",
            "the upstream stream ended unexpectedly",
            &b""[..],
        ),
    };
    let event = OpenAiError {
        error: OpenAiErrorDetail {
            message: message.to_owned(),
            kind: "upstream_error",
            param: None,
            code,
        },
    };
    let mut out = Vec::with_capacity(192);
    out.extend_from_slice(lead);
    out.extend_from_slice(b"data: ");
    // Writing into a Vec cannot fail, and the event has no map with non-string keys.
    let _ = event.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, Spaced,
    ));
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// JSON with a space after each `:` and `,`, as the stream's error event has always been
/// written (clients match on it).
struct Spaced;

impl serde_json::ser::Formatter for Spaced {
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_events_are_the_openai_error_shape_spaced_as_before() {
        assert_eq!(
            &stream_event(StreamCut::Broken)[..],
            &b"data: {\"error\": {\"message\": \"the upstream stream ended unexpectedly\", \"type\": \"upstream_error\", \"param\": null, \"code\": \"upstream_stream_error\"}}\n\n"[..]
        );
        assert_eq!(
            &stream_event(StreamCut::TooLarge)[..],
            &b"\n\ndata: {\"error\": {\"message\": \"the upstream answer exceeded the maximum size\", \"type\": \"upstream_error\", \"param\": null, \"code\": \"upstream_response_too_large\"}}\n\n"[..]
        );
    }
}
