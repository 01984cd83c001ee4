//! A mock OpenAI-compatible (and Azure-shaped) provider on a local port, recording every
//! request so tests can assert what reached the "provider". Each request is answered as the
//! script in its API key says ([`MockKey`]): an error status with rate-limit headers, a delay,
//! a spaced, short or broken stream, a huge body, a redirect; otherwise like OpenAI. Used
//! in-process by the end-to-end tests and as the `mock-upstream` binary by the benchmarks.
//!
//! Every error body carries [`BODY_CANARY`], so tests can check it is never echoed by Rotor
//! where it must not be.

mod script;

pub use script::MockKey;
use script::Script;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A marker the mock puts in its bodies.
pub const BODY_CANARY: &str = "PROVIDER-BODY-CANARY";

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The key it carried (Bearer or `api-key`), if any.
    pub key: Option<String>,
    /// The `model` of a JSON body.
    pub model: Option<String>,
    /// The body.
    pub body: Bytes,
    /// When it arrived.
    pub at: std::time::Instant,
}

type Log = Arc<Mutex<Vec<Recorded>>>;

/// A running mock provider.
#[derive(Clone)]
pub struct MockUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Log,
}

impl MockUpstream {
    /// Starts the mock on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts the mock on `addr`.
    pub async fn start_on(addr: &str) -> std::io::Result<Self> {
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(log.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, log })
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The keys of the requests received so far, in order.
    pub fn keys(&self) -> Vec<String> {
        self.requests().into_iter().filter_map(|r| r.key).collect()
    }

    /// Forgets what was received.
    pub fn reset(&self) {
        if let Ok(mut l) = self.log.lock() {
            l.clear();
        }
    }
}

fn key_of(headers: &HeaderMap) -> Option<String> {
    if let Some(k) = headers.get("api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.to_owned());
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    auth.strip_prefix("Bearer ").map(str::to_owned)
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap_or_default()
}

/// An OpenAI error answer (`{"error": {"message", "type", "param", "code"}}`) with the
/// rate-limit headers the script asks for.
fn error_answer(status: StatusCode, script: &Script) -> Response {
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

async fn handle(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = key_of(&headers);
    // Large bodies (memory tests) are recorded but not parsed: a tree of them would dwarf them.
    let json: Option<serde_json::Value> = if body.len() <= 1024 * 1024 {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let model = json
        .as_ref()
        .and_then(|j| j.get("model"))
        .and_then(|m| m.as_str())
        .map(str::to_owned);
    if let Ok(mut l) = log.lock() {
        l.push(Recorded {
            method: method.to_string(),
            uri: uri.to_string(),
            key: key.clone(),
            model: model.clone(),
            body: body.clone(),
            at: std::time::Instant::now(),
        });
    }
    let script = Script::of(&key.unwrap_or_default());
    if let Some(ms) = script.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = script
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .filter(|s| !s.is_success());
    if let Some(status) = status {
        return error_answer(status, &script);
    }
    if script.redirect && uri.path() != "/redirected" {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header("location", "/redirected")
            .body(Body::empty())
            .unwrap_or_default();
    }
    let model = model.unwrap_or_else(|| "mock-model".to_owned());
    let path = uri.path();
    let stream = json
        .as_ref()
        .and_then(|j| j.get("stream"))
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    if let Some(mib) = script.huge_mib {
        return huge_response(mib, stream);
    }
    if path.ends_with("/chat/completions") {
        if stream {
            let include_usage = json
                .as_ref()
                .and_then(|j| j.pointer("/stream_options/include_usage"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            return stream_response(&script, model, include_usage);
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
fn huge_response(mib: u64, stream: bool) -> Response {
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
        Body::from_stream(body),
    )
}

fn stream_response(script: &Script, model: String, include_usage: bool) -> Response {
    let gap = Duration::from_millis(script.gap_ms.unwrap_or(0));
    let chunks = script.chunks.unwrap_or(3);
    let drop_after = script.drop_after;
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
    let stream = futures_util::stream::unfold(
        (events.into_iter().enumerate(), gap, drop_after),
        |(mut it, gap, drop_after)| async move {
            let (i, event) = it.next()?;
            if i > 0 && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            if drop_after.is_some_and(|n| i as u64 >= n) {
                return Some((
                    Err(std::io::Error::other("mock stream dropped")),
                    (it, gap, drop_after),
                ));
            }
            // When the chunk leaves the mock (wall clock), so a reader can measure relay latency.
            let sent_ns = SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let event = event.replace("__SENT_NS__", &sent_ns.to_string());
            Some((
                Ok::<_, std::io::Error>(Bytes::from(event)),
                (it, gap, drop_after),
            ))
        },
    );
    respond(
        StatusCode::OK,
        "text/event-stream",
        Body::from_stream(stream),
    )
}
