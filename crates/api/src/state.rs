//! The one shared application state: cheap to clone, everything behind an `Arc`.

use crate::auth::{Jwt, Passwords};
use crate::config::{Config, Deployment};
use crate::gateway::cache::{GatewayCache, KeyInfo};
use crate::license::LicenseState;
use crate::throttle::LoginThrottle;
use metrics_exporter_prometheus::PrometheusHandle;
use rotor_dispatch::client::Upstream;
use rotor_dispatch::engine::Engine;
use rotor_dispatch::series::Registry;
use rotor_dispatch::state::AnyState;
use rotor_storage::crypto::Keyring;
use rotor_storage::Plan;
use sqlx::PgPool;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// How often `last_used_at` of one API key is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Pause between two tries of a failed key reload.
const RELOAD_RETRY: Duration = Duration::from_millis(250);

/// Handles every request needs.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// The parts the state is built from.
pub struct Parts {
    /// Validated settings.
    pub config: Config,
    /// Postgres pool.
    pub db: PgPool,
    /// Session tokens.
    pub jwt: Jwt,
    /// Password hashing.
    pub passwords: Passwords,
    /// Master keys.
    pub keyring: Keyring,
    /// Upstream client.
    pub upstream: Upstream,
    /// License.
    pub license: LicenseState,
    /// Dispatcher.
    pub engine: Engine<AnyState>,
    /// Prometheus renderer.
    pub metrics: PrometheusHandle,
    /// The usage ledger's counters (also the engine's usage sink).
    pub ledger: Arc<crate::ledger::Ledger>,
}

struct Inner {
    parts: Parts,
    throttle: LoginThrottle,
    gateway: GatewayCache,
    instance: Uuid,
    series: Registry,
}

impl AppState {
    /// Assembles the state from validated parts.
    pub fn new(parts: Parts) -> Self {
        Self {
            inner: Arc::new(Inner {
                parts,
                throttle: LoginThrottle::default(),
                gateway: GatewayCache::default(),
                instance: Uuid::new_v4(),
                series: Registry::default(),
            }),
        }
    }

    /// This process's id among the replicas (to ignore its own notifications).
    pub fn instance(&self) -> Uuid {
        self.inner.instance
    }

    /// The validated settings.
    pub fn config(&self) -> &Config {
        &self.inner.parts.config
    }

    /// The Postgres pool.
    pub fn db(&self) -> &PgPool {
        &self.inner.parts.db
    }

    /// Session token signer/verifier.
    pub fn jwt(&self) -> &Jwt {
        &self.inner.parts.jwt
    }

    /// Password hasher.
    pub fn passwords(&self) -> &Passwords {
        &self.inner.parts.passwords
    }

    /// Failed-login counters.
    pub fn throttle(&self) -> &LoginThrottle {
        &self.inner.throttle
    }

    /// The master keys (current and previous) that unwrap workspace data keys.
    pub fn keyring(&self) -> &Keyring {
        &self.inner.parts.keyring
    }

    /// The shared upstream HTTP client with the address policy.
    pub fn upstream(&self) -> &Upstream {
        &self.inner.parts.upstream
    }

    /// The instance's license.
    pub fn license(&self) -> &LicenseState {
        &self.inner.parts.license
    }

    /// The gateway's in-memory keys and routes.
    pub fn gateway(&self) -> &GatewayCache {
        &self.inner.gateway
    }

    /// The dispatcher.
    pub fn engine(&self) -> &Engine<AnyState> {
        &self.inner.parts.engine
    }

    /// The Prometheus renderer.
    pub fn metrics(&self) -> &PrometheusHandle {
        &self.inner.parts.metrics
    }

    /// The usage ledger's counters not yet written.
    pub fn ledger(&self) -> &crate::ledger::Ledger {
        &self.inner.parts.ledger
    }

    /// The per-(workspace, model, credential) metric series of this server.
    pub fn series(&self) -> &Registry {
        &self.inner.series
    }

    /// Whether a workspace on `plan` may use load balancing: a valid license that grants it,
    /// or, in saas mode only, a paid plan while the `saas` license is valid. Evaluated at call
    /// time, so expiry is noticed live.
    pub fn has_load_balancing(&self, plan: Plan) -> bool {
        let now = chrono::Utc::now();
        self.license().grants("load_balancing", now)
            || (self.config().deployment == Deployment::Saas
                && plan.is_paid()
                && self.license().grants(crate::license::SAAS, now))
    }

