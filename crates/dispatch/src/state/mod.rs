//! Dispatch state: the rotation cursor and the cooldowns of every pool, and which credential
//! created each stored response. In-process by default; shared through Redis when replicas
//! must act as one (scale-out).

pub mod bindings;
pub mod memory;
pub mod redis;

use crate::cooldown::Reason;
use bindings::{Binding, BindingStore};
use std::collections::HashMap;
use std::future::Future;
use uuid::Uuid;

/// A pool: one model of one workspace. Cooldowns are keyed by (pool, credential).
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

/// The question "which entry of this pool serves next?", asked once per attempt.
#[derive(Debug, Clone, Copy)]
pub struct PickRequest<'a> {
    /// The pool.
    pub pool: PoolKey,
    /// Identifies the pool's composition; a change restarts the rotation.
    pub signature: u64,
    /// The pool's entries.
    pub candidates: &'a [Candidate],
    /// Credentials this request tried already (skipped).
    pub tried: &'a [Uuid],
    /// Now, ms since the epoch (what is cooling is judged against it).
    pub now_ms: u64,
}

/// The answer to "which entry serves next?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Serve with this entry (an index into the candidates).
    Entry(usize),
    /// Every untried credential is cooling down; the first is back in this many ms.
    AllCooling {
        /// Milliseconds until the first credential is available again.
        retry_after_ms: u64,
    },
    /// Every credential was tried already.
    Exhausted,
}

/// A running cooldown, with the error that started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cooldown {
    /// Deadline, ms since the epoch.
    pub until_ms: u64,
    /// Why.
    pub reason: Reason,
    /// The upstream status that started it (none for connect errors and timeouts).
    pub status: Option<u16>,
    /// When it started, ms since the epoch.
    pub at_ms: u64,
}

/// Where rotation and cooldowns live.
pub trait StateBackend: Send + Sync + 'static {
    /// Picks the next entry of the pool, skipping credentials tried already and those
    /// cooling down.
    fn pick(&self, request: PickRequest<'_>) -> impl Future<Output = Pick> + Send;

    /// Starts a cooldown; a running one with a later deadline is kept.
    fn cool(
        &self,
        pool: PoolKey,
        credential: Uuid,
        cooldown: Cooldown,
    ) -> impl Future<Output = ()> + Send;

    /// The cooldowns of a pool (running or expired-but-remembered, for `last_error`).
    fn cooldowns(&self, pool: PoolKey) -> impl Future<Output = HashMap<Uuid, Cooldown>> + Send;

    /// Ends every cooldown of a pool.
    fn clear(&self, pool: PoolKey) -> impl Future<Output = ()> + Send;
}

/// Merges a new cooldown into an existing one: the later deadline wins, the newer error is kept.
pub fn merge(existing: Option<Cooldown>, new: Cooldown) -> Cooldown {
    match existing {
        Some(old) if old.until_ms > new.until_ms => Cooldown {
            until_ms: old.until_ms,
            reason: old.reason,
            ..new
        },
        _ => new,
    }
}

/// The pick over candidates given which credentials are cooling (shared by every backend).
pub fn choose(
    rotation: &mut crate::balancer::Rotation,
    request: PickRequest<'_>,
    cooling_until: impl Fn(Uuid) -> Option<u64>,
) -> Pick {
    let PickRequest {
        candidates,
        tried,
        now_ms,
        ..
    } = request;
    let untried = |i: usize| !tried.contains(&candidates[i].credential);
    let cooling = |i: usize| cooling_until(candidates[i].credential).filter(|u| *u > now_ms);
    if let Some(i) = rotation.pick_with(
        candidates.len(),
        |i| candidates[i].weight,
        |i| untried(i) && cooling(i).is_none(),
    ) {
        return Pick::Entry(i);
    }
    let soonest = (0..candidates.len())
        .filter(|i| untried(*i))
        .filter_map(cooling)
        .min();
    match soonest {
        Some(until) => Pick::AllCooling {
            retry_after_ms: until - now_ms,
        },
        None => Pick::Exhausted,
    }
}

/// The configured backend (static dispatch over the available kinds).
pub enum AnyState {
    /// In-process state.
    Memory(memory::MemoryState),
    /// Shared through Redis (with in-process fallback).
    Redis(std::sync::Arc<redis::RedisState>),
}

