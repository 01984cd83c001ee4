//! Relaying an upstream answer: the answer's parts, a whole body read within a bound, and a
//! stream relayed chunk by chunk until it ends, breaks, stalls or grows too large.

use super::cooling::{Cooled, Cooling};
use super::{Call, Engine, EntryMetrics, RouteEntry, UsageSink, UsageTag};
use crate::client::{next_chunk, read_at_most, UpstreamResponse};
use crate::lifecycle;
use crate::state::{PoolKey, StateBackend};
use crate::usage::UsageScanner;
use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The relayed body.
pub enum RelayBody {
    /// A complete answer.
    Full(Bytes),
    /// Server-sent events, chunk by chunk.
    Stream(RelayStream),
}

/// A stream that started, relayed chunk by chunk; a cut is its last item.
pub struct RelayStream(BoxStream<'static, Result<Bytes, StreamCut>>);

impl RelayStream {
    /// The bytes to send: every chunk as it arrives, then a cut as the error event `event`
    /// writes (the wire format of errors is the gateway's).
    pub fn into_bytes(
        self,
        event: fn(StreamCut) -> Bytes,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
        self.0.map(move |item| Ok(item.unwrap_or_else(event)))
    }
}

/// Why a stream that had started was cut (the status and the first events went out already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamCut {
    /// The answer grew past the configured maximum size.
    TooLarge,
    /// The provider's stream broke, or stayed silent past the idle timeout.
    Broken,
}

/// An upstream answer to relay.
pub struct Relay {
    /// Its status.
    pub status: u16,
    /// The provider's headers the client gets (type, `Retry-After`, request ids, rate limits).
    pub headers: http::HeaderMap,
    /// Its body.
    pub body: RelayBody,
    /// The credential whose answer this is.
    pub credential_id: Uuid,
    /// That credential's metric handles.
    pub metrics: Arc<EntryMetrics>,
}

/// A stream being relayed, with what it needs to report its credential if it breaks and to
/// count its tokens against the entry's `tpm`.
struct Relaying<S> {
    upstream: Incoming,
    idle: Duration,
    cooling: Cooling<S>,
    pool: PoolKey,
    model: Arc<str>,
    metrics: Arc<EntryMetrics>,
    credential: Uuid,
    cooldown_seconds: u32,
    quota_cooldown_seconds: u32,
    /// The entry has a `tpm` limit and load balancing is effective: tokens are counted.
    counts_tokens: bool,
    usage: UsageScanner,
    /// Where the stream's usage goes when it ends (the usage ledger), with the request's tag.
    ledger: Option<(Arc<dyn UsageSink>, UsageTag)>,
    /// Bytes the stream may still relay.
    left: usize,
    done: bool,
}

impl<S: StateBackend> Relaying<S> {
    /// The next item to relay, `None` once the stream is over.
    async fn next(&mut self) -> Option<Result<Bytes, StreamCut>> {
        if self.done {
            return None;
        }
        match tokio::time::timeout(self.idle, next_chunk(&mut self.upstream)).await {
            Ok(Some(Ok(chunk))) if chunk.len() > self.left => {
                self.done = true;
                tracing::warn!(credential_id = %self.credential, "upstream stream exceeded the maximum size; cut");
                Some(Err(StreamCut::TooLarge))
            }
            Ok(Some(Ok(chunk))) => {
                self.left -= chunk.len();
                self.usage.feed(&chunk);
                Some(Ok(chunk))
            }
            Ok(None) => {
                self.done = true;
                if let Some(used) = self.usage.totals() {
                    self.metrics.tokens(used);
                    let now_ms = self.cooling.clock.now_ms();
                    if let Some((sink, tag)) = &self.ledger {
                        sink.used(tag, self.credential, used);
                        if tag.client_tpm {
                            let tokens = used.input_with_cache(tag.family) + used.output;
                            let state = &self.cooling.state;
                            state
                                .count_client_tokens(tag.pool.workspace, tag.client, tokens, now_ms)
                                .await;
                        }
                    }
                    if self.counts_tokens {
                        let tokens = used.input + used.output;
                        self.cooling
                            .state
                            .count_tokens(self.pool, self.credential, tokens, now_ms)
                            .await;
                    }
                }
                None
            }
            Ok(Some(Err(_))) | Err(_) => {
                self.done = true;
                let who = Cooled {
                    pool: self.pool,
                    model: &self.model,
                    credential: self.credential,
                    metrics: &self.metrics,
                    cooldown_seconds: self.cooldown_seconds,
                    quota_cooldown_seconds: self.quota_cooldown_seconds,
                    trial: false,
                };
                self.cooling.report(who, &lifecycle::transport()).await;
                tracing::warn!(credential_id = %self.credential, "upstream stream broke after it started");
                Some(Err(StreamCut::Broken))
            }
        }
    }
}

impl<S: StateBackend> Engine<S> {
    /// Relays `response`, a stream that started, chunk by chunk.
    pub(super) fn relay_stream(
        &self,
        call: &Call<'_>,
        entry: &RouteEntry,
        response: UpstreamResponse,
    ) -> RelayStream {
        let relaying = Relaying {
            upstream: response.into_body(),
            idle: self.settings.stream_idle_timeout,
            cooling: self.cooling.clone(),
            pool: call.route.pool,
            model: call.route.model.clone(),
            metrics: entry.metrics.clone(),
            credential: entry.credential_id,
            cooldown_seconds: call.route.cooldown_seconds,
            quota_cooldown_seconds: entry.quota_cooldown_seconds,
            counts_tokens: call.balanced && entry.limits.tpm.is_some(),
            usage: UsageScanner::new(call.endpoint.family()),
            ledger: self.sink.clone().zip(call.usage.cloned()),
            left: self.settings.max_body,
            done: false,
        };
        let stream = futures_util::stream::unfold(relaying, |mut st| async move {
            let item = st.next().await?;
            Some((item, st))
        });
        RelayStream(stream.boxed())
    }
}

/// Why a bounded read stopped.
pub(super) enum Bounded {
    /// Over the limit (by its `Content-Length` or by what arrived).
    TooLarge,
    /// The connection broke.
    Broken,
}

/// The whole answer, unless it is larger than `limit` (then nothing more is read).
pub(super) async fn read_bounded(
    response: UpstreamResponse,
    limit: usize,
) -> Result<Bytes, Bounded> {
    // Hyper's exact size is the answer's `Content-Length`, when it sent one.
    let declared = hyper::body::Body::size_hint(response.body()).exact();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Bounded::TooLarge);
    }
    let capacity = declared.unwrap_or(0) as usize;
    let mut body = response.into_body();
    let first = match next_chunk(&mut body).await {
        None => return Ok(Bytes::new()),
        Some(Err(_)) => return Err(Bounded::Broken),
        Some(Ok(chunk)) => chunk,
    };
    let mut out: Option<Vec<u8>> = None;
    let mut len = first.len();
    if len > limit {
        return Err(Bounded::TooLarge);
    }
    while let Some(chunk) = next_chunk(&mut body).await {
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

/// At most `limit` bytes of an error answer, read until `deadline` (what arrived by then).
pub(super) async fn read_limited(
    response: UpstreamResponse,
    limit: usize,
    deadline: Instant,
) -> Bytes {
    let remaining = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let read = read_at_most(response.into_body(), limit);
    tokio::time::timeout(remaining, read)
        .await
        .map(Bytes::from)
        .unwrap_or_default()
}
