//! The failover loop: pick a credential, call the provider, and on a trigger of §14 — before
//! the first byte reaches the client — record what the answer made of that credential and try
//! the next, at most `max_attempts` distinct credentials. Streams are relayed chunk by chunk; a stream that
//! breaks after it started ends with an error event and cools its credential. A request
//! about a stored response is pinned to the credential that created it instead (no failover).

mod attempt;
mod classify;
mod cooling;
mod metrics;
mod pin;
mod relay;
mod route;
mod sink;

pub use cooling::StateChange;
pub use metrics::EntryMetrics;
pub use relay::{Relay, RelayBody, RelayStream, StreamCut};
pub use route::{Route, RouteEntry};
pub use sink::{Price, UsageSink, UsageTag};

use crate::client::Upstream;
use crate::clock::Clock;
use crate::lifecycle::{Limits, DEFAULT_TRIAL_LEASE_MS};
use crate::pick::Choice;
use crate::state::{Candidate, ClientAdmit, PickRequest, StateBackend, Sticky};
use crate::target::Endpoint;
use attempt::{Step, Tally};
use bytes::Bytes;
use cooling::Cooling;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The request's timeouts and size limit, from config.
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

/// A request to dispatch.
pub struct Call<'a> {
    /// The resolved route.
    pub route: &'a Route,
    /// Whether load balancing is effective for this request.
    pub balanced: bool,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The HTTP method (POST but for reading or deleting a stored response).
    pub method: http::Method,
    /// The rest of the path after the endpoint's URL (`/{id}/cancel`), when it names an object.
    pub suffix: Option<&'a str>,
    /// The client's headers that go upstream (`content-type`, `anthropic-version` …); the
    /// gateway chooses them, the credential's authentication is added here.
    pub forward: &'a http::header::HeaderMap,
    /// The body to send (model already rewritten; empty for GET and DELETE).
    pub body: Bytes,
    /// The body for an entry that names the model otherwise ([`RouteEntry::upstream_model`]).
    pub rebody: Option<&'a (dyn Fn(&str) -> Bytes + Sync)>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// When Rotor received the request.
    pub started: Instant,
    /// Serve with this credential only (the one that created the stored response the request
    /// is about), whatever `balanced`, the weights and the rotation say; no failover.
    pub pin: Option<Uuid>,
    /// The request's affinity key, hashed ([`crate::state::affinity_hash`]), when the route is
    /// sticky ([`Route::affinity_ttl_ms`]) and the request names one.
    pub affinity: Option<u64>,
    /// Whose usage the answer's tokens are, for the engine's [`UsageSink`] (none: not counted).
    pub usage: Option<&'a UsageTag>,
    /// The API key's per-minute limits, when it has any: admitted in the request's first
    /// pick (one step with it), or on its own when the request makes no pick.
    pub client: Option<ClientAdmit>,
}

/// Why no upstream answer can be relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Every credential is cooling down (or its quota is spent); retry after this many seconds.
    AllCooling {
        /// Seconds until the first credential is back (rounded up).
        retry_after_s: u64,
    },
    /// Every credential's `rpm`/`tpm` is reached for this minute; retry after this many seconds.
    AllAtCapacity {
        /// Seconds until the first entry has room (rounded up).
        retry_after_s: u64,
    },
    /// The provider refuses every credential of the pool (until they are changed or validated).
    AllRejected,
    /// The API key's own `rpm`/`tpm` is reached for this minute; retry after this many seconds.
    ClientLimited {
        /// Seconds until the next minute (rounded up).
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
    /// The request is pinned to a credential no entry of the model holds any more (removed from
    /// the pool since it created the response): the response is out of reach (the gateway
    /// answers 404).
    PinnedCredentialGone,
}

/// What dispatch produced, with how many upstream calls it made and how long they took.
pub struct Outcome {
    /// The answer.
    pub result: Result<Relay, Failure>,
    /// Upstream calls made.
    pub attempts: u32,
    /// Time spent waiting for providers, or for a cooling credential (`max_wait_ms`): not
    /// Rotor's overhead.
    pub upstream_time: Duration,
    /// With a sticky route and an affinity key: whether the serving credential was the key's
    /// (`x-rotor-affinity-hit`).
    pub affinity_hit: Option<bool>,
}

