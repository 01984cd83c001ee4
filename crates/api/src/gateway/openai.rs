//! OpenAI's endpoints whose JSON body names the model: each relayed to the model's pool as
//! sent, `model` rewritten to the provider's name for it.

use super::docs::ProxyErrors;
use super::error::GatewayError;
use super::Outbound;
use super::{affinity_header, answer, authenticate_in, forwarded, multipart, proxy, read_body};
use super::{routed, send};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use rotor_dispatch::target::{Endpoint, Family};
use std::time::Instant;

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

/// OpenAI speech to text (multipart: the `file` goes to the provider as sent, the `model`
/// field rewritten to the provider's name).
#[utoipa::path(post, path = "/v1/audio/transcriptions", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, content_type = "multipart/form-data", description = "OpenAI transcription form (`file`, `model` = a Rotor model name, …)"),
    responses((status = 200, description = "The provider's answer (JSON, text, or server-sent events with `stream=true`)"), ProxyErrors))]
pub async fn audio_transcriptions(State(state): State<AppState>, req: Request) -> Response {
    proxy_form(state, req, Endpoint::AudioTranscriptions).await
}

/// OpenAI speech translation into English (multipart, like transcriptions).
#[utoipa::path(post, path = "/v1/audio/translations", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, content_type = "multipart/form-data", description = "OpenAI translation form (`file`, `model` = a Rotor model name, …)"),
    responses((status = 200, description = "The provider's answer"), ProxyErrors))]
pub async fn audio_translations(State(state): State<AppState>, req: Request) -> Response {
    proxy_form(state, req, Endpoint::AudioTranslations).await
}

async fn proxy_form(state: AppState, req: Request, endpoint: Endpoint) -> Response {
    let started = Instant::now();
    answer(
        Family::OpenAi,
        started,
        form_front(&state, req, endpoint, started),
    )
    .await
}

async fn form_front(
    state: &AppState,
    req: Request,
    endpoint: Endpoint,
    started: Instant,
) -> Result<Response, GatewayError> {
    let key = authenticate_in(state, Family::OpenAi, req.headers(), req.uri())?;
    let mut forward = forwarded(req.headers());
    let named = affinity_header(req.headers());
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let raw = read_body(state, req).await?;
    let refused = |e: multipart::FormError| {
        GatewayError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            e.message(),
        )
    };
    let text = content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form = super::body::off_core(raw.len(), || multipart::scan(text, &raw)).map_err(refused)?;
    if let Some(v) = content_type {
        // The boundary the body is delimited by goes with it.
        forward.insert(header::CONTENT_TYPE, v);
    }
    let cached = routed(state, &key, Family::OpenAi, &form.model).await?;
    let route = &cached.route;
    let renamed = route.renames();
    let rename = |name: &str| form.rewrite(name);
    let out = Outbound {
        client: &key,
        endpoint,
        method: axum::http::Method::POST,
        suffix: None,
        forward: &forward,
        body: form.rewrite(&route.upstream_model),
        rebody: renamed.then_some(&rename as &(dyn Fn(&str) -> Bytes + Sync)),
        stream: form.stream,
        pin: None,
        affinity: named,
    };
    Ok(send(state, &cached, out, started).await)
}
