//! The credential lifecycle of DESIGN §14 as data and pure transitions: what each
//! (model, credential) and each credential is — available, cooling down (rate-limited or
//! transient, with a half-open trial and doubling backoff), at capacity, quota-exhausted,
//! rejected — and how a classified upstream answer, a reset or a recovery changes it. No I/O:
//! the clock comes in as ms since the epoch, and the state backends store these values.
//!
//! Decisions where the contract is silent, written down here:
//! - Every outcome that arrives while an entry is half-open settles its trial, whichever
//!   request brought it (an answer to a request sent before the cooldown counts too).
//! - A trial that never reports back (a cancelled request) is forgotten after its lease (the
//!   request deadline), so an entry cannot be stuck half-open.
//! - A success during a running cooldown does not end it: the cooldown was started by a later
//!   answer than that request's start, and only its deadline or a reset ends it.
//! - A success does not clear a credential-wide state: only a change, a validation or a probe
//!   recovers a rejected or quota-exhausted credential (the probe runs every few minutes).
//! - A reset keeps `last_error`: it is a fact with a date, not a state.
//! - A 429 answering a half-open trial cools it as a rate limit but keeps the transient
//!   backoff step: the provider answered, yet no success proved it healthy, so a trial follows.

mod answer;
mod credential;
mod entry;
mod status;
mod window;

#[cfg(test)]
mod tests;

pub use answer::{body_matters, classify, transport, Classified, Trigger};
pub use credential::{Change, CredentialRecord, CredentialState};
pub use entry::{Circuit, EntryRecord, EntryState, TRIAL_RETRY_MS};
pub use status::{CredentialHealth, CredentialLabel, EntryLabel, EntryStatus};
pub use window::{Limits, Window, MINUTE_MS};

use crate::cooldown::TRANSIENT;
use std::time::Duration;

/// Cap of the transient backoff: a provider down for long is still tried every five minutes.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// `quota_cooldown_seconds` when the credential does not set it (an hour: quotas refill slowly).
pub const DEFAULT_QUOTA_COOLDOWN_S: u32 = 3600;

/// How long an unreported half-open trial keeps others away (the default request deadline).
pub const DEFAULT_TRIAL_LEASE_MS: u64 = 300_000;

/// Why a (model, credential) cools down (the `reason` of its status, a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoolReason {
    /// A 429 that is not about quota, or a limit announced as spent (`-remaining: 0`).
    RateLimited,
    /// 5xx, 529, a timeout, no connection or a broken stream: retried by a half-open trial.
    Transient,
}

impl CoolReason {
    /// The label in the status and in metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            CoolReason::RateLimited => "rate_limited",
            CoolReason::Transient => "transient",
        }
    }
}

/// What started a cooldown or a credential-wide state (`rotor_cooldowns_started_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// A rate limit (429, or a spent limit announced by `-remaining: 0`).
    RateLimited,
    /// A server error, timeout, connection error or broken stream.
    Transient,
    /// The credential's quota or credit ran out.
    QuotaExhausted,
    /// The provider refused the credential.
    Rejected,
}

impl Cause {
    /// Every cause, in declaration order (the order of a series' counters).
    pub const ALL: [Cause; 4] = [
        Cause::RateLimited,
        Cause::Transient,
        Cause::QuotaExhausted,
        Cause::Rejected,
    ];

    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Cause::RateLimited => "rate_limited",
            Cause::Transient => "transient",
            Cause::QuotaExhausted => "quota_exhausted",
            Cause::Rejected => "rejected",
        }
    }

    /// Its position in [`Cause::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl From<CoolReason> for Cause {
    fn from(r: CoolReason) -> Self {
        match r {
            CoolReason::RateLimited => Cause::RateLimited,
            CoolReason::Transient => Cause::Transient,
        }
    }
}

/// The last error an entry or a credential got, shown in its status so an admin sees why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// The upstream status (none for timeouts, connect errors and broken streams).
    pub status: Option<u16>,
    /// The upstream's error code from the body (`insufficient_quota`, `rate_limit_exceeded`).
    pub code: Option<String>,
    /// When it arrived, ms since the epoch.
    pub at_ms: u64,
}

/// The `step`-th transient cooldown in a row: 10 s, 20 s, 40 s … capped at [`MAX_BACKOFF`].
pub fn backoff(step: u8) -> Duration {
    if step == 0 {
        return Duration::ZERO;
    }
    let doublings = u32::from(step - 1).min(16);
    TRANSIENT.saturating_mul(1u32 << doublings).min(MAX_BACKOFF)
}

/// `d` in whole milliseconds, saturating (deadlines are ms since the epoch).
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2)
}
