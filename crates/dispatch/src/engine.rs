//! The failover loop (DESIGN §5): pick a credential, call the provider, and on a cooldown
//! trigger — before the first byte reaches the client — cool that credential and try the next,
//! at most `max_attempts` distinct credentials. Streams are relayed chunk by chunk; a stream
//! that breaks after it started ends with an error event and cools its credential.

use crate::client::{CallError, Upstream};
use crate::clock::Clock;
use crate::cooldown::{self, Reason, TRANSIENT};
use crate::series::{AnswerClass, Registry, Series};
use crate::state::{Candidate, Cooldown, Pick, PoolKey, StateBackend};
use crate::target::{ProviderKind, Target};
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use reqwest::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Largest error body kept from a failed attempt (to relay if it is the last).
const MAX_ERROR_BODY: usize = 256 * 1024;

/// Timeouts of DESIGN §5.9.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// First byte per attempt.
    pub upstream_timeout: Duration,
    /// The whole request across attempts (until the answer starts).
    pub request_deadline: Duration,
    /// Longest silence between two stream chunks.
    pub stream_idle_timeout: Duration,
    /// Largest upstream answer held in memory; streams are cut there (see SECURITY.md).
    pub max_body: usize,
}

/// One credential that can serve a route.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    /// The credential.
    pub credential_id: Uuid,
    /// The entry's weight.
    pub weight: u32,
    /// Where and how to call it.
    pub target: Arc<Target>,
    /// Its metric handles.
    pub metrics: Arc<EntryMetrics>,
}

/// A model resolved for dispatch: its pool with decrypted credentials.
#[derive(Debug, Clone)]
pub struct Route {
    /// Workspace and model (the cooldown scope).
    pub pool: PoolKey,
    /// The name clients use.
    pub model: String,
    /// The name sent upstream.
    pub upstream_model: String,
    /// Enabled entries whose credential is readable, Default Config resolved.
    pub entries: Vec<RouteEntry>,
    /// The model's default credential, when readable.
    pub default: Option<RouteEntry>,
    /// The pool is switched on and has two distinct enabled credentials (the feature is
    /// checked per request, so an expiring license is noticed at once).
    pub pool_ready: bool,
    /// Seconds of a rate-limit cooldown.
    pub cooldown_seconds: u32,
    /// Most distinct credentials per request.
    pub max_attempts: u32,
    /// Identifies the pool's composition (a change restarts the rotation).
    pub signature: u64,
    /// Handles for answers no credential gave (credential_id empty).
    pub metrics: Arc<EntryMetrics>,
}

/// Which OpenAI endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/chat/completions`.
    ChatCompletions,
    /// `/embeddings`.
    Embeddings,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat/completions",
            Endpoint::Embeddings => "embeddings",
        }
    }
}

/// A request to dispatch.
pub struct Call<'a> {
    /// The resolved route.
    pub route: &'a Route,
    /// Whether load balancing is effective for this request.
    pub balanced: bool,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The body to send (model already rewritten).
    pub body: Bytes,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// When Rotor received the request.
    pub started: Instant,
}

/// The relayed body.
pub enum RelayBody {
    /// A complete answer.
    Full(Bytes),
    /// Server-sent events, chunk by chunk.
    Stream(BoxStream<'static, Result<Bytes, std::io::Error>>),
}

/// An upstream answer to relay.
pub struct Relay {
    /// Its status.
    pub status: u16,
    /// Its content type.
    pub content_type: Option<HeaderValue>,
    /// Its `Retry-After`, when it had one.
    pub retry_after: Option<HeaderValue>,
    /// Its body.
    pub body: RelayBody,
    /// The credential whose answer this is.
    pub credential_id: Uuid,
    /// That credential's metric handles.
    pub metrics: Arc<EntryMetrics>,
}

/// Why no upstream answer can be relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Every credential is cooling down; retry after this many seconds.
    AllCooling {
        /// Seconds until the first credential is back (rounded up).
        retry_after_s: u64,
    },
    /// The provider refused the credential (401/403): the caller's key is fine.
    CredentialRejected {
        /// The refused credential.
        credential_id: Uuid,
    },
    /// No first byte in time.
    Timeout,
    /// No connection could be made.
    Unavailable,
    /// The address policy refused the provider's address.
    Blocked,
    /// No credential of the model can be decrypted.
    Unreadable,
    /// The provider's answer exceeded the configured maximum size.
    TooLarge,
}

