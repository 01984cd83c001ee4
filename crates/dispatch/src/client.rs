//! The one shared HTTP client for upstream calls: connection reuse, no redirects, no proxies
//! from the environment, and a DNS resolver that enforces the address policy on every
//! resolved address, so the check happens at connect time (no DNS-rebinding gap).

use crate::policy::{AddressPolicy, Blocked};
use crate::signals;
use crate::target::{Family, Target};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Connect timeout for every upstream call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What goes to a provider: a body known in full (its length goes in `Content-Length`).
pub type UpstreamRequest = http::Request<Full<Bytes>>;

/// A provider's answer, its body still to read.
pub type UpstreamResponse = http::Response<Incoming>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("upstream address refused: {0}")]
struct BlockedError(Blocked);

/// Resolves a provider's host name and keeps only the addresses the policy allows.
#[derive(Clone)]
struct PolicyResolver {
    policy: Arc<AddressPolicy>,
}

impl tower_service::Service<Name> for PolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            policy
                .check_host(&host)
                .map_err(|b| Box::new(BlockedError(b)) as BoxError)?;
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refusal = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| match policy.check(Some(&host), a.ip()) {
                    Ok(()) => true,
                    Err(b) => {
                        first_refusal.get_or_insert(b);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                if let Some(b) = first_refusal {
                    return Err(Box::new(BlockedError(b)) as BoxError);
                }
            }
            Ok(allowed.into_iter())
        })
    }
}

type Connector = HttpsConnector<HttpConnector<PolicyResolver>>;

/// The upstream client and the policy it enforces.
#[derive(Clone)]
pub struct Upstream {
    client: Client<Connector, Full<Bytes>>,
    policy: Arc<AddressPolicy>,
}

/// How a call to a provider ended, as far as a caller may be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// Refused by the address policy (nothing was sent).
    BlockedAddress,
    /// No connection could be made.
    Unreachable,
    /// No answer in time.
    Timeout,
}

/// The outcome of validating a credential against its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// 2xx.
    Valid,
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 429.
    RateLimited,
    /// Could not connect.
    Unreachable,
    /// No answer within the timeout.
    Timeout,
    /// The address policy refused the host.
    BlockedAddress,
    /// Any other answer (including a redirect, which is never followed).
    UpstreamError,
}

impl Validation {
    /// The `error` value of the validate endpoint (`None` when valid).
    pub fn code(self) -> Option<&'static str> {
        match self {
            Validation::Valid => None,
            Validation::Unauthorized => Some("unauthorized"),
            Validation::Forbidden => Some("forbidden"),
            Validation::RateLimited => Some("rate_limited"),
            Validation::Unreachable => Some("unreachable"),
            Validation::Timeout => Some("timeout"),
            Validation::BlockedAddress => Some("blocked_address"),
            Validation::UpstreamError => Some("upstream_error"),
        }
    }
}

impl Upstream {
    /// Builds the shared client: HTTP/1.1, pooled keep-alive connections (idle ones closed
    /// after 90 s), `TCP_NODELAY`, TLS with the web PKI roots for `https` providers.
    pub fn new(policy: AddressPolicy) -> Result<Self, rustls::Error> {
        let policy = Arc::new(policy);
        let mut http = HttpConnector::new_with_resolver(PolicyResolver {
            policy: policy.clone(),
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(Self { client, policy })
    }

    /// Sends `request` (whose URL passed [`Upstream::check`]; the resolver polices host names)
    /// and classifies a failure without exposing its text.
    pub async fn send(&self, request: UpstreamRequest) -> Result<UpstreamResponse, CallError> {
        self.client
            .request(request)
            .await
            .map_err(|e| Self::classify(&e))
    }

    /// Checks the parts of a URL the resolver never sees: IP-literal hosts and denied names.
    pub fn check_url(&self, url: &str) -> Result<(), Blocked> {
        let parsed = url::Url::parse(url).map_err(|_| Blocked::Reserved)?;
        self.check(&parsed)
    }

    /// [`Upstream::check_url`] for a URL parsed already.
    pub fn check(&self, url: &url::Url) -> Result<(), Blocked> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.policy.check(None, ip.into()),
            Some(url::Host::Ipv6(ip)) => self.policy.check(None, ip.into()),
            Some(url::Host::Domain(d)) => self.policy.check_host(d),
            None => Err(Blocked::Reserved),
        }
    }

    /// Classifies a transport error: the policy's refusal, a connect timeout, or no answer.
    fn classify(err: &hyper_util::client::legacy::Error) -> CallError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = source {
            if e.downcast_ref::<BlockedError>().is_some() {
                return CallError::BlockedAddress;
            }
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            {
                return CallError::Timeout;
            }
            source = e.source();
        }
        CallError::Unreachable
    }

    /// Calls the provider's model list with the credential and reports what happened; the
    /// provider's body is never read.
    pub async fn validate(&self, target: &Target, timeout: Duration) -> Validation {
        let url = target.models_url();
        if self.check_url(&url).is_err() {
            return Validation::BlockedAddress;
        }
        let Ok(mut request) = http::Request::get(url.as_str()).body(Full::default()) else {
            return Validation::UpstreamError;
        };
        if target.authorize(request.headers_mut()).is_err() {
            return Validation::Unauthorized;
        }
        let Ok(sent) = tokio::time::timeout(timeout, self.send(request)).await else {
            return Validation::Timeout;
        };
        match sent {
            Ok(resp) => match resp.status().as_u16() {
                200..=299 => Validation::Valid,
                // Gemini answers an invalid key 400 with `API_KEY_INVALID` in the body.
                400 if target.kind.family() == Family::Gemini => {
                    let read = read_at_most(resp.into_body(), 64 * 1024);
                    let body = tokio::time::timeout(timeout, read)
                        .await
                        .unwrap_or_default();
                    if signals::rejects_key(Family::Gemini, 400, &body) {
                        Validation::Unauthorized
                    } else {
                        Validation::UpstreamError
                    }
                }
                401 => Validation::Unauthorized,
                403 => Validation::Forbidden,
                429 => Validation::RateLimited,
                _ => Validation::UpstreamError,
            },
            Err(e) => match e {
                CallError::BlockedAddress => Validation::BlockedAddress,
                CallError::Timeout => Validation::Timeout,
                CallError::Unreachable => Validation::Unreachable,
            },
        }
    }
}

/// The next data chunk of `body` (trailers are skipped), `None` at its end.
pub async fn next_chunk(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        match body.frame().await? {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// Up to `limit` bytes of an answer's body (what is left is dropped unread).
pub async fn read_at_most(mut body: Incoming, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = next_chunk(&mut body).await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}
