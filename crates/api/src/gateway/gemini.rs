//! Google's Gemini API, relayed natively: the model is the path's `{model}` segment (rewritten
//! to the provider's name by the upstream URL), the body goes as sent but for the inner
//! `model` of `batchEmbedContents`. The google-genai SDKs work with only their base URL
//! changed (`http://host:port`, the key in `x-goog-api-key` or `?key=`).

use super::docs::{GeminiErrors, GeminiStreamErrors};
use super::error::GatewayError;
use super::Outbound;
use super::{affinity_header, routed, send};
use super::{answer, authenticate_in, body, body_refused, forwarded, query_has, read_body};
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use rotor_dispatch::target::{Endpoint, Family};
use std::time::Instant;

/// The documented Gemini paths (the router serves them through [`call`]: a path segment
/// cannot hold both a parameter and the `:method` after it).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    generate_content,
    stream_generate_content,
    count_tokens,
    embed_content,
    batch_embed_contents
))]
pub struct GeminiPaths;

/// `POST /v1beta/models/{model}:{method}` (and `/v1/models/…`, which some google-genai
/// versions use): the method after the last colon picks the endpoint.
pub async fn call(
    State(state): State<AppState>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    let Some((model, method)) = name.rsplit_once(':') else {
        return unknown_method(&name);
    };
    let model = model.to_owned();
    match method {
        "generateContent" => generate_content(state, model, req).await,
        "streamGenerateContent" => stream_generate_content(state, model, req).await,
        "countTokens" => count_tokens(state, model, req).await,
        "embedContent" => embed_content(state, model, req).await,
        "batchEmbedContents" => batch_embed_contents(state, model, req).await,
        _ => unknown_method(&name),
    }
}

fn unknown_method(name: &str) -> Response {
    let e = GatewayError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no Gemini method `{}`: Rotor serves generateContent, streamGenerateContent, countTokens, embedContent and batchEmbedContents",
            name.escape_debug()
        ),
    );
    super::shapes::render(e, Family::Gemini)
}

/// Gemini content generation (JSON), balanced across the model's pool with failover.
#[utoipa::path(operation_id = "gemini_generate_content", post, path = "/v1beta/models/{model}:generateContent", tag = "gateway",
    security(("gemini_key" = []), ("gemini_query_key" = [])),
    params(("model" = String, Path, description = "A Rotor model name (also served under /v1/models/…)")),
    request_body(content = Object, description = "Gemini generateContent request"),
    responses((status = 200, description = "The provider's answer"), GeminiErrors))]
async fn generate_content(state: AppState, model: String, req: Request) -> Response {
    relay(state, model, req, Endpoint::GenerateContent).await
}

/// Gemini streamed generation as server-sent events (`?alt=sse`, which the SDKs send).
#[utoipa::path(operation_id = "gemini_stream_generate_content", post, path = "/v1beta/models/{model}:streamGenerateContent", tag = "gateway",
    security(("gemini_key" = []), ("gemini_query_key" = [])),
    params(("model" = String, Path, description = "A Rotor model name (also served under /v1/models/…)"),
        ("alt" = String, Query, description = "`sse`: Rotor relays Gemini streams as server-sent events only")),
    request_body(content = Object, description = "Gemini generateContent request"),
    responses((status = 200, description = "The provider's events (text/event-stream)"), GeminiStreamErrors))]
async fn stream_generate_content(state: AppState, model: String, req: Request) -> Response {
    relay(state, model, req, Endpoint::StreamGenerateContent).await
}

/// Gemini token counting.
#[utoipa::path(operation_id = "gemini_count_tokens", post, path = "/v1beta/models/{model}:countTokens", tag = "gateway",
    security(("gemini_key" = []), ("gemini_query_key" = [])),
    params(("model" = String, Path, description = "A Rotor model name (also served under /v1/models/…)")),
    request_body(content = Object, description = "Gemini countTokens request"),
    responses((status = 200, description = "The provider's answer"), GeminiErrors))]
async fn count_tokens(state: AppState, model: String, req: Request) -> Response {
    relay(state, model, req, Endpoint::CountTokens).await
}

/// Gemini embeddings of one content.
#[utoipa::path(operation_id = "gemini_embed_content", post, path = "/v1beta/models/{model}:embedContent", tag = "gateway",
    security(("gemini_key" = []), ("gemini_query_key" = [])),
    params(("model" = String, Path, description = "A Rotor model name (also served under /v1/models/…)")),
    request_body(content = Object, description = "Gemini embedContent request"),
    responses((status = 200, description = "The provider's answer"), GeminiErrors))]
async fn embed_content(state: AppState, model: String, req: Request) -> Response {
    relay(state, model, req, Endpoint::EmbedContent).await
}

/// Gemini embeddings of several contents; each inner request's `model` is rewritten too.
#[utoipa::path(operation_id = "gemini_batch_embed_contents", post, path = "/v1beta/models/{model}:batchEmbedContents", tag = "gateway",
    security(("gemini_key" = []), ("gemini_query_key" = [])),
    params(("model" = String, Path, description = "A Rotor model name (also served under /v1/models/…)")),
    request_body(content = Object, description = "Gemini batchEmbedContents request (`requests[].model` is rewritten to the provider's name)"),
    responses((status = 200, description = "The provider's answer"), GeminiErrors))]
async fn batch_embed_contents(state: AppState, model: String, req: Request) -> Response {
    relay(state, model, req, Endpoint::BatchEmbedContents).await
}

async fn relay(state: AppState, model: String, req: Request, endpoint: Endpoint) -> Response {
    let started = Instant::now();
    answer(
        Family::Gemini,
        started,
        front(&state, &model, req, endpoint, started),
    )
    .await
}

async fn front(
    state: &AppState,
    model: &str,
    req: Request,
    endpoint: Endpoint,
    started: Instant,
) -> Result<Response, GatewayError> {
    let key = authenticate_in(state, Family::Gemini, req.headers(), req.uri())?;
    let stream = endpoint == Endpoint::StreamGenerateContent;
    if stream && !query_has(req.uri(), "alt=sse") {
        return Err(GatewayError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "streamGenerateContent is relayed as server-sent events only: add `?alt=sse`",
        )
        .param("alt"));
    }
    let forward = forwarded(req.headers());
    let affinity = affinity_header(req.headers());
    let raw = read_body(state, req).await?;
    body::off_core(raw.len(), || body::object(&raw)).map_err(body_refused)?;
    let cached = routed(state, &key, Family::Gemini, model).await?;
    let route = &cached.route;
    let batch = endpoint == Endpoint::BatchEmbedContents;
    let body = if batch {
        body::off_core(raw.len(), || {
            body::gemini_batch(&raw, &route.upstream_model)
        })
        .map_err(body_refused)?
    } else {
        raw.clone()
    };
    let renamed = batch && route.renames();
    // The body was checked above, so a rewrite for another name cannot fail.
    let rename = |name: &str| body::gemini_batch(&raw, name).unwrap_or_else(|_| Bytes::new());
    let out = Outbound {
        client: &key,
        endpoint,
        method: axum::http::Method::POST,
        suffix: None,
        forward: &forward,
        body,
        rebody: renamed.then_some(&rename as &(dyn Fn(&str) -> Bytes + Sync)),
        stream,
        pin: None,
        affinity,
    };
    Ok(send(state, &cached, out, started).await)
}
