//! The OpenAI family as the mock speaks it: chat completions (JSON and SSE), embeddings, the
//! model list, OpenAI's error shape with its rate-limit headers, and the huge answers of the
//! memory tests here; the rest of the API one module per resource (legacy completions,
//! moderations, images, audio, rerank, the Responses API). Azure's URL shapes
//! (`/openai/deployments/{d}/chat/completions`, `/openai/responses`) are answered the same,
//! by the path's ending.

mod completions;
mod images;
mod moderations;
mod rerank;
pub(super) mod responses;
mod speech;
mod transcriptions;

use super::json::{obj, s, J};
use super::{paced, respond, Incoming, Script, BODY_CANARY};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use responses::Store;
use std::time::{Duration, SystemTime};

/// OpenAI's 429 message when the account's quota is spent, word for word.
const QUOTA: &str = "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.";

/// The request-limit headers of a success that spent the limit (`x-ratelimit-*-requests`).
pub(super) fn spend_requests(r: &mut Response, script: &Script) {
    let reset = script.reset_requests.as_deref().unwrap_or("1s");
    let headers = [
        ("x-ratelimit-limit-requests", "100"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", reset),
    ];
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            r.headers_mut().insert(name, v);
        }
    }
}

/// Usage the mock reports for a prompt.
const PROMPT_TOKENS: u64 = 5;

/// OpenAI's 400 for a body that is not JSON, word for word.
const NOT_JSON: &str = "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)";

/// An OpenAI error answer (`{"error": {"message", "type", "param", "code"}}`) with the
/// rate-limit headers the script asks for.
pub(super) fn error_answer(status: StatusCode, script: &Script) -> Response {
    let body = if script.insufficient_quota {
        format!(
            r#"{{"error": {{"message": "{BODY_CANARY} {QUOTA}", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}}}"#
        )
    } else {
        let kind = if status == StatusCode::TOO_MANY_REQUESTS {
            "rate_limit_exceeded"
        } else {
            "mock_error"
        };
        format!(
            r#"{{"error": {{"message": "{BODY_CANARY} {kind}", "type": "{kind}", "param": null, "code": "{kind}"}}}}"#
        )
    };
    let mut r = respond(status, "application/json", body);
    let date = script
        .retry_after_date
        .map(|n| httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(n)));
    let headers = [
        ("retry-after", script.retry_after.map(|n| n.to_string())),
        ("retry-after", date),
        (
            "retry-after-ms",
            script.retry_after_ms.map(|n| n.to_string()),
        ),
        ("x-ratelimit-reset-requests", script.reset_requests.clone()),
        ("x-ratelimit-reset-tokens", script.reset_tokens.clone()),
    ];
    for (name, value) in headers {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            r.headers_mut().insert(name, v);
        }
    }
    r
}

/// An endpoint's answer to a request the script lets through.
type Answer = fn(&Incoming) -> Response;

/// The endpoints by the ending of their path, in the order they are tried
/// (`/chat/completions` before `/completions`).
const ENDPOINTS: [(&str, Answer); 9] = [
    ("/chat/completions", chat),
    ("/completions", completions::answer),
    ("/embeddings", embeddings),
    ("/moderations", moderations::answer),
    ("/images/generations", images::answer),
    ("/audio/speech", speech::answer),
    ("/audio/transcriptions", transcriptions::transcription),
    ("/audio/translations", transcriptions::translation),
    ("/rerank", rerank::answer),
];

/// The answer to a request the script lets through; `store` holds the Responses API's
/// stored responses.
pub(super) fn answer(req: &Incoming, store: &Store) -> Response {
    if let Some(route) = responses::route(&req.method, &req.path) {
        return responses::answer(req, store, route);
    }
    match ENDPOINTS.iter().find(|(end, _)| req.path.ends_with(end)) {
        Some((_, answer)) => answer(req),
        None => models(),
    }
}

/// An OpenAI error the request itself earns (not a scripted one): the provider's words,
/// without the canary.
pub(super) fn refusal(
    status: StatusCode,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = obj([(
        "error",
        obj([
            ("message", s(message)),
            ("type", s("invalid_request_error")),
            ("param", param.map_or(J::Null, s)),
            ("code", code.map_or(J::Null, s)),
        ]),
    )]);
    respond(status, "application/json", body.compact())
}

/// A 200 JSON answer.
pub(super) fn ok_json(body: J) -> Response {
    respond(StatusCode::OK, "application/json", body.compact())
}

