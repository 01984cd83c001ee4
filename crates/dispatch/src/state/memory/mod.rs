//! In-process dispatch state: one mutex-guarded pool (rotation, entry records, affinity
//! bindings) per model, one map of credential-wide records, and the response-id bindings.

use super::bindings::{Binding, BindingStore, MemoryBindings};
use super::clients::{ClientWindows, MemoryClients};
use super::{Flagged, PickRequest, PoolKey, Recorded, Report, StateBackend};
use crate::balancer::Rotation;
use crate::lifecycle::{Change, CredentialRecord, CredentialState, Trigger};
use crate::pick::{self, Ask, Book, Choice};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use uuid::Uuid;

/// Most affinity keys one pool remembers: clients choose the keys, so the map is bounded
/// (beyond it, new keys follow the rotation until expired ones are purged).
pub const MAX_STICKY_KEYS: usize = 100_000;

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

type Fast = BuildHasherDefault<UuidHasher>;

#[derive(Default)]
struct Pool {
    signature: u64,
    rotation: Rotation,
    book: Book,
    /// Affinity key hash → (credential, expiry ms).
    sticky: HashMap<u64, (Uuid, u64), Fast>,
    /// When expired affinity keys were last purged (a full map is purged at most once a second).
    purged_ms: u64,
}

impl Pool {
    fn bind(&mut self, key: u64, credential: Uuid, expires_ms: u64, now_ms: u64) {
        if self.sticky.len() >= MAX_STICKY_KEYS && !self.sticky.contains_key(&key) {
            if now_ms < self.purged_ms.saturating_add(1_000) {
                return;
            }
            self.purged_ms = now_ms;
            self.sticky.retain(|_, (_, exp)| *exp > now_ms);
            if self.sticky.len() >= MAX_STICKY_KEYS {
                return;
            }
        }
        self.sticky.insert(key, (credential, expires_ms));
    }
}

/// Rotation, lifecycle records and response-id bindings held in this process.
#[derive(Default)]
pub struct MemoryState {
    pools: RwLock<HashMap<PoolKey, Arc<Mutex<Pool>>, Fast>>,
    credentials: RwLock<HashMap<(Uuid, Uuid), CredentialRecord>>,
    /// Credential records not stored as available: while 0, picks skip the map.
    flagged: AtomicUsize,
    bindings: MemoryBindings,
    clients: MemoryClients,
}

impl MemoryState {
    /// The clients' minute windows.
    pub fn clients(&self) -> &MemoryClients {
        &self.clients
    }

