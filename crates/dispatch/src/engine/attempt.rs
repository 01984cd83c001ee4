//! One attempt of the failover loop: one call to one credential's provider, and what its
//! answer (or its absence) means for the client and for the credential.

use super::classify::Verdict;
use super::cooling::Cooled;
use super::relay::{read_bounded, read_limited, Bounded, Relay, RelayBody};
use super::{Call, Engine, Failure, Outcome, RouteEntry};
use crate::client::Upstream;
use crate::cooldown::{Reason, TRANSIENT};
use crate::series::AnswerClass;
use crate::signals;
use crate::state::StateBackend;
use crate::usage;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, CONTENT_TYPE};
use std::time::{Duration, Instant, SystemTime};

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
        }
    }
}

impl<S: StateBackend> Engine<S> {
    /// Counts a call that brought no answer, cools its credential as `verdict` says, and
    /// moves on.
    async fn failed(&self, call: &Call<'_>, entry: &RouteEntry, verdict: Verdict) -> Step {
        entry.metrics.attempt(verdict.class);
        if let Some(trigger) = verdict.cooldown {
            self.cooling
                .cool(Cooled::of(call, entry), trigger, None)
                .await;
        }
        Step::Next(Err(verdict.failure))
    }

    /// Calls `entry`'s provider once, within `remaining` of the request's `deadline`.
    pub(super) async fn attempt(
        &self,
        call: &Call<'_>,
        entry: &RouteEntry,
        deadline: Instant,
        remaining: Duration,
        tally: &mut Tally,
    ) -> Step {
        let credential_id = entry.credential_id;
        let checked = match call.suffix {
            Some(suffix) => entry.target.url_with(call.endpoint, suffix),
            None => entry.target.url(call.endpoint).cloned(),
        };
        let Some(url) = checked.filter(|u| self.upstream.check(u).is_ok()) else {
            entry.metrics.attempt(AnswerClass::Blocked);
            return Step::Next(Err(Failure::Blocked));
        };
        tally.attempts += 1;
        let mut request = entry
            .target
            .authorize(self.upstream.client().request(call.method.clone(), url))
            .headers(call.forward.clone());
        if !call.body.is_empty() {
            if !call.forward.contains_key(CONTENT_TYPE) {
                request = request.header(CONTENT_TYPE, "application/json");
            }
            let body = match (&entry.upstream_model, call.rebody) {
                (Some(name), Some(rebody)) => rebody(name),
                _ => call.body.clone(),
            };
            request = request.body(body);
        }
        let t0 = Instant::now();
        let timeout = self.settings.upstream_timeout.min(remaining);
        let sent = tokio::time::timeout(timeout, request.send()).await;
        let waited = t0.elapsed();
        tally.upstream_time += waited;
        entry.metrics.latency(waited);
        let response = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let verdict = Verdict::of(Upstream::classify(&e));
                let step = self.failed(call, entry, verdict).await;
                tracing::warn!(%credential_id, outcome = verdict.class.as_str(), "upstream call failed");
                return step;
            }
            Err(_) => return self.failed(call, entry, Verdict::TIMEOUT).await,
        };
        self.answered(call, entry, response, deadline, tally).await
    }

    /// What the provider's answer to one attempt means: relayed, kept in case no later
    /// attempt does better (a cooldown trigger), or refused as too large.
    async fn answered(
        &self,
        call: &Call<'_>,
        entry: &RouteEntry,
        response: reqwest::Response,
        deadline: Instant,
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
        let cooldown_seconds = call.route.cooldown_seconds;
        let family = call.endpoint.family();
        // Some families say in the error body what the answer means for the credential.
        let mut answer = Answer::Open(response);
        if signals::body_matters(family, status) {
            let t1 = Instant::now();
            answer = answer.read(MAX_ERROR_BODY, deadline).await;
            tally.upstream_time += t1.elapsed();
        }
        let trigger = signals::for_answer(
            family,
            status,
            answer.headers(),
            answer.body_read(),
            cooldown_seconds,
        );
        if let Some(trigger) = trigger {
            self.cooling
                .cool(Cooled::of(call, entry), trigger, Some(status))
                .await;
            let t1 = Instant::now();
            let body = answer.read(MAX_ERROR_BODY, deadline).await.into_body();
            tally.upstream_time += t1.elapsed();
            return Step::Next(match trigger.1 {
                Reason::Rejected => Err(Failure::CredentialRejected { credential_id }),
                _ => Ok(relay(RelayBody::Full(body))),
            });
        }
        let response = match answer {
            Answer::Open(response) => response,
            Answer::Read(_, body) => return Step::Done(Ok(relay(RelayBody::Full(body)))),
        };
        // A success, or a client error that is the caller's to see: relay it.
        let success = (200..300).contains(&status);
        // A success that spends the last of one of the credential's limits (a `-remaining`
        // header of 0): it leaves the rotation until that limit refills, instead of finding
        // out by a 429.
        let spent = success
            .then(|| signals::spent_limit_reset(family, response.headers(), SystemTime::now()))
            .flatten();
        if let Some(reset) = spent {
            let trigger = (reset, Reason::RateLimited);
            self.cooling
                .cool(Cooled::of(call, entry), trigger, Some(status))
                .await;
        }
        if call.stream && success {
            let stream = self.relay_stream(call, entry, response);
            return Step::Done(Ok(relay(RelayBody::Stream(stream))));
        }
        let t1 = Instant::now();
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let read = read_bounded(response, self.settings.max_body);
        let read = tokio::time::timeout(remaining, read).await;
        tally.upstream_time += t1.elapsed();
        match read {
            Ok(Ok(body)) => {
                let used = success.then(|| usage::of_body(family, &body)).flatten();
                if let Some(used) = used {
                    entry.metrics.tokens(used);
                }
                Step::Done(Ok(relay(RelayBody::Full(body))))
            }
            Ok(Err(Bounded::TooLarge)) => {
                entry.metrics.attempt(AnswerClass::UpstreamError);
                tracing::warn!(%credential_id, limit = self.settings.max_body, "upstream answer too large; not relayed");
                Step::Done(Err(Failure::TooLarge))
            }
            Ok(Err(Bounded::Broken)) | Err(_) => {
                let trigger = (TRANSIENT, Reason::Timeout);
                self.cooling
                    .cool(Cooled::of(call, entry), trigger, None)
                    .await;
                Step::Next(Err(Failure::Timeout))
            }
        }
    }
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
    let mut out = HeaderMap::new();
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
    Open(reqwest::Response),
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
