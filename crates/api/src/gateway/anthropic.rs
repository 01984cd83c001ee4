//! Anthropic's Messages API, relayed natively: the official Anthropic SDKs work with only
//! their base URL changed (`http://host:port`, the key in `x-api-key`).

use super::docs::AnthropicErrors;
use super::proxy;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::response::Response;
use rotor_dispatch::target::Endpoint;

/// Anthropic messages (JSON, or server-sent events with `stream: true`, each event relayed
/// as it arrives), balanced across the model's pool with failover.
#[utoipa::path(operation_id = "anthropic_messages", post, path = "/v1/messages", tag = "gateway", security(("anthropic_key" = []), ("api_key" = [])),
    request_body(content = Object, description = "Anthropic Messages request; `model` is a Rotor model name"),
    responses(
        (status = 200, description = "The provider's answer (JSON, or text/event-stream when streaming)"),
        AnthropicErrors,
    ))]
pub async fn messages(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::Messages).await
}

/// Anthropic token counting for a Messages request.
#[utoipa::path(operation_id = "anthropic_count_tokens", post, path = "/v1/messages/count_tokens", tag = "gateway", security(("anthropic_key" = []), ("api_key" = [])),
    request_body(content = Object, description = "Anthropic count_tokens request; `model` is a Rotor model name"),
    responses((status = 200, description = "The provider's answer"), AnthropicErrors))]
pub async fn count_tokens(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::MessagesCountTokens).await
}
