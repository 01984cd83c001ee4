//! The per-(model, credential) states of §14: the circuit an entry's answers drive —
//! closed (available), open (cooling down: rate-limited, or transient with doubling backoff),
//! half-open (one trial may go) — and the minute window that makes it at capacity.

use super::{backoff, ms, Classified, CoolReason, LastError, Limits, Trigger, Window};
use crate::cooldown::TRANSIENT;
use std::time::Duration;

/// Retry hint for an entry whose half-open trial is out (its outcome usually comes within seconds).
pub const TRIAL_RETRY_MS: u64 = 1_000;

/// What an entry's answers made of it (stored; judge it with [`Circuit::at`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Circuit {
    /// Available.
    #[default]
    Closed,
    /// Cooling down until `until_ms`.
    Open {
        /// Why (the reason of the answer with the later deadline).
        reason: CoolReason,
        /// Deadline, ms since the epoch.
        until_ms: u64,
        /// Transient failures in a row (0: none; then it closes at the deadline, else it
        /// turns half-open).
        step: u8,
    },
    /// A transient cooldown ended: one trial request may go.
    HalfOpen {
        /// Transient failures in a row so far (the next cooldown is [`backoff`]`(step + 1)`).
        step: u8,
        /// While a trial is out, when it is given up on (0: no trial out).
        trial_until_ms: u64,
    },
}

impl Circuit {
    /// The circuit as time moved it: expired cooldowns close or turn half-open; stale trials go.
    pub fn at(self, now_ms: u64) -> Circuit {
        match self {
            Circuit::Open { until_ms, step, .. } if until_ms <= now_ms => match step {
                0 => Circuit::Closed,
                step => Circuit::HalfOpen {
                    step,
                    trial_until_ms: 0,
                },
            },
            Circuit::HalfOpen {
                step,
                trial_until_ms,
            } if trial_until_ms <= now_ms => Circuit::HalfOpen {
                step,
                trial_until_ms: 0,
            },
            c => c,
        }
    }

    /// When its answers let it serve again, if not now (a deadline, or soon for a trial out).
    pub fn back_at(self, now_ms: u64) -> Option<u64> {
        match self.at(now_ms) {
            Circuit::Open { until_ms, .. } => Some(until_ms),
            Circuit::HalfOpen { trial_until_ms, .. } if trial_until_ms != 0 => {
                Some(trial_until_ms.min(now_ms.saturating_add(TRIAL_RETRY_MS)))
            }
            _ => None,
        }
    }

    /// Transient failures in a row.
    pub fn step(self) -> u8 {
        match self {
            Circuit::Closed => 0,
            Circuit::Open { step, .. } | Circuit::HalfOpen { step, .. } => step,
        }
    }

    /// A cooldown until `until_ms`, keeping a running one with a later deadline and its reason.
    fn cooled(self, reason: CoolReason, until_ms: u64, step: u8) -> Circuit {
        match self {
            Circuit::Open {
                reason: old,
                until_ms: running,
                ..
            } if running >= until_ms => Circuit::Open {
                reason: old,
                until_ms: running,
                step,
            },
            _ => Circuit::Open {
                reason,
                until_ms,
                step,
            },
        }
    }

    /// The circuit after `answer` arrived at `now_ms` (`cooldown_seconds` is the pool's).
    pub fn after(self, answer: &Classified, cooldown_seconds: u32, now_ms: u64) -> Circuit {
        let c = self.at(now_ms);
        let at = |d: Duration| now_ms.saturating_add(ms(d));
        let next = match (answer.trigger, c) {
            (Trigger::Success, Circuit::HalfOpen { .. }) => Circuit::Closed,
            (Trigger::Transient, Circuit::Closed) => {
                Circuit::cooled(c, CoolReason::Transient, at(backoff(1)), 1)
            }
            // The trial failed: twice as long as last time.
            (Trigger::Transient, Circuit::HalfOpen { step, .. }) => {
                let step = step.saturating_add(1);
                c.cooled(CoolReason::Transient, at(backoff(step)), step)
            }
            // A request sent before the cooldown failed too: the plain 10 s, later deadline kept.
            (Trigger::Transient, Circuit::Open { step, .. }) => {
                c.cooled(CoolReason::Transient, at(TRANSIENT), step.max(1))
            }
            (Trigger::RateLimited, c) => {
                let configured = Duration::from_secs(u64::from(cooldown_seconds));
                let d = configured.max(answer.reset.unwrap_or_default());
                c.cooled(CoolReason::RateLimited, at(d), c.step())
            }
            // Settled without a verdict on the provider (quota, key, the caller's error): the
            // next request may try again.
            (_, Circuit::HalfOpen { step, .. }) => Circuit::HalfOpen {
                step,
                trial_until_ms: 0,
            },
            (_, c) => c,
        };
        // A limit announced as spent cools until it refills, whatever else the answer meant.
        match answer.reset.filter(|d| !d.is_zero()) {
            Some(d) if answer.trigger != Trigger::RateLimited => {
                next.cooled(CoolReason::RateLimited, at(d), next.step())
            }
            _ => next,
        }
    }
}

