//! The one way an answer reaches the lifecycle state (§14): recorded in the state backend,
//! counted, logged, and a credential-wide change sent on to be audited — for an attempt's
//! answer, a transport failure and a stream that broke after it started alike.

use super::{Call, EntryMetrics, RouteEntry};
use crate::clock::Clock;
use crate::lifecycle::{Cause, Change, Classified, LastError, Trigger};
use crate::state::{PoolKey, Report, StateBackend};
use std::sync::Arc;
use tokio::sync::mpsc;
use uuid::Uuid;

/// A credential-wide state change one replica made, to audit (with a null actor) and log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The credential's workspace.
    pub workspace: Uuid,
    /// The credential.
    pub credential: Uuid,
    /// What happened.
    pub change: Change,
    /// The answer that caused it.
    pub last_error: Option<LastError>,
}

/// Where answers go and the clock that dates them (the engine's, shared with its streams).
pub(super) struct Cooling<S> {
    /// The state backend (rotation and lifecycle).
    pub state: Arc<S>,
    /// Dates each answer.
    pub clock: Arc<dyn Clock>,
    /// Receives credential-wide changes (bounded: a full queue drops the event, never blocks).
    pub changes: Option<mpsc::Sender<StateChange>>,
}

impl<S> Clone for Cooling<S> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            clock: self.clock.clone(),
            changes: self.changes.clone(),
        }
    }
}

/// Which credential of which request an answer is about.
#[derive(Clone, Copy)]
pub(super) struct Cooled<'a> {
    /// The entry record's scope.
    pub pool: PoolKey,
    /// The model's name (for the log).
    pub model: &'a str,
    /// The credential.
    pub credential: Uuid,
    /// Its metric handles.
    pub metrics: &'a EntryMetrics,
    /// The pool's `cooldown_seconds`.
    pub cooldown_seconds: u32,
    /// The credential's `quota_cooldown_seconds`.
    pub quota_cooldown_seconds: u32,
    /// The request is the entry's half-open trial (its success closes the circuit).
    pub trial: bool,
}

impl<'a> Cooled<'a> {
    /// The credential of `entry` as `call` uses it.
    pub fn of(call: &'a Call<'_>, entry: &'a RouteEntry, trial: bool) -> Self {
        Self {
            pool: call.route.pool,
            model: &call.route.model,
            credential: entry.credential_id,
            metrics: &entry.metrics,
            cooldown_seconds: call.route.cooldown_seconds,
            quota_cooldown_seconds: entry.quota_cooldown_seconds,
            trial,
        }
    }
}

impl<S: StateBackend> Cooling<S> {
    /// Records `answer` of `who` when it changes anything: an error, a spent limit, or the
    /// outcome of a half-open trial (a plain success touches no state: the hot path).
    pub async fn report(&self, who: Cooled<'_>, answer: &Classified) {
        let matters = answer.trigger.is_error() || answer.reset.is_some() || who.trial;
        if matters {
            // Boxed: the state call's future is not part of every request's future (moved
            // at each `.await` above it) for the answers that record nothing.
            Box::pin(self.record(who, answer)).await;
        }
    }

    /// [`Cooling::report`] of an answer that changes something.
    async fn record(&self, who: Cooled<'_>, answer: &Classified) {
        let now_ms = self.clock.now_ms();
        let report = Report {
            answer,
            cooldown_seconds: who.cooldown_seconds,
            quota_cooldown_seconds: who.quota_cooldown_seconds,
            now_ms,
        };
        let recorded = self.state.record(who.pool, who.credential, report).await;
        let cause = match answer.trigger {
            Trigger::Rejected => Some(Cause::Rejected),
            Trigger::QuotaExhausted => Some(Cause::QuotaExhausted),
            _ => recorded.cooled.map(Cause::from),
        };
        if let Some(cause) = cause {
            who.metrics.cooldown(cause);
            tracing::info!(
                workspace_id = %who.pool.workspace, model = %who.model, credential_id = %who.credential,
                reason = cause.as_str(), status = answer.status, "credential leaves the rotation"
            );
        }
        if let Some(change) = recorded.change {
            tracing::warn!(
                workspace_id = %who.pool.workspace, credential_id = %who.credential,
                action = change.action(), status = answer.status, code = answer.code.as_deref(),
                "credential state changed"
            );
            self.announce(StateChange {
                workspace: who.pool.workspace,
                credential: who.credential,
                change,
                last_error: answer.last_error(now_ms),
            });
        }
    }

    /// Sends `change` on to be audited, never waiting (a full queue drops it, logged).
    pub fn announce(&self, change: StateChange) {
        if let Some(tx) = &self.changes {
            if tx.try_send(change).is_err() {
                tracing::warn!("credential state change not audited: the queue is full");
            }
        }
    }
}
