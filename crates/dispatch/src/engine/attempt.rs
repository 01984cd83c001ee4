//! One attempt of the failover loop: one call to one credential's provider, and what its
//! answer (or its absence) means for the client and for the credential.

use super::classify::Verdict;
use super::cooling::Cooled;
use super::relay::{read_bounded, read_limited, Bounded, Relay, RelayBody};
use super::{Call, Engine, Failure, Outcome, RouteEntry};
use crate::client::{UpstreamRequest, UpstreamResponse};
use crate::lifecycle::{self, Trigger};
use crate::series::AnswerClass;
use crate::state::StateBackend;
use crate::usage;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::Uri;
use http_body_util::Full;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::time::Sleep;

/// Largest error body kept from a failed attempt (to relay if it is the last).
const MAX_ERROR_BODY: usize = 256 * 1024;

/// What one attempt leaves the failover loop with.
pub(super) enum Step {
    /// The client's answer: no further attempt.
    Done(Result<Relay, Failure>),
    /// What the client gets if no later attempt does better: on to the next credential.
    Next(Result<Relay, Failure>),
}

/// Upstream calls made so far, and the time spent waiting for providers.
#[derive(Default)]
pub(super) struct Tally {
    attempts: u32,
    upstream_time: Duration,
    /// Whether the serving credential was the affinity key's (sticky routes only).
    pub affinity_hit: Option<bool>,
}

impl Tally {
    /// Counts `waited` (for a cooling credential) as time not spent by Rotor itself.
    pub fn waited(&mut self, waited: Duration) {
        self.upstream_time += waited;
    }

    /// The request's outcome, `result` with the tally.
    pub fn outcome(self, result: Result<Relay, Failure>) -> Outcome {
        Outcome {
            result,
            attempts: self.attempts,
            upstream_time: self.upstream_time,
            affinity_hit: self.affinity_hit,
        }
    }
}

impl<S: StateBackend> Engine<S> {
    /// Counts a call that brought no answer, records it as `verdict` says, and moves on.
    async fn failed(
        &self,
        call: &Call<'_>,
        entry: &RouteEntry,
        trial: bool,
        verdict: Verdict,
    ) -> Step {
        entry.metrics.attempt(verdict.class);
        if verdict.transient {
            let who = Cooled::of(call, entry, trial);
            self.cooling.report(who, &lifecycle::transport()).await;
        }
        Step::Next(Err(verdict.failure))
    }

