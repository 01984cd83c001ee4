//! Where a request's token usage goes once it is known: after a JSON answer is read, or when
//! a stream ends (long after the gateway answered). The engine holds one sink for the whole
//! server; a request names itself with a [`UsageTag`], so the hot path allocates nothing.

use crate::state::PoolKey;
use crate::target::Family;
use crate::usage::Usage;
use std::sync::Arc;
use uuid::Uuid;

/// Takes the usage of finished answers (the usage ledger).
pub trait UsageSink: Send + Sync + 'static {
    /// `used` is what the answer of `credential` reported for the request tagged `tag`.
    fn used(&self, tag: &UsageTag, credential: Uuid, used: Usage);
}

/// Whose usage a request is: the ledger's key but the credential (known only once served).
#[derive(Debug, Clone)]
pub struct UsageTag {
    /// Workspace and model.
    pub pool: PoolKey,
    /// The model's name as clients use it.
    pub model: Arc<str>,
    /// The family whose usage fields the answer carries.
    pub family: Family,
    /// The client that asked (the gateway API key).
    pub client: Uuid,
    /// The UTC minute the request arrived in (seconds since the epoch / 60).
    pub minute: i64,
    /// The client has a `tpm`: the answer's tokens count in its minute window.
    pub client_tpm: bool,
    /// What the model's tokens cost, so the ledger can charge budgets as it counts.
    pub price: Price,
}

/// A model's prices, US dollars per million tokens (0 when unpriced; cached input at the
/// input price).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Price {
    /// Per million input tokens.
    pub input: f64,
    /// Per million output tokens.
    pub output: f64,
}

impl Price {
    /// What `input` (cached ones included) and `output` tokens cost, US dollars.
    pub fn of(self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input + output as f64 * self.output) / 1_000_000.0
    }
}
