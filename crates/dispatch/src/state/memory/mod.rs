//! In-process dispatch state: one mutex-guarded pool (rotation, entry records, affinity
//! bindings) per model, one map of credential-wide records, and the response-id bindings.

use super::bindings::{Binding, BindingStore, MemoryBindings};
use super::clients::{ClientWindows, MemoryClients};
use super::{Flagged, PickRequest, PoolKey, Recorded, Report, StateBackend};
use crate::balancer::Rotation;
use crate::lifecycle::{Change, CredentialRecord, CredentialState, Trigger};
use crate::pick::schedule::Schedule;
use crate::pick::{self, Ask, Book, Choice, Served};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// The rotation run ahead, while nothing changes which entries serve.
    schedule: Option<Schedule>,
    /// First-attempt picks in a row without affinity or limits: a schedule is made once they
    /// outnumber its period (so a pool that alternates never pays for one it cannot use).
    streak: usize,
}

impl Pool {
    /// Folds a schedule's picks into the rotation before anything else uses or changes it.
    fn settle(&mut self) {
        if let Some(schedule) = self.schedule.take() {
            schedule.settle(&mut self.rotation);
        }
    }

    /// The next pick from the schedule, when it still holds for `request`.
    fn replay(&mut self, request: &PickRequest<'_>, epoch: u64) -> Option<Choice> {
        let schedule = self.schedule.as_mut()?;
        let holds = request.plain()
            && schedule.signature == request.signature
            && schedule.epoch == epoch
            && request.now_ms < schedule.valid_until_ms
            && self.rotation.weights().len() == request.candidates.len();
        if !holds {
            return None;
        }
        Some(Choice::Serve(Served {
            index: schedule.serve(),
            trial: false,
            sticky_hit: false,
        }))
    }

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

/// Distinguishes the states of one process in the threads' pool caches.
static NEXT_STATE_ID: AtomicU64 = AtomicU64::new(1);

/// Pools each thread picked from last: (state id, pool, pool).
type Recent = [Option<(u64, PoolKey, Arc<Mutex<Pool>>)>; RECENT_POOLS];

const RECENT_POOLS: usize = 8;

thread_local! {
    /// A pick finds its pool here without the shared map's read lock, whose counter every
    /// core would otherwise write on every pick. Pools are never removed from a state's map,
    /// so a cached pool is the map's; an entry of a dropped state only holds memory until
    /// another pool takes its place.
    static RECENT: std::cell::RefCell<Recent> = const { std::cell::RefCell::new([const { None }; RECENT_POOLS]) };
}

/// The slot of `key` in a thread's cache (pool ids are random: their bits spread well).
fn recent_slot(key: &PoolKey) -> usize {
    (key.model.as_u64_pair().1 as usize) % RECENT_POOLS
}

/// Rotation, lifecycle records and response-id bindings held in this process.
pub struct MemoryState {
    /// This state's id in the threads' pool caches.
    id: u64,
    pools: RwLock<HashMap<PoolKey, Arc<Mutex<Pool>>, Fast>>,
    credentials: RwLock<HashMap<(Uuid, Uuid), CredentialRecord>>,
    /// Credential records not stored as available: while 0, picks skip the map.
    flagged: AtomicUsize,
    /// Bumped by every change to the credential records (a pool's schedule made before one
    /// is not replayed).
    epoch: AtomicU64,
    bindings: MemoryBindings,
    clients: MemoryClients,
    /// Tests compare the replayed rotation with the full pick on the same history.
    #[cfg(test)]
    no_replay: bool,
}

impl Default for MemoryState {
    fn default() -> Self {
        Self {
            id: NEXT_STATE_ID.fetch_add(1, Ordering::Relaxed),
            pools: RwLock::default(),
            credentials: RwLock::default(),
            flagged: AtomicUsize::default(),
            epoch: AtomicU64::default(),
            bindings: MemoryBindings::default(),
            clients: MemoryClients::default(),
            #[cfg(test)]
            no_replay: false,
        }
    }
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
        let slot = recent_slot(&key);
        RECENT.with(|recent| {
            let mut recent = recent.try_borrow_mut().ok();
            let hit = recent.as_deref().and_then(|r| match &r[slot] {
                Some((id, k, pool)) if *id == self.id && *k == key => Some(pool),
                _ => None,
            });
            if let Some(pool) = hit {
                return pool.lock().ok().map(|mut p| f(&mut p));
            }
            let pool = self.pool(key);
            let out = pool.lock().ok().map(|mut p| f(&mut p));
            if let Some(recent) = recent.as_deref_mut() {
                recent[slot] = Some((self.id, key, pool));
            }
            out
        })
    }

    /// Runs `f` on the credential records, then recounts the flagged ones.
    fn with_credentials<T>(
        &self,
        f: impl FnOnce(&mut HashMap<(Uuid, Uuid), CredentialRecord>) -> T,
    ) -> Option<T> {
        let mut map = self.credentials.write().ok()?;
        let out = f(&mut map);
        self.epoch.fetch_add(1, Ordering::Relaxed);
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
        let epoch = self.epoch.load(Ordering::Relaxed);
        self.with_pool(request.pool, |p| {
            if let Some(choice) = p.replay(&request, epoch) {
                return choice;
            }
            let creds = match self.flagged.load(Ordering::Relaxed) {
                0 => None,
                _ => self.credentials.read().ok(),
            };
            let workspace = request.pool.workspace;
            let state_of = |c: Uuid| {
                creds
                    .as_ref()
                    .and_then(|m| m.get(&(workspace, c)))
                    .map(|r| r.state)
                    .unwrap_or_default()
            };
            let choice = Self::pick_in(p, request, epoch, state_of);
            #[cfg(test)]
            if self.no_replay {
                p.schedule = None;
            }
            choice
        })
        .unwrap_or(Choice::Exhausted)
    }

    fn pick_in(
        p: &mut Pool,
        request: PickRequest<'_>,
        epoch: u64,
        state_of: impl Fn(Uuid) -> CredentialState,
    ) -> Choice {
        let now = request.now_ms;
        p.settle();
        if p.signature != request.signature {
            p.signature = request.signature;
            p.rotation = Rotation::new(request.candidates.len());
            p.streak = 0;
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
        let choice = pick::pick(&mut p.rotation, &ask, &mut p.book, &state_of);
        if let (Choice::Serve(served), Some(s)) = (choice, request.sticky) {
            let credential = request.candidates[served.index].credential;
            p.bind(s.key, credential, now.saturating_add(s.ttl_ms), now);
        }
        let plain = request.sticky.is_none() && matches!(choice, Choice::Serve(_));
        p.streak = if plain { p.streak.saturating_add(1) } else { 0 };
        let period: u64 = request
            .candidates
            .iter()
            .map(|c| u64::from(c.weight.max(1)))
            .sum();
        let due = u64::try_from(p.streak).unwrap_or(u64::MAX)
            > period.min(pick::schedule::MAX_RUN as u64);
        if due {
            p.schedule = pick::plan(&p.rotation, &ask, &mut p.book, &state_of).map(|mut s| {
                s.signature = request.signature;
                s.epoch = epoch;
                s
            });
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
                let record = p.book.entry(credential);
                let before = record.circuit;
                let cooled = record.record(answer, cooldown_seconds, now_ms);
                if record.circuit != before {
                    p.settle();
                }
                cooled
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
        self.with_pool(pool, |p| {
            p.settle();
            p.book.reset();
        });
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
