//! The one layer every request passes: its `x-request-id` (the client's, or a new one made
//! from a per-process prefix and a counter), a `request` span and an access line when the log
//! filter wants them, and a 500 instead of a dropped connection when a handler panics. One
//! layer instead of tower-http's four, because on the gateway each of those cost an
//! allocation, a clock read or a body wrapper per request (bench/README.md).

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, Response};
use axum::response::IntoResponse;
use std::convert::Infallible;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

/// The header a request id travels in, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Makes `<16 hex digits of this process>-<counter>` ids: unique without a system call per
/// request (a v4 UUID reads the OS's random source each time).
struct Ids {
    prefix: [u8; 16],
    next: AtomicU64,
}

impl Ids {
    fn new() -> Self {
        let mut prefix = [0u8; 16];
        let hex = format!("{:016x}", rand::random::<u64>());
        prefix.copy_from_slice(hex.as_bytes());
        Self {
            prefix,
            next: AtomicU64::new(1),
        }
    }

    fn make(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 16 + 1 + 20];
        buf[..16].copy_from_slice(&self.prefix);
        buf[16] = b'-';
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        buf[17..17 + digits.len()].copy_from_slice(digits);
        // Hex digits, a dash and decimal digits are always a valid header value.
        HeaderValue::from_bytes(&buf[..17 + digits.len()])
            .unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

/// What the edge keeps between requests: the id maker.
pub struct Edge {
    ids: Ids,
}

impl Default for Edge {
    fn default() -> Self {
        Self { ids: Ids::new() }
    }
}

impl Edge {
    /// Runs `inner` on `req` inside the request's span, with its id and panics caught.
    pub fn handle<F>(
        &self,
        req: Request<Body>,
        inner: impl FnOnce(Request<Body>) -> F,
    ) -> EdgeFuture<F> {
        let id = match req.headers().get(REQUEST_ID) {
            Some(id) => id.clone(),
            None => self.ids.make(),
        };
        // Disabled by the filter (RUST_LOG=warn), the span is a no-op and its fields are
        // never formatted.
        let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path(),
            request_id = %String::from_utf8_lossy(id.as_bytes()));
        let started =
            tracing::enabled!(target: "rotor_api::access", tracing::Level::INFO).then(Instant::now);
        let inner = {
            let _entered = span.enter();
            catch_unwind(AssertUnwindSafe(|| inner(req))).ok()
        };
        EdgeFuture {
            inner,
            id: Some(id),
            span,
            started,
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Edge`]'s future: the inner one, polled inside the span and with panics caught.
    pub struct EdgeFuture<F> {
        // `None` when the handler panicked (as it was called, or in a poll).
        #[pin]
        inner: Option<F>,
        id: Option<HeaderValue>,
        span: tracing::Span,
        started: Option<Instant>,
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        let polled = match this.inner.as_mut().as_pin_mut() {
            Some(inner) => catch_unwind(AssertUnwindSafe(|| inner.poll(cx))),
            None => Err(Box::new(()) as Box<dyn std::any::Any + Send>),
        };
        let mut response = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(Ok(response))) => response,
            Ok(Poll::Ready(Err(never))) => match never {},
            Err(_) => {
                // A future that panicked is not polled again.
                this.inner.set(None);
                tracing::error!("request handler panicked");
                ApiError::internal().into_response()
            }
        };
        if let Some(id) = this.id.take() {
            response.headers_mut().entry(REQUEST_ID).or_insert(id);
        }
        if let Some(started) = this.started {
            tracing::info!(target: "rotor_api::access", status = response.status().as_u16(),
                latency_ms = started.elapsed().as_secs_f64() * 1000.0, "finished processing request");
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn router() -> Router {
        Router::new().route("/ok", get(|| async { "ok" })).route(
            "/panics",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        )
    }

    async fn call(edge: &Edge, req: Request<Body>) -> Response<Body> {
        edge.handle(req, |req| router().oneshot(req)).await.unwrap()
    }

    fn request(path: &str, id: Option<&str>) -> Request<Body> {
        let b = Request::get(path);
        let b = match id {
            Some(id) => b.header("x-request-id", id),
            None => b,
        };
        b.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn ids_are_made_distinct_or_honoured() {
        let edge = Edge::default();
        let a = call(&edge, request("/ok", None)).await;
        let b = call(&edge, request("/ok", None)).await;
        let (a, b) = (&a.headers()["x-request-id"], &b.headers()["x-request-id"]);
        assert_ne!(a, b);
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert_eq!(
            a.split('-').next(),
            b.split('-').next(),
            "one process prefix"
        );
        assert!(a.split('-').nth(1).unwrap().parse::<u64>().is_ok(), "{a}");
        let honoured = call(&edge, request("/ok", Some("abc-123"))).await;
        assert_eq!(honoured.headers()["x-request-id"], "abc-123");
        assert_ne!(
            Edge::default().ids.prefix,
            edge.ids.prefix,
            "another process (or app) has another prefix"
        );
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_with_its_request_id() {
        let edge = Edge::default();
        let r = call(&edge, request("/panics", Some("boom-1"))).await;
        assert_eq!(r.status(), 500);
        assert_eq!(r.headers()["x-request-id"], "boom-1");
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal_error", "{body}");
        // A panic as the handler is called (before its future exists) is caught too.
        let r = edge
            .handle(
                request("/ok", None),
                |_| -> std::future::Ready<Result<Response<Body>, Infallible>> {
                    panic!("call bug")
                },
            )
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
        assert!(!r.headers()["x-request-id"].is_empty());
        // The edge still serves after the panics.
        assert_eq!(call(&edge, request("/ok", None)).await.status(), 200);
    }
}
