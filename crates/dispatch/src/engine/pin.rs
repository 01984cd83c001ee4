//! Requests pinned to one credential: everything about a stored response goes to the
//! credential that created it (providers keep responses per organisation), with no failover —
//! another credential could not see the response. And the bindings that say which one it is.

use super::{Call, Engine, Failure, Route, RouteEntry};
use crate::lifecycle::{CredentialState, EntryRecord, Limits};
use crate::state::bindings::{Binding, BindingStore};
use crate::state::StateBackend;
use uuid::Uuid;

/// The entry of `route` holding `credential`: with load balancing effective a pool entry
/// first, else the default (the one the response was most likely created through).
pub(super) fn entry_of(route: &Route, credential: Uuid, balanced: bool) -> Option<&RouteEntry> {
    let held = |e: &&RouteEntry| e.credential_id == credential;
    let (pool, default) = (route.entries.iter(), route.default.iter());
    if balanced {
        pool.chain(default).find(held)
    } else {
        default.chain(pool).find(held)
    }
}

/// Why a pinned credential cannot serve at `now_ms`, given its credential state and its entry
/// record: rejected by the provider (502), or back by itself later — cooling, quota spent
/// (429 with `Retry-After`). Limits do not stop a pinned request (it has nowhere else to go).
pub(super) fn refusal(
    credential: Uuid,
    state: CredentialState,
    entry: Option<&EntryRecord>,
    now_ms: u64,
) -> Option<Failure> {
    let retry = |until_ms: u64| Failure::AllCooling {
        retry_after_s: until_ms.saturating_sub(now_ms).div_ceil(1000).max(1),
    };
    match state.at(now_ms) {
        CredentialState::Rejected { .. } => Some(Failure::CredentialRejected {
            credential_id: credential,
        }),
        CredentialState::QuotaExhausted { until_ms, .. } => Some(retry(until_ms)),
        CredentialState::Available => entry
            .filter(|e| !e.can_serve(Limits::default(), now_ms))
            .and_then(|e| e.back_at(Limits::default(), now_ms))
            .map(retry),
    }
}

impl<S: StateBackend> Engine<S> {
    /// The entry a request pinned to `credential` goes to, or why it goes nowhere. Without
    /// load balancing no state stops it, as none stops the default credential.
    pub(super) async fn pinned<'a>(
        &self,
        call: &Call<'a>,
        credential: Uuid,
    ) -> Result<&'a RouteEntry, Failure> {
        let route = call.route;
        if route.entries.is_empty() && route.default.is_none() {
            return Err(Failure::Unreadable);
        }
        let entry =
            entry_of(route, credential, call.balanced).ok_or(Failure::PinnedCredentialGone)?;
        if call.balanced {
            let state = &self.cooling.state;
            let book = state.book(route.pool).await;
            let records = state.credentials(route.pool.workspace, &[credential]).await;
            let standing = records
                .into_iter()
                .next()
                .map(|(_, r)| r.state)
                .unwrap_or_default();
            let now_ms = self.cooling.clock.now_ms();
            if let Some(failure) = refusal(credential, standing, book.get(credential), now_ms) {
                return Err(failure);
            }
        }
        Ok(entry)
    }
}

impl<S: BindingStore> Engine<S> {
    /// Remembers that `binding.credential` created `response_id` (ids unfit as keys are
    /// ignored), so later requests about it can be pinned there.
    pub async fn bind_response(&self, workspace: Uuid, response_id: &str, binding: Binding) {
        let now = self.cooling.clock.now_ms();
        self.cooling
            .state
            .bind(workspace, response_id, binding, now)
            .await;
    }

    /// Which credential created `response_id` of `workspace`, if known and not expired.
    pub async fn response_binding(&self, workspace: Uuid, response_id: &str) -> Option<Binding> {
        let now = self.cooling.clock.now_ms();
        self.cooling
            .state
            .binding(workspace, response_id, now)
            .await
    }

    /// Forgets `response_id` (after the provider deleted it).
    pub async fn unbind_response(&self, workspace: Uuid, response_id: &str) {
        self.cooling.state.unbind(workspace, response_id).await;
    }
}

#[cfg(test)]
mod tests {
    //! Pure: which entry a pinned request goes to, and what stops it, without a provider.
    use super::*;
    use crate::client::Upstream;
    use crate::clock::{Clock, ManualClock};
    use crate::engine::{EntryMetrics, Settings};
    use crate::lifecycle::{Circuit, Classified, CoolReason, Trigger};
    use crate::policy::AddressPolicy;
    use crate::series::Registry;
    use crate::state::bindings::BINDING_TTL;
    use crate::state::memory::MemoryState;
    use crate::state::{PoolKey, Report};
    use crate::target::{Endpoint, Family, ModelTarget, ProviderKind, Target};
    use bytes::Bytes;
    use http::header::HeaderMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Refused by the default address policy before any call: an attempt there makes no I/O.
    const REFUSED: &str = "http://127.0.0.1:9/v1";