/// What dispatch produced, with how many upstream calls it made and how long they took.
pub struct Outcome {
    /// The answer.
    pub result: Result<Relay, Failure>,
    /// Upstream calls made.
    pub attempts: u32,
    /// Time spent waiting for providers (for the overhead header).
    pub upstream_time: Duration,
}

/// The dispatcher: shared client, state backend, clock and timeouts.
pub struct Engine<S> {
    upstream: Upstream,
    state: Arc<S>,
    clock: Arc<dyn Clock>,
    settings: Settings,
}

/// The series one credential of one route counts into, taken from the server's
/// [`Registry`] when the route is resolved (so the hot path only adds to atomics, and a route
/// resolved again counts on where the last one stopped).
pub struct EntryMetrics {
    series: Arc<Series>,
    /// The model's series without a credential (requests no credential answered, overhead).
    route: Arc<Series>,
}

impl std::fmt::Debug for EntryMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EntryMetrics")
            .field(self.series.key())
            .finish()
    }
}

impl EntryMetrics {
    /// The series of the workspace, model and credential (`None`: the route's own).
    pub fn new(
        registry: &Registry,
        workspace: Uuid,
        model: &str,
        credential: Option<Uuid>,
    ) -> Self {
        let route = registry.series(workspace, model, None);
        let series = match credential {
            Some(_) => registry.series(workspace, model, credential),
            None => route.clone(),
        };
        Self { series, route }
    }

    /// Counts a client request answered with `outcome`.
    pub fn request(&self, outcome: AnswerClass) {
        self.series.request(outcome);
    }

    /// Records the time Rotor itself spent on a request (per model).
    pub fn overhead(&self, seconds: f64) {
        self.route.overhead(seconds);
    }

    fn attempt(&self, outcome: AnswerClass) {
        self.series.attempt(outcome);
    }

    fn latency(&self, waited: Duration) {
        self.series.latency(waited.as_secs_f64());
    }

    fn cooldown(&self, reason: Reason) {
        self.series.cooldown(reason);
    }

    fn tokens(&self, prompt: u64, completion: u64) {
        self.series.tokens(prompt, completion);
    }
}

impl<S: StateBackend> Engine<S> {
    /// A dispatcher.
    pub fn new(
        upstream: Upstream,
        state: Arc<S>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        Self {
            upstream,
            state,
            clock,
            settings,
        }
    }

    /// The state backend (cooldown status, clearing).
    pub fn state(&self) -> &Arc<S> {
        &self.state
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn url(target: &Target, endpoint: Endpoint, upstream_model: &str) -> String {
        match target.kind {
            ProviderKind::AzureOpenAi => format!(
                "{}/openai/deployments/{}/{}?api-version={}",
                target.base_url,
                target.deployment.as_deref().unwrap_or(upstream_model),
                endpoint.path(),
                target.api_version.as_deref().unwrap_or("2024-10-21"),
            ),
            _ => format!("{}/{}", target.base_url, endpoint.path()),
        }
    }

    async fn cool(
        &self,
        call: &Call<'_>,
        entry: &RouteEntry,
        duration: Duration,
        reason: Reason,
        status: Option<u16>,
    ) {
        if !call.balanced {
            return;
        }
        let credential = entry.credential_id;
        let now = self.clock.now_ms();
        let until_ms = now + u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 2);
        self.state
            .cool(
                call.route.pool,
                credential,
                Cooldown {
                    until_ms,
                    reason,
                    status,
                    at_ms: now,
                },
            )
            .await;
        entry.metrics.cooldown(reason);
        tracing::info!(
            workspace_id = %call.route.pool.workspace, model = %call.route.model, credential_id = %credential,
            reason = reason.as_str(), seconds = duration.as_secs(), "credential cooling down"
        );
    }

