//! A mock provider on a local port that speaks the three API families Rotor serves (DESIGN
//! §13): OpenAI (and Azure's URL shape), the Anthropic Messages API and the Gemini API, each
//! as its official SDK expects it (checked by `tests/it/mock_families.rs` with the SDKs
//! themselves). It records every request so tests can assert what reached the "provider".
//! Each request is answered as the script in its API key says ([`MockKey`]): an error status in
//! the family's shape with its rate-limit signals, a delay, a spaced, short, broken or failing
//! stream, a huge body, a redirect; otherwise like the real provider. Used in-process by the
//! end-to-end tests and as the `mock-upstream` binary by the benchmarks.
//!
//! Which family a request speaks is told by its path and headers ([`Family`]): `/v1beta/…` and
//! `/v1/models/{model}:{method}` (or a Gemini key) are Gemini, `/v1/messages…` (and
//! `/v1/models` with Anthropic headers) Anthropic, everything else OpenAI.
//!
//! Every scripted error body carries [`BODY_CANARY`] (OpenAI: in the message; Anthropic: in
//! the `request_id`; Gemini: in a `google.rpc.DebugInfo` detail), so tests can check it is never
//! echoed by Rotor where it must not be. The refusals that follow from the request itself (an
//! OpenAI response id not found, a form without its file) are the provider's, word for word.
//!
//! The mock keeps what the provider keeps: OpenAI's Responses API stores responses per
//! organization, the mock per API key ([`MockUpstream::response_key`]).

mod anthropic;
mod gemini;
mod json;
mod multipart;
mod openai;
mod script;

use multipart::FormError;
pub use multipart::FormPart;
use openai::responses::Store;
use script::Script;
pub use script::{AnthropicLimit, MockKey};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The largest body the mock parses as JSON (larger ones come from the memory tests).
const JSON_LIMIT: usize = 1024 * 1024;

/// A marker the mock puts in its error bodies.
pub const BODY_CANARY: &str = "PROVIDER-BODY-CANARY";

/// The API family a request speaks, as the mock tells it from the path and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenAI and OpenAI-compatible (Azure's URL shape included).
    OpenAi,
    /// The Anthropic Messages API.
    Anthropic,
    /// The Gemini API (Google AI, `generativelanguage`).
    Gemini,
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The path alone.
    pub path: String,
    /// The query string, if any (without the `?`).
    pub query: Option<String>,
    /// The family the mock answered it as.
    pub family: Family,
    /// Every request header.
    pub headers: HeaderMap,
    /// The key it carried (`api-key`, `x-api-key`, `x-goog-api-key`, Bearer or `?key=`).
    pub key: Option<String>,
    /// The model: the `model` of a JSON body or of a multipart form, or the `{model}` of a
    /// Gemini path.
    pub model: Option<String>,
    /// Gemini `batchEmbedContents`: the `model` of each inner request, in order.
    pub inner_models: Vec<String>,
    /// The parts of a `multipart/form-data` body (OpenAI's audio uploads), in order; empty
    /// for any other body or one that is not a well-formed form.
    pub form: Vec<FormPart>,
    /// The body.
    pub body: Bytes,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Recorded {
    /// The value of request header `name`, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first form part called `name` (`"file"`, `"model"`), if the body was a form.
    pub fn form_field(&self, name: &str) -> Option<&FormPart> {
        self.form.iter().find(|p| p.name == name)
    }

    /// The text of form field `name`.
    pub fn form_text(&self, name: &str) -> Option<&str> {
        self.form_field(name).and_then(FormPart::text)
    }
}

type Log = Arc<Mutex<Vec<Recorded>>>;

/// What the request handler shares: the log and what the provider keeps between requests.
#[derive(Clone)]
struct Shared {
    log: Log,
    responses: Store,
    /// Keys the provider answers with a status now, whatever their script (a key revoked at
    /// the provider: 401; an outage: 500).
    forced: Forced,
}

type Forced = Arc<Mutex<HashMap<String, u16>>>;

