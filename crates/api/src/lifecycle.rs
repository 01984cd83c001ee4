//! The credential lifecycle (§14) on the API side: the audit events of state changes dispatch
//! observes (a null actor), recovery when an admin changes, validates or resets a credential,
//! and the background probes that bring rejected and quota-exhausted credentials back.

use crate::routes::credentials::VALIDATE_TIMEOUT;
use crate::state::AppState;
use rotor_dispatch::client::Validation;
use rotor_dispatch::engine::StateChange;
use rotor_dispatch::lifecycle::{Change, CredentialState, LastError};
use rotor_dispatch::state::StateBackend;
use rotor_storage::audit::{self, NewEvent};
use rotor_storage::{CredentialId, UserId, WorkspaceId};
use serde_json::json;
use tokio::sync::mpsc;
use uuid::Uuid;

/// How many state changes may wait to be audited (beyond it they are dropped and logged).
pub const CHANGES_QUEUE: usize = 1024;

/// Why a credential recovered (the `by` of its `credential.recovered` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Its config was changed (PATCH).
    Changed,
    /// A validation succeeded.
    Validated,
    /// `DELETE …/cooldowns` ended its spent quota.
    Reset,
    /// A background probe succeeded.
    Probed,
}

impl Recovery {
    const fn as_str(self) -> &'static str {
        match self {
            Recovery::Changed => "change",
            Recovery::Validated => "validation",
            Recovery::Reset => "reset",
            Recovery::Probed => "probe",
        }
    }
}

/// Writes one audit event about a credential's state.
async fn audit(
    state: &AppState,
    workspace: Uuid,
    credential: Uuid,
    action: &str,
    actor: Option<UserId>,
    details: serde_json::Value,
) {
    let event = NewEvent {
        workspace_id: Some(WorkspaceId::from(workspace)),
        instance_level: false,
        actor,
        action,
        target_type: "credential",
        target_id: Some(credential),
        details,
    };
    if let Err(e) = audit::record_alone(state.db(), event).await {
        tracing::error!(error = %e, %credential, action, "auditing a credential state change failed");
    }
}

fn error_details(e: Option<&LastError>) -> serde_json::Value {
    match e {
        Some(e) => json!({"status": e.status, "code": e.code}),
        None => json!({}),
    }
}

/// Audits `credential.recovered`: `actor` made it happen (none: a probe), `by` says how.
pub async fn recovered(
    state: &AppState,
    workspace: Uuid,
    credential: Uuid,
    actor: Option<UserId>,
    by: Recovery,
) {
    let details = json!({"by": by.as_str()});
    let action = Change::Recovered.action();
    audit(state, workspace, credential, action, actor, details).await;
    tracing::info!(%workspace, %credential, by = by.as_str(), "credential recovered");
}

/// Makes `credential` available in every pool again (changed, validated or probed back) and
/// audits it when it was rejected or quota-exhausted.
pub async fn recover(
    state: &AppState,
    workspace: Uuid,
    credential: Uuid,
    actor: Option<UserId>,
    by: Recovery,
) {
    let engine = state.engine();
    let now_ms = engine.clock().now_ms();
    if engine
        .state()
        .recover(workspace, credential, now_ms)
        .await
        .is_some()
    {
        recovered(state, workspace, credential, actor, by).await;
    }
}

/// Audits, with a null actor, every credential-wide change dispatch makes.
pub fn spawn_auditor(state: AppState, mut changes: mpsc::Receiver<StateChange>) {
    tokio::spawn(async move {
        while let Some(c) = changes.recv().await {
            let details = error_details(c.last_error.as_ref());
            let action = c.change.action();
            audit(&state, c.workspace, c.credential, action, None, details).await;
        }
    });
}

/// Every `ROTOR_PROBE_INTERVAL`, one replica (the lock holder) probes each rejected or
/// quota-exhausted credential with its provider's model list and recovers those that answer.
pub fn spawn_probes(state: AppState) {
    let every = state.config().probe_interval;
    let lease_ms = u64::try_from(every.as_millis())
        .unwrap_or(300_000)
        .max(1_000);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: the first probes run one interval after the start.
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if state.engine().state().lead("probes", lease_ms).await {
                probe_all(&state).await;
            }
        }
    });
}

/// Probes every flagged credential once.
pub async fn probe_all(state: &AppState) {
    let engine = state.engine();
    let flagged = engine.state().flagged().await;
    for f in flagged {
        let now_ms = engine.clock().now_ms();
        if f.record.state.at(now_ms) == CredentialState::Available {
            continue;
        }
        let ws = WorkspaceId::from(f.workspace);
        let id = CredentialId::from(f.credential);
        let target =
            match rotor_storage::credentials::get(state.db(), state.keyring(), ws, id).await {
                Ok(c) => crate::targets::target(&c),
                Err(rotor_storage::Error::NotFound) => {
                    // Deleted since: nothing to probe, nothing to keep.
                    engine
                        .state()
                        .recover(f.workspace, f.credential, now_ms)
                        .await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "probing credentials: the database did not answer");
                    return;
                }
            };
        let Some(target) = target else { continue };
        let outcome = state.upstream().validate(&target, VALIDATE_TIMEOUT).await;
        let label = outcome.code().unwrap_or("valid");
        metrics::counter!("rotor_credential_probes_total", "outcome" => label).increment(1);
        if outcome == Validation::Valid {
            recover(state, f.workspace, f.credential, None, Recovery::Probed).await;
        } else {
            tracing::info!(credential_id = %f.credential, outcome = label, "probed credential still refused");
        }
    }
}