    /// Sends the request, failing over as DESIGN §5 says.
    pub async fn dispatch(&self, call: Call<'_>) -> Outcome {
        let route = call.route;
        let candidates: Vec<&RouteEntry> = if call.balanced {
            route.entries.iter().collect()
        } else {
            route.default.iter().collect()
        };
        if candidates.is_empty() {
            return Outcome {
                result: Err(Failure::Unreadable),
                attempts: 0,
                upstream_time: Duration::ZERO,
            };
        }
        let weights: Vec<Candidate> = candidates
            .iter()
            .map(|e| Candidate {
                credential: e.credential_id,
                weight: e.weight,
            })
            .collect();
        let max_attempts = if call.balanced {
            route.max_attempts.max(1)
        } else {
            1
        };
        let deadline = call.started + self.settings.request_deadline;
        let mut tried: Vec<Uuid> = Vec::new();
        // What the client gets if no later attempt does better: one vocabulary with the result.
        let mut last: Option<Result<Relay, Failure>> = None;
        let mut attempts = 0u32;
        let mut upstream_time = Duration::ZERO;

        // One iteration per distinct credential tried (an address refused by the policy counts
        // as tried, though no upstream call is made).
        for _ in 0..max_attempts {
            let entry = if call.balanced {
                match self
                    .state
                    .pick(
                        route.pool,
                        route.signature,
                        &weights,
                        &tried,
                        self.clock.now_ms(),
                    )
                    .await
                {
                    Pick::Entry(i) => candidates[i],
                    Pick::AllCooling { retry_after_ms } if last.is_none() => {
                        let retry_after_s = retry_after_ms.div_ceil(1000).max(1);
                        return Outcome {
                            result: Err(Failure::AllCooling { retry_after_s }),
                            attempts,
                            upstream_time,
                        };
                    }
                    Pick::AllCooling { .. } | Pick::Exhausted => break,
                }
            } else {
                candidates[0]
            };
            let credential = entry.credential_id;
            tried.push(credential);
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                last = Some(Err(Failure::Timeout));
                break;
            }
            let url = Self::url(&entry.target, call.endpoint, &route.upstream_model);
            if self.upstream.check_url(&url).is_err() {
                entry.metrics.attempt(AnswerClass::Blocked);
                last = Some(Err(Failure::Blocked));
                continue;
            }
            attempts += 1;
            let request = entry
                .target
                .authorize(self.upstream.client().post(&url))
                .header(CONTENT_TYPE, "application/json")
                .body(call.body.clone());
            let t0 = Instant::now();
            let sent = tokio::time::timeout(
                self.settings.upstream_timeout.min(remaining),
                request.send(),
            )
            .await;
            let waited = t0.elapsed();
            upstream_time += waited;
            entry.metrics.latency(waited);
            let response = match sent {
                Err(_) => {
                    entry.metrics.attempt(AnswerClass::Timeout);
                    self.cool(&call, entry, TRANSIENT, Reason::Timeout, None)
                        .await;
                    last = Some(Err(Failure::Timeout));
                    continue;
                }
                Ok(Err(e)) => {
                    let kind = Upstream::classify(&e);
                    let (label, next) = match kind {
                        CallError::BlockedAddress => (AnswerClass::Blocked, Failure::Blocked),
                        CallError::Timeout => (AnswerClass::Timeout, Failure::Timeout),
                        CallError::Unreachable => {
                            (AnswerClass::UpstreamError, Failure::Unavailable)
                        }
                    };
                    entry.metrics.attempt(label);
                    match kind {
                        CallError::BlockedAddress => {}
                        CallError::Timeout => {
                            self.cool(&call, entry, TRANSIENT, Reason::Timeout, None)
                                .await
                        }
                        CallError::Unreachable => {
                            self.cool(&call, entry, TRANSIENT, Reason::Unreachable, None)
                                .await
                        }
                    }
                    tracing::warn!(credential_id = %credential, outcome = label.as_str(), "upstream call failed");
                    last = Some(Err(next));
                    continue;
                }
                Ok(Ok(r)) => r,
            };
            let status = response.status().as_u16();
            entry.metrics.attempt(AnswerClass::of_status(status));
            let content_type = response.headers().get(CONTENT_TYPE).cloned();
            let retry_after = response.headers().get(RETRY_AFTER).cloned();
            if let Some((duration, reason)) =
                cooldown::for_status(status, response.headers(), route.cooldown_seconds)
            {
                self.cool(&call, entry, duration, reason, Some(status))
                    .await;
                let t1 = Instant::now();
                let body = read_limited(response, MAX_ERROR_BODY, deadline).await;
                upstream_time += t1.elapsed();
                last = Some(if status == 401 || status == 403 {
                    Err(Failure::CredentialRejected {
                        credential_id: credential,
                    })
                } else {
                    Ok(Relay {
                        status,
                        content_type,
                        retry_after,
                        body: RelayBody::Full(body),
                        credential_id: credential,
                        metrics: entry.metrics.clone(),
                    })
                });
                continue;
            }
            // A success, or a client error that is the caller's to see: relay it.
            let success = (200..300).contains(&status);
            let body = if call.stream && success {
                RelayBody::Stream(self.relay_stream(&call, entry, response))
            } else {
                let t1 = Instant::now();
                let remaining = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1));
                let read = read_bounded(response, self.settings.max_body);
                let body = match tokio::time::timeout(remaining, read).await {
                    Ok(Ok(b)) => b,
                    Ok(Err(Bounded::TooLarge)) => {
                        upstream_time += t1.elapsed();
                        entry.metrics.attempt(AnswerClass::UpstreamError);
                        tracing::warn!(credential_id = %credential, limit = self.settings.max_body, "upstream answer too large; not relayed");
                        return Outcome {
                            result: Err(Failure::TooLarge),
                            attempts,
                            upstream_time,
                        };
                    }
                    _ => {
                        upstream_time += t1.elapsed();
                        self.cool(&call, entry, TRANSIENT, Reason::Timeout, None)
                            .await;
                        last = Some(Err(Failure::Timeout));
                        continue;
                    }
                };
                upstream_time += t1.elapsed();
                if success {
                    record_usage(&entry.metrics, &body);
                }
                RelayBody::Full(body)
            };
            return Outcome {
                result: Ok(Relay {
                    status,
                    content_type,
                    retry_after,
                    body,
                    credential_id: credential,
                    metrics: entry.metrics.clone(),
                }),
                attempts,
                upstream_time,
            };
        }

        Outcome {
            result: last.unwrap_or(Err(Failure::Unavailable)),
            attempts,
            upstream_time,
        }
    }

    fn relay_stream(
        &self,
        call: &Call<'_>,
        entry: &RouteEntry,
        response: reqwest::Response,
    ) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
        struct Relaying<S> {
            upstream: BoxStream<'static, reqwest::Result<Bytes>>,
            idle: Duration,
            state: Arc<S>,
            clock: Arc<dyn Clock>,
            pool: PoolKey,
            metrics: Arc<EntryMetrics>,
            credential: Uuid,
            balanced: bool,
            usage: UsageScanner,
            left: usize,
            done: bool,
        }
        let st = Relaying {
            upstream: response.bytes_stream().boxed(),
            idle: self.settings.stream_idle_timeout,
            state: self.state.clone(),
            clock: self.clock.clone(),
            pool: call.route.pool,
            metrics: entry.metrics.clone(),
            credential: entry.credential_id,
            balanced: call.balanced,
            usage: UsageScanner::default(),
            left: self.settings.max_body,
            done: false,
        };
        futures_util::stream::unfold(st, |mut st| async move {
            if st.done {
                return None;
            }
            match tokio::time::timeout(st.idle, st.upstream.next()).await {
                Ok(Some(Ok(chunk))) if chunk.len() > st.left => {
                    st.done = true;
                    tracing::warn!(credential_id = %st.credential, "upstream stream exceeded the maximum size; cut");
                    let event = "\n\ndata: {\"error\": {\"message\": \"the upstream answer exceeded the maximum size\", \"type\": \"upstream_error\", \"param\": null, \"code\": \"upstream_response_too_large\"}}\n\n";
                    Some((Ok(Bytes::from_static(event.as_bytes())), st))
                }
                Ok(Some(Ok(chunk))) => {
                    st.left -= chunk.len();
                    st.usage.feed(&chunk);
                    Some((Ok(chunk), st))
                }
                Ok(None) => {
                    if let Some((prompt, completion)) = st.usage.totals() {
                        st.metrics.tokens(prompt, completion);
                    }
                    None
                }
                Ok(Some(Err(_))) | Err(_) => {
                    st.done = true;
                    if st.balanced {
                        let now = st.clock.now_ms();
                        let until_ms = now + TRANSIENT.as_millis() as u64;
                        let cd = Cooldown { until_ms, reason: Reason::StreamError, status: None, at_ms: now };
                        st.state.cool(st.pool, st.credential, cd).await;
                        st.metrics.cooldown(Reason::StreamError);
                    }
                    tracing::warn!(credential_id = %st.credential, "upstream stream broke after it started");
                    let event = "data: {\"error\": {\"message\": \"the upstream stream ended unexpectedly\", \"type\": \"upstream_error\", \"param\": null, \"code\": \"upstream_stream_error\"}}\n\n";
                    Some((Ok(Bytes::from_static(event.as_bytes())), st))
                }
            }
        })
        .boxed()
    }
}