/// A running mock provider.
#[derive(Clone)]
pub struct MockUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Log,
    responses: Store,
    forced: Forced,
}

impl MockUpstream {
    /// Starts the mock on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts the mock on `addr`.
    pub async fn start_on(addr: &str) -> std::io::Result<Self> {
        let shared = Shared {
            log: Arc::new(Mutex::new(Vec::new())),
            responses: Store::default(),
            forced: Forced::default(),
        };
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            log: shared.log,
            responses: shared.responses,
            forced: shared.forced,
        })
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

    /// Forgets what was received (the stored responses stay: they are the provider's state,
    /// bounded by themselves).
    pub fn reset(&self) {
        if let Ok(mut l) = self.log.lock() {
            l.clear();
        }
    }

    /// From now on every request with `key` is answered `status` (a non-2xx one) with the
    /// family's error body, on every endpoint: 401 for a key revoked at the provider, 500 for
    /// an outage, 429 for a limit hit.
    pub fn force(&self, key: &str, status: u16) {
        if let Ok(mut f) = self.forced.lock() {
            f.insert(key.to_owned(), status);
        }
    }

    /// From now on the provider refuses `key` with 401 (it was revoked).
    pub fn refuse(&self, key: &str) {
        self.force(key, 401);
    }

    /// The provider answers `key` as its script says again.
    pub fn accept(&self, key: &str) {
        if let Ok(mut f) = self.forced.lock() {
            f.remove(key);
        }
    }

    /// The key that created the stored OpenAI response `id` (`resp_…`), while it is stored:
    /// only requests with that key can see it, as only its organization can at OpenAI.
    pub fn response_key(&self, id: &str) -> Option<String> {
        self.responses.key_of(id)
    }
}

/// A request as the family modules see it.
pub(crate) struct Incoming {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body as JSON, if it is (and is at most 1 MiB).
    pub json: Option<serde_json::Value>,
    /// The body as a `multipart/form-data` form (OpenAI requests only).
    pub form: Result<Vec<FormPart>, FormError>,
    pub key: Option<String>,
    pub model: Option<String>,
    pub script: Script,
}

impl Incoming {
    /// The text of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `"stream": true` in the body.
    pub fn stream(&self) -> bool {
        self.json
            .as_ref()
            .and_then(|j| j.get("stream"))
            .and_then(|s| s.as_bool())
            .unwrap_or(false)
    }

    /// The (percent-decoded) value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(self.query.as_deref(), name)
    }

    /// The string at JSON pointer `pointer` of the body (`"/model"`).
    pub fn json_str(&self, pointer: &str) -> Option<&str> {
        self.json.as_ref()?.pointer(pointer)?.as_str()
    }

    /// The text of form field `name`.
    pub fn form_text(&self, name: &str) -> Option<&str> {
        let parts = self.form.as_ref().ok()?;
        parts.iter().find(|p| p.name == name)?.text()
    }
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

/// `%XX` escapes and `+` decoded (a key in `?key=` may have been escaped by its client).
fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn key_of(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    for name in ["api-key", "x-api-key", "x-goog-api-key"] {
        if let Some(k) = headers.get(name).and_then(|v| v.to_str().ok()) {
            return Some(k.to_owned());
        }
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.strip_prefix("Bearer "));
    match bearer {
        Some(k) => Some(k.to_owned()),
        None => query_param(query, "key"),
    }
}

fn family_of(path: &str, headers: &HeaderMap, query: Option<&str>) -> Family {
    let models = path == "/v1/models" || path.starts_with("/v1/models/");
    let gemini_key = headers.contains_key("x-goog-api-key") || query_param(query, "key").is_some();
    let anthropic_headers =
        headers.contains_key("x-api-key") || headers.contains_key("anthropic-version");
    if path == "/v1beta"
        || path.starts_with("/v1beta/")
        || (models && (path.contains(':') || gemini_key))
    {
        Family::Gemini
    } else if path == "/v1/messages"
        || path.starts_with("/v1/messages/")
        || (models && anthropic_headers)
    {
        Family::Anthropic
    } else {
        Family::OpenAi
    }
}