/// The JSON body of a request to a JSON endpoint once it has each of `required`: OpenAI's
/// 400 for a body that is not JSON or lacks one (a missing `model` in the older words the
/// API still uses for it). `None` for a body too large for the mock to parse, which only the
/// memory tests send and which is answered as if it had everything.
pub(super) fn body<'a>(
    req: &'a Incoming,
    required: &[&str],
) -> Result<Option<&'a serde_json::Value>, Box<Response>> {
    let Some(json) = req.json.as_ref() else {
        if req.body.len() > super::JSON_LIMIT {
            return Ok(None);
        }
        return Err(Box::new(refusal(
            StatusCode::BAD_REQUEST,
            NOT_JSON,
            None,
            None,
        )));
    };
    let missing = required
        .iter()
        .find(|f| json.get(**f).is_none_or(|v| v.is_null()));
    match missing {
        Some(&"model") => Err(Box::new(no_model())),
        Some(field) => Err(Box::new(refusal(
            StatusCode::BAD_REQUEST,
            &format!("Missing required parameter: '{field}'."),
            Some(field),
            Some("missing_required_parameter"),
        ))),
        None => Ok(Some(json)),
    }
}

/// OpenAI's 400 for a request without a model.
pub(super) fn no_model() -> Response {
    refusal(
        StatusCode::BAD_REQUEST,
        "you must provide a model parameter",
        None,
        None,
    )
}

fn chat(req: &Incoming) -> Response {
    let model = req.model.as_deref().unwrap_or("mock-model");
    if req.stream() {
        return stream_response(&req.script, model, include_usage(req));
    }
    let body = format!(
        r#"{{"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":"Hello from the mock."}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}}}"#
    );
    if req.script.gap_ms.is_some() {
        // The head at once, the body in two halves `gap_ms` apart (a provider that stalls
        // after its headers).
        let (head, tail) = body.split_at(body.len() / 2);
        let halves = vec![head.to_owned(), tail.to_owned()];
        return respond(
            StatusCode::OK,
            "application/json",
            paced(halves, &req.script),
        );
    }
    respond(StatusCode::OK, "application/json", body)
}

/// `stream_options.include_usage` of a streamed request.
pub(super) fn include_usage(req: &Incoming) -> bool {
    req.json
        .as_ref()
        .and_then(|j| j.pointer("/stream_options/include_usage"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

fn embeddings(req: &Incoming) -> Response {
    let model = req.model.as_deref().unwrap_or("mock-model");
    respond(
        StatusCode::OK,
        "application/json",
        format!(
            r#"{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}}],"model":"{model}","usage":{{"prompt_tokens":3,"total_tokens":3}}}}"#
        ),
    )
}

/// The model list, as OpenAI shapes it; the canary stands where a provider names the owner.
fn models() -> Response {
    respond(
        StatusCode::OK,
        "application/json",
        format!(
            r#"{{"object":"list","data":[{{"id":"mock-model","object":"model","created":1700000000,"owned_by":"{BODY_CANARY}"}}]}}"#
        ),
    )
}

/// `mib` MiB in 64 KiB chunks, produced as they are sent (the mock holds none of it).
pub(super) fn huge_response(mib: u64, stream: bool) -> Response {
    const CHUNK: usize = 64 * 1024;
    let chunks = mib * 16;
    let body = futures_util::stream::unfold(0u64, move |i| async move {
        if i >= chunks {
            return None;
        }
        let piece = if stream {
            let pad = "x".repeat(CHUNK - 64);
            let e = format!("data: {{\"choices\":[],\"pad\":\"{pad}\"}}\n\n");
            e.into_bytes()
        } else if i == 0 {
            let mut v = br#"{"id":"chatcmpl-huge","object":"chat.completion","pad":""#.to_vec();
            v.resize(CHUNK, b'x');
            v
        } else if i + 1 == chunks {
            let mut v = vec![b'x'; CHUNK - 3];
            v.extend_from_slice(b"\"}\n");
            v
        } else {
            vec![b'x'; CHUNK]
        };
        Some((Ok::<_, std::io::Error>(Bytes::from(piece)), i + 1))
    });
    respond(
        StatusCode::OK,
        if stream {
            "text/event-stream"
        } else {
            "application/json"
        },
        axum::body::Body::from_stream(body),
    )
}

fn stream_response(script: &Script, model: &str, include_usage: bool) -> Response {
    let chunks = script.chunks.unwrap_or(3);
    let mut events: Vec<String> = (0..chunks)
        .map(|i| {
            format!(
                "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"sent_ns\":__SENT_NS__,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]}}\n\n"
            )
        })
        .collect();
    events.push(format!(
        "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\n"
    ));
    if include_usage {
        events.push(format!(
            "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"{model}\",\"choices\":[],\"usage\":{{\"prompt_tokens\":5,\"completion_tokens\":{chunks},\"total_tokens\":{}}}}}\n\n",
            5 + chunks
        ));
    }
    events.push("data: [DONE]\n\n".to_owned());
    if let Some(n) = script.error_after {
        // A failure after the stream started: OpenAI sends an error object as a data event.
        events.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        events.push(format!(
            "data: {{\"error\":{{\"message\":\"{BODY_CANARY} The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}}}\n\n"
        ));
    }
    respond(StatusCode::OK, "text/event-stream", paced(events, script))
}

#[cfg(test)]
mod tests;
