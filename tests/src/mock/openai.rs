//! The OpenAI family as the mock speaks it: chat completions (JSON and SSE), embeddings, the
//! model list, OpenAI's error shape with its rate-limit headers, and the huge answers of the
//! memory tests. Azure's URL shape (`/openai/deployments/{d}/chat/completions`) is answered
//! the same, by the path's ending.

use super::{paced, respond, Incoming, Script, BODY_CANARY};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// An OpenAI error answer (`{"error": {"message", "type", "param", "code"}}`) with the
/// rate-limit headers the script asks for.
pub(super) fn error_answer(status: StatusCode, script: &Script) -> Response {
    let kind = if status == StatusCode::TOO_MANY_REQUESTS {
        "rate_limit_exceeded"
    } else {
        "mock_error"
    };
    let mut r = respond(
        status,
        "application/json",
        format!(
            r#"{{"error": {{"message": "{BODY_CANARY} {kind}", "type": "{kind}", "param": null, "code": "{kind}"}}}}"#
        ),
    );
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

/// The answer to a request the script lets through.
pub(super) fn answer(req: &Incoming) -> Response {
    let model = req.model.as_deref().unwrap_or("mock-model");
    let path = req.path.as_str();
    if path.ends_with("/chat/completions") {
        if req.stream() {
            let include_usage = req
                .json
                .as_ref()
                .and_then(|j| j.pointer("/stream_options/include_usage"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            return stream_response(&req.script, model, include_usage);
        }
        return respond(
            StatusCode::OK,
            "application/json",
            format!(
                r#"{{"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":"Hello from the mock."}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}}}"#
            ),
        );
    }
    if path.ends_with("/embeddings") {
        return respond(
            StatusCode::OK,
            "application/json",
            format!(
                r#"{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}}],"model":"{model}","usage":{{"prompt_tokens":3,"total_tokens":3}}}}"#
            ),
        );
    }
    // The model list, as OpenAI shapes it; the canary stands where a provider names the owner.
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
