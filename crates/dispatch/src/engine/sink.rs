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
}