/// Why a bounded read stopped.
enum Bounded {
    /// Over the limit (by its `Content-Length` or by what arrived).
    TooLarge,
    /// The connection broke.
    Broken,
}

/// The whole answer, unless it is larger than `limit` (then nothing more is read).
async fn read_bounded(response: reqwest::Response, limit: usize) -> Result<Bytes, Bounded> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Bounded::TooLarge);
    }
    let capacity = response.content_length().unwrap_or(0) as usize;
    let mut stream = response.bytes_stream();
    let first = match stream.next().await {
        None => return Ok(Bytes::new()),
        Some(Err(_)) => return Err(Bounded::Broken),
        Some(Ok(chunk)) => chunk,
    };
    let mut out: Option<Vec<u8>> = None;
    let mut len = first.len();
    if len > limit {
        return Err(Bounded::TooLarge);
    }
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Bounded::Broken)?;
        len += chunk.len();
        if len > limit {
            return Err(Bounded::TooLarge);
        }
        out.get_or_insert_with(|| {
            let mut v = Vec::with_capacity(capacity.max(first.len() * 2));
            v.extend_from_slice(&first);
            v
        })
        .extend_from_slice(&chunk);
    }
    // A body that came in one chunk is relayed without a copy.
    Ok(out.map_or(first, Bytes::from))
}