    /// Refuses one more workspace when a valid license caps them at `existing` or fewer.
    pub fn check_workspace_limit(&self, existing: i64) -> Result<(), rotor_storage::Error> {
        match self.license().max_workspaces(chrono::Utc::now()) {
            Some(max) if u64::try_from(existing).unwrap_or(0) >= max => {
                Err(rotor_storage::Error::LimitReached)
            }
            _ => Ok(()),
        }
    }

    /// Writes an API key's `last_used_at` in the background, at most once a minute per key.
    pub fn touch_key(&self, key: &KeyInfo) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = key.touched.0.load(Ordering::Relaxed);
        if now.saturating_sub(last) < TOUCH_EVERY.as_secs() {
            return;
        }
        // One request of the many arriving together writes it.
        if key
            .touched
            .0
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let db = self.db().clone();
        let id = key.id;
        tokio::spawn(async move {
            if let Err(e) = rotor_storage::api_keys::touch(&db, id.into()).await {
                tracing::debug!(error = %e, "could not record API key use");
            }
        });
    }

    /// Reads the month's spend of the budgeted ones of `keys` before they are served, so a
    /// budget set or raised applies to the next request (logged when the read fails: the
    /// next flush reads it again).
    pub async fn refresh_budgets(&self, keys: &[rotor_storage::api_keys::LiveKey]) {
        let budgeted: Vec<(Uuid, Uuid)> = keys
            .iter()
            .filter(|k| k.limits.budgeted())
            .map(|k| (k.workspace_id.uuid(), k.id.uuid()))
            .collect();
        if let Err(e) = self.ledger().refresh(self.db(), &budgeted).await {
            tracing::warn!(error = %e, "cannot read the month's spend of budgeted API keys");
        }
    }

    /// Applies a change to a workspace: its routes are dropped and its keys reloaded, so the
    /// next gateway request sees the change. If the keys cannot be reloaded, the workspace's
    /// keys are refused and the reload retried until it succeeds (fail closed).
    pub async fn invalidate_workspace(&self, workspace: Uuid) {
        match rotor_storage::api_keys::live_for_workspace(self.db(), workspace.into()).await {
            Ok(keys) => {
                self.refresh_budgets(&keys).await;
                self.gateway().invalidate_workspace(workspace, Some(keys));
            }
            Err(e) => {
                tracing::warn!(error = %e, workspace_id = %workspace, "could not reload API keys after a change: refusing them until a reload succeeds");
                self.gateway().invalidate_workspace(workspace, None);
                if self.gateway().mark_stale(workspace) {
                    let state = self.clone();
                    tokio::spawn(async move { state.reload_until_fresh(workspace).await });
                }
            }
        }
    }

    async fn reload_until_fresh(&self, workspace: Uuid) {
        loop {
            tokio::time::sleep(RELOAD_RETRY).await;
            match rotor_storage::api_keys::live_for_workspace(self.db(), workspace.into()).await {
                Ok(keys) => {
                    self.refresh_budgets(&keys).await;
                    self.gateway().invalidate_workspace(workspace, Some(keys));
                    tracing::info!(workspace_id = %workspace, "API keys reloaded");
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, workspace_id = %workspace, "API key reload failed; retrying")
                }
            }
        }
    }

    /// Reloads every key; until it succeeds every key is refused (notifications may have been
    /// missed while the listen connection was down).
    pub async fn reload_all_keys(&self) {
        let mut first = true;
        loop {
            match rotor_storage::api_keys::all_live(self.db()).await {
                Ok(keys) => {
                    self.refresh_budgets(&keys).await;
                    self.gateway().load_keys(keys);
                    return;
                }
                Err(e) => {
                    if first {
                        tracing::warn!(error = %e, "could not reload API keys: refusing them until a reload succeeds");
                        self.gateway().mark_all_stale();
                        first = false;
                    }
                    tokio::time::sleep(RELOAD_RETRY).await;
                }
            }
        }
    }

    /// A write to `workspace` committed: applied here now, and on every replica within 1 s.
    pub async fn committed(&self, workspace: rotor_storage::WorkspaceId) {
        // Applying it also sweeps the workspace's dead metric series (sync::apply).
        let change = crate::sync::Change::Workspace(workspace.uuid());
        crate::sync::publish(self, change).await;
    }

    /// Applies an instance-wide change (license): every route is dropped.
    pub fn invalidate_all(&self) {
        self.gateway().invalidate_all_routes();
    }
}