    fn entry(credential: Uuid, upstream_model: Option<&str>) -> RouteEntry {
        entry_at(credential, upstream_model, "https://api.openai.com/v1")
    }

    fn entry_at(credential: Uuid, upstream_model: Option<&str>, base_url: &str) -> RouteEntry {
        let target = Target {
            kind: ProviderKind::OpenAi,
            base_url: base_url.into(),
            api_key: String::from("sk-test").into(),
            organization: None,
            api_version: None,
            deployment: None,
        };
        RouteEntry {
            credential_id: credential,
            weight: 1,
            target: Arc::new(ModelTarget::new(target, "gpt-4o")),
            upstream_model: upstream_model.map(Arc::from),
            limits: Limits::default(),
            quota_cooldown_seconds: 3600,
            metrics: Arc::new(EntryMetrics::new(
                &Registry::default(),
                Uuid::nil(),
                "m",
                Some(credential),
            )),
        }
    }

    fn route(entries: Vec<RouteEntry>, default: Option<RouteEntry>) -> Route {
        Route {
            pool: PoolKey {
                workspace: Uuid::new_v4(),
                model: Uuid::new_v4(),
            },
            model: "m".into(),
            family: Family::OpenAi,
            upstream_model: "gpt-4o".into(),
            entries,
            default,
            pool_ready: true,
            cooldown_seconds: 60,
            max_attempts: 3,
            max_wait_ms: 0,
            affinity_ttl_ms: None,
            signature: 0,
            metrics: Arc::new(EntryMetrics::new(
                &Registry::default(),
                Uuid::nil(),
                "m",
                None,
            )),
        }
    }

    #[test]
    fn a_pin_finds_its_credential_whatever_the_rotation_or_weights() {
        let (a, b, gone) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut heavy = entry(a, None);
        heavy.weight = 100;
        let r = route(
            vec![heavy, entry(b, Some("pool-name"))],
            Some(entry(b, None)),
        );
        for balanced in [true, false] {
            let found = entry_of(&r, a, balanced).map(|e| e.credential_id);
            assert_eq!(found, Some(a), "a pool entry serves without balancing too");
            assert!(entry_of(&r, gone, balanced).is_none());
        }
        // A credential both in the pool and the default: the entry of the current mode.
        let pooled = entry_of(&r, b, true).and_then(|e| e.upstream_model.clone());
        assert_eq!(pooled.as_deref(), Some("pool-name"));
        assert!(entry_of(&r, b, false).is_some_and(|e| e.upstream_model.is_none()));
    }

    #[test]
    fn a_pinned_credential_cooling_or_rejected_is_refused_not_replaced() {
        let c = Uuid::new_v4();
        let open = |until_ms| EntryRecord {
            circuit: Circuit::Open {
                reason: CoolReason::RateLimited,
                until_ms,
                step: 0,
            },
            ..EntryRecord::default()
        };
        let free = CredentialState::Available;
        assert_eq!(refusal(c, free, None, 1_000), None);
        // Over: it serves again.
        assert_eq!(refusal(c, free, Some(&open(1_000)), 1_000), None);
        assert_eq!(
            refusal(c, free, Some(&open(3_500)), 1_000),
            Some(Failure::AllCooling { retry_after_s: 3 })
        );
        let quota = CredentialState::QuotaExhausted {
            until_ms: 1_001,
            since_ms: 0,
        };
        assert_eq!(
            refusal(c, quota, None, 1_000),
            Some(Failure::AllCooling { retry_after_s: 1 })
        );
        let rejected = CredentialState::Rejected { since_ms: 0 };
        assert_eq!(
            refusal(c, rejected, Some(&open(3_500)), 1_000),
            Some(Failure::CredentialRejected { credential_id: c })
        );
    }

    fn engine() -> (Engine<MemoryState>, Arc<MemoryState>, Arc<ManualClock>) {
        let state = Arc::new(MemoryState::default());
        let clock = Arc::new(ManualClock::new(1_000_000));
        let settings = Settings {
            upstream_timeout: Duration::from_secs(1),
            request_deadline: Duration::from_secs(2),
            stream_idle_timeout: Duration::from_secs(1),
            max_body: 1 << 20,
        };
        let upstream = Upstream::new(AddressPolicy::default()).unwrap();
        let engine = Engine::new(upstream, state.clone(), clock.clone(), settings);
        (engine, state, clock)
    }

