//! The gateway's in-memory tables, so the hot path touches no database: every live API key
//! (by SHA-256) and the resolved routes (model → pool → decrypted credentials). A workspace's
//! entries are dropped and reloaded whenever something that affects them changes; a
//! generation counter keeps a resolve that raced with a change from caching stale data.

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
}

/// The gateway cache.
#[derive(Default)]
pub struct GatewayCache {
    tables: RwLock<Tables>,
}

fn key_info(k: LiveKey) -> (Vec<u8>, Arc<KeyInfo>) {
    let info = KeyInfo {
        id: k.id,
        workspace_id: k.workspace_id,
        allowed_models: k.allowed_models.map(|m| m.into_iter().collect()),
        expires_at: k.expires_at,
    };
    (k.key_hash, Arc::new(info))
}

impl GatewayCache {
    /// Replaces every key (startup, or a reload after reconnecting).
    pub fn load_keys(&self, keys: Vec<LiveKey>) {
        if let Ok(mut t) = self.tables.write() {
            t.keys = keys.into_iter().map(key_info).collect();
            t.routes.clear();
        }
    }

    /// The key with this SHA-256, if live.
    pub fn key(&self, hash: &[u8]) -> Option<Arc<KeyInfo>> {
        self.tables.read().ok()?.keys.get(hash).cloned()
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
