//! OpenAI's Responses API: `POST /responses` (JSON, or with `"stream": true` its semantic SSE
//! events, `event: <type>` and `data: <json>`), `GET` and `DELETE /responses/{id}`,
//! `POST /responses/{id}/cancel` and `GET /responses/{id}/input_items`, under `/v1` and
//! Azure's `/openai`. Responses are kept per API key ([`Store`]) unless `store: false`; an id
//! another key created is "not found", word for word as OpenAI says it, and so is a
//! `previous_response_id` of one.
//!
//! A `background: true` response answers `queued`; each retrieval moves it on (`in_progress`,
//! then `completed`), so a client's polling loop ends; cancelling it before then leaves it
//! `cancelled` (again: the same answer), and cancelling a response that was not created in
//! the background is OpenAI's 400. A `store: false` response is never kept, background or
//! not (OpenAI refuses that pair; the mock does not check it).

mod object;
mod store;

use super::super::json::{arr, obj, opt_s, s, J};
use super::super::{paced, respond, unix_now, Incoming};
use super::{body, ok_json, refusal};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use object::{input_items, new_id, Status, Stored};
pub(crate) use store::Store;

/// What a request under `…/responses` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    Create,
    Retrieve(&'a str),
    Delete(&'a str),
    Cancel(&'a str),
    InputItems(&'a str),
    /// A path or method the API does not serve.
    Invalid,
}

/// The Responses API route of `method` and `path`, if the path is the API's.
pub(super) fn route<'a>(method: &Method, path: &'a str) -> Option<Route<'a>> {
    if path.ends_with("/responses") {
        return Some(if method == Method::POST {
            Route::Create
        } else {
            Route::Invalid
        });
    }
    let rest = &path[path.rfind("/responses/")? + "/responses/".len()..];
    Some(match (method.as_str(), rest.split_once('/')) {
        ("GET", None) => Route::Retrieve(rest),
        ("DELETE", None) => Route::Delete(rest),
        ("POST", Some((id, "cancel"))) => Route::Cancel(id),
        ("GET", Some((id, "input_items"))) => Route::InputItems(id),
        _ => Route::Invalid,
    })
}

/// The answer to a Responses API request; `store` holds the responses of every key.
pub(super) fn answer(req: &Incoming, store: &Store, route: Route<'_>) -> Response {
    let key = req.key.as_deref().unwrap_or_default();
    match route {
        Route::Create => create(req, store, key),
        Route::Retrieve(id) => store
            .update(key, id, |r| {
                advance(r);
                r.object()
            })
            .map_or_else(|| not_found(id), ok_json),
        Route::Delete(id) if store.remove(key, id) => {
            // Azure names the deleted object `response`, OpenAI `response.deleted`.
            let object = if req.path.contains("/openai/") {
                "response"
            } else {
                "response.deleted"
            };
            ok_json(obj([
                ("id", s(id)),
                ("object", s(object)),
                ("deleted", J::Bool(true)),
            ]))
        }
        Route::Delete(id) => not_found(id),
        Route::Cancel(id) => match store.update(key, id, cancel) {
            None => not_found(id),
            Some(None) => refusal(
                StatusCode::BAD_REQUEST,
                "Cannot cancel a synchronous response.",
                None,
                None,
            ),
            Some(Some(object)) => ok_json(object),
        },
        Route::InputItems(id) => match store.get(key, id) {
            Some(r) => input_item_list(req, r),
            None => not_found(id),
        },
        Route::Invalid => refusal(
            StatusCode::NOT_FOUND,
            &format!("Invalid URL ({} {})", req.method, req.path),
            None,
            None,
        ),
    }
}

/// OpenAI's 404 for a response id its organization does not have.
fn not_found(id: &str) -> Response {
    refusal(
        StatusCode::NOT_FOUND,
        &format!("Response with id '{id}' not found."),
        None,
        None,
    )
}

fn create(req: &Incoming, store: &Store, key: &str) -> Response {
    let json = match body(req, &[]) {
        Ok(json) => json,
        Err(refused) => return *refused,
    };
    let field = |name: &str| json.and_then(|j| j.get(name));
    let flag = |name: &str, default: bool| field(name).and_then(|v| v.as_bool()).unwrap_or(default);
    let Some(model) = req.model.clone() else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: 'model'.",
            Some("model"),
            Some("missing_required_parameter"),
        );
    };
    let previous = field("previous_response_id").and_then(|v| v.as_str());
    if let Some(previous) = previous {
        if store.get(key, previous).is_none() {
            return refusal(
                StatusCode::NOT_FOUND,
                &format!("Previous response with id '{previous}' not found."),
                Some("previous_response_id"),
                Some("previous_response_not_found"),
            );
        }
    }
    let stream = req.stream();
    let background = flag("background", false);
    let chunks = req.script.chunks.unwrap_or(3);
    let now = unix_now();
    let mut response = Stored {
        key: key.to_owned(),
        id: new_id("resp"),
        created_at: now,
        completed_at: Some(now),
        status: Status::Completed,
        model,
        background,
        store: flag("store", true),
        previous_response_id: previous.map(str::to_owned),
        instructions: field("instructions")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        metadata: field("metadata").filter(|m| m.is_object()).cloned(),
        message_id: new_id("msg"),
        deltas: (0..chunks).map(|i| format!("tok{i} ")).collect(),
        input: input_items(field("input")),
    };
    if background && !stream {
        response.status = Status::Queued;
        response.completed_at = None;
    }
    if !stream {
        if response.store {
            store.insert(response.clone());
        }
        return ok_json(response.object());
    }
    let obfuscation = json
        .and_then(|j| j.pointer("/stream_options/include_obfuscation"))
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    let mut events = response.events(obfuscation);
    if let Some(n) = req.script.error_after {
        // A failure after the stream started: `response.failed`, and so it is kept.
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n < events.len() {
            events.truncate(n);
            events.push(("response.failed", response.failed_event(n as u64)));
            response.status = Status::Failed;
            response.completed_at = None;
        }
    }
    if response.store {
        store.insert(response);
    }
    let events = events
        .into_iter()
        .map(|(kind, event)| format!("event: {kind}\ndata: {}\n\n", event.compact()))
        .collect();
    respond(
        StatusCode::OK,
        "text/event-stream",
        paced(events, &req.script),
    )
}

