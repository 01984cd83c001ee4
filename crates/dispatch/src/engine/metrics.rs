//! The metric handles of one credential of one route: what the hot path counts into.

use crate::lifecycle::Cause;
use crate::series::{AnswerClass, Registry, Series};
use crate::usage::Usage;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The series one credential of one route counts into, taken from the server's
/// [`Registry`] when the route is resolved (so the hot path only adds to atomics, and a route
/// resolved again counts on where the last one stopped).
pub struct EntryMetrics {
    series: Arc<Series>,
    /// The model's series without a credential (requests no credential answered, overhead).
    route: Arc<Series>,
}

impl std::fmt::Debug for EntryMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EntryMetrics")
            .field(self.series.key())
            .finish()
    }
}

impl EntryMetrics {
    /// The series of the workspace, model and credential (`None`: the route's own).
    pub fn new(
        registry: &Registry,
        workspace: Uuid,
        model: &str,
        credential: Option<Uuid>,
    ) -> Self {
        let route = registry.series(workspace, model, None);
        let series = match credential {
            Some(_) => registry.series(workspace, model, credential),
            None => route.clone(),
        };
        Self { series, route }
    }

    /// Counts a client request answered with `outcome`.
    pub fn request(&self, outcome: AnswerClass) {
        self.series.request(outcome);
    }

    /// Records the time Rotor itself spent on a request (per model).
    pub fn overhead(&self, seconds: f64) {
        self.route.overhead(seconds);
    }

    pub(super) fn attempt(&self, outcome: AnswerClass) {
        self.series.attempt(outcome);
    }

    pub(super) fn latency(&self, waited: Duration) {
        self.series.latency(waited.as_secs_f64());
    }

    pub(super) fn cooldown(&self, reason: Cause) {
        self.series.cooldown(reason);
    }

    pub(super) fn tokens(&self, used: Usage) {
        self.series.tokens(used);
    }
}