pub(crate) fn respond(status: StatusCode, content_type: &str, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap_or_default()
}

/// Seconds since the epoch (`created`, `created_at`).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A number unique in this process, for ids.
pub(crate) fn next_serial() -> u64 {
    static SERIAL: AtomicU64 = AtomicU64::new(1);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// `len` characters of base-62 "randomness" derived from `seed` (ids that look like a
/// provider's and differ per request, reproducibly).
pub(crate) fn id_chars(seed: u64, len: usize) -> String {
    chars_of(
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        seed,
        len,
    )
}

/// `len` lowercase hex digits derived from `seed` (OpenAI's `resp_…` and `msg_…` ids).
pub(crate) fn hex_chars(seed: u64, len: usize) -> String {
    chars_of(b"0123456789abcdef", seed, len)
}

fn chars_of(alphabet: &[u8], seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            char::from(alphabet[(r >> 58) as usize % alphabet.len()])
        })
        .collect()
}

/// `events` as a body, `gap_ms` apart, broken after `drop_after` of them as the script says
/// (a moment after the last one, so that it reaches the client before the connection breaks).
/// An event's `__SENT_NS__` becomes the wall-clock time it leaves the mock (ns), so a reader
/// can measure relay latency.
pub(crate) fn paced(events: Vec<String>, script: &Script) -> Body {
    let gap = Duration::from_millis(script.gap_ms.unwrap_or(0));
    let drop_after = script.drop_after;
    let stream = futures_util::stream::unfold(
        (events.into_iter().enumerate(), gap, drop_after),
        |(mut it, gap, drop_after)| async move {
            let (i, event) = it.next()?;
            if i > 0 && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            if drop_after.is_some_and(|n| i as u64 >= n) {
                // The server flushes what it was given when the body is pending, not when it
                // fails: without the pause the events before the break may never leave.
                tokio::time::sleep(Duration::from_millis(25)).await;
                return Some((
                    Err(std::io::Error::other("mock stream dropped")),
                    (it, gap, drop_after),
                ));
            }
            let event = if event.contains("__SENT_NS__") {
                let sent_ns = SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                event.replace("__SENT_NS__", &sent_ns.to_string())
            } else {
                event
            };
            Some((
                Ok::<_, std::io::Error>(Bytes::from(event)),
                (it, gap, drop_after),
            ))
        },
    );
    Body::from_stream(stream)
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().map(str::to_owned);
    let key = key_of(&headers, query.as_deref());
    let family = family_of(&path, &headers, query.as_deref());
    // Large bodies (memory tests) are recorded but not parsed: a tree of them would dwarf them.
    let json: Option<serde_json::Value> = if body.len() <= JSON_LIMIT {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let form = match family {
        Family::OpenAi => multipart::parse(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            &body,
        ),
        _ => Err(FormError::NotMultipart),
    };
    let form_model = form
        .as_ref()
        .ok()
        .and_then(|parts| parts.iter().find(|p| p.name == "model"))
        .and_then(FormPart::text);
    let model = match family {
        Family::Gemini => gemini::path_model(&path),
        _ => json
            .as_ref()
            .and_then(|j| j.get("model"))
            .and_then(|m| m.as_str())
            .or(form_model)
            .map(str::to_owned),
    };
    let inner_models = match family {
        Family::Gemini => gemini::inner_models(json.as_ref()),
        _ => Vec::new(),
    };
    if let Ok(mut l) = shared.log.lock() {
        l.push(Recorded {
            method: method.to_string(),
            uri: uri.to_string(),
            path: path.clone(),
            query: query.clone(),
            family,
            headers: headers.clone(),
            key: key.clone(),
            model: model.clone(),
            inner_models,
            form: form.clone().unwrap_or_default(),
            body: body.clone(),
            at: std::time::Instant::now(),
        });
    }
    let script = Script::of(key.as_deref().unwrap_or_default());
    if let Some(ms) = script.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let req = Incoming {
        method,
        path,
        query,
        headers,
        body,
        json,
        form,
        key,
        model,
        script,
    };
    // What the real provider refuses before it looks at the key's account (a missing key or
    // version header) is refused whatever the script.
    let refused = match family {
        Family::OpenAi => None,
        Family::Anthropic => anthropic::refusal(&req),
        Family::Gemini => gemini::refusal(&req),
    };
    if let Some(r) = refused {
        return r;
    }
    let forced = req
        .key
        .as_ref()
        .and_then(|k| shared.forced.lock().ok().and_then(|f| f.get(k).copied()));
    let mut req = req;
    if let Some(status) = forced {
        req.script = Script {
            status: Some(status),
            ..Script::default()
        };
    }
    let status = req
        .script
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .filter(|s| !s.is_success());
    if let Some(status) = status {
        return match family {
            Family::OpenAi => openai::error_answer(status, &req.script),
            Family::Anthropic => anthropic::error_answer(status, &req),
            Family::Gemini => gemini::error_answer(status, &req),
        };
    }
    if req.script.redirect && req.path != "/redirected" {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header("location", "/redirected")
            .body(Body::empty())
            .unwrap_or_default();
    }
    if let Some(mib) = req.script.huge_mib {
        return openai::huge_response(mib, req.stream());
    }
    match family {
        Family::OpenAi => {
            let mut r = openai::answer(&req, &shared.responses);
            if req.script.spent_requests {
                openai::spend_requests(&mut r, &req.script);
            }
            r
        }
        Family::Anthropic => anthropic::answer(&req),
        Family::Gemini => gemini::answer(&req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (axum::http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn the_family_is_told_by_path_and_headers() {
        let none = HeaderMap::new();
        let anthropic = headers(&[("x-api-key", "k"), ("anthropic-version", "2023-06-01")]);
        let goog = headers(&[("x-goog-api-key", "k")]);
        for (path, h, query, family) in [
            ("/v1/chat/completions", &none, None, Family::OpenAi),
            ("/v1/models", &none, None, Family::OpenAi),
            (
                "/openai/deployments/d/chat/completions",
                &none,
                None,
                Family::OpenAi,
            ),
            ("/v1/messages", &none, None, Family::Anthropic),
            (
                "/v1/messages/count_tokens",
                &anthropic,
                None,
                Family::Anthropic,
            ),
            ("/v1/models", &anthropic, None, Family::Anthropic),
            (
                "/v1beta/models/gemini-2.0-flash:generateContent",
                &none,
                None,
                Family::Gemini,
            ),
            (
                "/v1/models/gemini-2.0-flash:countTokens",
                &none,
                None,
                Family::Gemini,
            ),
            ("/v1/models", &goog, None, Family::Gemini),
            ("/v1/models", &none, Some("key=abc"), Family::Gemini),
        ] {
            assert_eq!(family_of(path, h, query), family, "{path} {h:?} {query:?}");
        }
    }

    #[test]
    fn keys_come_from_every_header_and_the_query() {
        assert_eq!(
            key_of(&headers(&[("x-api-key", "a")]), None).as_deref(),
            Some("a")
        );
        assert_eq!(
            key_of(&headers(&[("x-goog-api-key", "b")]), None).as_deref(),
            Some("b")
        );
        assert_eq!(
            key_of(&headers(&[("api-key", "c")]), None).as_deref(),
            Some("c")
        );
        assert_eq!(
            key_of(&headers(&[("authorization", "Bearer d")]), None).as_deref(),
            Some("d")
        );
        assert_eq!(
            key_of(&HeaderMap::new(), Some("alt=sse&key=sk%2Dx_s429")).as_deref(),
            Some("sk-x_s429")
        );
        assert_eq!(key_of(&HeaderMap::new(), Some("alt=sse")), None);
    }
}
