//! The OpenAI-compatible gateway (`/v1`): API-key auth from memory, model → pool resolution
//! from the route cache, dispatch with failover, and OpenAI-shaped errors. The official OpenAI
//! SDKs work unchanged with `base_url = http://host:port/v1`.

pub mod body;
pub mod cache;
pub mod error;
pub mod models;
pub mod resolve;
pub mod shapes;

use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use cache::{CachedRoute, KeyInfo, KeyLookup};
use error::{ChatErrors, EmbeddingErrors, GatewayError};
use rotor_dispatch::engine::StreamCut;
use rotor_dispatch::engine::{Call, Relay, RelayBody};
use rotor_dispatch::series::AnswerClass;
use rotor_dispatch::target::{Endpoint, Family};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{OpenAiError, OpenAiErrorDetail};

/// The schemas the gateway's documented error answers refer to.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(OpenAiError)))]
struct ErrorSchemas;

/// `/v1/*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<ErrorSchemas as utoipa::OpenApi>::openapi())
        .routes(routes!(chat_completions))
        .routes(routes!(embeddings))
        .routes(routes!(models::list_models))
        .routes(routes!(models::get_model))
}

const ATTEMPTS: HeaderName = HeaderName::from_static("x-rotor-attempts");
const CREDENTIAL: HeaderName = HeaderName::from_static("x-rotor-credential-id");
const OVERHEAD: HeaderName = HeaderName::from_static("x-rotor-overhead-ms");

/// The API key of a gateway request, checked against the in-memory table (no query).
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Arc<KeyInfo>, GatewayError> {
    let token = crate::extract::bearer(headers).ok_or_else(GatewayError::invalid_key)?;
    authenticate_token(state, token)
}

/// Where a client of `family` puts its Rotor key: OpenAI a bearer token, Anthropic
/// `x-api-key` (or a bearer token), Gemini `x-goog-api-key` (or `?key=`).
fn client_key<'a>(family: Family, headers: &'a HeaderMap, uri: &Uri) -> Option<Cow<'a, str>> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let bearer = || crate::extract::bearer(headers);
    match family {
        Family::OpenAi => bearer().map(Cow::Borrowed),
        Family::Anthropic => header("x-api-key").or_else(bearer).map(Cow::Borrowed),
        Family::Gemini => header("x-goog-api-key").map(Cow::Borrowed).or_else(|| {
            #[derive(serde::Deserialize)]
            struct KeyQuery {
                key: Option<String>,
            }
            axum::extract::Query::<KeyQuery>::try_from_uri(uri)
                .ok()
                .and_then(|q| q.0.key)
                .map(Cow::Owned)
        }),
    }
}

/// [`authenticate`] for a key found where the client's family puts it.
fn authenticate_token(state: &AppState, token: &str) -> Result<Arc<KeyInfo>, GatewayError> {
    let key = match state.gateway().key(&crate::auth::sha256(token)) {
        KeyLookup::Live(key) => key,
        KeyLookup::Unknown => return Err(GatewayError::invalid_key()),
        KeyLookup::Reloading => {
            return Err(GatewayError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_keys_reloading",
                "API keys are being reloaded after a change; retry shortly",
            )
            .retry_after(1))
        }
    };
    if key.expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
        return Err(GatewayError::invalid_key());
    }
    state.touch_key(key.id);
    Ok(key)
}

fn allowed(key: &KeyInfo, model: &str) -> Result<(), GatewayError> {
    match &key.allowed_models {
        Some(models) if !models.contains(model) => Err(GatewayError::new(
            StatusCode::FORBIDDEN,
            "model_not_allowed",
            format!("this API key may not use the model `{model}`"),
        )
        .param("model")),
        _ => Ok(()),
    }
}

async fn route_for(
    state: &AppState,
    key: &KeyInfo,
    model: &str,
) -> Result<Arc<CachedRoute>, GatewayError> {
    if let Some(r) = state.gateway().route(key.workspace_id, model) {
        return Ok(r);
    }
    let generation = state.gateway().generation(key.workspace_id);
    let resolved = resolve::resolve(state, key.workspace_id, model)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "route resolution failed");
            GatewayError::database_unavailable("the model configuration")
        })?;
    let route = Arc::new(resolved.ok_or_else(|| GatewayError::model_not_found(model))?);
    state
        .gateway()
        .store_route(key.workspace_id, model, generation, route.clone());
    Ok(route)
}

