//! The gateway's in-memory tables, so the hot path touches no database: every live API key
//! (by SHA-256) and the resolved routes (model → pool → decrypted credentials). A workspace's
//! entries are dropped and reloaded whenever something that affects them changes; a
//! generation counter keeps a resolve that raced with a change from caching stale data.
//! When the keys of a workspace could not be reloaded after a change, that workspace's keys
//! are refused (fail closed) until a reload succeeds: a revocation is never missed silently.

use chrono::{DateTime, Utc};
use rotor_dispatch::engine::Route;
use rotor_storage::api_keys::LiveKey;
use rotor_storage::Plan;
use std::collections::{HashMap, HashSet};
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
}

/// A resolved model with the plan its workspace had when resolved.
#[derive(Debug)]
pub struct CachedRoute {
    /// The route.
    pub route: Route,
    /// The workspace's plan (a plan change invalidates the workspace).
    pub plan: Plan,
}

#[derive(Default)]
struct Tables {
    keys: HashMap<Vec<u8>, Arc<KeyInfo>>,
    routes: HashMap<(Uuid, String), Arc<CachedRoute>>,
    generations: HashMap<Uuid, u64>,
    /// Workspaces whose keys may be out of date (a reload after a change failed).
    stale: HashSet<Uuid>,
    /// Every key may be out of date (a reload after a lost listen connection failed).
    all_stale: bool,
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
}

fn key_info(k: LiveKey) -> (Vec<u8>, Arc<KeyInfo>) {
    let info = KeyInfo {
        id: k.id.into(),
        workspace_id: k.workspace_id.into(),
        allowed_models: k.allowed_models.map(|m| m.into_iter().collect()),
        expires_at: k.expires_at,
    };
    (k.key_hash, Arc::new(info))
}

impl GatewayCache {
    /// Replaces every key (startup, or a reload after reconnecting); nothing is stale after.
    pub fn load_keys(&self, keys: Vec<LiveKey>) {
        if let Ok(mut t) = self.tables.write() {
            t.keys = keys.into_iter().map(key_info).collect();
            t.routes.clear();
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
        self.tables
            .read()
            .ok()?
            .routes
            .get(&(workspace, model.to_owned()))
            .cloned()
    }

    /// The workspace's generation (read before resolving a route).
    pub fn generation(&self, workspace: Uuid) -> u64 {
        self.tables
            .read()
            .ok()
            .and_then(|t| t.generations.get(&workspace).copied())
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
            if t.generations.get(&workspace).copied().unwrap_or(0) == generation {
                t.routes.insert((workspace, model.to_owned()), route);
            }
        }
    }

    /// Drops a workspace's routes and replaces its keys with `keys` (fresh from the database).
    pub fn invalidate_workspace(&self, workspace: Uuid, keys: Option<Vec<LiveKey>>) {
        if let Ok(mut t) = self.tables.write() {
            *t.generations.entry(workspace).or_insert(0) += 1;
            t.routes.retain(|(ws, _), _| *ws != workspace);
            if let Some(keys) = keys {
                t.keys.retain(|_, k| k.workspace_id != workspace);
                t.keys.extend(keys.into_iter().map(key_info));
                t.stale.remove(&workspace);
            }
        }
    }

    /// Drops every route (license changes affect all workspaces).
    pub fn invalidate_all_routes(&self) {
        if let Ok(mut t) = self.tables.write() {
            let workspaces: Vec<Uuid> = t.routes.keys().map(|(ws, _)| *ws).collect();
            for ws in workspaces {
                *t.generations.entry(ws).or_insert(0) += 1;
            }
            t.routes.clear();
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
        }
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
