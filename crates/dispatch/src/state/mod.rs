//! Dispatch state: the rotation cursor and the §14 lifecycle records of every pool (circuit and
//! minute window per (model, credential), affinity bindings), the credential-wide states
//! (rejected, quota exhausted), and which credential created each stored response. In-process
//! by default; shared through Redis when replicas must act as one (scale-out).

pub mod bindings;
pub mod clients;
pub mod memory;
pub mod redis;

use crate::lifecycle::{Change, Classified, CoolReason, CredentialRecord, Limits};
use crate::pick::{Book, Choice};
use bindings::{Binding, BindingStore};
use std::future::Future;
use uuid::Uuid;

/// A pool: one model of one workspace. Entry records are keyed by (pool, credential).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// Workspace.
    pub workspace: Uuid,
    /// Model.
    pub model: Uuid,
}

/// One entry of a pool as the balancer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The entry's credential (entries may repeat a credential).
    pub credential: Uuid,
    /// Its weight, ≥ 1.
    pub weight: u32,
}

/// A request's affinity key (hashed: clients choose it, the state keeps 8 bytes) and how long
/// its binding to a credential lasts after each use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sticky {
    /// Stable hash of the key ([`affinity_hash`]).
    pub key: u64,
    /// The pool's `affinity_ttl_seconds`, in ms.
    pub ttl_ms: u64,
}

/// A stable 64-bit hash of an affinity key (FNV-1a: the same on every replica and version).
pub fn affinity_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A request's API key and its per-minute limits, admitted (and counted in its minute) by the
/// first pick of the request, in the same step: one Redis round trip for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAdmit {
    /// The key's workspace (its window lives with the workspace's pools).
    pub workspace: Uuid,
    /// The API key.
    pub key: Uuid,
    /// Its `rpm` and `tpm`.
    pub limits: Limits,
}

/// The question "which entry of this pool serves next?", asked once per attempt.
#[derive(Debug, Clone, Copy)]
pub struct PickRequest<'a> {
    /// The pool.
    pub pool: PoolKey,
    /// Identifies the pool's composition; a change restarts the rotation.
    pub signature: u64,
    /// The pool's entries.
    pub candidates: &'a [Candidate],
    /// Each entry's `rpm`/`tpm`, by index (empty: none has limits).
    pub limits: &'a [Limits],
    /// Credentials this request tried already (skipped).
    pub tried: &'a [Uuid],
    /// Now, ms since the epoch (what is cooling is judged against it).
    pub now_ms: u64,
    /// The request's affinity key, when the pool is sticky: its credential is served first
    /// if it can serve, and the key is bound to whichever entry serves.
    pub sticky: Option<Sticky>,
    /// How long a half-open trial handed out keeps others away without an outcome.
    pub trial_lease_ms: u64,
    /// The client to admit first (the request's first pick only): a full minute of the
    /// client's is [`Choice::ClientFull`], before any entry is looked at.
    pub client: Option<ClientAdmit>,
}

impl PickRequest<'_> {
    /// A first attempt with no affinity and no limits: what a replayed rotation (in process)
    /// or a batch of picks (Redis) can serve.
    pub fn plain(&self) -> bool {
        self.tried.is_empty() && self.sticky.is_none() && !self.limits.iter().any(|l| l.any())
    }
}

/// An answer to report: what it was, the pool's and the credential's cooldown settings, when.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// The classified answer.
    pub answer: &'a Classified,
    /// The pool's `cooldown_seconds` (rate limits).
    pub cooldown_seconds: u32,
    /// The credential's `quota_cooldown_seconds`.
    pub quota_cooldown_seconds: u32,
    /// When it arrived, ms since the epoch.
    pub now_ms: u64,
}

/// What recording an answer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The (model, credential) cooldown it called for (counted even when a longer one runs).
    pub cooled: Option<CoolReason>,
    /// The credential-wide change it made (an audit event), seen by this call only: when
    /// replicas race, exactly one of them gets it.
    pub change: Option<Change>,
}

/// A credential in a credential-wide state (rejected or quota exhausted): what probes visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flagged {
    /// Its workspace.
    pub workspace: Uuid,
    /// The credential.
    pub credential: Uuid,
    /// Its record.
    pub record: CredentialRecord,
}

