//! The one way a credential starts cooling down: recorded in the state backend, counted and
//! logged — for a failed attempt and for a stream that broke after it started alike.

use super::{Call, EntryMetrics, RouteEntry};
use crate::clock::Clock;
use crate::cooldown::Reason;
use crate::state::{Cooldown, PoolKey, StateBackend};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Where cooldowns go and the clock that dates them (the engine's, shared with its streams).
pub(super) struct Cooling<S> {
    /// The state backend (rotation and cooldowns).
    pub state: Arc<S>,
    /// Dates each cooldown.
    pub clock: Arc<dyn Clock>,
}

impl<S> Clone for Cooling<S> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// Which credential of which request a cooldown is for.
#[derive(Clone, Copy)]
pub(super) struct Cooled<'a> {
    /// The cooldown scope.
    pub pool: PoolKey,
    /// The model's name (for the log).
    pub model: &'a str,
    /// The credential.
    pub credential: Uuid,
    /// Its metric handles.
    pub metrics: &'a EntryMetrics,
    /// Whether load balancing is effective: without it nothing cools (there is nothing to
    /// rotate to, and the provider's answer goes to the client as it is).
    pub balanced: bool,
}

impl<'a> Cooled<'a> {
    /// The credential of `entry` as `call` uses it.
    pub fn of(call: &'a Call<'_>, entry: &'a RouteEntry) -> Self {
        Self {
            pool: call.route.pool,
            model: &call.route.model,
            credential: entry.credential_id,
            metrics: &entry.metrics,
            balanced: call.balanced,
        }
    }
}

impl<S: StateBackend> Cooling<S> {
    /// Starts a cooldown of `who` for `reason`, lasting `duration`; `status` is the upstream
    /// status that triggered it (none for connect errors, timeouts and broken streams).
    pub async fn cool(
        &self,
        who: Cooled<'_>,
        (duration, reason): (Duration, Reason),
        status: Option<u16>,
    ) {
        if !who.balanced {
            return;
        }
        let now = self.clock.now_ms();
        let until_ms = now + u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 2);
        let cooldown = Cooldown {
            until_ms,
            reason,
            status,
            at_ms: now,
        };
        self.state.cool(who.pool, who.credential, cooldown).await;
        who.metrics.cooldown(reason);
        tracing::info!(
            workspace_id = %who.pool.workspace, model = %who.model, credential_id = %who.credential,
            reason = reason.as_str(), seconds = duration.as_secs(), "credential cooling down"
        );
    }
}
