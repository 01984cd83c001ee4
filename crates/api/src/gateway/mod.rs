//! The gateway: OpenAI's, Anthropic's and Gemini's APIs natively, with API-key auth from
//! memory, model → pool resolution from the route cache, dispatch with failover, and errors in
//! the family's own shape. Each family's official SDK works with only its base URL changed.

pub mod anthropic;
pub mod body;
pub mod cache;
pub mod docs;
pub mod error;
pub mod flight;
pub mod gemini;
pub mod limits;
pub mod listing;
pub mod models;
pub mod multipart;
pub mod openai;
pub mod resolve;
pub mod responses;
pub mod shapes;

use crate::state::AppState;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use cache::{CachedRoute, KeyInfo, KeyLookup};
use error::GatewayError;
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
#[openapi(components(schemas(OpenAiError, shapes::AnthropicError, shapes::GeminiError)))]
struct ErrorSchemas;

/// `/v1/*` and Gemini's `/v1beta/*`.
pub fn router() -> OpenApiRouter<AppState> {
    let mut doc = <ErrorSchemas as utoipa::OpenApi>::openapi();
    doc.merge(<gemini::GeminiPaths as utoipa::OpenApi>::openapi());
    OpenApiRouter::with_openapi(doc)
        .routes(routes!(openai::chat_completions))
        .routes(routes!(openai::completions))
        .routes(routes!(openai::embeddings))
        .routes(routes!(openai::moderations))
        .routes(routes!(openai::image_generations))
        .routes(routes!(openai::audio_speech))
        .routes(routes!(openai::audio_transcriptions))
        .routes(routes!(openai::audio_translations))
        .routes(routes!(openai::rerank))
        .routes(routes!(responses::create))
        .routes(routes!(responses::retrieve, responses::delete))
        .routes(routes!(responses::cancel))
        .routes(routes!(responses::input_items))
        .routes(routes!(anthropic::messages))
        .routes(routes!(anthropic::count_tokens))
        .routes(routes!(models::list_models))
        .routes(routes!(models::get_model))
        .routes(routes!(models::gemini_list_models))
        .routes(routes!(models::gemini_get_model))
        .route("/v1beta/models/{name}", axum::routing::post(gemini::call))
        .route("/v1/models/{name}", axum::routing::post(gemini::call))
}

const ATTEMPTS: HeaderName = HeaderName::from_static("x-rotor-attempts");
const CREDENTIAL: HeaderName = HeaderName::from_static("x-rotor-credential-id");
const OVERHEAD: HeaderName = HeaderName::from_static("x-rotor-overhead-ms");
const AFFINITY: HeaderName = HeaderName::from_static("x-rotor-affinity");
const AFFINITY_HIT: HeaderName = HeaderName::from_static("x-rotor-affinity-hit");

/// Whether the request's query holds `pair` (`alt=sse`, `stream=true`) as sent.
fn query_has(uri: &Uri, pair: &str) -> bool {
    uri.query().is_some_and(|q| q.split('&').any(|p| p == pair))
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
    state.touch_key(&key);
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
    let workspace = key.workspace_id;
    let generation = state.gateway().generation(workspace);
    let resolve = || async {
        match resolve::resolve(state, workspace, model).await {
            Ok(resolved) => {
                let route = resolved.map(Arc::new);
                if let Some(r) = &route {
                    state
                        .gateway()
                        .store_route(workspace, model, generation, r.clone());
                }
                Ok(route)
            }
            Err(e) => {
                tracing::error!(error = %e, "route resolution failed");
                Err(())
            }
        }
    };
    let outcome = state
        .gateway()
        .flights()
        .run(workspace, model, generation, resolve)
        .await;
    outcome
        .map_err(|()| GatewayError::database_unavailable("the model configuration"))?
        .ok_or_else(|| GatewayError::model_not_found(model))
}

