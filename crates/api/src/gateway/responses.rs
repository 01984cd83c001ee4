//! OpenAI's Responses API. A response lives at the organisation of the credential that
//! created it, so Rotor remembers which credential that was (30 days, in Redis when shared)
//! and sends everything about that id to it: retrieve, delete, cancel, input items, and every
//! `previous_response_id` continuation. Other requests rotate as usual.

use super::docs::{ResponsesErrors, StoredErrors};
use super::error::GatewayError;
use super::{affinity_header, routed, send};
use super::{answer, authenticate_in, body, body_refused, forwarded, query_has, read_body};
use super::{Outbound, CREDENTIAL};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use rotor_dispatch::state::bindings::{bindable, Binding};
use rotor_dispatch::target::{Endpoint, Family};
use rotor_storage::ids::{ModelId, WorkspaceId};
use std::time::Instant;
use uuid::Uuid;

/// OpenAI responses (JSON, or server-sent events with `stream: true`): balanced across the
/// model's pool, but a continuation (`previous_response_id`) goes to the credential that
/// created the response it continues.
#[utoipa::path(operation_id = "responses_create", post, path = "/v1/responses", tag = "gateway", security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI Responses request; `model` is a Rotor model name"),
    responses(
        (status = 200, description = "The provider's answer (JSON, or text/event-stream when streaming)"),
        ResponsesErrors,
    ))]
pub async fn create(State(state): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    answer(Family::OpenAi, started, create_front(&state, req, started)).await
}

/// A stored response, from the credential that created it (`?stream=true` replays its
/// events).
#[utoipa::path(operation_id = "responses_retrieve", get, path = "/v1/responses/{id}", tag = "gateway", security(("api_key" = [])),
    params(("id" = String, Path, description = "A response id Rotor relayed (`resp_…`)")),
    responses((status = 200, description = "The provider's answer"), StoredErrors))]
pub async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    stored(state, req, id, axum::http::Method::GET, "").await
}

/// Deletes a stored response at the credential that created it (Rotor forgets the id once
/// the provider has deleted it).
#[utoipa::path(operation_id = "responses_delete", delete, path = "/v1/responses/{id}", tag = "gateway", security(("api_key" = [])),
    params(("id" = String, Path, description = "A response id Rotor relayed (`resp_…`)")),
    responses((status = 200, description = "The provider's answer"), StoredErrors))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    stored(state, req, id, axum::http::Method::DELETE, "").await
}

/// Cancels a background response at the credential that created it.
#[utoipa::path(operation_id = "responses_cancel", post, path = "/v1/responses/{id}/cancel", tag = "gateway", security(("api_key" = [])),
    params(("id" = String, Path, description = "A response id Rotor relayed (`resp_…`)")),
    responses((status = 200, description = "The provider's answer"), StoredErrors))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    stored(state, req, id, axum::http::Method::POST, "/cancel").await
}

/// The input items of a stored response (the client's `limit`, `order`, `after` … passed on).
#[utoipa::path(operation_id = "responses_input_items", get, path = "/v1/responses/{id}/input_items", tag = "gateway", security(("api_key" = [])),
    params(("id" = String, Path, description = "A response id Rotor relayed (`resp_…`)")),
    responses((status = 200, description = "The provider's answer"), StoredErrors))]
pub async fn input_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    stored(state, req, id, axum::http::Method::GET, "/input_items").await
}

async fn create_front(
    state: &AppState,
    req: Request,
    started: Instant,
) -> Result<Response, GatewayError> {
    let key = authenticate_in(state, Family::OpenAi, req.headers(), req.uri())?;
    let forward = forwarded(req.headers());
    let named = affinity_header(req.headers());
    let raw = read_body(state, req).await?;
    let scanned = body::off_core(raw.len(), || body::scan(&raw)).map_err(body_refused)?;
    let cached = routed(state, &key, Family::OpenAi, &scanned.model).await?;
    let route = &cached.route;
    let affinity = match route.affinity_ttl_ms {
        Some(_) => named.or_else(|| scanned.affinity()),
        None => None,
    };
    // A continuation goes where the response it continues lives (an id Rotor never relayed
    // is the provider's to judge, on whichever credential serves).
    let pin = match scanned.string("previous_response_id") {
        Some(previous) => state
            .engine()
            .response_binding(key.workspace_id, &previous)
            .await
            .map(|b| b.credential),
        None => None,
    };
    let stream = scanned.stream;
    let renamed = route.renames();
    let raw_len = raw.len();
    let rename = |name: &str| Bytes::from(scanned.rewrite(name, raw_len));
    let out = Outbound {
        client: &key,
        endpoint: Endpoint::Responses,
        method: axum::http::Method::POST,
        suffix: None,
        forward: &forward,
        body: rename(&route.upstream_model),
        rebody: renamed.then_some(&rename as &(dyn Fn(&str) -> Bytes + Sync)),
        stream,
        pin,
        affinity,
    };
    let response = send(state, &cached, out, started).await;
    let model = route.pool.model;
    Ok(remember(state, key.workspace_id, model, response, stream).await)
}