    /// Calls `entry`'s provider once, within `remaining` of the request's `deadline`; `trial`:
    /// the request is the entry's half-open trial.
    pub(super) async fn attempt(
        &self,
        call: &Call<'_>,
        entry: &RouteEntry,
        trial: bool,
        deadline: Instant,
        remaining: Duration,
        tally: &mut Tally,
    ) -> Step {
        let credential_id = entry.credential_id;
        let request = match self.request(call, entry) {
            Ok(request) => request,
            Err(failure) => {
                entry.metrics.attempt(AnswerClass::Blocked);
                return Step::Next(Err(failure));
            }
        };
        tally.attempts += 1;
        let t0 = Instant::now();
        // One timer for the attempt: the answer's head by the attempt's timeout, then (reset)
        // its body by the request's deadline.
        let mut timer = pin!(tokio::time::sleep_until(
            (t0 + self.settings.upstream_timeout.min(remaining)).into()
        ));
        let sent = within(timer.as_mut(), self.upstream.send(request)).await;
        let waited = t0.elapsed();
        tally.upstream_time += waited;
        entry.metrics.latency(waited);
        let response = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let verdict = Verdict::of(e);
                let step = Box::pin(self.failed(call, entry, trial, verdict)).await;
                tracing::warn!(%credential_id, outcome = verdict.class.as_str(), "upstream call failed");
                return step;
            }
            Err(Elapsed) => return self.failed(call, entry, trial, Verdict::TIMEOUT).await,
        };
        self.answered(call, entry, trial, response, deadline, timer, tally)
            .await
    }

    /// The request for `entry`'s provider: its URL (refused when the address policy refuses
    /// it), the client's forwarded headers, the provider's authentication (refused when the
    /// credential's key cannot go in a header), and the body with the entry's model name.
    fn request(&self, call: &Call<'_>, entry: &RouteEntry) -> Result<UpstreamRequest, Failure> {
        let checked = |url: &url::Url| self.upstream.check(url).is_ok();
        let uri = match call.suffix {
            Some(suffix) => entry
                .target
                .url_with(call.endpoint, suffix)
                .filter(checked)
                .and_then(|url| Uri::try_from(url.as_str()).ok()),
            None => entry
                .target
                .url(call.endpoint)
                .filter(|url| checked(url))
                .and(entry.target.uri(call.endpoint))
                .cloned(),
        };
        let uri = uri.ok_or(Failure::Blocked)?;
        let auth = entry.target.auth().ok_or(Failure::Unreadable)?;
        let body = if call.body.is_empty() {
            Bytes::new()
        } else {
            match (&entry.upstream_model, call.rebody) {
                (Some(name), Some(rebody)) => rebody(name),
                _ => call.body.clone(),
            }
        };
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = call.method.clone();
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.reserve(call.forward.len() + 4);
        for (name, value) in call.forward {
            headers.append(name, value.clone());
        }
        if !call.body.is_empty() && !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        // The forwarded headers never hold credentials; a client's `anthropic-version` wins
        // over the default.
        for (name, value) in auth {
            headers.entry(name).or_insert_with(|| value.clone());
        }
        Ok(request)
    }

    /// What the provider's answer to one attempt means: relayed, kept in case no later
    /// attempt does better (a trigger of §14), or refused as too large. `timer` is the
    /// attempt's, reset for the body's read.
    #[allow(clippy::too_many_arguments)]
    async fn answered(
        &self,
        call: &Call<'_>,
        entry: &RouteEntry,
        trial: bool,
        response: UpstreamResponse,
        deadline: Instant,
        mut timer: Pin<&mut Sleep>,
        tally: &mut Tally,
    ) -> Step {
        let credential_id = entry.credential_id;
        let status = response.status().as_u16();
        entry.metrics.attempt(AnswerClass::of_status(status));
        let headers = relayed_headers(response.headers());
        let relay = |body| Relay {
            status,
            headers,
            body,
            credential_id,
            metrics: entry.metrics.clone(),
        };
        let family = call.endpoint.family();
        // Some families say in the error body what the answer means for the credential.
        let mut answer = Answer::Open(response);
        if lifecycle::body_matters(family, status) {
            let t1 = Instant::now();
            answer = Box::pin(answer.read(MAX_ERROR_BODY, deadline)).await;
            tally.upstream_time += t1.elapsed();
        }
        let now_ms = self.cooling.clock.now_ms();
        let classified =
            lifecycle::classify(family, status, answer.headers(), answer.body_read(), now_ms);
        let who = Cooled::of(call, entry, trial);
        self.cooling.report(who, &classified).await;
        let fails_over = !matches!(classified.trigger, Trigger::Success | Trigger::Other);
        if fails_over {
            let t1 = Instant::now();
            let body = Box::pin(answer.read(MAX_ERROR_BODY, deadline))
                .await
                .into_body();
            tally.upstream_time += t1.elapsed();
            return Step::Next(match classified.trigger {
                Trigger::Rejected => Err(Failure::CredentialRejected { credential_id }),
                _ => Ok(relay(RelayBody::Full(body))),
            });
        }
        let response = match answer {
            Answer::Open(response) => response,
            Answer::Read(_, body) => return Step::Done(Ok(relay(RelayBody::Full(body)))),
        };
        // A success, or a client error that is the caller's to see: relay it.
        let success = (200..300).contains(&status);
        if call.stream && success {
            let stream = self.relay_stream(call, entry, response);
            return Step::Done(Ok(relay(RelayBody::Stream(stream))));
        }
        let t1 = Instant::now();
        timer
            .as_mut()
            .reset(deadline.max(t1 + Duration::from_millis(1)).into());
        let read = read_bounded(response, self.settings.max_body);
        let read = within(timer, read).await;
        tally.upstream_time += t1.elapsed();
        match read {
            Ok(Ok(body)) => {
                let used = success.then(|| usage::of_body(family, &body)).flatten();
                if let Some(used) = used {
                    entry.metrics.tokens(used);
                    if let (Some(sink), Some(tag)) = (&self.sink, call.usage) {
                        sink.used(tag, credential_id, used);
                    }
                    self.count_tokens(call, entry, used).await;
                }
                Step::Done(Ok(relay(RelayBody::Full(body))))
            }
            Ok(Err(Bounded::TooLarge)) => {
                entry.metrics.attempt(AnswerClass::UpstreamError);
                tracing::warn!(%credential_id, limit = self.settings.max_body, "upstream answer too large; not relayed");
                Step::Done(Err(Failure::TooLarge))
            }
            Ok(Err(Bounded::Broken)) | Err(_) => {
                let who = Cooled::of(call, entry, false);
                self.cooling.report(who, &lifecycle::transport()).await;
                Step::Next(Err(Failure::Timeout))
            }
        }
    }

    /// Counts `used` against the entry's `tpm` and the client's (only those with one: the
    /// others need no count).
    pub(super) async fn count_tokens(
        &self,
        call: &Call<'_>,
        entry: &RouteEntry,
        used: usage::Usage,
    ) {
        let now_ms = self.cooling.clock.now_ms();
        if let Some(tag) = call.usage.filter(|t| t.client_tpm) {
            let tokens = used.input_with_cache(tag.family) + used.output;
            let state = &self.cooling.state;
            state
                .count_client_tokens(tag.pool.workspace, tag.client, tokens, now_ms)
                .await;
        }
        if entry.limits.tpm.is_none() || !call.balanced {
            return;
        }
        let tokens = used.input + used.output;
        self.cooling
            .state
            .count_tokens(call.route.pool, entry.credential_id, tokens, now_ms)
            .await;
    }
}