    async fn send(
        engine: &Engine<MemoryState>,
        route: &Route,
        balanced: bool,
        pin: Uuid,
    ) -> (Result<u16, Failure>, u32) {
        let forward = HeaderMap::new();
        let outcome = engine
            .dispatch(Call {
                route,
                balanced,
                endpoint: Endpoint::Responses,
                method: http::Method::GET,
                suffix: Some("/resp_1"),
                forward: &forward,
                body: Bytes::new(),
                rebody: None,
                stream: false,
                started: Instant::now(),
                pin: Some(pin),
                affinity: None,
                usage: None,
                client: None,
            })
            .await;
        (outcome.result.map(|r| r.status), outcome.attempts)
    }

    /// Records an answer of `credential` in `route`'s pool at `now_ms`.
    async fn answer(
        state: &MemoryState,
        route: &Route,
        credential: Uuid,
        answer: Classified,
        now_ms: u64,
    ) {
        let report = Report {
            answer: &answer,
            cooldown_seconds: 2,
            quota_cooldown_seconds: 3600,
            now_ms,
        };
        state.record(route.pool, credential, report).await;
    }

    fn status(status: u16, trigger: Trigger) -> Classified {
        Classified {
            trigger,
            reset: None,
            status: Some(status),
            code: None,
        }
    }

    #[tokio::test]
    async fn a_pinned_request_goes_to_its_credential_or_nowhere() {
        let (engine, state, clock) = engine();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        // B would win every pick; a failover to it would make a call (and not read "blocked").
        let mut heavy = entry_at(b, None, "https://b.invalid/v1");
        heavy.weight = 100;
        let r = route(vec![entry_at(a, None, REFUSED), heavy], None);
        for balanced in [true, false] {
            assert_eq!(
                send(&engine, &r, balanced, a).await,
                (Err(Failure::Blocked), 0)
            );
        }
        assert_eq!(
            send(&engine, &r, true, Uuid::new_v4()).await,
            (Err(Failure::PinnedCredentialGone), 0)
        );
        let now = clock.now_ms();
        let limited = Classified {
            reset: Some(Duration::from_millis(2_500)),
            ..status(429, Trigger::RateLimited)
        };
        answer(&state, &r, a, limited, now).await;
        assert_eq!(
            send(&engine, &r, true, a).await,
            (Err(Failure::AllCooling { retry_after_s: 3 }), 0)
        );
        // Without load balancing no cooldown stops it.
        assert_eq!(
            send(&engine, &r, false, a).await,
            (Err(Failure::Blocked), 0)
        );
        clock.advance(3_000);
        answer(&state, &r, a, status(401, Trigger::Rejected), now + 3_000).await;
        assert_eq!(
            send(&engine, &r, true, a).await,
            (Err(Failure::CredentialRejected { credential_id: a }), 0)
        );
        // Rejected stays until the credential is recovered, however long it waits.
        clock.advance(3_600_000);
        assert_eq!(
            send(&engine, &r, true, a).await,
            (Err(Failure::CredentialRejected { credential_id: a }), 0)
        );
        state.recover(r.pool.workspace, a, clock.now_ms()).await;
        assert_eq!(send(&engine, &r, true, a).await, (Err(Failure::Blocked), 0));
        let empty = route(vec![], None);
        assert_eq!(
            send(&engine, &empty, true, a).await,
            (Err(Failure::Unreadable), 0)
        );
    }

    #[tokio::test]
    async fn the_engine_keeps_bindings_for_thirty_days_by_its_clock() {
        let (engine, _, clock) = engine();
        let ws = Uuid::new_v4();
        let binding = Binding {
            credential: Uuid::new_v4(),
            model: Uuid::new_v4(),
        };
        engine.bind_response(ws, "resp_1", binding).await;
        engine.bind_response(ws, "resp_2", binding).await;
        assert_eq!(engine.response_binding(ws, "resp_1").await, Some(binding));
        engine.unbind_response(ws, "resp_1").await;
        assert_eq!(engine.response_binding(ws, "resp_1").await, None);
        clock.advance(BINDING_TTL.as_secs() * 1000 - 1);
        assert_eq!(engine.response_binding(ws, "resp_2").await, Some(binding));
        clock.advance(1);
        assert_eq!(engine.response_binding(ws, "resp_2").await, None);
    }
}
