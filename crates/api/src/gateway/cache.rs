//! The gateway's in-memory tables, so the hot path touches no database: every live API key
//! (by SHA-256) and the resolved routes (model → pool → decrypted credentials). A workspace's
//! entries are dropped and reloaded whenever something that affects them changes; a
//! generation counter keeps a resolve that raced with a change from caching stale data.
//! When the keys of a workspace could not be reloaded after a change, that workspace's keys
//! are refused (fail closed) until a reload succeeds: a revocation is never missed silently.

use chrono::{DateTime, Utc};
use rotor_dispatch::engine::{Price, Route};
use rotor_storage::api_keys::LiveKey;
use rotor_storage::{KeyLimits, Plan};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// A live API key as the gateway checks it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// Key id.
    pub id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// Allowed model names (`None`: all).
    pub allowed_models: Option<HashSet<String>>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Its limits and budgets.
    pub limits: KeyLimits,
    /// When its `last_used_at` was last written (Unix seconds; 0: not since it was loaded).
    pub touched: Touched,
}

/// [`KeyInfo::touched`]: an atomic, so a request's check takes no lock; a clone starts
/// where the original is.
#[derive(Debug, Default)]
pub struct Touched(pub AtomicU64);

impl Clone for Touched {
    fn clone(&self) -> Self {
        Self(AtomicU64::new(
            self.0.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }
}

impl KeyInfo {
    /// Whether the key has a monthly budget (its month's spend is kept up to date).
    pub fn budgeted(&self) -> bool {
        self.limits.budgeted()
    }
}

/// A resolved model with the plan its workspace had when resolved.
#[derive(Debug)]
pub struct CachedRoute {
    /// The route.
    pub route: Route,
    /// The workspace's plan (a plan change invalidates the workspace).
    pub plan: Plan,
    /// The model's prices (zero when unpriced), for the budgets.
    pub price: Price,
}

/// One workspace's part of the tables: what its invalidation touches, and nothing else.
#[derive(Default)]
struct Workspace {
    /// Resolved routes by model name (looked up by `&str`: no allocation per request).
    routes: HashMap<Box<str>, Arc<CachedRoute>>,
    /// Bumped by every invalidation of this workspace.
    generation: u64,
    /// The hashes of its keys in [`Tables::keys`] (some may have gone since: a revoked key,
    /// or a hash another workspace's reload took over).
    key_hashes: Vec<Vec<u8>>,
}

#[derive(Default)]
struct Tables {
    keys: HashMap<Vec<u8>, Arc<KeyInfo>>,
    workspaces: HashMap<Uuid, Workspace>,
    /// Bumped when every workspace's routes are dropped at once (a workspace's generation
    /// is this plus its own, so that one bump covers workspaces not seen yet).
    epoch: u64,
    /// Workspaces whose keys may be out of date (a reload after a change failed).
    stale: HashSet<Uuid>,
    /// Every key may be out of date (a reload after a lost listen connection failed).
    all_stale: bool,
}

impl Tables {
    fn generation(&self, workspace: Uuid) -> u64 {
        let own = self.workspaces.get(&workspace).map_or(0, |w| w.generation);
        self.epoch.wrapping_add(own)
    }

    /// Adds live keys, each to the table and to its workspace's list.
    fn insert_keys(&mut self, keys: Vec<LiveKey>) {
        for (hash, info) in keys.into_iter().map(key_info) {
            self.workspaces
                .entry(info.workspace_id)
                .or_default()
                .key_hashes
                .push(hash.clone());
            self.keys.insert(hash, info);
        }
    }
}

/// What the gateway knows of a presented key.
#[derive(Debug, Clone)]
pub enum KeyLookup {
    /// A live key.
    Live(Arc<KeyInfo>),
    /// No live key has this hash.
    Unknown,
    /// The key's workspace changed and its keys are being reloaded: refused meanwhile.
    Reloading,
}

/// The gateway cache.
#[derive(Default)]
pub struct GatewayCache {
    tables: RwLock<Tables>,
    flights: crate::gateway::flight::Flights,
}

fn key_info(k: LiveKey) -> (Vec<u8>, Arc<KeyInfo>) {
    let info = KeyInfo {
        id: k.id.into(),
        workspace_id: k.workspace_id.into(),
        allowed_models: k.allowed_models.map(|m| m.into_iter().collect()),
        expires_at: k.expires_at,
        limits: k.limits,
        touched: Touched::default(),
    };
    (k.key_hash, Arc::new(info))
}

impl GatewayCache {
    /// The route resolves in flight (one per model at a time).
    pub fn flights(&self) -> &crate::gateway::flight::Flights {
        &self.flights
    }

    /// Replaces every key (startup, or a reload after reconnecting); nothing is stale after.
    pub fn load_keys(&self, keys: Vec<LiveKey>) {
        if let Ok(mut t) = self.tables.write() {
            t.keys.clear();
            for w in t.workspaces.values_mut() {
                w.routes.clear();
                w.key_hashes.clear();
            }
            t.insert_keys(keys);
            t.stale.clear();
            t.all_stale = false;
        }
    }

    /// The key with this SHA-256.
    pub fn key(&self, hash: &[u8]) -> KeyLookup {
        let Ok(t) = self.tables.read() else {
            return KeyLookup::Reloading;
        };
        match t.keys.get(hash) {
            None => KeyLookup::Unknown,
            Some(_) if t.all_stale => KeyLookup::Reloading,
            Some(k) if !t.stale.is_empty() && t.stale.contains(&k.workspace_id) => {
                KeyLookup::Reloading
            }
            Some(k) => KeyLookup::Live(k.clone()),
        }
    }

    /// The keys with a monthly budget, with their workspaces (of `workspace` only, if given).
    pub fn budgeted(&self, workspace: Option<Uuid>) -> Vec<(Uuid, Uuid)> {
        let Ok(t) = self.tables.read() else {
            return Vec::new();
        };
        t.keys
            .values()
            .filter(|k| k.budgeted() && workspace.is_none_or(|w| w == k.workspace_id))
            .map(|k| (k.workspace_id, k.id))
            .collect()
    }

    /// Forgets one key at once (its revocation committed here), before any reload.
    pub fn remove_key(&self, id: Uuid) {
        if let Ok(mut t) = self.tables.write() {
            t.keys.retain(|_, k| k.id != id);
        }
    }

    /// Refuses a workspace's keys until [`GatewayCache::invalidate_workspace`] gets fresh ones;
    /// true if it was not refused already.
    pub fn mark_stale(&self, workspace: Uuid) -> bool {
        self.tables
            .write()
            .map(|mut t| t.stale.insert(workspace))
            .unwrap_or(false)
    }

    /// Refuses every key until [`GatewayCache::load_keys`].
    pub fn mark_all_stale(&self) {
        if let Ok(mut t) = self.tables.write() {
            t.all_stale = true;
        }
    }

    /// The cached route of a model, if any.
    pub fn route(&self, workspace: Uuid, model: &str) -> Option<Arc<CachedRoute>> {
        let t = self.tables.read().ok()?;
        t.workspaces.get(&workspace)?.routes.get(model).cloned()
    }

    /// The workspace's generation (read before resolving a route).
    pub fn generation(&self, workspace: Uuid) -> u64 {
        self.tables
            .read()
            .map(|t| t.generation(workspace))
            .unwrap_or(0)
    }

    /// Caches a route resolved at `generation`, unless the workspace changed meanwhile.
    pub fn store_route(
        &self,
        workspace: Uuid,
        model: &str,
        generation: u64,
        route: Arc<CachedRoute>,
    ) {
        if let Ok(mut t) = self.tables.write() {
            if t.generation(workspace) == generation {
                let w = t.workspaces.entry(workspace).or_default();
                w.routes.insert(model.into(), route);
            }
        }
    }

    /// Drops a workspace's routes and replaces its keys with `keys` (fresh from the database);
    /// touches that workspace's entries only.
    pub fn invalidate_workspace(&self, workspace: Uuid, keys: Option<Vec<LiveKey>>) {
        let Ok(mut guard) = self.tables.write() else {
            return;
        };
        let t = &mut *guard;
        let w = t.workspaces.entry(workspace).or_default();
        w.generation = w.generation.wrapping_add(1);
        w.routes.clear();
        if let Some(keys) = keys {
            for hash in std::mem::take(&mut w.key_hashes) {
                if t.keys
                    .get(&hash)
                    .is_some_and(|k| k.workspace_id == workspace)
                {
                    t.keys.remove(&hash);
                }
            }
            t.insert_keys(keys);
            t.stale.remove(&workspace);
        }
    }

    /// Drops every route (license changes affect all workspaces).
    pub fn invalidate_all_routes(&self) {
        if let Ok(mut t) = self.tables.write() {
            t.epoch = t.epoch.wrapping_add(1);
            for w in t.workspaces.values_mut() {
                w.routes.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(workspace: Uuid, hash: u8) -> LiveKey {
        LiveKey {
            id: Uuid::new_v4().into(),
            workspace_id: workspace.into(),
            key_hash: vec![hash],
            allowed_models: None,
            expires_at: None,
            limits: KeyLimits::default(),
        }
    }

    fn route(workspace: Uuid, model: &str) -> Arc<CachedRoute> {
        use rotor_dispatch::engine::EntryMetrics;
        use rotor_dispatch::series::Registry;
        let metrics = Arc::new(EntryMetrics::new(
            &Registry::default(),
            workspace,
            model,
            None,
        ));
        let route = Route {
            pool: rotor_dispatch::state::PoolKey {
                workspace,
                model: Uuid::new_v4(),
            },
            model: model.into(),
            family: rotor_dispatch::target::Family::OpenAi,
            upstream_model: model.to_owned(),
            entries: vec![],
            default: None,
            pool_ready: false,
            cooldown_seconds: 60,
            max_attempts: 3,
            max_wait_ms: 0,
            affinity_ttl_ms: None,
            signature: 0,
            metrics,
        };
        Arc::new(CachedRoute {
            route,
            plan: Plan::Sandbox,
            price: Price::default(),
        })
    }

    /// Stores a route resolved now, as the gateway does after a cache miss.
    fn resolve(cache: &GatewayCache, workspace: Uuid, model: &str) {
        let generation = cache.generation(workspace);
        cache.store_route(workspace, model, generation, route(workspace, model));
    }

    #[test]
    fn invalidating_a_workspace_drops_its_routes_and_keys_only() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let cache = GatewayCache::default();
        cache.load_keys(vec![live(a, 1), live(b, 2)]);
        for ws in [a, b] {
            resolve(&cache, ws, "gpt");
            resolve(&cache, ws, "mini");
        }
        assert!(cache.route(a, "gpt").is_some());
        assert!(cache.route(a, "other").is_none());
        cache.invalidate_workspace(a, Some(vec![live(a, 3)]));
        assert!(cache.route(a, "gpt").is_none() && cache.route(a, "mini").is_none());
        assert!(cache.route(b, "gpt").is_some() && cache.route(b, "mini").is_some());
        assert!(matches!(cache.key(&[1]), KeyLookup::Unknown));
        assert!(matches!(cache.key(&[3]), KeyLookup::Live(_)));
        assert!(matches!(cache.key(&[2]), KeyLookup::Live(_)));
        // A hash another workspace's reload took over stays that workspace's.
        cache.invalidate_workspace(b, Some(vec![live(b, 2), live(b, 3)]));
        cache.invalidate_workspace(a, Some(vec![]));
        let KeyLookup::Live(k) = cache.key(&[3]) else {
            panic!("live")
        };
        assert_eq!(k.workspace_id, b);
    }

    #[test]
    fn a_route_resolved_across_a_change_is_not_cached() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let cache = GatewayCache::default();
        let before = cache.generation(a);
        cache.invalidate_workspace(a, None);
        cache.store_route(a, "gpt", before, route(a, "gpt"));
        assert!(cache.route(a, "gpt").is_none());
        resolve(&cache, a, "gpt");
        assert!(cache.route(a, "gpt").is_some());
        // A license change: every workspace, even one with nothing cached yet.
        let (before_a, before_b) = (cache.generation(a), cache.generation(b));
        cache.invalidate_all_routes();
        assert!(cache.route(a, "gpt").is_none());
        cache.store_route(a, "gpt", before_a, route(a, "gpt"));
        cache.store_route(b, "gpt", before_b, route(b, "gpt"));
        assert!(cache.route(a, "gpt").is_none() && cache.route(b, "gpt").is_none());
        // Reloading every key drops every route too.
        resolve(&cache, b, "gpt");
        cache.load_keys(vec![]);
        assert!(cache.route(b, "gpt").is_none());
    }

    #[test]
    fn keys_of_a_workspace_that_could_not_be_reloaded_are_refused_until_it_is() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let cache = GatewayCache::default();
        cache.load_keys(vec![live(a, 1), live(b, 2)]);
        assert!(matches!(cache.key(&[1]), KeyLookup::Live(_)));
        // A change to `a` whose reload failed: `a`'s keys fail closed, `b`'s still serve.
        cache.invalidate_workspace(a, None);
        assert!(cache.mark_stale(a));
        assert!(!cache.mark_stale(a), "one retry loop per workspace");
        assert!(matches!(cache.key(&[1]), KeyLookup::Reloading));
        assert!(matches!(cache.key(&[2]), KeyLookup::Live(_)));
        assert!(matches!(cache.key(&[3]), KeyLookup::Unknown));
        // The retried reload comes back without the revoked key.
        cache.invalidate_workspace(a, Some(vec![]));
        assert!(matches!(cache.key(&[1]), KeyLookup::Unknown));
        // A lost listen connection whose reload failed refuses every key.
        cache.mark_all_stale();
        assert!(matches!(cache.key(&[2]), KeyLookup::Reloading));
        cache.load_keys(vec![live(b, 2)]);
        assert!(matches!(cache.key(&[2]), KeyLookup::Live(_)));
        // A revocation committed here goes at once, before any reload.
        let KeyLookup::Live(k) = cache.key(&[2]) else {
            panic!("live")
        };
        cache.remove_key(k.id);
        assert!(matches!(cache.key(&[2]), KeyLookup::Unknown));
    }
}
