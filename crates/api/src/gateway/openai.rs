//! OpenAI's endpoints whose JSON body names the model: each relayed to the model's pool as
//! sent, `model` rewritten to the provider's name for it.

use super::docs::ProxyErrors;
use super::proxy;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::response::Response;
use rotor_dispatch::target::Endpoint;

/// OpenAI chat completions (JSON or `stream: true` server-sent events), balanced across the
/// model's pool with failover.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI chat completion request; `model` is a Rotor model name"),
    responses(
        (status = 200, description = "The provider's answer (JSON, or text/event-stream when streaming)"),
        ProxyErrors,
    ))]
pub async fn chat_completions(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::ChatCompletions).await
}

/// OpenAI legacy completions (JSON or server-sent events), balanced like chat completions.
#[utoipa::path(post, path = "/v1/completions", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI completion request; `model` is a Rotor model name"),
    responses(
        (status = 200, description = "The provider's answer (JSON, or text/event-stream when streaming)"),
        ProxyErrors,
    ))]
pub async fn completions(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::Completions).await
}

/// OpenAI embeddings, balanced like chat completions.
#[utoipa::path(post, path = "/v1/embeddings", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI embeddings request; `model` is a Rotor model name"),
    responses((status = 200, description = "The provider's answer"), ProxyErrors))]
pub async fn embeddings(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::Embeddings).await
}

/// OpenAI moderations (`model` is required here: it picks the pool).
#[utoipa::path(post, path = "/v1/moderations", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI moderation request; `model` is a Rotor model name"),
    responses((status = 200, description = "The provider's answer"), ProxyErrors))]
pub async fn moderations(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::Moderations).await
}

/// OpenAI image generation (`model` is required here: it picks the pool).
#[utoipa::path(post, path = "/v1/images/generations", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI image generation request; `model` is a Rotor model name"),
    responses((status = 200, description = "The provider's answer"), ProxyErrors))]
pub async fn image_generations(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::ImageGenerations).await
}

/// OpenAI text to speech: the provider's audio bytes relayed with their content type.
#[utoipa::path(post, path = "/v1/audio/speech", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI speech request; `model` is a Rotor model name"),
    responses((status = 200, description = "The provider's audio (or server-sent events with `stream_format: sse`)"), ProxyErrors))]
pub async fn audio_speech(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::AudioSpeech).await
}

/// Reranking in the Cohere/Jina shape that compatible providers serve at `/rerank`.
#[utoipa::path(post, path = "/v1/rerank", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, description = "Rerank request (`model`, `query`, `documents`); `model` is a Rotor model name"),
    responses((status = 200, description = "The provider's answer"), ProxyErrors))]
pub async fn rerank(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::Rerank).await
}
