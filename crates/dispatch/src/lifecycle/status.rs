//! The explainable status of §14 as plain values: an entry's `{state, reason?,
//! cooldown_remaining_s, last_error?, rpm_used?, tpm_used?}` and a credential's
//! `health: {state, since, last_error?}`. The API crate turns them into JSON.

use super::{
    CoolReason, CredentialRecord, CredentialState, EntryRecord, EntryState, LastError, Limits,
};

/// The `state` of a pool entry's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryLabel {
    /// It serves.
    Available,
    /// Cooling down (a half-open entry shows this, reason `transient`, 0 s remaining).
    CoolingDown,
    /// Its minute is full.
    AtCapacity,
    /// Its credential's quota is spent.
    QuotaExhausted,
    /// Its credential is refused.
    Rejected,
}

impl EntryLabel {
    /// The JSON value.
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryLabel::Available => "available",
            EntryLabel::CoolingDown => "cooling_down",
            EntryLabel::AtCapacity => "at_capacity",
            EntryLabel::QuotaExhausted => "quota_exhausted",
            EntryLabel::Rejected => "rejected",
        }
    }
}

/// `entries[].status` of the load-balancing config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryStatus {
    /// What it is now (a credential-wide state shows first).
    pub state: EntryLabel,
    /// Why it cools (only with `cooling_down`).
    pub reason: Option<CoolReason>,
    /// Seconds until it returns by itself, rounded up (0 when it serves or never returns alone).
    pub cooldown_remaining_s: u64,
    /// The latest error of the entry or of its credential.
    pub last_error: Option<LastError>,
    /// Requests this minute (when the entry has a limit).
    pub rpm_used: Option<u32>,
    /// Tokens this minute (when the entry has a limit).
    pub tpm_used: Option<u64>,
}

impl EntryStatus {
    /// The status of an entry with `limits` from its (model, credential) and credential records.
    pub fn of(
        entry: &EntryRecord,
        credential: &CredentialRecord,
        limits: Limits,
        now_ms: u64,
    ) -> EntryStatus {
        let remaining = |until_ms: u64| until_ms.saturating_sub(now_ms).div_ceil(1000);
        let (state, reason, cooldown_remaining_s) = match credential.state.at(now_ms) {
            CredentialState::Rejected { .. } => (EntryLabel::Rejected, None, 0),
            CredentialState::QuotaExhausted { until_ms, .. } => {
                (EntryLabel::QuotaExhausted, None, remaining(until_ms))
            }
            CredentialState::Available => match entry.state(limits, now_ms) {
                EntryState::Available => (EntryLabel::Available, None, 0),
                EntryState::CoolingDown {
                    reason, until_ms, ..
                } => (EntryLabel::CoolingDown, Some(reason), remaining(until_ms)),
                EntryState::HalfOpen { .. } => {
                    (EntryLabel::CoolingDown, Some(CoolReason::Transient), 0)
                }
                EntryState::AtCapacity { until_ms } => {
                    (EntryLabel::AtCapacity, None, remaining(until_ms))
                }
            },
        };
        let last_error = [&entry.last_error, &credential.last_error]
            .into_iter()
            .flatten()
            .max_by_key(|e| e.at_ms)
            .cloned();
        let window = entry.window.at(now_ms);
        EntryStatus {
            state,
            reason,
            cooldown_remaining_s,
            last_error,
            rpm_used: limits.any().then_some(window.requests),
            tpm_used: limits.any().then_some(window.tokens),
        }
    }
}

/// The `state` of a credential's health (credential-wide states only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialLabel {
    /// It may serve.
    Available,
    /// The provider refuses it.
    Rejected,
    /// Its quota is spent.
    QuotaExhausted,
}

impl CredentialLabel {
    /// The JSON value.
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialLabel::Available => "available",
            CredentialLabel::Rejected => "rejected",
            CredentialLabel::QuotaExhausted => "quota_exhausted",
        }
    }
}

/// `health` of a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialHealth {
    /// What it is now.
    pub state: CredentialLabel,
    /// Since when, ms since the epoch (none when unknown: the API shows the update time).
    pub since_ms: Option<u64>,
    /// The error that put it in its state (or the last one, once it recovered).
    pub last_error: Option<LastError>,
}

impl CredentialRecord {
    /// Its health at `now_ms`.
    pub fn health(&self, now_ms: u64) -> CredentialHealth {
        let (state, since_ms) = match (self.state, self.state.at(now_ms)) {
            (_, CredentialState::Rejected { since_ms }) => {
                (CredentialLabel::Rejected, Some(since_ms))
            }
            (_, CredentialState::QuotaExhausted { since_ms, .. }) => {
                (CredentialLabel::QuotaExhausted, Some(since_ms))
            }
            // A quota that ran out by itself: available since its deadline.
            (CredentialState::QuotaExhausted { until_ms, .. }, _) => {
                (CredentialLabel::Available, Some(until_ms))
            }
            _ => (CredentialLabel::Available, None),
        };
        CredentialHealth {
            state,
            since_ms,
            last_error: self.last_error.clone(),
        }
    }
}