/// `timer` went off before the future it bounds was done.
struct Elapsed;

/// `future`'s output, unless `timer` goes off first: [`tokio::time::timeout`] with a timer
/// the caller keeps (and may reset for what comes next, with no new registration).
async fn within<F: Future>(mut timer: Pin<&mut Sleep>, future: F) -> Result<F::Output, Elapsed> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        timer.as_mut().poll(cx).map(|()| Err(Elapsed))
    })
    .await
}

/// Response headers the client gets from the provider: the type, `Retry-After`, request ids
/// and the serving credential's rate-limit state; nothing else (no cookies, no server names).
fn relayed_headers(upstream: &HeaderMap) -> HeaderMap {
    const EXACT: [&str; 6] = [
        "content-type",
        "retry-after",
        "retry-after-ms",
        "openai-processing-ms",
        "x-request-id",
        "request-id",
    ];
    const PREFIXES: [&str; 2] = ["x-ratelimit-", "anthropic-ratelimit-"];
    // Room for what the gateway adds to the answer (attempts, credential, overhead, the
    // stream's cache headers), so those inserts do not grow the map.
    let mut out = HeaderMap::with_capacity(16);
    for (name, value) in upstream {
        let n = name.as_str();
        if EXACT.contains(&n) || PREFIXES.iter().any(|p| n.starts_with(p)) {
            out.append(HeaderName::clone(name), value.clone());
        }
    }
    out
}

/// An upstream answer whose body is still to read, or was read already (bounded) to classify it.
enum Answer {
    Open(UpstreamResponse),
    Read(HeaderMap, Bytes),
}

impl Answer {
    fn headers(&self) -> &HeaderMap {
        match self {
            Answer::Open(r) => r.headers(),
            Answer::Read(h, _) => h,
        }
    }

    /// The body when it was read already (empty otherwise).
    fn body_read(&self) -> &[u8] {
        match self {
            Answer::Open(_) => &[],
            Answer::Read(_, body) => body,
        }
    }

    /// The answer with its body read, at most `limit` bytes before `deadline`.
    async fn read(self, limit: usize, deadline: Instant) -> Answer {
        match self {
            Answer::Open(r) => {
                let headers = r.headers().clone();
                Answer::Read(headers, read_limited(r, limit, deadline).await)
            }
            read => read,
        }
    }

    fn into_body(self) -> Bytes {
        match self {
            Answer::Open(_) => Bytes::new(),
            Answer::Read(_, body) => body,
        }
    }
}