impl StateBackend for AnyState {
    async fn pick(&self, request: PickRequest<'_>) -> Pick {
        match self {
            AnyState::Memory(m) => m.pick(request).await,
            AnyState::Redis(r) => r.pick(request).await,
        }
    }

    async fn cool(&self, pool: PoolKey, credential: Uuid, cooldown: Cooldown) {
        match self {
            AnyState::Memory(m) => m.cool(pool, credential, cooldown).await,
            AnyState::Redis(r) => r.cool(pool, credential, cooldown).await,
        }
    }

    async fn cooldowns(&self, pool: PoolKey) -> HashMap<Uuid, Cooldown> {
        match self {
            AnyState::Memory(m) => m.cooldowns(pool).await,
            AnyState::Redis(r) => r.cooldowns(pool).await,
        }
    }

    async fn clear(&self, pool: PoolKey) {
        match self {
            AnyState::Memory(m) => m.clear(pool).await,
            AnyState::Redis(r) => r.clear(pool).await,
        }
    }
}

impl BindingStore for AnyState {
    async fn bind(&self, workspace: Uuid, response_id: &str, binding: Binding, now_ms: u64) {
        match self {
            AnyState::Memory(m) => m.bind(workspace, response_id, binding, now_ms).await,
            AnyState::Redis(r) => r.bind(workspace, response_id, binding, now_ms).await,
        }
    }

    async fn binding(&self, workspace: Uuid, response_id: &str, now_ms: u64) -> Option<Binding> {
        match self {
            AnyState::Memory(m) => m.binding(workspace, response_id, now_ms).await,
            AnyState::Redis(r) => r.binding(workspace, response_id, now_ms).await,
        }
    }

    async fn unbind(&self, workspace: Uuid, response_id: &str) {
        match self {
            AnyState::Memory(m) => m.unbind(workspace, response_id).await,
            AnyState::Redis(r) => r.unbind(workspace, response_id).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::Rotation;
    use proptest::prelude::*;

    fn ask<'a>(candidates: &'a [Candidate], tried: &'a [Uuid], now_ms: u64) -> PickRequest<'a> {
        PickRequest {
            pool: PoolKey {
                workspace: Uuid::nil(),
                model: Uuid::nil(),
            },
            signature: 0,
            candidates,
            tried,
            now_ms,
        }
    }

    fn cd(until_ms: u64, reason: Reason) -> Cooldown {
        Cooldown {
            until_ms,
            reason,
            status: None,
            at_ms: 0,
        }
    }

    proptest! {
        #[test]
        fn the_later_deadline_always_wins(a in 0u64..10_000, b in 0u64..10_000) {
            let merged = merge(Some(cd(a, Reason::RateLimited)), cd(b, Reason::UpstreamError));
            prop_assert_eq!(merged.until_ms, a.max(b));
        }

        #[test]
        fn all_cooling_reports_the_first_return(untils in prop::collection::vec(1_001u64..100_000, 1..8)) {
            let candidates: Vec<Candidate> = untils.iter().map(|_| Candidate { credential: Uuid::new_v4(), weight: 1 }).collect();
            let until = |c: Uuid| candidates.iter().position(|x| x.credential == c).map(|i| untils[i]);
            let pick = choose(&mut Rotation::default(), ask(&candidates, &[], 1_000), until);
            prop_assert_eq!(pick, Pick::AllCooling { retry_after_ms: untils.iter().min().unwrap() - 1_000 });
        }

        #[test]
        fn cooled_and_tried_credentials_are_skipped(n in 2usize..8, cooled in 0usize..8, tried in 0usize..8) {
            let candidates: Vec<Candidate> = (0..n).map(|_| Candidate { credential: Uuid::new_v4(), weight: 2 }).collect();
            let cooled_cred = candidates[cooled % n].credential;
            let tried_cred = candidates[tried % n].credential;
            let mut r = Rotation::default();
            for _ in 0..20 {
                match choose(&mut r, ask(&candidates, &[tried_cred], 1_000), |c| (c == cooled_cred).then_some(5_000)) {
                    Pick::Entry(i) => {
                        prop_assert_ne!(candidates[i].credential, cooled_cred);
                        prop_assert_ne!(candidates[i].credential, tried_cred);
                    }
                    other => prop_assert!(n <= 2 && cooled % n != tried % n || n == 1, "{:?}", other),
                }
            }
        }
    }
}
