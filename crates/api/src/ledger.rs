//! The usage ledger's in-memory side (DESIGN §15): gateway requests add to sharded per-minute
//! counters (a short lock, no I/O), and a background task moves them to Postgres with one
//! additive upsert every [`FLUSH_EVERY`], again at shutdown; each replica adds only its own
//! increments, so the stored sums are exact across replicas. A failed flush keeps its counts
//! (bounded by [`MAX_PENDING`] rows) for the next tick. Old rows are deleted hourly.

use crate::state::AppState;
use rotor_dispatch::engine::{Route, UsageSink, UsageTag};
use rotor_dispatch::usage::Usage;
use rotor_storage::usage::Increment;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// How often the counts are written (DESIGN §15: at least every 5 s).
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// Most rows kept in memory while the database refuses them; beyond, new rows are dropped
/// (and counted in `rotor_usage_dropped_total`) rather than growing without limit.
pub const MAX_PENDING: usize = 200_000;
/// How often rows older than the retention are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Counter shards: requests on different keys rarely wait for each other.
const SHARDS: usize = 16;

/// One ledger row's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    workspace: Uuid,
    api_key: Uuid,
    model: Uuid,
    credential: Option<Uuid>,
    minute: i64,
}

/// One ledger row's increments.
#[derive(Debug, Clone)]
struct Counts {
    model_name: Arc<str>,
    requests: i64,
    errors: i64,
    input: i64,
    output: i64,
    cached: i64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.input += other.input;
        self.output += other.output;
        self.cached += other.cached;
    }
}

type Rows = HashMap<Key, Counts>;

/// The counters of this replica not yet written.
pub struct Ledger {
    shards: [Mutex<Rows>; SHARDS],
    /// Rows taken from the shards whose write has not succeeded yet (only flushes lock it).
    pending: tokio::sync::Mutex<Rows>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            pending: tokio::sync::Mutex::new(HashMap::new()),
        }
    }
}

/// The current UTC minute (seconds since the epoch / 60).
fn minute_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 60).unwrap_or(0)
}

/// The tag of a request of `client` for `route`, arriving now.
pub fn tag(route: &Route, client: Uuid) -> UsageTag {
    UsageTag {
        pool: route.pool,
        model: route.model.clone(),
        family: route.family,
        client,
        minute: minute_now(),
    }
}

fn saturating(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Ledger {
    fn add(&self, tag: &UsageTag, credential: Option<Uuid>, counts: Counts) {
        let key = Key {
            workspace: tag.pool.workspace,
            api_key: tag.client,
            model: tag.pool.model,
            credential,
            minute: tag.minute,
        };
        let shard = (tag.client.as_u64_pair().1 as usize) % SHARDS;
        let mut rows = self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match rows.get_mut(&key) {
            Some(row) => row.add(&counts),
            None => {
                rows.insert(key, counts);
            }
        }
    }

    /// Counts one request of `tag` answered by `credential` (none: Rotor refused it itself).
    pub fn request(&self, tag: &UsageTag, credential: Option<Uuid>, error: bool) {
        let counts = Counts {
            model_name: tag.model.clone(),
            requests: 1,
            errors: i64::from(error),
            input: 0,
            output: 0,
            cached: 0,
        };
        self.add(tag, credential, counts);
    }

    /// Moves every counter to `db` in one transaction; on failure they stay for the next call.
    pub async fn flush(&self, db: &PgPool) -> Result<usize, rotor_storage::Error> {
        let mut pending = self.pending.lock().await;
        let mut dropped = 0u64;
        for shard in &self.shards {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(PoisonError::into_inner));
            for (key, counts) in taken {
                let room = pending.len() < MAX_PENDING;
                match pending.get_mut(&key) {
                    Some(row) => row.add(&counts),
                    None if room => {
                        pending.insert(key, counts);
                    }
                    None => dropped += 1,
                }
            }
        }
        if dropped > 0 {
            metrics::counter!("rotor_usage_dropped_total").increment(dropped);
            tracing::warn!(
                dropped,
                "usage ledger full while the database refuses writes; rows dropped"
            );
        }
        if pending.is_empty() {
            return Ok(0);
        }
        let rows: Vec<Increment> = pending.iter().map(increment).collect();
        rotor_storage::usage::add(db, &rows).await?;
        pending.clear();
        Ok(rows.len())
    }
}

fn increment((key, c): (&Key, &Counts)) -> Increment {
    Increment {
        workspace: key.workspace.into(),
        api_key: key.api_key.into(),
        model: key.model.into(),
        model_name: c.model_name.to_string(),
        credential: key.credential.map(Into::into),
        minute: key.minute,
        requests: c.requests,
        errors: c.errors,
        input_tokens: c.input,
        output_tokens: c.output,
        cached_input_tokens: c.cached,
    }
}

impl UsageSink for Ledger {
    fn used(&self, tag: &UsageTag, credential: Uuid, used: Usage) {
        let counts = Counts {
            model_name: tag.model.clone(),
            requests: 0,
            errors: 0,
            input: saturating(used.input_with_cache(tag.family)),
            output: saturating(used.output),
            cached: saturating(used.cache_read),
        };
        self.add(tag, Some(credential), counts);
    }
}

/// Flushes every [`FLUSH_EVERY`] and purges rows past the retention every [`PURGE_EVERY`]
/// (first at startup), until the database is closed.
pub fn spawn_flusher(state: AppState) {
    tokio::spawn(async move {
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purge = tokio::time::interval(PURGE_EVERY);
        purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = flush.tick() => {
                    if state.db().is_closed() {
                        return;
                    }
                    match state.ledger().flush(state.db()).await {
                        Ok(_) if failing => {
                            failing = false;
                            tracing::info!("usage ledger written again");
                        }
                        Ok(_) => {}
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "cannot write the usage ledger; keeping the counts and retrying");
                        }
                        Err(e) => tracing::debug!(error = %e, "usage ledger write failed again"),
                    }
                }
                _ = purge.tick() => {
                    if state.db().is_closed() {
                        return;
                    }
                    purge_old(&state).await;
                }
            }
        }
    });
}

/// Deletes ledger rows older than `ROTOR_USAGE_RETENTION_DAYS`.
async fn purge_old(state: &AppState) {
    let days = i64::from(state.config().usage_retention_days);
    let before = chrono::Utc::now() - chrono::Duration::days(days);
    match rotor_storage::usage::purge(state.db(), before).await {
        Ok(0) => {}
        Ok(gone) => tracing::info!(gone, "usage rows past the retention deleted"),
        Err(e) => tracing::warn!(error = %e, "cannot delete old usage rows"),
    }
}

/// The last flush, at shutdown: a few tries, so a brief database hiccup loses nothing.
pub async fn flush_at_shutdown(state: &AppState) {
    for attempt in 1..=3 {
        match state.ledger().flush(state.db()).await {
            Ok(_) => return,
            Err(e) if attempt == 3 => {
                tracing::error!(error = %e, "usage not written at shutdown; these counts are lost")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