/// The client's request headers that go to the provider (never its key or cookies). A JSON
/// body goes as `application/json` whatever the client called it (it was parsed as JSON).
fn forwarded(client: &HeaderMap) -> HeaderMap {
    // One pass over the client's few headers, by name (no lookup per passed name).
    let passed = |name: &HeaderName| {
        *name == header::ACCEPT
            || matches!(
                name.as_str(),
                "openai-beta" | "anthropic-version" | "anthropic-beta" | "idempotency-key"
            )
    };
    let mut out = HeaderMap::new();
    for (name, value) in client {
        if passed(name) {
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

/// Runs a front end and answers its refusal in `family`'s shape, with the time Rotor took.
async fn answer<F>(family: Family, started: Instant, front: F) -> Response
where
    F: std::future::Future<Output = Result<Response, GatewayError>>,
{
    match front.await {
        Ok(r) => r,
        Err(e) => {
            let mut r = shapes::render(e, family);
            set_overhead(&mut r, started.elapsed());
            r
        }
    }
}

/// The API key of a request of `family`, found where that family's clients put it.
fn authenticate_in(
    state: &AppState,
    family: Family,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Arc<KeyInfo>, GatewayError> {
    let token = client_key(family, headers, uri).ok_or_else(GatewayError::invalid_key)?;
    authenticate_token(state, &token)
}

/// A request body the gateway cannot read as JSON: 400 `invalid_request_error`.
fn body_refused(e: body::BodyError) -> GatewayError {
    let err = GatewayError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        e.message(),
    );
    match e.param() {
        Some(p) => err.param(p),
        None => err,
    }
}

/// The route of `model` for `key`: refused when the key may not use it, when it does not
/// exist, or when it speaks another family than the endpoint's.
async fn routed(
    state: &AppState,
    key: &KeyInfo,
    family: Family,
    model: &str,
) -> Result<Arc<CachedRoute>, GatewayError> {
    if model.contains('\0') {
        // PostgreSQL cannot hold such a name, so no model has it: no query is made.
        return Err(GatewayError::model_not_found(model));
    }
    allowed(key, model)?;
    let cached = route_for(state, key, model).await?;
    let speaks = cached.route.family;
    if speaks != family {
        return Err(GatewayError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_endpoint",
            format!(
                "the model `{}` speaks the {} API, not this endpoint's ({})",
                model.escape_debug(),
                speaks.as_str(),
                family.as_str()
            ),
        )
        .param("model"));
    }
    Ok(cached)
}

/// What goes upstream for a routed request.
struct Outbound<'a> {
    /// The API key that asked (whose usage the request is, under whose limits).
    client: &'a KeyInfo,
    endpoint: Endpoint,
    method: axum::http::Method,
    suffix: Option<&'a str>,
    forward: &'a HeaderMap,
    body: Bytes,
    rebody: Option<&'a (dyn Fn(&str) -> Bytes + Sync)>,
    stream: bool,
    /// The only credential that may serve (a stored response's).
    pin: Option<uuid::Uuid>,
    /// The request's affinity key, hashed (only sticky routes use it).
    affinity: Option<u64>,
}

/// The affinity key a client names in `x-rotor-affinity` (first in precedence), hashed.
pub(crate) fn affinity_header(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(AFFINITY)
        .map(HeaderValue::as_bytes)
        .filter(|v| !v.is_empty())
        .map(rotor_dispatch::state::affinity_hash)
}

/// Dispatches `out` over the route's pool and answers what came back (or why nothing did)
/// in the endpoint's family, with Rotor's attempt count and overhead.
async fn send(
    state: &AppState,
    cached: &CachedRoute,
    out: Outbound<'_>,
    started: Instant,
) -> Response {
    let route = &cached.route;
    let family = out.endpoint.family();
    let balanced = route.pool_ready && state.has_load_balancing(cached.plan);
    let tag = crate::ledger::tag(cached, out.client);
    if let Err(e) = limits::admit(state, out.client, &tag) {
        state.ledger().request(&tag, None, true);
        route.metrics.request(AnswerClass::RateLimited);
        let mut response = shapes::render(e, family);
        set_overhead(&mut response, started.elapsed());
        return response;
    }
    let outcome = state
        .engine()
        .dispatch(Call {
            route,
            balanced,
            endpoint: out.endpoint,
            method: out.method,
            suffix: out.suffix,
            forward: out.forward,
            body: out.body,
            rebody: out.rebody,
            stream: out.stream,
            started,
            pin: out.pin,
            affinity: out.affinity,
            usage: Some(&tag),
            client: limits::client(out.client),
        })
        .await;
    let attempts = HeaderValue::from(outcome.attempts);
    let sticky = balanced && route.affinity_ttl_ms.is_some() && out.pin.is_none();
    let mut response = match outcome.result {
        Ok(relay) => {
            let error = relay.status >= 400;
            state
                .ledger()
                .request(&tag, Some(relay.credential_id), error);
            relayed(relay, out.stream, family)
        }
        Err(failure) => {
            if matches!(
                failure,
                rotor_dispatch::engine::Failure::ClientLimited { .. }
            ) {
                metrics::counter!("rotor_api_key_refusals_total", "reason" => "rate_limited")
                    .increment(1);
            }
            state
                .ledger()
                .request(&tag, failed_credential(failure), true);
            let (e, class) = GatewayError::of_failure(failure, &route.model);
            route.metrics.request(class);
            shapes::render(e, family)
        }
    };
    response.headers_mut().insert(ATTEMPTS, attempts);
    if sticky {
        let hit = outcome.affinity_hit == Some(true);
        let result = if hit { "hit" } else { "miss" };
        metrics::counter!("rotor_affinity_total", "result" => result).increment(1);
        let value = HeaderValue::from_static(if hit { "true" } else { "false" });
        response.headers_mut().insert(AFFINITY_HIT, value);
    }
    let overhead = started.elapsed().saturating_sub(outcome.upstream_time);
    route.metrics.overhead(overhead.as_secs_f64());
    set_overhead(&mut response, overhead);
    response
}

/// The credential a failure is about, when one answered (the provider refused its key).
fn failed_credential(failure: rotor_dispatch::engine::Failure) -> Option<uuid::Uuid> {
    match failure {
        rotor_dispatch::engine::Failure::CredentialRejected { credential_id } => {
            Some(credential_id)
        }
        _ => None,
    }
}

/// The endpoint of a POST to `path` that [`crate::app::Front`] gives to [`proxy`] without
/// the router: the calls that carry nearly all of the gateway's traffic.
pub(crate) fn hot(path: &str) -> Option<Endpoint> {
    match path {
        "/v1/chat/completions" => Some(Endpoint::ChatCompletions),
        "/v1/messages" => Some(Endpoint::Messages),
        "/v1/completions" => Some(Endpoint::Completions),
        "/v1/embeddings" => Some(Endpoint::Embeddings),
        _ => None,
    }
}

/// An endpoint whose JSON body names the model (`model`, and `stream` for server-sent
/// events): OpenAI's and Anthropic's.
pub(crate) async fn proxy(state: AppState, req: Request, endpoint: Endpoint) -> Response {
    let started = Instant::now();
    answer(
        endpoint.family(),
        started,
        proxy_json(&state, req, endpoint, started),
    )
    .await
}

async fn proxy_json(
    state: &AppState,
    req: Request,
    endpoint: Endpoint,
    started: Instant,
) -> Result<Response, GatewayError> {
    let key = authenticate_in(state, endpoint.family(), req.headers(), req.uri())?;
    let forward = forwarded(req.headers());
    let named = affinity_header(req.headers());
    let raw = read_body(state, req).await?;
    let scanned = body::off_core(raw.len(), || body::scan(&raw)).map_err(body_refused)?;
    let cached = routed(state, &key, endpoint.family(), &scanned.model).await?;
    let route = &cached.route;
    let stream = scanned.stream;
    let affinity = match route.affinity_ttl_ms {
        Some(_) => named.or_else(|| scanned.affinity()),
        None => None,
    };
    let body = Bytes::from(scanned.rewrite(&route.upstream_model, raw.len()));
    // The request's bytes are freed before the upstream call, unless an entry of the pool
    // names the model otherwise and needs its own rewrite.
    let renamed = route.renames();
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
    let out = Outbound {
        client: &key,
        endpoint,
        method: axum::http::Method::POST,
        suffix: None,
        forward: &forward,
        body,
        rebody,
        stream,
        pin: None,
        affinity,
    };
    Ok(send(state, &cached, out, started).await)
}

/// `x-rotor-overhead-ms`: milliseconds with three decimals (whole microseconds), written
/// without a formatter.
fn set_overhead(r: &mut Response, overhead: Duration) {
    let micros = u64::try_from(overhead.as_micros()).unwrap_or(u64::MAX);
    let mut buf = [0u8; 24];
    let mut ms = itoa::Buffer::new();
    let whole = ms.format(micros / 1000).as_bytes();
    let frac = micros % 1000;
    let n = whole.len();
    buf[..n].copy_from_slice(whole);
    buf[n] = b'.';
    buf[n + 1] = b'0' + (frac / 100) as u8;
    buf[n + 2] = b'0' + (frac / 10 % 10) as u8;
    buf[n + 3] = b'0' + (frac % 10) as u8;
    if let Ok(v) = HeaderValue::from_bytes(&buf[..n + 4]) {
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
    let mut r = Response::new(body);
    *r.status_mut() = status;
    // The relayed headers become the answer's (made with room for the ones added here).
    *r.headers_mut() = relay.headers;
    let h = r.headers_mut();
    if stream && status.is_success() {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
    }
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    if let Ok(v) = HeaderValue::from_str(relay.credential_id.hyphenated().encode_lower(&mut id)) {
        h.insert(CREDENTIAL, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overhead_header_is_milliseconds_with_three_decimals() {
        let header = |d: Duration| {
            let mut r = Response::new(Body::empty());
            set_overhead(&mut r, d);
            r.headers()[OVERHEAD].to_str().unwrap().to_owned()
        };
        assert_eq!(header(Duration::from_micros(52)), "0.052");
        assert_eq!(header(Duration::from_nanos(1_234_999)), "1.234");
        assert_eq!(header(Duration::from_millis(120_000)), "120000.000");
        assert_eq!(header(Duration::ZERO), "0.000");
    }
}