/// Where rotation and lifecycle states live.
pub trait StateBackend: clients::ClientWindows + Send + Sync + 'static {
    /// Picks the entry that serves (see [`crate::pick::pick`]) and admits the request: counted
    /// in the entry's minute, handed the half-open trial, the affinity key bound to it.
    fn pick(&self, request: PickRequest<'_>) -> impl Future<Output = Choice> + Send;

    /// Applies an answer of `credential` in `pool` to its entry record and, for a rejection or
    /// a spent quota, to its credential record (every pool of the workspace sees it).
    fn record(
        &self,
        pool: PoolKey,
        credential: Uuid,
        report: Report<'_>,
    ) -> impl Future<Output = Recorded> + Send;

    /// Counts the tokens a finished request reported (for `tpm`).
    fn count_tokens(
        &self,
        pool: PoolKey,
        credential: Uuid,
        tokens: u64,
        now_ms: u64,
    ) -> impl Future<Output = ()> + Send;

    /// The entry records of a pool (for its status and for pinned requests).
    fn book(&self, pool: PoolKey) -> impl Future<Output = Book> + Send;

    /// The credential records of `credentials` in `workspace` (missing: never flagged).
    fn credentials(
        &self,
        workspace: Uuid,
        credentials: &[Uuid],
    ) -> impl Future<Output = Vec<(Uuid, CredentialRecord)>> + Send;

    /// `DELETE …/cooldowns`: resets the pool's entry records and ends the spent quota of
    /// `credentials` (the pool's); never a rejection. Returns the credentials that recovered.
    fn reset(
        &self,
        pool: PoolKey,
        credentials: &[Uuid],
        now_ms: u64,
    ) -> impl Future<Output = Vec<Uuid>> + Send;

    /// The credential was changed, validated or probed back: available in every pool.
    fn recover(
        &self,
        workspace: Uuid,
        credential: Uuid,
        now_ms: u64,
    ) -> impl Future<Output = Option<Change>> + Send;

    /// Every credential currently rejected or quota-exhausted, for the probes.
    fn flagged(&self) -> impl Future<Output = Vec<Flagged>> + Send;

    /// Whether this replica holds the lock `name` for the next `ttl_ms` (taken when free; in
    /// process always held): one replica at a time runs the probes.
    fn lead(&self, name: &str, ttl_ms: u64) -> impl Future<Output = bool> + Send;
}

/// The configured backend (static dispatch over the available kinds). One per process, behind an
/// `Arc`: the size of its in-process variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum AnyState {
    /// In-process state.
    Memory(memory::MemoryState),
    /// Shared through Redis (with in-process fallback).
    Redis(std::sync::Arc<redis::RedisState>),
}

/// Awaits the same method on whichever backend is configured. The Redis backend's futures
/// hold a network call's state (over a kilobyte each): boxed, they do not grow the future of
/// every request that an in-process backend serves, which is moved at each `.await` above it.
macro_rules! either {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyState::Memory($s) => $call.await,
            AnyState::Redis($s) => Box::pin($call).await,
        }
    };
}

impl StateBackend for AnyState {
    async fn pick(&self, request: PickRequest<'_>) -> Choice {
        either!(self, s => s.pick(request))
    }

    async fn record(&self, pool: PoolKey, credential: Uuid, report: Report<'_>) -> Recorded {
        either!(self, s => s.record(pool, credential, report))
    }

    async fn count_tokens(&self, pool: PoolKey, credential: Uuid, tokens: u64, now_ms: u64) {
        either!(self, s => s.count_tokens(pool, credential, tokens, now_ms))
    }

    async fn book(&self, pool: PoolKey) -> Book {
        either!(self, s => s.book(pool))
    }

    async fn credentials(
        &self,
        workspace: Uuid,
        credentials: &[Uuid],
    ) -> Vec<(Uuid, CredentialRecord)> {
        either!(self, s => s.credentials(workspace, credentials))
    }

    async fn reset(&self, pool: PoolKey, credentials: &[Uuid], now_ms: u64) -> Vec<Uuid> {
        either!(self, s => s.reset(pool, credentials, now_ms))
    }

    async fn recover(&self, workspace: Uuid, credential: Uuid, now_ms: u64) -> Option<Change> {
        either!(self, s => s.recover(workspace, credential, now_ms))
    }

    async fn flagged(&self) -> Vec<Flagged> {
        either!(self, s => s.flagged())
    }

    async fn lead(&self, name: &str, ttl_ms: u64) -> bool {
        either!(self, s => s.lead(name, ttl_ms))
    }
}

impl clients::ClientWindows for AnyState {
    async fn admit(&self, client: ClientAdmit, now_ms: u64) -> Result<(), u64> {
        either!(self, s => s.admit(client, now_ms))
    }

    async fn count_client_tokens(&self, workspace: Uuid, client: Uuid, tokens: u64, now_ms: u64) {
        either!(self, s => s.count_client_tokens(workspace, client, tokens, now_ms))
    }
}

impl BindingStore for AnyState {
    async fn bind(&self, workspace: Uuid, response_id: &str, binding: Binding, now_ms: u64) {
        either!(self, s => s.bind(workspace, response_id, binding, now_ms))
    }

    async fn binding(&self, workspace: Uuid, response_id: &str, now_ms: u64) -> Option<Binding> {
        either!(self, s => s.binding(workspace, response_id, now_ms))
    }

    async fn unbind(&self, workspace: Uuid, response_id: &str) {
        either!(self, s => s.unbind(workspace, response_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_hashes_are_stable_and_distinct() {
        // FNV-1a's published test vectors: replicas and versions must agree on every key.
        assert_eq!(affinity_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(affinity_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(affinity_hash(b"session-1"), affinity_hash(b"session-2"));
    }
}