/// One retrieval's worth of a background response's progress.
fn advance(r: &mut Stored) {
    match r.status {
        Status::Queued => r.status = Status::InProgress,
        Status::InProgress => {
            r.status = Status::Completed;
            r.completed_at = Some(unix_now());
        }
        _ => {}
    }
}

/// Cancels a background response that has not finished; `None` for one that was not
/// created in the background. A finished one is answered as it is.
fn cancel(r: &mut Stored) -> Option<J> {
    if !r.background {
        return None;
    }
    if matches!(r.status, Status::Queued | Status::InProgress) {
        r.status = Status::Cancelled;
    }
    Some(r.object())
}

/// A page of a response's input items: `order` (`desc` by default), `after` an item id,
/// `limit` (1 to 100, 20 by default).
fn input_item_list(req: &Incoming, r: Stored) -> Response {
    let mut items = r.input;
    if req.query_param("order").as_deref() != Some("asc") {
        items.reverse();
    }
    if let Some(after) = req.query_param("after") {
        if let Some(i) = items.iter().position(|(id, _)| *id == after) {
            items.drain(..=i);
        }
    }
    let limit = req
        .query_param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let has_more = items.len() > limit;
    items.truncate(limit);
    let first = items.first().map(|(id, _)| id.clone());
    let last = items.last().map(|(id, _)| id.clone());
    ok_json(obj([
        ("object", s("list")),
        ("data", arr(items.into_iter().map(|(_, item)| item))),
        ("first_id", opt_s(first)),
        ("last_id", opt_s(last)),
        ("has_more", J::Bool(has_more)),
    ]))
}
