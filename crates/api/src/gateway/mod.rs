//! The OpenAI-compatible gateway (`/v1`): API-key auth from memory, model → pool resolution
//! from the route cache, dispatch with failover, and OpenAI-shaped errors. The official OpenAI
//! SDKs work unchanged with `base_url = http://host:port/v1`.

pub mod body;
pub mod cache;
pub mod resolve;

use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use cache::{CachedRoute, KeyInfo, KeyLookup};
use rotor_dispatch::engine::{Call, Endpoint, Failure, RelayBody};
use rotor_dispatch::series::AnswerClass;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/v1/*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat_completions))
        .routes(routes!(embeddings))
        .routes(routes!(list_models))
        .routes(routes!(get_model))
}

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
}

impl GatewayError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
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
        }
    }

    fn param(mut self, p: &'static str) -> Self {
        self.param = Some(p);
        self
    }

    fn invalid_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "invalid or expired API key",
        )
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = OpenAiError {
            error: OpenAiErrorDetail {
                message: self.message,
                kind: self.kind,
                param: self.param,
                code: self.code,
            },
        };
        let mut r = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r.headers_mut()
            .insert(ATTEMPTS, HeaderValue::from_static("0"));
        r
    }
}

const ATTEMPTS: HeaderName = HeaderName::from_static("x-rotor-attempts");
const CREDENTIAL: HeaderName = HeaderName::from_static("x-rotor-credential-id");
const OVERHEAD: HeaderName = HeaderName::from_static("x-rotor-overhead-ms");

/// The API key of a gateway request, checked against the in-memory table (no query).
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Arc<KeyInfo>, GatewayError> {
    let token = crate::extract::bearer(headers).ok_or_else(GatewayError::invalid_key)?;
    let key = match state.gateway().key(&crate::auth::sha256(token)) {
        KeyLookup::Live(key) => key,
        KeyLookup::Unknown => return Err(GatewayError::invalid_key()),
        KeyLookup::Reloading => {
            let mut e = GatewayError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_keys_reloading",
                "API keys are being reloaded after a change; retry shortly",
            );
            e.retry_after = Some(1);
            return Err(e);
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

fn model_not_found(model: &str) -> GatewayError {
    GatewayError::new(
        StatusCode::NOT_FOUND,
        "model_not_found",
        format!("the model `{}` does not exist", model.escape_debug()),
    )
    .param("model")
}

async fn route_for(
    state: &AppState,
    key: &KeyInfo,
    model: &str,
) -> Result<Arc<CachedRoute>, GatewayError> {
    let not_found = || model_not_found(model);
    if let Some(r) = state.gateway().route(key.workspace_id, model) {
        return Ok(r);
    }
    let generation = state.gateway().generation(key.workspace_id);
    let resolved = resolve::resolve(state, key.workspace_id, model)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "route resolution failed");
            GatewayError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the model configuration cannot be loaded; retry shortly",
            )
        })?;
    let route = Arc::new(resolved.ok_or_else(not_found)?);
    state
        .gateway()
        .store_route(key.workspace_id, model, generation, route.clone());
    Ok(route)
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
            let mut r = e.into_response();
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

async fn proxy_inner(
    state: &AppState,
    req: Request,
    endpoint: Endpoint,
    started: Instant,
) -> Result<Response, GatewayError> {
    let key = authenticate(state, req.headers())?;
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
        return Err(model_not_found(model));
    }
    allowed(&key, model)?;
    let cached = route_for(state, &key, model).await?;
    let route = &cached.route;
    let body = Bytes::from(scanned.rewrite(&route.upstream_model, raw.len()));
    // The request's bytes are freed before the upstream call: only the rewritten body stays.
    drop(scanned);
    drop(raw);
    let balanced = route.pool_ready && state.has_load_balancing(cached.plan);
    let outcome = state
        .engine()
        .dispatch(Call {
            route,
            balanced,
            endpoint,
            body,
            stream,
            started,
        })
        .await;
    let attempts = HeaderValue::from(outcome.attempts);
    let mut response = match outcome.result {
        Ok(relay) => {
            let status = StatusCode::from_u16(relay.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let class = AnswerClass::of_status(relay.status);
            relay.metrics.request(class);
            let body = match relay.body {
                RelayBody::Full(b) => Body::from(b),
                RelayBody::Stream(s) => Body::from_stream(s),
            };
            let mut r = Response::builder()
                .status(status)
                .body(body)
                .unwrap_or_default();
            let h = r.headers_mut();
            if let Some(ct) = relay.content_type {
                h.insert(header::CONTENT_TYPE, ct);
            }
            if let Some(ra) = relay.retry_after {
                h.insert(header::RETRY_AFTER, ra);
            }
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
        Err(failure) => {
            let (e, class) = match failure {
                Failure::AllCooling { retry_after_s } => {
                    let mut e = GatewayError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "all_credentials_cooling_down",
                        format!("every credential of `{}` is cooling down after rate limits; retry in {retry_after_s} s", route.model),
                    );
                    e.retry_after = Some(retry_after_s);
                    (e, AnswerClass::RateLimited)
                }
                Failure::CredentialRejected { credential_id } => (
                    GatewayError::new(
                        StatusCode::BAD_GATEWAY,
                        "upstream_credential_rejected",
                        format!("the provider rejected credential {credential_id}; an admin must replace it"),
                    ),
                    AnswerClass::UpstreamError,
                ),
                Failure::Timeout => (GatewayError::new(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", "the provider did not answer in time"), AnswerClass::Timeout),
                Failure::Unavailable => (GatewayError::new(StatusCode::BAD_GATEWAY, "upstream_unavailable", "the provider could not be reached"), AnswerClass::UpstreamError),
                Failure::Blocked => (
                    GatewayError::new(StatusCode::BAD_GATEWAY, "upstream_address_blocked", "the provider's address is refused by this instance's upstream policy"),
                    AnswerClass::Blocked,
                ),
                Failure::TooLarge => (
                    GatewayError::new(StatusCode::BAD_GATEWAY, "upstream_response_too_large", "the provider's answer exceeds this instance's ROTOR_UPSTREAM_MAX_BODY"),
                    AnswerClass::UpstreamError,
                ),
                Failure::Unreadable => (
                    GatewayError::new(StatusCode::INTERNAL_SERVER_ERROR, "credential_unreadable", "no credential of this model can be decrypted"),
                    AnswerClass::UpstreamError,
                ),
            };
            route.metrics.request(class);
            e.into_response()
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
        (status = 400, body = OpenAiError, description = "invalid_request_error"),
        (status = 401, body = OpenAiError, description = "invalid_api_key"),
        (status = 403, body = OpenAiError, description = "model_not_allowed"),
        (status = 404, body = OpenAiError, description = "model_not_found"),
        (status = 413, body = OpenAiError, description = "payload_too_large"),
        (status = 429, body = OpenAiError, description = "all_credentials_cooling_down (Retry-After), or the provider's 429"),
        (status = 500, body = OpenAiError, description = "credential_unreadable (no credential of the model can be decrypted)"),
        (status = 502, body = OpenAiError, description = "upstream_unavailable, upstream_credential_rejected, upstream_address_blocked or upstream_response_too_large"),
        (status = 503, body = OpenAiError, description = "database_unavailable (the model's configuration is not cached and the database is down), or api_keys_reloading (Retry-After)"),
        (status = 504, body = OpenAiError, description = "upstream_timeout"),
    ))]
pub async fn chat_completions(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::ChatCompletions).await
}

/// OpenAI embeddings, balanced like chat completions.
#[utoipa::path(post, path = "/v1/embeddings", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI embeddings request; `model` is a Rotor model name"),
    responses(
        (status = 200, description = "The provider's answer"),
        (status = 400, body = OpenAiError, description = "invalid_request_error"),
        (status = 401, body = OpenAiError, description = "invalid_api_key"),
        (status = 403, body = OpenAiError, description = "model_not_allowed"),
        (status = 404, body = OpenAiError, description = "model_not_found"),
        (status = 413, body = OpenAiError, description = "payload_too_large"),
        (status = 429, body = OpenAiError, description = "all_credentials_cooling_down"),
        (status = 500, body = OpenAiError, description = "credential_unreadable (no credential of the model can be decrypted)"),
        (status = 502, body = OpenAiError, description = "upstream errors"),
        (status = 503, body = OpenAiError, description = "database_unavailable (the model's configuration is not cached and the database is down), or api_keys_reloading (Retry-After)"),
        (status = 504, body = OpenAiError, description = "upstream_timeout"),
    ))]
pub async fn embeddings(State(state): State<AppState>, req: Request) -> Response {
    proxy(state, req, Endpoint::Embeddings).await
}

/// A model in OpenAI's shape.
#[derive(Serialize, ToSchema)]
pub struct ModelObject {
    /// The name to send as `model`.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// Creation time (seconds).
    pub created: i64,
    /// The provider.
    pub owned_by: String,
}

/// OpenAI's model list.
#[derive(Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// The models.
    pub data: Vec<ModelObject>,
}

/// The workspace's models (those the key may use).
#[utoipa::path(get, path = "/v1/models", tag = "gateway", security(("api_key" = [])), responses(
    (status = 200, body = ModelList),
    (status = 401, body = OpenAiError, description = "invalid_api_key"),
    (status = 503, body = OpenAiError, description = "database_unavailable (or api_keys_reloading with Retry-After while keys are reloaded after a change)"),
))]
pub async fn list_models(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ModelList>, GatewayError> {
    let key = authenticate(&state, &headers)?;
    let models = rotor_storage::models::all(state.db(), key.workspace_id.into())
        .await
        .map_err(|_| {
            GatewayError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the model list cannot be loaded; retry shortly",
            )
        })?;
    let data = models
        .into_iter()
        .filter(|m| allowed(&key, &m.name).is_ok())
        .map(|m| ModelObject {
            id: m.name,
            object: "model",
            created: m.created_at.timestamp(),
            owned_by: m.provider,
        })
        .collect();
    Ok(Json(ModelList {
        object: "list",
        data,
    }))
}

/// One model by name.
#[utoipa::path(get, path = "/v1/models/{name}", tag = "gateway", security(("api_key" = [])),
    params(("name" = String, Path, description = "model name")), responses(
    (status = 200, body = ModelObject),
    (status = 401, body = OpenAiError, description = "invalid_api_key"),
    (status = 403, body = OpenAiError, description = "model_not_allowed"),
    (status = 404, body = OpenAiError, description = "model_not_found"),
    (status = 503, body = OpenAiError, description = "database_unavailable (or api_keys_reloading with Retry-After while keys are reloaded after a change)"),
))]
pub async fn get_model(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Result<Json<ModelObject>, GatewayError> {
    let key = authenticate(&state, &headers)?;
    if name.contains('\0') {
        return Err(model_not_found(&name));
    }
    allowed(&key, &name)?;
    let m = rotor_storage::models::get_by_name(state.db(), key.workspace_id.into(), &name)
        .await
        .map_err(|_| {
            GatewayError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the model cannot be loaded; retry shortly",
            )
        })?
        .ok_or_else(|| {
            GatewayError::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!("the model `{name}` does not exist"),
            )
        })?;
    Ok(Json(ModelObject {
        id: m.name,
        object: "model",
        created: m.created_at.timestamp(),
        owned_by: m.provider,
    }))
}
