//! One attempt of the failover loop: one call to one credential's provider, and what its
//! answer (or its absence) means for the client and for the credential.

use super::classify::Verdict;
use super::cooling::Cooled;
use super::relay::{read_bounded, read_limited, Bounded, Relay, RelayBody};
use super::{Call, Engine, Failure, Outcome, RouteEntry};
use crate::client::Upstream;
use crate::cooldown::{self, Reason, TRANSIENT};
use crate::series::AnswerClass;
use crate::state::StateBackend;
use crate::usage;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use std::time::{Duration, Instant};

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
        let checked = entry.target.url(call.endpoint);
        let Some(url) = checked.filter(|u| self.upstream.check(u).is_ok()) else {
            entry.metrics.attempt(AnswerClass::Blocked);
            return Step::Next(Err(Failure::Blocked));
        };
        tally.attempts += 1;
        let request = entry
            .target
            .authorize(self.upstream.client().post(url.clone()))
            .header(CONTENT_TYPE, "application/json")
            .body(call.body.clone());
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
        let (content_type, retry_after) = {
            let h = response.headers();
            (h.get(CONTENT_TYPE).cloned(), h.get(RETRY_AFTER).cloned())
        };
        let relay = |body| Relay {
            status,
            content_type,
            retry_after,
            body,
            credential_id,
            metrics: entry.metrics.clone(),
        };
        let cooldown_seconds = call.route.cooldown_seconds;
        if let Some(trigger) = cooldown::for_status(status, response.headers(), cooldown_seconds) {
            self.cooling
                .cool(Cooled::of(call, entry), trigger, Some(status))
                .await;
            let t1 = Instant::now();
            let body = read_limited(response, MAX_ERROR_BODY, deadline).await;
            tally.upstream_time += t1.elapsed();
            return Step::Next(match trigger.1 {
                Reason::Rejected => Err(Failure::CredentialRejected { credential_id }),
                _ => Ok(relay(RelayBody::Full(body))),
            });
        }
        // A success, or a client error that is the caller's to see: relay it.
        let success = (200..300).contains(&status);
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
                if let Some(tokens) = success.then(|| usage::of_body(&body)).flatten() {
                    entry.metrics.tokens(tokens);
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