/// The client's request headers that go to the provider (never its key or cookies). A JSON
/// body goes as `application/json` whatever the client called it (it was parsed as JSON).
fn forwarded(client: &HeaderMap) -> HeaderMap {
    const PASSED: [HeaderName; 5] = [
        header::ACCEPT,
        HeaderName::from_static("openai-beta"),
        HeaderName::from_static("anthropic-version"),
        HeaderName::from_static("anthropic-beta"),
        HeaderName::from_static("idempotency-key"),
    ];
    let mut out = HeaderMap::new();
    for name in PASSED {
        for value in client.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

async fn read_body(state: &AppState, req: Request) -> Result<Bytes, GatewayError> {
    let limit = state.config().gateway_max_body;
    let too_large = || {
        GatewayError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| too_large())
}

async fn proxy(state: AppState, req: Request, endpoint: Endpoint) -> Response {
    let started = Instant::now();
    match proxy_inner(&state, req, endpoint, started).await {
        Ok(r) => r,
        Err(e) => {
            let mut r = shapes::render(e, endpoint.family());
            set_overhead(&mut r, started.elapsed());
            r
        }
    }
}

fn set_overhead(r: &mut Response, overhead: Duration) {
    if let Ok(v) = HeaderValue::from_str(&format!("{:.3}", overhead.as_secs_f64() * 1000.0)) {
        r.headers_mut().insert(OVERHEAD, v);
    }
}

/// The client's answer from an upstream one: its status, type and `Retry-After`, the body
/// (a stream cut after it started ends with an error event), and which credential answered.
fn relayed(relay: Relay, stream: bool, family: Family) -> Response {
    let status = StatusCode::from_u16(relay.status).unwrap_or(StatusCode::BAD_GATEWAY);
    relay.metrics.request(AnswerClass::of_status(relay.status));
    let body = match relay.body {
        RelayBody::Full(b) => Body::from(b),
        RelayBody::Stream(s) => {
            let event: fn(StreamCut) -> Bytes = match family {
                Family::OpenAi => error::stream_event,
                Family::Anthropic => |cut| shapes::stream_event(Family::Anthropic, cut),
                Family::Gemini => |cut| shapes::stream_event(Family::Gemini, cut),
            };
            Body::from_stream(s.into_bytes(event))
        }
    };
    let mut r = Response::builder()
        .status(status)
        .body(body)
        .unwrap_or_default();
    let h = r.headers_mut();
    h.extend(relay.headers);
    if stream && status.is_success() {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&relay.credential_id.to_string()) {
        h.insert(CREDENTIAL, v);
    }
    r
}

async fn proxy_inner(
    state: &AppState,
    req: Request,
    endpoint: Endpoint,
    started: Instant,
) -> Result<Response, GatewayError> {
    let family = endpoint.family();
    let token =
        client_key(family, req.headers(), req.uri()).ok_or_else(GatewayError::invalid_key)?;
    let key = authenticate_token(state, &token)?;
    drop(token);
    let forward = forwarded(req.headers());
    let raw = read_body(state, req).await?;
    let scanned = body::scan(&raw).map_err(|e| {
        let err = GatewayError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            e.message(),
        );
        match e.param() {
            Some(p) => err.param(p),
            None => err,
        }
    })?;
    let (model, stream) = (scanned.model.as_str(), scanned.stream);
    if model.contains('\0') {
        // PostgreSQL cannot hold such a name, so no model has it: no query is made.
        return Err(GatewayError::model_not_found(model));
    }
    allowed(&key, model)?;
    let cached = route_for(state, &key, model).await?;
    let route = &cached.route;
    if route.family != family {
        return Err(GatewayError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_endpoint",
            format!(
                "the model `{}` speaks the {} API, not this endpoint's ({})",
                model.escape_debug(),
                route.family.as_str(),
                family.as_str()
            ),
        )
        .param("model"));
    }
    let body = Bytes::from(scanned.rewrite(&route.upstream_model, raw.len()));
    // The request's bytes are freed before the upstream call, unless an entry of the pool
    // names the model otherwise and needs its own rewrite.
    let renamed = route.entries.iter().any(|e| e.upstream_model.is_some());
    let raw_len = raw.len();
    let rename;
    let rebody: Option<&(dyn Fn(&str) -> Bytes + Sync)> = if renamed {
        rename = move |name: &str| Bytes::from(scanned.rewrite(name, raw_len));
        Some(&rename)
    } else {
        drop(scanned);
        drop(raw);
        None
    };
    let balanced = route.pool_ready && state.has_load_balancing(cached.plan);
    let outcome = state
        .engine()
        .dispatch(Call {
            route,
            balanced,
            endpoint,
            method: reqwest::Method::POST,
            suffix: None,
            forward: &forward,
            body,
            rebody,
            stream,
            started,
        })
        .await;
    let attempts = HeaderValue::from(outcome.attempts);
    let mut response = match outcome.result {
        Ok(relay) => relayed(relay, stream, family),
        Err(failure) => {
            let (e, class) = GatewayError::of_failure(failure, &route.model);
            route.metrics.request(class);
            shapes::render(e, family)
        }
    };
    response.headers_mut().insert(ATTEMPTS, attempts);
    let overhead = started.elapsed().saturating_sub(outcome.upstream_time);
    route.metrics.overhead(overhead.as_secs_f64());
    set_overhead(&mut response, overhead);
    Ok(response)
}

/// OpenAI chat completions (JSON or `stream: true` server-sent events), balanced across the
/// model's pool with failover.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI chat completion request; `model` is a Rotor model name"),
    responses(
        (status = 200, description = "The provider's answer (JSON, or text/event-stream when streaming)"),
        ChatErrors,
    ))]
pub async fn chat_completions(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::ChatCompletions).await
}

/// OpenAI embeddings, balanced like chat completions.
#[utoipa::path(post, path = "/v1/embeddings", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI embeddings request; `model` is a Rotor model name"),
    responses((status = 200, description = "The provider's answer"), EmbeddingErrors))]
pub async fn embeddings(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::Embeddings).await
}
