//! A mock OpenAI-compatible (and Azure-shaped) provider on a local port. Its behaviour is
//! scripted by the API key a request carries, and it records every request it receives so
//! tests can assert what reached the "provider".
//!
//! Keys: containing `unauthorized` → 401, `forbidden` → 403, `ratelimited` → 429 with
//! `Retry-After: 7`, `broken` → 500, `redirect` → 302 to `/redirected`; anything else → 200.
//! Every error body carries [`BODY_CANARY`] so tests can check it is never echoed.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

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
}

/// A running mock provider.
#[derive(Clone)]
pub struct MockUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl MockUpstream {
    /// Starts the mock on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(handle).with_state(log.clone());
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
}

fn key_of(headers: &HeaderMap) -> Option<String> {
    if let Some(k) = headers.get("api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.to_owned());
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    auth.strip_prefix("Bearer ").map(str::to_owned)
}

fn respond(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

async fn handle(
    State(log): State<Arc<Mutex<Vec<Recorded>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let key = key_of(&headers);
    if let Ok(mut l) = log.lock() {
        l.push(Recorded {
            method: method.to_string(),
            uri: uri.to_string(),
            key: key.clone(),
        });
    }
    let key = key.unwrap_or_default();
    let error = |status: StatusCode, kind: &str| {
        respond(
            status,
            format!(r#"{{"error": {{"message": "{BODY_CANARY} {kind}", "type": "{kind}"}}}}"#),
        )
    };
    if key.contains("unauthorized") {
        return error(StatusCode::UNAUTHORIZED, "invalid_api_key");
    }
    if key.contains("forbidden") {
        return error(StatusCode::FORBIDDEN, "forbidden");
    }
    if key.contains("ratelimited") {
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded");
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("7"));
        return r;
    }
    if key.contains("broken") {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    }
    if key.contains("redirect") && uri.path() != "/redirected" {
        return Response::builder()
            .status(StatusCode::FOUND)
            .header("location", "/redirected")
            .body(Body::empty())
            .unwrap_or_default();
    }
    respond(
        StatusCode::OK,
        format!(
            r#"{{"object": "list", "data": [{{"id": "mock-model", "object": "model"}}], "note": "{BODY_CANARY}"}}"#
        ),
    )
}
