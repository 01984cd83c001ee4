//! Shared dispatch state in Redis: one rotation, one set of lifecycle records (§14) and one
//! count of each minute for every replica, so several replicas on one Redis act as one.
//!
//! - A pick is one round trip: a Lua script ([`scripts`]) reads the cursor, the pool's entry
//!   records, minute windows and affinity binding, decides as [`crate::pick::pick`] does,
//!   admits the request and stores the cursor. A pool's keys carry the hash tag
//!   `{workspace:model}` ([`keys`]), so a pick touches one slot (Redis Cluster works too),
//!   and expire after a day of disuse.
//! - Plain picks of a pool that wait while one is in flight go in the next call together
//!   ([`batch`]): the script makes them one after the other, as separate calls would.
//! - Credential-wide states (rejected, quota) live in `rotor:{workspace}:cred`, another slot:
//!   the pick gets them as arguments from this replica's copy ([`cache`]), at most 500 ms old.
//! - Answers are applied in Rust ([`crate::lifecycle`]) and written by compare-and-set, so
//!   racing replicas serialise and exactly one of them sees each credential-wide change.
//! - Response-id bindings are plain strings, `rotor:{workspace}:resp:<id>` =
//!   `<credential>|<model>`, set with the 30-day TTL.
//!
//! Fail-open: when Redis stops answering, dispatch continues on in-process state (logged
//! once, counted in `rotor_redis_fallback_total`), and a background probe switches back as soon
//! as Redis answers again. Writes also go to the in-process state, so a fallback honours what
//! was recorded while Redis was up.

mod batch;
mod cache;
mod clients;
mod codec;
mod keys;
mod lifecycle;
mod scripts;

use super::bindings::{bindable, Binding, BindingStore, BINDING_TTL_MS};
use super::memory::MemoryState;
use cache::CredentialCache;
use redis::aio::ConnectionManager;
use scripts::Scripts;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use uuid::Uuid;

/// How long one Redis call may take before dispatch falls back to in-process state.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// How often a down Redis is probed.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Idle lifetime of a pool's keys.
const TTL_MS: u64 = 24 * 3600 * 1000;
/// Idle lifetime of a workspace's credential records (a rejection must outlive quiet days).
const CREDENTIAL_TTL_MS: u64 = BINDING_TTL_MS;
/// Lifetime of the minute windows after their last count.
const WINDOW_TTL_MS: u64 = 120_000;
/// Tries of a compare-and-set before giving up on a record another replica keeps changing.
const CAS_TRIES: usize = 16;

/// Rotation and lifecycle records in Redis, with in-process fallback.
pub struct RedisState {
    client: redis::Client,
    conn: RwLock<Option<ConnectionManager>>,
    healthy: AtomicBool,
    fallback: MemoryState,
    scripts: Scripts,
    cache: CredentialCache,
    /// This replica's id, the value of the locks it holds.
    id: String,
    /// Client tokens counted here and not yet added in Redis ([`clients`]).
    client_tokens: clients::Pending,
    /// Shares of clients' minutes leased to this replica.
    leases: clients::Leases,
    /// Plain picks waiting for their pool's call in flight ([`batch`]).
    lanes: Arc<batch::Lanes>,
}

fn parse_binding(v: &str) -> Option<Binding> {
    let (credential, model) = v.split_once('|')?;
    Some(Binding {
        credential: Uuid::parse_str(credential).ok()?,
        model: Uuid::parse_str(model).ok()?,
    })
}