/// The dispatcher: shared client, state backend, clock and timeouts.
pub struct Engine<S> {
    upstream: Upstream,
    cooling: Cooling<S>,
    settings: Settings,
    sink: Option<Arc<dyn UsageSink>>,
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
            cooling: Cooling {
                state,
                clock,
                changes: None,
            },
            settings,
            sink: None,
        }
    }

    /// Sends the token usage of every tagged request's answer to `sink` (the usage ledger).
    pub fn with_usage(mut self, sink: Arc<dyn UsageSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Sends every credential-wide state change this engine makes to `changes` (to audit).
    pub fn with_changes(mut self, changes: tokio::sync::mpsc::Sender<StateChange>) -> Self {
        self.cooling.changes = Some(changes);
        self
    }

    /// Sends `change` (a recovery made outside dispatch) the way dispatch sends its own.
    pub fn announce(&self, change: StateChange) {
        self.cooling.announce(change);
    }

    /// The state backend (cooldown status, clearing).
    pub fn state(&self) -> &Arc<S> {
        &self.cooling.state
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.cooling.clock
    }

    /// Sends the request: pinned, to that credential alone (refused while it cools down);
    /// with load balancing effective, to the pool's next available credential, failing over on
    /// a cooldown trigger; otherwise to the default credential alone, whose answer goes to the
    /// client as it is.
    pub async fn dispatch(&self, call: Call<'_>) -> Outcome {
        let route = call.route;
        let tally = Tally::default();
        if let Some(client) = call.client.filter(|_| call.pin.is_some() || !call.balanced) {
            // No pick will admit the client: it is admitted on its own.
            let now_ms = self.cooling.clock.now_ms();
            if let Err(until_ms) = self.cooling.state.admit(client, now_ms).await {
                return tally.outcome(Err(client_limited(until_ms, now_ms)));
            }
        }
        let fixed = match (call.pin, call.balanced) {
            (Some(credential), _) => Some(Box::pin(self.pinned(&call, credential)).await),
            (None, false) => Some(route.default.as_ref().ok_or(Failure::Unreadable)),
            (None, true) => None,
        };
        match fixed {
            Some(Ok(entry)) => self.only(&call, entry, tally).await,
            Some(Err(failure)) => tally.outcome(Err(failure)),
            None => self.rotate(&call, tally).await,
        }
    }

    /// One attempt with `entry`, whose answer goes to the client whatever it is.
    async fn only(&self, call: &Call<'_>, entry: &RouteEntry, mut tally: Tally) -> Outcome {
        let deadline = call.started + self.settings.request_deadline;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return tally.outcome(Err(Failure::Timeout));
        }
        match Box::pin(self.attempt(call, entry, false, deadline, remaining, &mut tally)).await {
            Step::Done(result) | Step::Next(result) => tally.outcome(result),
        }
    }

    /// The failover loop over the pool.
    async fn rotate(&self, call: &Call<'_>, mut tally: Tally) -> Outcome {
        let route = call.route;
        let candidates = &route.entries;
        if candidates.is_empty() {
            return tally.outcome(Err(Failure::Unreadable));
        }
        let weights: Vec<Candidate> = candidates
            .iter()
            .map(|e| Candidate {
                credential: e.credential_id,
                weight: e.weight,
            })
            .collect();
        let limits: Vec<Limits> = if candidates.iter().any(|e| e.limits.any()) {
            candidates.iter().map(|e| e.limits).collect()
        } else {
            Vec::new()
        };
        let sticky = route
            .affinity_ttl_ms
            .zip(call.affinity)
            .map(|(ttl_ms, key)| Sticky { key, ttl_ms });
        let max_attempts = route.max_attempts.max(1);
        let deadline = call.started + self.settings.request_deadline;
        let trial_lease_ms = u64::try_from(self.settings.request_deadline.as_millis())
            .unwrap_or(DEFAULT_TRIAL_LEASE_MS);
        let mut tried: Vec<Uuid> = Vec::new();
        // What the client gets if no later attempt does better.
        let mut last: Option<Result<Relay, Failure>> = None;

        // A request may wait this long (from its start, within its deadline) for a credential
        // to come back instead of answering 429.
        let wait_until =
            (call.started + Duration::from_millis(u64::from(route.max_wait_ms))).min(deadline);
        let mut attempts = 0;
        // The client is admitted by the first pick only (a wait picks again).
        let mut client = call.client;

        // One iteration per distinct credential tried (an address refused by the policy counts
        // as tried, though no upstream call is made), and one per wait.
        while attempts < max_attempts {
            let request = PickRequest {
                pool: route.pool,
                signature: route.signature,
                candidates: &weights,
                limits: &limits,
                tried: &tried,
                now_ms: self.cooling.clock.now_ms(),
                sticky,
                trial_lease_ms,
                client: client.take(),
            };
            let now_ms = request.now_ms;
            let choice = self.cooling.state.pick(request).await;
            let (retry_after_ms, full) = match choice {
                Choice::ClientFull { until_ms } => {
                    return tally.outcome(Err(client_limited(until_ms, now_ms)));
                }
                Choice::Serve(served) => {
                    let entry = &candidates[served.index];
                    if sticky.is_some() {
                        tally.affinity_hit = Some(served.sticky_hit);
                    }
                    tried.push(entry.credential_id);
                    attempts += 1;
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if remaining.is_zero() {
                        last = Some(Err(Failure::Timeout));
                        break;
                    }
                    // Boxed: an attempt's future is the largest part of a request's, and
                    // every future above it would hold (and move) it inline.
                    let attempt =
                        self.attempt(call, entry, served.trial, deadline, remaining, &mut tally);
                    let step = Box::pin(attempt).await;
                    match step {
                        Step::Done(result) => return tally.outcome(result),
                        Step::Next(result) => last = Some(result),
                    }
                    continue;
                }
                // Something will come back by itself; only the first pick may wait or say so.
                Choice::AllCooling { retry_after_ms } if last.is_none() => (retry_after_ms, false),
                Choice::AllAtCapacity { retry_after_ms } if last.is_none() => {
                    (retry_after_ms, true)
                }
                Choice::AllRejected if last.is_none() => {
                    return tally.outcome(Err(Failure::AllRejected));
                }
                _ => break,
            };
            let back = Instant::now() + Duration::from_millis(retry_after_ms);
            if back <= wait_until {
                // Sleeps until the first credential is back (a timer, no polling).
                let slept = Instant::now();
                tokio::time::sleep_until(back.into()).await;
                tally.waited(slept.elapsed());
                ::metrics::counter!("rotor_pool_waits_total").increment(1);
                continue;
            }
            let retry_after_s = retry_after_ms.div_ceil(1000).max(1);
            let failure = if full {
                Failure::AllAtCapacity { retry_after_s }
            } else {
                Failure::AllCooling { retry_after_s }
            };
            return tally.outcome(Err(failure));
        }
        tally.outcome(last.unwrap_or(Err(Failure::Unavailable)))
    }
}

/// The failure of a client whose minute is full until `until_ms`.
fn client_limited(until_ms: u64, now_ms: u64) -> Failure {
    Failure::ClientLimited {
        retry_after_s: until_ms.saturating_sub(now_ms).div_ceil(1000).max(1),
    }
}