/// The credential that served a successful answer.
fn served_by(response: &Response) -> Option<Uuid> {
    if !response.status().is_success() {
        return None;
    }
    response
        .headers()
        .get(CREDENTIAL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Binds the id of the response in `response` (its JSON's `id`, or a stream's
/// `response.created` event) to the credential that created it.
async fn remember(
    state: &AppState,
    workspace: Uuid,
    model: Uuid,
    response: Response,
    stream: bool,
) -> Response {
    let Some(credential) = served_by(&response) else {
        return response;
    };
    let binding = Binding { credential, model };
    let (parts, body) = response.into_parts();
    if stream {
        let mut tap = CreatedTap::default();
        let state = state.clone();
        let events = body.into_data_stream().inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                if let Some(id) = tap.feed(chunk) {
                    let state = state.clone();
                    tokio::spawn(async move {
                        state.engine().bind_response(workspace, &id, binding).await;
                    });
                }
            }
        });
        return Response::from_parts(parts, Body::from_stream(events));
    }
    // A relayed JSON answer is in memory already: reading it again copies nothing.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Created {
        id: Option<String>,
    }
    if let Ok(Created { id: Some(id) }) = serde_json::from_slice(&bytes) {
        state.engine().bind_response(workspace, &id, binding).await;
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Reads a Responses stream until its `response.created` event names the response (within
/// its first 64 KiB).
#[derive(Default)]
struct CreatedTap {
    buffer: Vec<u8>,
    done: bool,
}

impl CreatedTap {
    const LIMIT: usize = 64 * 1024;

    /// The response id, the first time the chunks so far hold it.
    fn feed(&mut self, chunk: &[u8]) -> Option<String> {
        if self.done {
            return None;
        }
        self.buffer.extend_from_slice(chunk);
        #[derive(serde::Deserialize)]
        struct Event {
            #[serde(rename = "type")]
            kind: String,
            response: Option<Inner>,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            id: String,
        }
        let text = String::from_utf8_lossy(&self.buffer);
        for line in text.lines().filter_map(|l| l.strip_prefix("data:")) {
            if let Ok(Event { kind, response }) = serde_json::from_str(line.trim()) {
                if kind == "response.created" {
                    self.done = true;
                    self.buffer = Vec::new();
                    return response.map(|r| r.id);
                }
            }
        }
        if self.buffer.len() > Self::LIMIT {
            self.done = true;
            self.buffer = Vec::new();
        }
        None
    }
}

fn not_found(id: &str) -> GatewayError {
    GatewayError::new(
        StatusCode::NOT_FOUND,
        "response_not_found",
        format!(
            "no response `{}` was relayed through this workspace in the last 30 days",
            id.escape_debug()
        ),
    )
}

async fn stored(
    state: AppState,
    req: Request,
    id: String,
    method: axum::http::Method,
    tail: &'static str,
) -> Response {
    let started = Instant::now();
    let front = stored_front(&state, req, &id, method, tail, started);
    answer(Family::OpenAi, started, front).await
}

async fn stored_front(
    state: &AppState,
    req: Request,
    id: &str,
    method: axum::http::Method,
    tail: &'static str,
    started: Instant,
) -> Result<Response, GatewayError> {
    let key = authenticate_in(state, Family::OpenAi, req.headers(), req.uri())?;
    // The id goes into the provider's path: nothing but what provider ids are made of.
    let plain = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !plain || !bindable(id) {
        return Err(not_found(id));
    }
    let binding = state
        .engine()
        .response_binding(key.workspace_id, id)
        .await
        .ok_or_else(|| not_found(id))?;
    let workspace = WorkspaceId::from(key.workspace_id);
    let model =
        match rotor_storage::models::get(state.db(), workspace, ModelId::from(binding.model)).await
        {
            Ok(m) => m,
            Err(rotor_storage::Error::NotFound) => {
                return Err(GatewayError::new(
                    StatusCode::NOT_FOUND,
                    "response_credential_gone",
                    "the model whose pool created this response was deleted",
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, "loading the model of a stored response failed");
                return Err(GatewayError::database_unavailable(
                    "the model configuration",
                ));
            }
        };
    let cached = routed(state, &key, Family::OpenAi, &model.name).await?;
    let stream =
        method == axum::http::Method::GET && tail.is_empty() && query_has(req.uri(), "stream=true");
    let suffix = match req.uri().query() {
        Some(q) if !q.is_empty() => format!("/{id}{tail}?{q}"),
        _ => format!("/{id}{tail}"),
    };
    let forward = forwarded(req.headers());
    let deleting = method == axum::http::Method::DELETE;
    let out = Outbound {
        client: &key,
        endpoint: Endpoint::Responses,
        method,
        suffix: Some(&suffix),
        forward: &forward,
        body: Bytes::new(),
        rebody: None,
        stream,
        pin: Some(binding.credential),
        affinity: None,
    };
    let response = send(state, &cached, out, started).await;
    if deleting && response.status().is_success() {
        state.engine().unbind_response(key.workspace_id, id).await;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_created_event_names_the_response_across_chunks() {
        let mut tap = CreatedTap::default();
        let events = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_abc\",\"status\":\"in_progress\"}}\n\n";
        let (a, b) = events.split_at(40);
        assert_eq!(tap.feed(a.as_bytes()), None);
        assert_eq!(tap.feed(b.as_bytes()).as_deref(), Some("resp_abc"));
        assert_eq!(tap.feed(events.as_bytes()), None, "once");
        let mut quiet = CreatedTap::default();
        let filler = format!(
            "data: {{\"type\":\"x\",\"pad\":\"{}\"}}\n\n",
            "p".repeat(70_000)
        );
        assert_eq!(quiet.feed(filler.as_bytes()), None);
        assert!(
            quiet.done && quiet.buffer.is_empty(),
            "gives up after 64 KiB"
        );
    }
}
