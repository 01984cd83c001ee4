//! In-process dispatch state: one mutex-guarded rotation and cooldown list per pool, and the
//! response-id bindings.

use super::bindings::{Binding, BindingStore, MemoryBindings};
use super::{choose, merge, Cooldown, Pick, PickRequest, PoolKey, StateBackend};
use crate::balancer::Rotation;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, RwLock};
use uuid::Uuid;

/// Pool keys are random UUIDs: their own bytes are already a good hash, and SipHash would
/// dominate the cost of a pick.
#[derive(Default)]
struct UuidHasher(u64);

impl Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(b))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

#[derive(Default)]
struct Pool {
    signature: u64,
    rotation: Rotation,
    /// Few at a time, so a list beats a map.
    cooldowns: Vec<(Uuid, Cooldown)>,
    /// Bit i set: candidate i is cooling (valid until `mask_until` or the next change).
    mask: u64,
    mask_valid: bool,
    mask_until: u64,
}

/// Rotation, cooldowns and response-id bindings held in this process.
#[derive(Default)]
pub struct MemoryState {
    pools: RwLock<HashMap<PoolKey, Arc<Mutex<Pool>>, BuildHasherDefault<UuidHasher>>>,
    bindings: MemoryBindings,
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
    pub fn pick_now(&self, request: PickRequest<'_>) -> Pick {
        // Common case: the pool exists; pick under the map's read lock (no Arc traffic).
        if let Ok(map) = self.pools.read() {
            if let Some(pool) = map.get(&request.pool) {
                let Ok(mut p) = pool.lock() else {
                    return Pick::Exhausted;
                };
                return Self::pick_in(&mut p, request);
            }
        }
        let pool = self.pool(request.pool);
        let Ok(mut p) = pool.lock() else {
            return Pick::Exhausted;
        };
        Self::pick_in(&mut p, request)
    }

    fn pick_in(p: &mut Pool, request: PickRequest<'_>) -> Pick {
        let PickRequest {
            signature,
            candidates,
            tried,
            now_ms,
            ..
        } = request;
        if p.signature != signature {
            p.signature = signature;
            p.rotation = Rotation::new(candidates.len());
            p.mask_valid = false;
        }
        let Pool {
            rotation,
            cooldowns,
            mask,
            mask_valid,
            mask_until,
            ..
        } = p;
        let until = |c: Uuid| {
            cooldowns
                .iter()
                .find(|(id, _)| *id == c)
                .map(|(_, cd)| cd.until_ms)
        };
        if candidates.len() > 64 {
            return choose(rotation, request, until);
        }
        // Which candidates are cooling changes only when a cooldown starts or ends: keep it as a
        // bit mask until then, so the common pick is the rotation alone.
        if !*mask_valid || now_ms >= *mask_until {
            *mask = 0;
            *mask_until = u64::MAX;
            for (id, cd) in cooldowns.iter().filter(|(_, cd)| cd.until_ms > now_ms) {
                for (i, c) in candidates.iter().enumerate() {
                    if c.credential == *id {
                        *mask |= 1 << i;
                    }
                }
                *mask_until = (*mask_until).min(cd.until_ms);
            }
            *mask_valid = true;
        }
        let blocked = *mask;
        let free = |i: usize| blocked & (1 << i) == 0 && !tried.contains(&candidates[i].credential);
        match rotation.pick_with(candidates.len(), |i| candidates[i].weight, free) {
            Some(i) => Pick::Entry(i),
            None => choose(rotation, request, until),
        }
    }
}

impl StateBackend for MemoryState {
    async fn pick(&self, request: PickRequest<'_>) -> Pick {
        self.pick_now(request)
    }

    async fn cool(&self, key: PoolKey, credential: Uuid, cooldown: Cooldown) {
        let pool = self.pool(key);
        if let Ok(mut p) = pool.lock() {
            match p.cooldowns.iter_mut().find(|(id, _)| *id == credential) {
                Some((_, existing)) => *existing = merge(Some(*existing), cooldown),
                None => p.cooldowns.push((credential, cooldown)),
            }
            p.mask_valid = false;
        };
    }

