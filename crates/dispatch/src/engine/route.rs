//! A model resolved for dispatch: its pool of credentials, each with its target and metric
//! handles, built once by the gateway when the route resolves and cached.

use super::EntryMetrics;
use crate::lifecycle::Limits;
use crate::state::PoolKey;
use crate::target::{Family, ModelTarget};
use std::sync::Arc;
use uuid::Uuid;

/// One credential that can serve a route.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    /// The credential.
    pub credential_id: Uuid,
    /// The entry's weight.
    pub weight: u32,
    /// Where and how to call it for this route's model.
    pub target: Arc<ModelTarget>,
    /// The model's name at this entry's provider when it is not the route's `upstream_model`
    /// (the body is rewritten for this entry).
    pub upstream_model: Option<Arc<str>>,
    /// Its `rpm`/`tpm` (none: no limit).
    pub limits: Limits,
    /// How long its credential rests when its quota or credit runs out.
    pub quota_cooldown_seconds: u32,
    /// Its metric handles.
    pub metrics: Arc<EntryMetrics>,
}

/// A model resolved for dispatch: its pool with decrypted credentials.
#[derive(Debug, Clone)]
pub struct Route {
    /// Workspace and model (the cooldown scope).
    pub pool: PoolKey,
    /// The name clients use.
    pub model: Arc<str>,
    /// The API family the model's provider speaks (its endpoints are the ones it serves).
    pub family: Family,
    /// The name sent upstream.
    pub upstream_model: String,
    /// Enabled entries whose credential is readable, Default Config resolved.
    pub entries: Vec<RouteEntry>,
    /// The model's default credential, when readable.
    pub default: Option<RouteEntry>,
    /// The pool is switched on and has two distinct enabled credentials (the feature is
    /// checked per request, so an expiring license is noticed at once).
    pub pool_ready: bool,
    /// Seconds of a rate-limit cooldown.
    pub cooldown_seconds: u32,
    /// Most distinct credentials per request.
    pub max_attempts: u32,
    /// How long a request may wait for a cooling credential instead of answering 429.
    pub max_wait_ms: u32,
    /// With `affinity: session`, how long an affinity key stays bound to its credential after
    /// each use (`affinity_ttl_seconds` in ms); none: no affinity.
    pub affinity_ttl_ms: Option<u64>,
    /// Identifies the pool's composition (a change restarts the rotation).
    pub signature: u64,
    /// Handles for answers no credential gave (credential_id empty).
    pub metrics: Arc<EntryMetrics>,
}

impl Route {
    /// Whether an entry names the model otherwise (so the body is rewritten per entry).
    pub fn renames(&self) -> bool {
        self.entries.iter().any(|e| e.upstream_model.is_some())
    }
}
