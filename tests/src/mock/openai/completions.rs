//! OpenAI's legacy text completions, `POST /completions`: a `text_completion` with one choice
//! per prompt (and per `n`), or with `"stream": true` one `text_completion` chunk per scripted
//! chunk, a last chunk with the `finish_reason`, the usage chunk when
//! `stream_options.include_usage` asks for it, and `data: [DONE]`, as the chat stream.

use super::super::json::{arr, n, obj, s, J};
use super::super::{id_chars, next_serial, paced, respond, unix_now, Incoming, BODY_CANARY};
use super::{body, include_usage, ok_json, PROMPT_TOKENS};
use axum::http::StatusCode;
use axum::response::Response;

/// What the model "says" in a JSON answer, and its token count.
const TEXT: &str = "Hello from the mock.";
const TEXT_TOKENS: u64 = 7;

/// The answer to `POST /completions`.
pub(super) fn answer(req: &Incoming) -> Response {
    let json = match body(req, &["model"]) {
        Ok(json) => json,
        Err(refused) => return *refused,
    };
    let model = req.model.as_deref().unwrap_or("mock-model");
    let id = format!("cmpl-{}", id_chars(next_serial(), 29));
    let created = unix_now();
    if req.stream() {
        return stream(req, &id, created, model);
    }
    // One choice per prompt of a list of prompts, `n` each.
    let prompts = json
        .and_then(|j| j.get("prompt"))
        .and_then(|p| p.as_array())
        .filter(|a| a.iter().all(|p| p.is_string()))
        .map_or(1, |a| a.len().max(1)) as u64;
    let per_prompt = json
        .and_then(|j| j.get("n"))
        .and_then(|v| v.as_u64())
        .unwrap_or(1)
        .clamp(1, 128);
    let choices = prompts * per_prompt;
    let completion_tokens = TEXT_TOKENS * choices;
    ok_json(obj([
        ("id", s(id)),
        ("object", s("text_completion")),
        ("created", n(created)),
        ("model", s(model)),
        (
            "choices",
            arr((0..choices).map(|i| choice(TEXT, i, Some("stop")))),
        ),
        ("usage", usage(PROMPT_TOKENS * prompts, completion_tokens)),
    ]))
}

fn choice(text: &str, index: u64, finish_reason: Option<&str>) -> J {
    obj([
        ("text", s(text)),
        ("index", n(index)),
        ("logprobs", J::Null),
        ("finish_reason", finish_reason.map_or(J::Null, s)),
    ])
}

fn usage(prompt: u64, completion: u64) -> J {
    obj([
        ("prompt_tokens", n(prompt)),
        ("completion_tokens", n(completion)),
        ("total_tokens", n(prompt + completion)),
    ])
}

fn stream(req: &Incoming, id: &str, created: u64, model: &str) -> Response {
    let chunks = req.script.chunks.unwrap_or(3);
    let chunk = |choices: J, usage: Option<J>| {
        let mut fields = vec![
            ("id", s(id)),
            ("object", s("text_completion")),
            ("created", n(created)),
            ("model", s(model)),
            ("choices", choices),
        ];
        fields.extend(usage.map(|u| ("usage", u)));
        format!("data: {}\n\n", J::Obj(fields).compact())
    };
    let mut events: Vec<String> = (0..chunks)
        .map(|i| chunk(arr([choice(&format!("tok{i} "), 0, None)]), None))
        .collect();
    events.push(chunk(arr([choice("", 0, Some("stop"))]), None));
    if include_usage(req) {
        events.push(chunk(arr([]), Some(usage(PROMPT_TOKENS, chunks))));
    }
    events.push("data: [DONE]\n\n".to_owned());
    if let Some(n) = req.script.error_after {
        // A failure after the stream started: an error object as a data event, as chat's.
        events.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        events.push(format!(
            "data: {{\"error\":{{\"message\":\"{BODY_CANARY} The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}}}\n\n"
        ));
    }
    respond(
        StatusCode::OK,
        "text/event-stream",
        paced(events, &req.script),
    )
}