    async fn cooldowns(&self, key: PoolKey) -> HashMap<Uuid, Cooldown> {
        let pool = self.pool(key);
        let guard = pool.lock();
        guard
            .map(|p| p.cooldowns.iter().copied().collect())
            .unwrap_or_default()
    }

    async fn clear(&self, key: PoolKey) {
        let pool = self.pool(key);
        if let Ok(mut p) = pool.lock() {
            p.cooldowns.clear();
            p.mask_valid = false;
        };
    }
}

impl BindingStore for MemoryState {
    async fn bind(&self, workspace: Uuid, response_id: &str, binding: Binding, now_ms: u64) {
        self.bindings
            .bind_now(workspace, response_id, binding, now_ms);
    }

    async fn binding(&self, workspace: Uuid, response_id: &str, now_ms: u64) -> Option<Binding> {
        self.bindings.binding_now(workspace, response_id, now_ms)
    }

    async fn unbind(&self, workspace: Uuid, response_id: &str) {
        self.bindings.unbind_now(workspace, response_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cooldown::Reason;
    use crate::state::Candidate;

    #[tokio::test]
    async fn cooled_credentials_leave_the_rotation_until_their_deadline() {
        let s = MemoryState::default();
        let key = PoolKey {
            workspace: Uuid::new_v4(),
            model: Uuid::new_v4(),
        };
        let c: Vec<Candidate> = (0..3)
            .map(|_| Candidate {
                credential: Uuid::new_v4(),
                weight: 1,
            })
            .collect();
        // A duplicated credential: both of its entries leave together.
        let mut pool = c.clone();
        pool.push(c[1]);
        let pick = |tried: &[Uuid], now_ms| {
            s.pick_now(PickRequest {
                pool: key,
                signature: 1,
                candidates: &pool,
                tried,
                now_ms,
            })
        };
        let picks = |now| (0..8).map(|_| pick(&[], now)).collect::<Vec<_>>();
        assert!(picks(0).contains(&Pick::Entry(1)));
        s.cool(
            key,
            c[1].credential,
            Cooldown {
                until_ms: 1_000,
                reason: Reason::RateLimited,
                status: Some(429),
                at_ms: 0,
            },
        )
        .await;
        let during = picks(500);
        assert!(
            during
                .iter()
                .all(|p| *p != Pick::Entry(1) && *p != Pick::Entry(3)),
            "{during:?}"
        );
        // A shorter cooldown never shortens the running one.
        s.cool(
            key,
            c[1].credential,
            Cooldown {
                until_ms: 600,
                reason: Reason::UpstreamError,
                status: Some(503),
                at_ms: 500,
            },
        )
        .await;
        assert!(picks(700)
            .iter()
            .all(|p| *p != Pick::Entry(1) && *p != Pick::Entry(3)));
        assert!(
            picks(1_000)
                .iter()
                .any(|p| *p == Pick::Entry(1) || *p == Pick::Entry(3)),
            "back after the deadline"
        );
        // Everyone cooling: the answer says when the first is back; tried ones are skipped.
        for (i, cd) in c.iter().enumerate() {
            s.cool(
                key,
                cd.credential,
                Cooldown {
                    until_ms: 5_000 + i as u64 * 1_000,
                    reason: Reason::RateLimited,
                    status: Some(429),
                    at_ms: 1_000,
                },
            )
            .await;
        }
        assert_eq!(
            pick(&[], 2_000),
            Pick::AllCooling {
                retry_after_ms: 3_000
            }
        );
        s.clear(key).await;
        let tried: Vec<Uuid> = c.iter().map(|x| x.credential).collect();
        assert_eq!(pick(&tried, 2_000), Pick::Exhausted);
        assert!(matches!(pick(&tried[..2], 2_000), Pick::Entry(2)));
    }
}