    fn pool(&self, key: PoolKey) -> Arc<Mutex<Pool>> {
        if let Some(p) = self.pools.read().ok().and_then(|m| m.get(&key).cloned()) {
            return p;
        }
        match self.pools.write() {
            Ok(mut m) => m.entry(key).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Runs `f` on the pool of `key` (created when missing).
    fn with_pool<T>(&self, key: PoolKey, f: impl FnOnce(&mut Pool) -> T) -> Option<T> {
        if let Ok(map) = self.pools.read() {
            if let Some(pool) = map.get(&key) {
                return pool.lock().ok().map(|mut p| f(&mut p));
            }
        }
        let pool = self.pool(key);
        let mut guard = pool.lock().ok()?;
        Some(f(&mut guard))
    }

    /// Runs `f` on the credential records, then recounts the flagged ones.
    fn with_credentials<T>(
        &self,
        f: impl FnOnce(&mut HashMap<(Uuid, Uuid), CredentialRecord>) -> T,
    ) -> Option<T> {
        let mut map = self.credentials.write().ok()?;
        let out = f(&mut map);
        let flagged = map
            .values()
            .filter(|r| r.state != CredentialState::Available)
            .count();
        self.flagged.store(flagged, Ordering::Relaxed);
        Some(out)
    }

    /// Picks synchronously (the async trait method wraps this; benchmarks call it directly).
    pub fn pick_now(&self, request: PickRequest<'_>) -> Choice {
        if let Some(client) = request.client {
            if let Err(until_ms) = self.clients.admit_now(client, request.now_ms) {
                return Choice::ClientFull { until_ms };
            }
        }
        let workspace = request.pool.workspace;
        let creds = match self.flagged.load(Ordering::Relaxed) {
            0 => None,
            _ => self.credentials.read().ok(),
        };
        let state_of = |c: Uuid| {
            creds
                .as_ref()
                .and_then(|m| m.get(&(workspace, c)))
                .map(|r| r.state)
                .unwrap_or_default()
        };
        self.with_pool(request.pool, |p| Self::pick_in(p, request, state_of))
            .unwrap_or(Choice::Exhausted)
    }

    fn pick_in(
        p: &mut Pool,
        request: PickRequest<'_>,
        state_of: impl Fn(Uuid) -> CredentialState,
    ) -> Choice {
        let now = request.now_ms;
        if p.signature != request.signature {
            p.signature = request.signature;
            p.rotation = Rotation::new(request.candidates.len());
        }
        let bound = request.sticky.and_then(|s| {
            p.sticky
                .get(&s.key)
                .filter(|(_, exp)| *exp > now)
                .map(|(c, _)| *c)
        });
        let ask = Ask {
            candidates: request.candidates,
            limits: request.limits,
            tried: request.tried,
            now_ms: now,
            sticky: bound,
            trial_lease_ms: request.trial_lease_ms,
        };
        let choice = pick::pick(&mut p.rotation, &ask, &mut p.book, state_of);
        if let (Choice::Serve(served), Some(s)) = (choice, request.sticky) {
            let credential = request.candidates[served.index].credential;
            p.bind(s.key, credential, now.saturating_add(s.ttl_ms), now);
        }
        choice
    }

    fn record_now(&self, pool: PoolKey, credential: Uuid, report: Report<'_>) -> Recorded {
        let Report {
            answer,
            cooldown_seconds,
            quota_cooldown_seconds,
            now_ms,
        } = report;
        let cooled = self
            .with_pool(pool, |p| {
                p.book
                    .entry(credential)
                    .record(answer, cooldown_seconds, now_ms)
            })
            .flatten();
        let change = match answer.trigger {
            Trigger::Rejected | Trigger::QuotaExhausted => self
                .with_credentials(|m| {
                    m.entry((pool.workspace, credential)).or_default().record(
                        answer,
                        quota_cooldown_seconds,
                        now_ms,
                    )
                })
                .flatten(),
            _ => None,
        };
        Recorded { cooled, change }
    }
}

impl StateBackend for MemoryState {
    async fn pick(&self, request: PickRequest<'_>) -> Choice {
        self.pick_now(request)
    }

    async fn record(&self, pool: PoolKey, credential: Uuid, report: Report<'_>) -> Recorded {
        self.record_now(pool, credential, report)
    }

    async fn count_tokens(&self, pool: PoolKey, credential: Uuid, tokens: u64, now_ms: u64) {
        self.with_pool(pool, |p| {
            p.book.entry(credential).count_tokens(tokens, now_ms);
        });
    }

    async fn book(&self, pool: PoolKey) -> Book {
        self.with_pool(pool, |p| p.book.clone()).unwrap_or_default()
    }

    async fn credentials(
        &self,
        workspace: Uuid,
        credentials: &[Uuid],
    ) -> Vec<(Uuid, CredentialRecord)> {
        let Ok(map) = self.credentials.read() else {
            return Vec::new();
        };
        credentials
            .iter()
            .filter_map(|c| map.get(&(workspace, *c)).map(|r| (*c, r.clone())))
            .collect()
    }

    async fn reset(&self, pool: PoolKey, credentials: &[Uuid], now_ms: u64) -> Vec<Uuid> {
        self.with_pool(pool, |p| p.book.reset());
        self.with_credentials(|m| {
            credentials
                .iter()
                .filter(|c| {
                    m.get_mut(&(pool.workspace, **c))
                        .and_then(|r| r.reset(now_ms))
                        .is_some()
                })
                .copied()
                .collect()
        })
        .unwrap_or_default()
    }

    async fn recover(&self, workspace: Uuid, credential: Uuid, now_ms: u64) -> Option<Change> {
        self.with_credentials(|m| {
            m.get_mut(&(workspace, credential))
                .and_then(|r| r.recover(now_ms))
        })
        .flatten()
    }

    async fn flagged(&self) -> Vec<Flagged> {
        let Ok(map) = self.credentials.read() else {
            return Vec::new();
        };
        map.iter()
            .filter(|(_, r)| r.state != CredentialState::Available)
            .map(|((workspace, credential), record)| Flagged {
                workspace: *workspace,
                credential: *credential,
                record: record.clone(),
            })
            .collect()
    }

    async fn lead(&self, _name: &str, _ttl_ms: u64) -> bool {
        true
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
mod tests;

impl ClientWindows for MemoryState {
    async fn admit(&self, client: super::ClientAdmit, now_ms: u64) -> Result<(), u64> {
        self.clients.admit_now(client, now_ms)
    }

    async fn count_client_tokens(&self, _: Uuid, client: Uuid, tokens: u64, now_ms: u64) {
        self.clients.count_now(client, tokens, now_ms);
    }
}
