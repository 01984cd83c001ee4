//! Shared dispatch state in Redis: one rotation and one set of cooldowns for every replica.
//! A pick is one round trip (a Lua script that reads the cooldowns, advances the smooth
//! weighted round-robin and stores it); keys carry a `{workspace:model}` hash tag so a pick
//! touches one slot (Redis Cluster works too) and expire after a day of disuse. Response-id
//! bindings are plain strings, `rotor:{workspace}:resp:<id>` = `<credential>|<model>`, set
//! with the 30-day TTL.
//!
//! Fail-open: when Redis stops answering, dispatch continues on in-process state (logged
//! once, counted in `rotor_redis_fallback_total`), and a background probe switches back as soon
//! as Redis answers again.

use super::bindings::{bindable, Binding, BindingStore, BINDING_TTL_MS};
use super::memory::MemoryState;
use super::{Flagged, PickRequest, PoolKey, Recorded, Report, StateBackend};
use crate::lifecycle::{Change, CredentialRecord};
use crate::pick::{Book, Choice};
use redis::aio::ConnectionManager;
use redis::Script;
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

const PICK: &str = r#"
local sig = ARGV[1]
local now = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local cur = {}
local state = redis.call('GET', KEYS[1])
if state then
  local s, rest = string.match(state, '^([^|]*)|(.*)$')
  if s == sig then
    for v in string.gmatch(rest, '[^,]+') do cur[#cur + 1] = tonumber(v) end
  end
end
if #cur ~= n then
  cur = {}
  for i = 1, n do cur[i] = 0 end
end
local cds = redis.call('HGETALL', KEYS[2])
local until_by = {}
for i = 1, #cds, 2 do
  until_by[cds[i]] = tonumber(string.match(cds[i + 1], '^(%d+)'))
end
local total = 0
local best = -1
local soonest = -1
for i = 1, n do
  local base = 3 + (i - 1) * 3
  local cred = ARGV[base + 1]
  local w = tonumber(ARGV[base + 2])
  if ARGV[base + 3] ~= '1' then
    local u = until_by[cred]
    if u and u > now then
      if soonest < 0 or u < soonest then soonest = u end
    else
      cur[i] = cur[i] + w
      total = total + w
      if best < 0 or cur[i] > cur[best] then best = i end
    end
  end
end
if best < 0 then
  if soonest >= 0 then return {-1, soonest - now} end
  return {-2, 0}
end
cur[best] = cur[best] - total
local parts = {}
for i = 1, n do parts[i] = string.format('%.0f', cur[i]) end
redis.call('SET', KEYS[1], sig .. '|' .. table.concat(parts, ','), 'PX', ARGV[#ARGV])
return {best - 1, 0}
"#;

const COOL: &str = r#"
local new_until = tonumber(ARGV[2])
local reason = ARGV[3]
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local ou, oreason = string.match(old, '^(%d+)|([^|]*)|')
  if ou and tonumber(ou) > new_until then
    new_until = tonumber(ou)
    reason = oreason
  end
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.0f', new_until) .. '|' .. reason .. '|' .. ARGV[4] .. '|' .. ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"#;

/// Rotation and cooldowns in Redis, with in-process fallback.
pub struct RedisState {
    client: redis::Client,
    conn: RwLock<Option<ConnectionManager>>,
    healthy: AtomicBool,
    fallback: MemoryState,
    pick: Script,
    cool: Script,
}

fn keys(pool: PoolKey) -> (String, String) {
    let tag = format!("{{{}:{}}}", pool.workspace.simple(), pool.model.simple());
    (format!("rotor:{tag}:rot"), format!("rotor:{tag}:cd"))
}

/// The key of a response-id binding (the workspace is the hash tag).
fn binding_key(workspace: Uuid, response_id: &str) -> String {
    format!("rotor:{{{}}}:resp:{response_id}", workspace.simple())
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
            pick: Script::new(PICK),
            cool: Script::new(COOL),
        });
        state.probe().await;
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
        cmd.arg(binding_key(workspace, response_id))
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
        cmd.arg(binding_key(workspace, response_id));
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
        cmd.arg(binding_key(workspace, response_id));
        let _ = self.command::<i64>("unbind", &cmd).await;
    }
}

// TODO(lifecycle in Redis): until the scripts land, the lifecycle lives in process here.
impl StateBackend for RedisState {
    async fn pick(&self, request: PickRequest<'_>) -> Choice {
        self.fallback.pick(request).await
    }

    async fn record(&self, pool: PoolKey, credential: Uuid, report: Report<'_>) -> Recorded {
        self.fallback.record(pool, credential, report).await
    }

    async fn count_tokens(&self, pool: PoolKey, credential: Uuid, tokens: u64, now_ms: u64) {
        self.fallback
            .count_tokens(pool, credential, tokens, now_ms)
            .await
    }

    async fn book(&self, pool: PoolKey) -> Book {
        self.fallback.book(pool).await
    }

    async fn credentials(
        &self,
        workspace: Uuid,
        credentials: &[Uuid],
    ) -> Vec<(Uuid, CredentialRecord)> {
        self.fallback.credentials(workspace, credentials).await
    }

    async fn reset(&self, pool: PoolKey, credentials: &[Uuid], now_ms: u64) -> Vec<Uuid> {
        self.fallback.reset(pool, credentials, now_ms).await
    }

    async fn recover(&self, workspace: Uuid, credential: Uuid, now_ms: u64) -> Option<Change> {
        self.fallback.recover(workspace, credential, now_ms).await
    }

    async fn flagged(&self) -> Vec<Flagged> {
        self.fallback.flagged().await
    }

    async fn lead(&self, name: &str, ttl_ms: u64) -> bool {
        self.fallback.lead(name, ttl_ms).await
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
            binding_key(ws, "resp_1"),
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