impl RedisState {
    /// Connects to `url` (without failing if Redis is down: dispatch then starts on in-process
    /// state and switches over when Redis answers) and starts the probe.
    pub async fn start(url: &str) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let state = Arc::new(Self {
            client,
            conn: RwLock::new(None),
            healthy: AtomicBool::new(false),
            fallback: MemoryState::default(),
            scripts: Scripts::default(),
            cache: CredentialCache::default(),
            id: Uuid::new_v4().simple().to_string(),
            client_tokens: clients::Pending::default(),
            leases: clients::Leases::default(),
            lanes: Arc::default(),
        });
        state.probe().await;
        clients::spawn_flusher(Arc::downgrade(&state));
        let weak = Arc::downgrade(&state);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                let Some(state) = weak.upgrade() else { break };
                if !state.healthy.load(Ordering::Relaxed) {
                    state.probe().await;
                }
            }
        });
        Ok(state)
    }

    /// Whether picks currently go to Redis.
    pub fn is_shared(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    async fn probe(&self) {
        let existing = self.conn.read().ok().and_then(|c| c.clone());
        let conn = match existing {
            Some(c) => Some(c),
            None => {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(CALL_TIMEOUT)
                    .set_response_timeout(CALL_TIMEOUT)
                    .set_number_of_retries(1);
                match tokio::time::timeout(
                    Duration::from_secs(2),
                    ConnectionManager::new_with_config(self.client.clone(), config),
                )
                .await
                {
                    Ok(Ok(c)) => {
                        if let Ok(mut slot) = self.conn.write() {
                            *slot = Some(c.clone());
                        }
                        Some(c)
                    }
                    _ => None,
                }
            }
        };
        let Some(mut conn) = conn else { return };
        let pong: Result<Result<String, _>, _> =
            tokio::time::timeout(CALL_TIMEOUT, redis::cmd("PING").query_async(&mut conn)).await;
        if matches!(pong, Ok(Ok(_))) && !self.healthy.swap(true, Ordering::Relaxed) {
            tracing::warn!("Redis answers: dispatch state is shared again");
        }
    }

    fn down(&self, what: &str, error: &dyn std::fmt::Display) {
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::error!(operation = what, error = %error, "Redis stopped answering: dispatch continues on in-process state");
        }
        metrics::counter!("rotor_redis_fallback_total").increment(1);
    }

    fn connection(&self) -> Option<ConnectionManager> {
        if !self.healthy.load(Ordering::Relaxed) {
            return None;
        }
        self.conn.read().ok().and_then(|c| c.clone())
    }

    async fn call<T: redis::FromRedisValue>(
        &self,
        what: &str,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Option<T> {
        let mut conn = self.connection()?;
        let answer =
            tokio::time::timeout(CALL_TIMEOUT, invocation.invoke_async::<T>(&mut conn)).await;
        self.settled(what, answer)
    }

    /// Runs one command; `None` (and the switch to in-process state) when Redis does not answer.
    async fn command<T: redis::FromRedisValue>(&self, what: &str, cmd: &redis::Cmd) -> Option<T> {
        let mut conn = self.connection()?;
        let answer = tokio::time::timeout(CALL_TIMEOUT, cmd.query_async::<T>(&mut conn)).await;
        self.settled(what, answer)
    }

    /// Runs a pipeline (one round trip); `None` when Redis does not answer.
    async fn piped<T: redis::FromRedisValue>(
        &self,
        what: &str,
        pipe: &redis::Pipeline,
    ) -> Option<T> {
        let mut conn = self.connection()?;
        let answer = tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<T>(&mut conn)).await;
        self.settled(what, answer)
    }

    /// The value of a timed Redis call, or `None` after noting that Redis stopped answering.
    fn settled<T>(
        &self,
        what: &str,
        answer: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        match answer {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.down(what, &e);
                None
            }
            Err(_) => {
                self.down(what, &"timed out");
                None
            }
        }
    }
}

impl BindingStore for RedisState {
    async fn bind(&self, workspace: Uuid, response_id: &str, binding: Binding, now_ms: u64) {
        // Kept locally too, so a fallback still finds responses created while Redis was up.
        self.fallback
            .bind(workspace, response_id, binding, now_ms)
            .await;
        if !bindable(response_id) {
            return;
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(keys::binding(workspace, response_id))
            .arg(format!(
                "{}|{}",
                binding.credential.simple(),
                binding.model.simple()
            ))
            .arg("PX")
            .arg(BINDING_TTL_MS);
        let _ = self.command::<()>("bind", &cmd).await;
    }

    async fn binding(&self, workspace: Uuid, response_id: &str, now_ms: u64) -> Option<Binding> {
        if !bindable(response_id) {
            return None;
        }
        let mut cmd = redis::cmd("GET");
        cmd.arg(keys::binding(workspace, response_id));
        let shared = self.command::<Option<String>>("binding", &cmd).await;
        match shared {
            // Redis answered: it is the truth, also when another replica deleted the response
            // (a binding made here while Redis was down is lost with the outage).
            Some(answer) => answer.as_deref().and_then(parse_binding),
            None => self.fallback.binding(workspace, response_id, now_ms).await,
        }
    }

    async fn unbind(&self, workspace: Uuid, response_id: &str) {
        self.fallback.unbind(workspace, response_id).await;
        if !bindable(response_id) {
            return;
        }
        let mut cmd = redis::cmd("DEL");
        cmd.arg(keys::binding(workspace, response_id));
        let _ = self.command::<i64>("unbind", &cmd).await;
    }
}

#[cfg(test)]
mod tests {
    //! Pure: the key and value formats (Redis itself is exercised by the replica tests).
    use super::*;

    #[test]
    fn binding_keys_carry_the_workspace_as_hash_tag() {
        let ws = Uuid::from_u128(0xab);
        assert_eq!(
            keys::binding(ws, "resp_1"),
            "rotor:{000000000000000000000000000000ab}:resp:resp_1"
        );
        let b = Binding {
            credential: Uuid::new_v4(),
            model: Uuid::new_v4(),
        };
        let v = format!("{}|{}", b.credential.simple(), b.model.simple());
        assert_eq!(parse_binding(&v), Some(b));
        assert_eq!(parse_binding("garbage"), None);
    }
}
