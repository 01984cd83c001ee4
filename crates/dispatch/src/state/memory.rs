//! In-process dispatch state: one mutex-guarded rotation and cooldown table per pool.

use super::{choose, merge, Candidate, Cooldown, Pick, PoolKey, StateBackend};
use crate::balancer::Rotation;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use uuid::Uuid;

#[derive(Default)]
struct Pool {
    signature: u64,
    rotation: Rotation,
    cooldowns: HashMap<Uuid, Cooldown>,
}

/// Rotation and cooldowns held in this process.
#[derive(Default)]
pub struct MemoryState {
    pools: RwLock<HashMap<PoolKey, Arc<Mutex<Pool>>>>,
}

impl MemoryState {
    fn pool(&self, key: PoolKey) -> Arc<Mutex<Pool>> {
        if let Some(p) = self.pools.read().ok().and_then(|m| m.get(&key).cloned()) {
            return p;
        }
        match self.pools.write() {
            Ok(mut m) => m.entry(key).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Picks synchronously (the async trait method wraps this; benchmarks call it directly).
    pub fn pick_now(
        &self,
        key: PoolKey,
        signature: u64,
        candidates: &[Candidate],
        tried: &[Uuid],
        now_ms: u64,
    ) -> Pick {
        let pool = self.pool(key);
        let Ok(mut p) = pool.lock() else {
            return Pick::Exhausted;
        };
        if p.signature != signature {
            p.signature = signature;
            p.rotation = Rotation::new(candidates.len());
        }
        let Pool {
            rotation,
            cooldowns,
            ..
        } = &mut *p;
        choose(
            rotation,
            candidates,
            tried,
            |c| cooldowns.get(&c).map(|cd| cd.until_ms),
            now_ms,
        )
    }
}

impl StateBackend for MemoryState {
    async fn pick(
        &self,
        key: PoolKey,
        signature: u64,
        candidates: &[Candidate],
        tried: &[Uuid],
        now_ms: u64,
    ) -> Pick {
        self.pick_now(key, signature, candidates, tried, now_ms)
    }

    async fn cool(&self, key: PoolKey, credential: Uuid, cooldown: Cooldown) {
        let pool = self.pool(key);
        if let Ok(mut p) = pool.lock() {
            let merged = merge(p.cooldowns.get(&credential).copied(), cooldown);
            p.cooldowns.insert(credential, merged);
        };
    }

    async fn cooldowns(&self, key: PoolKey) -> HashMap<Uuid, Cooldown> {
        let pool = self.pool(key);
        let guard = pool.lock();
        guard.map(|p| p.cooldowns.clone()).unwrap_or_default()
    }

    async fn clear(&self, key: PoolKey) {
        let pool = self.pool(key);
        if let Ok(mut p) = pool.lock() {
            p.cooldowns.clear();
        };
    }
}
