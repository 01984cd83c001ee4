//! This replica's copy of each workspace's credential-wide states, what the pick script gets
//! as arguments (those records live in another slot than the pool's keys). Refreshed from Redis
//! when older than [`FRESH`], updated at once by this replica's own writes, so another
//! replica's rejection stops picks here within a second. Bounded: workspaces unused for
//! [`IDLE`] are dropped, and at most [`CAP`] are kept.

use crate::lifecycle::CredentialState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a copy serves picks before it is read again.
pub const FRESH: Duration = Duration::from_millis(500);
/// Workspaces unused for this long are forgotten.
pub const IDLE: Duration = Duration::from_secs(600);
/// Most workspaces kept (beyond it, picks read Redis each time: correct, one more round trip).
pub const CAP: usize = 10_000;

/// The credentials of one workspace not stored as available.
pub type States = Arc<HashMap<Uuid, CredentialState>>;

struct Copy {
    states: States,
    fetched: Option<Instant>,
    used: Instant,
    /// Bumped by every local write, so a read that raced it does not undo it.
    generation: u64,
}

/// The per-workspace copies.
#[derive(Default)]
pub struct CredentialCache {
    map: Mutex<HashMap<Uuid, Copy>>,
}

/// A copy too old to use: read Redis, then [`CredentialCache::fetched`] with this.
#[derive(Debug)]
pub struct Stale(u64);

impl CredentialCache {
    /// The fresh copy of `workspace`, or what to hand back after reading it.
    pub fn get(&self, workspace: Uuid, now: Instant) -> Result<States, Stale> {
        let Ok(mut map) = self.map.lock() else {
            return Err(Stale(u64::MAX));
        };
        match map.get_mut(&workspace) {
            Some(c) => {
                c.used = now;
                match c.fetched {
                    Some(at) if now.duration_since(at) < FRESH => Ok(c.states.clone()),
                    _ => Err(Stale(c.generation)),
                }
            }
            None => Err(Stale(0)),
        }
    }

    /// Stores what was read (unless a local write came in between).
    pub fn fetched(&self, workspace: Uuid, stale: Stale, states: States, now: Instant) {
        let Ok(mut map) = self.map.lock() else { return };
        if let Some(c) = map.get_mut(&workspace) {
            if c.generation == stale.0 {
                c.states = states;
                c.fetched = Some(now);
            }
            return;
        }
        if stale.0 != 0 {
            return;
        }
        if map.len() >= CAP / 2 {
            map.retain(|_, c| now.duration_since(c.used) < IDLE);
        }
        if map.len() >= CAP {
            return;
        }
        map.insert(
            workspace,
            Copy {
                states,
                fetched: Some(now),
                used: now,
                generation: 0,
            },
        );
    }

    /// This replica wrote `credential`'s state.
    pub fn wrote(&self, workspace: Uuid, credential: Uuid, state: CredentialState) {
        let Ok(mut map) = self.map.lock() else { return };
        let Some(c) = map.get_mut(&workspace) else {
            // Not cached: the next pick reads Redis anyway.
            return;
        };
        let mut states = (*c.states).clone();
        if state == CredentialState::Available {
            states.remove(&credential);
        } else {
            states.insert(credential, state);
        }
        c.states = Arc::new(states);
        c.generation = c.generation.wrapping_add(1).max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_writes_win_over_a_racing_read_and_copies_go_stale() {
        let cache = CredentialCache::default();
        let (ws, c) = (Uuid::new_v4(), Uuid::new_v4());
        let t0 = Instant::now();
        let Err(stale) = cache.get(ws, t0) else {
            panic!("empty cache is stale")
        };
        cache.fetched(ws, stale, States::default(), t0);
        assert!(cache.get(ws, t0).is_ok());
        let Err(stale) = cache.get(ws, t0 + FRESH) else {
            panic!("old copy is stale")
        };
        let rejected = CredentialState::Rejected { since_ms: 1 };
        cache.wrote(ws, c, rejected);
        // A read begun before the write does not undo it.
        cache.fetched(ws, stale, States::default(), t0 + FRESH);
        let Err(stale) = cache.get(ws, t0 + FRESH) else {
            panic!("still stale")
        };
        cache.fetched(
            ws,
            stale,
            Arc::new([(c, rejected)].into_iter().collect()),
            t0 + FRESH,
        );
        assert_eq!(cache.get(ws, t0 + FRESH).unwrap().get(&c), Some(&rejected));
    }
}