/// An entry's state at a moment, as the pick and the status see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryState {
    /// It may serve.
    Available,
    /// Cooling down until `until_ms`.
    CoolingDown {
        /// Why.
        reason: CoolReason,
        /// Deadline, ms since the epoch.
        until_ms: u64,
        /// Transient failures in a row (the backoff step).
        step: u8,
    },
    /// After a transient cooldown: one trial may go (none while `trial_out`).
    HalfOpen {
        /// Transient failures in a row.
        step: u8,
        /// A trial is out: others skip the entry until its outcome.
        trial_out: bool,
    },
    /// Its `rpm` or `tpm` is reached for the current minute.
    AtCapacity {
        /// When the next minute starts, ms since the epoch.
        until_ms: u64,
    },
}

/// What one (model, credential) remembers (stored by the state backend).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryRecord {
    /// What its answers made of it.
    pub circuit: Circuit,
    /// What it used this minute.
    pub window: Window,
    /// The last error it got.
    pub last_error: Option<LastError>,
}

impl EntryRecord {
    /// Its state at `now_ms` under the entry's `limits` (a cooldown shows before capacity).
    pub fn state(&self, limits: Limits, now_ms: u64) -> EntryState {
        match self.circuit.at(now_ms) {
            Circuit::Open {
                reason,
                until_ms,
                step,
            } => EntryState::CoolingDown {
                reason,
                until_ms,
                step,
            },
            c => match (self.window.full_until(limits, now_ms), c) {
                (Some(until_ms), _) => EntryState::AtCapacity { until_ms },
                (
                    None,
                    Circuit::HalfOpen {
                        step,
                        trial_until_ms,
                    },
                ) => EntryState::HalfOpen {
                    step,
                    trial_out: trial_until_ms != 0,
                },
                (None, _) => EntryState::Available,
            },
        }
    }

    /// Whether a pick may send it a request (available, or half-open with no trial out).
    pub fn can_serve(&self, limits: Limits, now_ms: u64) -> bool {
        matches!(
            self.state(limits, now_ms),
            EntryState::Available
                | EntryState::HalfOpen {
                    trial_out: false,
                    ..
                }
        )
    }

    /// When it can serve again by itself, if it cannot at `now_ms` (ms since the epoch).
    pub fn back_at(&self, limits: Limits, now_ms: u64) -> Option<u64> {
        let circuit = self.circuit.back_at(now_ms);
        let capacity = self.window.full_until(limits, now_ms);
        match (circuit, capacity) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// A pick sends it a request: counted in the minute; true when it is the half-open trial.
    pub fn admit(&mut self, now_ms: u64, trial_lease_ms: u64) -> bool {
        self.window.count_request(now_ms);
        self.take_trial(now_ms, trial_lease_ms)
    }

    /// A pick sends it a request it does not count (the entry has no limits): true when it is
    /// the half-open trial, whose lease then keeps other requests away.
    pub fn take_trial(&mut self, now_ms: u64, trial_lease_ms: u64) -> bool {
        match self.circuit.at(now_ms) {
            Circuit::HalfOpen {
                step,
                trial_until_ms: 0,
            } => {
                self.circuit = Circuit::HalfOpen {
                    step,
                    trial_until_ms: now_ms.saturating_add(trial_lease_ms.max(1)),
                };
                true
            }
            _ => false,
        }
    }

    /// Applies an answer; returns the cooldown it called for (counted even when one outlasts it).
    pub fn record(
        &mut self,
        answer: &Classified,
        cooldown_seconds: u32,
        now_ms: u64,
    ) -> Option<CoolReason> {
        self.circuit = self.circuit.after(answer, cooldown_seconds, now_ms);
        if let Some(error) = answer.last_error(now_ms) {
            self.last_error = Some(error);
        }
        match answer.trigger {
            Trigger::Transient => Some(CoolReason::Transient),
            Trigger::RateLimited => Some(CoolReason::RateLimited),
            _ => answer
                .reset
                .filter(|d| !d.is_zero())
                .map(|_| CoolReason::RateLimited),
        }
    }

    /// Counts the tokens a finished request reported at `now_ms` (for `tpm`).
    pub fn count_tokens(&mut self, tokens: u64, now_ms: u64) {
        self.window.count_tokens(tokens, now_ms);
    }

    /// `DELETE …/cooldowns`: ends cooling, half-open backoff and at capacity; `last_error` stays.
    pub fn reset(&mut self) {
        self.circuit = Circuit::Closed;
        self.window = Window::default();
    }
}