async fn read_limited(response: reqwest::Response, limit: usize, deadline: Instant) -> Bytes {
    let remaining = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let read = async {
        let mut out = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(Ok(chunk)) = stream.next().await {
            let room = limit.saturating_sub(out.len());
            out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if out.len() >= limit {
                break;
            }
        }
        Bytes::from(out)
    };
    tokio::time::timeout(remaining, read)
        .await
        .unwrap_or_default()
}

#[derive(serde::Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(serde::Deserialize)]
struct WithUsage {
    usage: Option<Usage>,
}

fn record_usage(metrics: &EntryMetrics, body: &[u8]) {
    if let Ok(WithUsage { usage: Some(u) }) = serde_json::from_slice::<WithUsage>(body) {
        metrics.tokens(u.prompt_tokens, u.completion_tokens);
    }
}

/// Finds `usage` in a stream's `data:` lines (the last chunk when `include_usage` is set).
#[derive(Default)]
struct UsageScanner {
    line: Vec<u8>,
    usage: Option<(u64, u64)>,
}

impl UsageScanner {
    const MAX_LINE: usize = 1 << 20;

    fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b == b'\n' {
                self.line_done();
            } else if self.line.len() < Self::MAX_LINE {
                self.line.push(b);
            }
        }
    }

    fn line_done(&mut self) {
        let line = std::mem::take(&mut self.line);
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        if !data.windows(7).any(|w| w == b"\"usage\"") {
            return;
        }
        if let Ok(WithUsage { usage: Some(u) }) = serde_json::from_slice::<WithUsage>(data) {
            self.usage = Some((u.prompt_tokens, u.completion_tokens));
        }
    }

    fn totals(&self) -> Option<(u64, u64)> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_found_in_the_final_stream_chunk_even_when_split() {
        let mut s = UsageScanner::default();
        s.feed(b"data: {\"choices\": []}\n\ndata: {\"choices\": [], \"usa");
        s.feed(b"ge\": {\"prompt_tokens\": 5, \"completion_tokens\": 7}}\n\ndata: [DONE]\n\n");
        assert_eq!(s.totals(), Some((5, 7)));
        let mut none = UsageScanner::default();
        none.feed(b"data: {\"usage\": null}\n\n");
        assert_eq!(none.totals(), None);
    }
}
