//! The gateway's documented error answers, per endpoint and in each family's error schema,
//! each status with the codes it carries as its description (the statuses test reaches every
//! one of them).

use super::error::OpenAiError;
use super::shapes::{AnthropicError, GeminiError};
use std::collections::BTreeMap;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::ToSchema;

/// The error answers of an OpenAI endpoint that relays a request to a model's pool.
pub struct ProxyErrors;

/// [`ProxyErrors`] of `POST /v1/responses`, whose continuations may name a response whose
/// credential left the pool.
pub struct ResponsesErrors;

/// [`ProxyErrors`] in Anthropic's error shape.
pub struct AnthropicErrors;

/// [`ProxyErrors`] in Gemini's error shape.
pub struct GeminiErrors;

/// [`GeminiErrors`] of a stream: an answer too large is cut with an error event after it
/// started, so no 502 says so.
pub struct GeminiStreamErrors;

/// The error answers of the requests about one stored response (retrieve, delete, cancel,
/// input items), served by the credential that created it.
pub struct StoredErrors;

/// The error answers of Gemini's `GET /v1beta/models`.
pub struct GeminiListErrors;

/// The error answers of Gemini's `GET /v1beta/models/{name}`.
pub struct GeminiModelErrors;

/// The error answers of `GET /v1/models`.
pub struct ListErrors;

/// The error answers of `GET /v1/models/{name}`.
pub struct ModelErrors;

const INVALID_KEY: (u16, &str) = (401, "invalid_api_key");
const NOT_ALLOWED: (u16, &str) = (403, "model_not_allowed");
const NOT_FOUND: (u16, &str) = (404, "model_not_found");
const MODELS_UNAVAILABLE: (u16, &str) = (503, "database_unavailable (or api_keys_reloading with Retry-After while keys are reloaded after a change)");

type Documented = BTreeMap<String, RefOr<utoipa::openapi::Response>>;

/// The error answers of a proxied endpoint, with bodies of the schema `schema`.
fn proxy_errors(schema: &str) -> Documented {
    let mut answers = proxy_answers(schema);
    answers.insert("502".to_owned(), upstream(schema, "upstream_unavailable, upstream_credential_rejected, all_credentials_rejected, upstream_address_blocked or upstream_response_too_large"));
    answers
}

fn upstream(schema: &str, description: &str) -> RefOr<utoipa::openapi::Response> {
    documented(schema, &[(502, description)])
        .remove("502")
        .unwrap_or_else(|| RefOr::T(Default::default()))
}

/// The error answers of a proxied endpoint but its 502.
fn proxy_answers(schema: &str) -> Documented {
    documented(
        schema,
        &[
            (400, "invalid_request_error or unsupported_endpoint (the model speaks another API family)"),
            INVALID_KEY,
            NOT_ALLOWED,
            NOT_FOUND,
            (413, "payload_too_large"),
            (429, "all_credentials_cooling_down, all_credentials_at_capacity, api_key_rate_limited or api_key_budget_exceeded (the first three with Retry-After; the last with x-should-retry: false until the next UTC month), or the provider's 429"),
            (500, "credential_unreadable (no credential of the model can be decrypted)"),
            (503, "database_unavailable (the model's configuration is not cached and the database is down), or api_keys_reloading (Retry-After)"),
            (504, "upstream_timeout"),
        ],
    )
}

impl utoipa::IntoResponses for ProxyErrors {
    fn responses() -> Documented {
        proxy_errors(&OpenAiError::name())
    }
}

impl utoipa::IntoResponses for ResponsesErrors {
    fn responses() -> Documented {
        let schema = OpenAiError::name();
        let mut answers = proxy_errors(&schema);
        let gone = documented(&schema, &[(404, "model_not_found or response_credential_gone (the credential of `previous_response_id` left the pool)")]);
        answers.extend(gone);
        answers
    }
}

impl utoipa::IntoResponses for AnthropicErrors {
    fn responses() -> Documented {
        proxy_errors(&AnthropicError::name())
    }
}

impl utoipa::IntoResponses for GeminiErrors {
    fn responses() -> Documented {
        proxy_errors(&GeminiError::name())
    }
}

impl utoipa::IntoResponses for GeminiStreamErrors {
    fn responses() -> Documented {
        let schema = GeminiError::name();
        let mut answers = proxy_answers(&schema);
        answers.insert("502".to_owned(), upstream(&schema, "upstream_unavailable, upstream_credential_rejected, all_credentials_rejected or upstream_address_blocked (a stream that grows too large is cut with an error event)"));
        answers
    }
}

impl utoipa::IntoResponses for StoredErrors {
    fn responses() -> Documented {
        documented(
            &OpenAiError::name(),
            &[
                INVALID_KEY,
                NOT_ALLOWED,
                (404, "response_not_found (not relayed here in the last 30 days) or response_credential_gone (its credential or model left the pool)"),
                (429, "all_credentials_cooling_down (the credential that created it is cooling down; Retry-After)"),
                (502, "upstream_unavailable or upstream_credential_rejected"),
                (503, "database_unavailable"),
                (504, "upstream_timeout"),
            ],
        )
    }
}

impl utoipa::IntoResponses for GeminiListErrors {
    fn responses() -> Documented {
        documented(&GeminiError::name(), &[INVALID_KEY, MODELS_UNAVAILABLE])
    }
}

impl utoipa::IntoResponses for GeminiModelErrors {
    fn responses() -> Documented {
        documented(
            &GeminiError::name(),
            &[INVALID_KEY, NOT_ALLOWED, NOT_FOUND, MODELS_UNAVAILABLE],
        )
    }
}

impl utoipa::IntoResponses for ListErrors {
    fn responses() -> Documented {
        documented(&OpenAiError::name(), &[INVALID_KEY, MODELS_UNAVAILABLE])
    }
}

impl utoipa::IntoResponses for ModelErrors {
    fn responses() -> Documented {
        documented(
            &OpenAiError::name(),
            &[INVALID_KEY, NOT_ALLOWED, NOT_FOUND, MODELS_UNAVAILABLE],
        )
    }
}

/// Error answers with a body of `schema`, by status, each with its codes as description.
fn documented(schema: &str, answers: &[(u16, &str)]) -> Documented {
    let schema = Ref::from_schema_name(schema);
    answers
        .iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new().schema(Some(schema.clone())).build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content)
                .build();
            (status.to_string(), response.into())
        })
        .collect()
}
