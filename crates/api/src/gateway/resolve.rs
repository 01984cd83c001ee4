//! Building a dispatch route from the database: the model, its pool with the Default Config
//! resolved to the current default credential, and every credential decrypted. Credentials that
//! cannot be decrypted are skipped (logged and counted), never sent.

use crate::gateway::cache::CachedRoute;
use crate::state::AppState;
use rotor_dispatch::engine::{EntryMetrics, Price, Route, RouteEntry};
use rotor_dispatch::lifecycle::Limits;
use rotor_dispatch::state::PoolKey;
use rotor_dispatch::target::{ModelTarget, Target};
use rotor_storage::credentials::Credential;
use rotor_storage::{Affinity, CredentialId, WorkspaceId};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use uuid::Uuid;

/// Resolves `model` of `workspace`; `None` when the workspace has no such model.
pub async fn resolve(
    state: &AppState,
    workspace: Uuid,
    model: &str,
) -> Result<Option<CachedRoute>, rotor_storage::Error> {
    let db = state.db();
    let ws = WorkspaceId::from(workspace);
    let Some(m) = rotor_storage::models::get_by_name(db, ws, model).await? else {
        return Ok(None);
    };
    let plan = rotor_storage::workspaces::plan(db, ws).await?;
    let config = rotor_storage::load_balancing::get(db, ws, m.id).await?;

    let mut wanted: Vec<CredentialId> = vec![m.credential_id];
    wanted.extend(
        config
            .entries
            .iter()
            .filter(|e| e.enabled)
            .map(|e| e.credential_id.unwrap_or(m.credential_id)),
    );
    wanted.sort();
    wanted.dedup();
    let mut targets: HashMap<CredentialId, (Target, u32)> = HashMap::new();
    for id in wanted {
        let credential: Credential =
            match rotor_storage::credentials::get(db, state.keyring(), ws, id).await {
                Ok(c) => c,
                Err(rotor_storage::Error::NotFound) => continue,
                Err(e) => return Err(e),
            };
        match crate::targets::target(&credential) {
            Some(t) => {
                let quota = u32::try_from(credential.quota_cooldown_seconds)
                    .unwrap_or(rotor_dispatch::lifecycle::DEFAULT_QUOTA_COOLDOWN_S);
                targets.insert(id, (t, quota));
            }
            None => {
                tracing::error!(workspace_id = %workspace, credential_id = %id, "credential cannot be decrypted; skipped by dispatch");
                // Labelled by workspace only: workspaces are never deleted, credentials are,
                // and a deleted credential's series must leave /metrics (the log names it).
                metrics::counter!(
                    "rotor_credentials_unreadable_total",
                    &[("workspace_id", workspace.to_string())]
                )
                .increment(1);
            }
        }
    }
    let mut entry_metrics: HashMap<CredentialId, Arc<EntryMetrics>> = HashMap::new();
    // Each (credential, model name) gets its URLs built here, once for the route.
    let mut model_targets: HashMap<(CredentialId, Option<String>), Arc<ModelTarget>> =
        HashMap::new();
    let mut entry = |credential_id: CredentialId, weight: i32, name: Option<&str>, limits| {
        let name = name.filter(|n| *n != m.upstream_model);
        let (target, quota_cooldown_seconds) = targets.get(&credential_id)?;
        let target = model_targets
            .entry((credential_id, name.map(str::to_owned)))
            .or_insert_with(|| {
                let upstream = name.unwrap_or(&m.upstream_model);
                Arc::new(ModelTarget::new(target.clone(), upstream))
            })
            .clone();
        Some(RouteEntry {
            credential_id: credential_id.uuid(),
            weight: u32::try_from(weight).unwrap_or(1).max(1),
            target,
            upstream_model: name.map(Arc::from),
            limits,
            quota_cooldown_seconds: *quota_cooldown_seconds,
            metrics: entry_metrics
                .entry(credential_id)
                .or_insert_with(|| {
                    Arc::new(EntryMetrics::new(
                        state.series(),
                        workspace,
                        &m.name,
                        Some(credential_id.uuid()),
                    ))
                })
                .clone(),
        })
    };
    let entries: Vec<RouteEntry> = config
        .entries
        .iter()
        .filter(|e| e.enabled)
        .filter_map(|e| {
            let credential = e.credential_id.unwrap_or(m.credential_id);
            let limits = Limits {
                rpm: e.rpm.and_then(|r| u32::try_from(r).ok()),
                tpm: e.tpm.and_then(|t| u64::try_from(t).ok()),
            };
            entry(credential, e.weight, e.upstream_model.as_deref(), limits)
        })
        .collect();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    config.version.hash(&mut hasher);
    m.credential_id.hash(&mut hasher);
    for e in &entries {
        (e.credential_id, e.weight, &e.upstream_model, e.limits).hash(&mut hasher);
    }
    let route = Route {
        pool: PoolKey {
            workspace,
            model: m.id.uuid(),
        },
        model: m.name.as_str().into(),
        family: crate::targets::family_of(&m.provider),
        upstream_model: m.upstream_model.clone(),
        pool_ready: config.enabled && config.distinct_enabled() >= 2,
        default: entry(m.credential_id, 1, None, Limits::default()),
        entries,
        cooldown_seconds: u32::try_from(config.cooldown_seconds).unwrap_or(60),
        max_attempts: u32::try_from(config.max_attempts).unwrap_or(3),
        max_wait_ms: u32::try_from(config.max_wait_ms).unwrap_or(0),
        affinity_ttl_ms: (config.affinity == Affinity::Session)
            .then(|| u64::try_from(config.affinity_ttl_seconds).unwrap_or(300) * 1000),
        signature: hasher.finish(),
        metrics: Arc::new(EntryMetrics::new(state.series(), workspace, &m.name, None)),
    };
    let price = Price {
        input: m.input_usd_per_mtok.unwrap_or(0.0),
        output: m.output_usd_per_mtok.unwrap_or(0.0),
    };
    Ok(Some(CachedRoute { route, plan, price }))
}
