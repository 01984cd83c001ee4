//! The one shared HTTP client for upstream calls: connection reuse, no redirects, no proxies
//! from the environment, and a DNS resolver that enforces the address policy on every
//! resolved address, so the check happens at connect time (no DNS-rebinding gap).

use crate::policy::{AddressPolicy, Blocked};
use crate::signals;
use crate::target::{Family, Target};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Connect timeout for every upstream call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("upstream address refused: {0}")]
struct BlockedError(Blocked);

struct PolicyResolver {
    policy: Arc<AddressPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            policy.check_host(&host).map_err(|b| {
                Box::new(BlockedError(b)) as Box<dyn std::error::Error + Send + Sync>
            })?;
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
                    return Err(
                        Box::new(BlockedError(b)) as Box<dyn std::error::Error + Send + Sync>
                    );
                }
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The upstream client and the policy it enforces.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
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
    /// Builds the shared client.
    pub fn new(policy: AddressPolicy) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .dns_resolver(Arc::new(PolicyResolver {
                policy: policy.clone(),
            }))
            .build()?;
        Ok(Self { client, policy })
    }

    /// The shared client (the resolver polices host names).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
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

    /// Classifies a transport error without exposing its text.
    pub fn classify(err: &reqwest::Error) -> CallError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = source {
            if e.downcast_ref::<BlockedError>().is_some() {
                return CallError::BlockedAddress;
            }
            source = e.source();
        }
        if err.is_timeout() {
            CallError::Timeout
        } else {
            CallError::Unreachable
        }
    }

    /// Calls the provider's model list with the credential and reports what happened; the
    /// provider's body is never read.
    pub async fn validate(&self, target: &Target, timeout: Duration) -> Validation {
        let url = target.models_url();
        if self.check_url(&url).is_err() {
            return Validation::BlockedAddress;
        }
        let req = target.authorize(self.client.get(&url)).timeout(timeout);
        match req.send().await {
            Ok(resp) => match resp.status().as_u16() {
                200..=299 => Validation::Valid,
                // Gemini answers an invalid key 400 with `API_KEY_INVALID` in the body.
                400 if target.kind.family() == Family::Gemini => {
                    let body = read_at_most(resp, 64 * 1024).await;
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
            Err(e) => match Self::classify(&e) {
                CallError::BlockedAddress => Validation::BlockedAddress,
                CallError::Timeout => Validation::Timeout,
                CallError::Unreachable => Validation::Unreachable,
            },
        }
    }
}

/// Up to `limit` bytes of an answer's body (what is left is dropped unread).
async fn read_at_most(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}
