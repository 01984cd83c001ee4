//! The credential-wide states of §14 — quota exhausted, rejected — shared by every model the
//! credential serves, and the changes that are audit events.

use super::{ms, Classified, LastError, Trigger};
use std::time::Duration;

/// What a credential is, whatever the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CredentialState {
    /// It may serve.
    #[default]
    Available,
    /// Its credit or daily quota is gone: out of every pool until `until_ms` or a probe.
    QuotaExhausted {
        /// When it is tried again by itself, ms since the epoch.
        until_ms: u64,
        /// When it entered the state.
        since_ms: u64,
    },
    /// The provider refuses the key: out of every pool until changed, validated or probed back.
    Rejected {
        /// When it entered the state.
        since_ms: u64,
    },
}

impl CredentialState {
    /// The state as time has moved it by `now_ms` (an expired quota is available again).
    pub fn at(self, now_ms: u64) -> CredentialState {
        match self {
            CredentialState::QuotaExhausted { until_ms, .. } if until_ms <= now_ms => {
                CredentialState::Available
            }
            s => s,
        }
    }

    /// Whether the credential may serve at `now_ms`.
    pub fn admits(self, now_ms: u64) -> bool {
        self.at(now_ms) == CredentialState::Available
    }
}

/// A state change worth an audit event (`credential.<verb>`) and a gauge update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// It became rejected.
    Rejected,
    /// Its quota ran out.
    QuotaExhausted,
    /// It is available again (changed, validated, probed, or reset by an admin).
    Recovered,
}

impl Change {
    /// The audit action.
    pub const fn action(self) -> &'static str {
        match self {
            Change::Rejected => "credential.rejected",
            Change::QuotaExhausted => "credential.quota_exhausted",
            Change::Recovered => "credential.recovered",
        }
    }
}

/// What a credential remembers: its state and the error that put it there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialRecord {
    /// Its state (as stored: judge it with [`CredentialState::at`]).
    pub state: CredentialState,
    /// The last credential-wide error (a rejection or a spent quota).
    pub last_error: Option<LastError>,
}

impl CredentialRecord {
    /// Applies an answer (quota cooldown: the credential's setting); returns the change to audit.
    pub fn record(
        &mut self,
        answer: &Classified,
        quota_cooldown_seconds: u32,
        now_ms: u64,
    ) -> Option<Change> {
        let state = self.state.at(now_ms);
        let next = match (answer.trigger, state) {
            (Trigger::Rejected, CredentialState::Rejected { .. }) => state,
            (Trigger::Rejected, _) => CredentialState::Rejected { since_ms: now_ms },
            // Rejected is the stronger state: a spent quota does not hide it.
            (Trigger::QuotaExhausted, CredentialState::Rejected { .. }) => state,
            (Trigger::QuotaExhausted, _) => {
                let until = now_ms
                    .saturating_add(ms(Duration::from_secs(u64::from(quota_cooldown_seconds))));
                match state {
                    // A new cooldown never shortens a running one.
                    CredentialState::QuotaExhausted { until_ms, since_ms } => {
                        CredentialState::QuotaExhausted {
                            until_ms: until_ms.max(until),
                            since_ms,
                        }
                    }
                    _ => CredentialState::QuotaExhausted {
                        until_ms: until,
                        since_ms: now_ms,
                    },
                }
            }
            _ => return None,
        };
        self.last_error = answer.last_error(now_ms);
        let change = entered(state, next);
        self.state = next;
        change
    }

    /// The credential was changed (PATCH), validated successfully or probed back: available.
    pub fn recover(&mut self, now_ms: u64) -> Option<Change> {
        let was = self.state.at(now_ms);
        self.state = CredentialState::Available;
        (was != CredentialState::Available).then_some(Change::Recovered)
    }

    /// `DELETE …/cooldowns`: ends a spent quota (credit topped up), never a rejection.
    pub fn reset(&mut self, now_ms: u64) -> Option<Change> {
        match self.state.at(now_ms) {
            CredentialState::QuotaExhausted { .. } => self.recover(now_ms),
            _ => None,
        }
    }
}

/// The change from `before` to `after`, if the kind of state changed.
fn entered(before: CredentialState, after: CredentialState) -> Option<Change> {
    match (before, after) {
        (CredentialState::Rejected { .. }, CredentialState::Rejected { .. })
        | (CredentialState::QuotaExhausted { .. }, CredentialState::QuotaExhausted { .. }) => None,
        (_, CredentialState::Rejected { .. }) => Some(Change::Rejected),
        (_, CredentialState::QuotaExhausted { .. }) => Some(Change::QuotaExhausted),
        (CredentialState::Available, CredentialState::Available) => None,
        (_, CredentialState::Available) => Some(Change::Recovered),
    }
}
