//! Proactive limits: requests and tokens of one (model, credential) per UTC minute, so the
//! pick steers around a provider's `rpm`/`tpm` instead of finding them by 429. A fixed window
//! (the contract allows fixed or sliding): one counter pair, cheap to share through Redis.

/// One minute, in ms.
pub const MINUTE_MS: u64 = 60_000;

/// A pool entry's optional limits (`rpm`, `tpm` of the entry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute (counted from the usage of finished requests).
    pub tpm: Option<u64>,
}

impl Limits {
    /// Whether any limit is set (the status shows `rpm_used`/`tpm_used` only then).
    pub fn any(self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }
}

/// What one (model, credential) used in one UTC minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Window {
    /// The minute counted: ms since the epoch / [`MINUTE_MS`].
    pub minute: u64,
    /// Requests admitted in it.
    pub requests: u32,
    /// Tokens reported in it.
    pub tokens: u64,
}

impl Window {
    /// The window of the minute of `now_ms` (empty when this one is of an earlier minute).
    pub fn at(self, now_ms: u64) -> Window {
        let minute = now_ms / MINUTE_MS;
        if self.minute == minute {
            self
        } else {
            Window {
                minute,
                requests: 0,
                tokens: 0,
            }
        }
    }

    /// When the current minute is full for `limits`: the next minute's start, when there is room.
    pub fn full_until(self, limits: Limits, now_ms: u64) -> Option<u64> {
        let w = self.at(now_ms);
        let full = limits.rpm.is_some_and(|r| w.requests >= r)
            || limits.tpm.is_some_and(|t| w.tokens >= t);
        full.then(|| (w.minute + 1).saturating_mul(MINUTE_MS))
    }

    /// Counts a request the pick admitted at `now_ms`.
    pub fn count_request(&mut self, now_ms: u64) {
        *self = self.at(now_ms);
        self.requests = self.requests.saturating_add(1);
    }

    /// Counts the tokens a finished request reported at `now_ms`.
    pub fn count_tokens(&mut self, tokens: u64, now_ms: u64) {
        *self = self.at(now_ms);
        self.tokens = self.tokens.saturating_add(tokens);
    }
}
