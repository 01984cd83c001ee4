//! The usage ledger's in-memory side (DESIGN §15): gateway requests add to sharded per-minute
//! counters (a short lock, no I/O), and a background task moves them to Postgres with one
//! additive upsert every [`FLUSH_EVERY`], again at shutdown; each replica adds only its own
//! increments, so the stored sums are exact across replicas. A failed flush keeps its counts
//! (bounded by [`MAX_PENDING`] rows) for the next tick. Old rows are deleted hourly.

use crate::gateway::cache::{CachedRoute, KeyInfo};
use crate::state::AppState;
use rotor_dispatch::engine::{UsageSink, UsageTag};
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

/// Server-made ids only (no client picks a key): the fast seeded hash is enough.
type Fast = foldhash::fast::RandomState;

type Rows = HashMap<Key, Counts, Fast>;

/// What a key spent in one UTC month, for its budgets.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spend {
    /// The month ([`month_of`]).
    pub month: i64,
    /// Input (cached included) plus output tokens.
    pub tokens: i64,
    /// US dollars at the models' prices.
    pub usd: f64,
}

impl Spend {
    /// Adds `other` when it is of `month` (a past month's spend counts for nothing).
    fn add_of(&mut self, month: i64, other: Option<&Spend>) {
        if let Some(o) = other.filter(|o| o.month == month) {
            self.tokens = self.tokens.saturating_add(o.tokens);
            self.usd += o.usd;
        }
    }

    /// `other` added to this, when both are of one month (else the later one).
    fn merge(&mut self, other: Spend) {
        if other.month > self.month {
            *self = other;
        } else if other.month == self.month {
            self.tokens = self.tokens.saturating_add(other.tokens);
            self.usd += other.usd;
        }
    }
}

/// The month of a UTC minute (seconds since the epoch / 60): year × 12 + month − 1.
pub fn month_of(minute: i64) -> i64 {
    use chrono::Datelike;
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp(minute.saturating_mul(60), 0)
        .unwrap_or_default();
    i64::from(at.year()) * 12 + i64::from(at.month0())
}

/// The first instant of a [`month_of`] month.
pub fn month_start(month: i64) -> chrono::DateTime<chrono::Utc> {
    let year = i32::try_from(month.div_euclid(12)).unwrap_or(1970);
    let month0 = u32::try_from(month.rem_euclid(12)).unwrap_or(0);
    chrono::NaiveDate::from_ymd_opt(year, month0 + 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or_default()
}

/// One shard: ledger rows and the month's spend of their keys, both not yet taken to be written.
#[derive(Default)]
struct Shard {
    rows: Rows,
    spend: HashMap<Uuid, Spend, Fast>,
}

/// The counters of this replica not yet written, and what each key spent this month.
pub struct Ledger {
    shards: [Mutex<Shard>; SHARDS],
    /// Rows taken from the shards whose write has not succeeded yet (only flushes lock it).
    pending: tokio::sync::Mutex<Rows>,
    /// The month's spend in Postgres (every replica's written rows), per budgeted key.
    base: Mutex<HashMap<Uuid, Spend>>,
    /// Spend taken from the shards and not yet in [`Ledger::base`] (being written, or failed).
    in_flight: Mutex<HashMap<Uuid, Spend>>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            pending: tokio::sync::Mutex::new(HashMap::default()),
            base: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The current UTC minute (seconds since the epoch / 60).
fn minute_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 60).unwrap_or(0)
}

/// The tag of a request of `client` for `cached`, arriving now.
pub fn tag(cached: &CachedRoute, client: &KeyInfo) -> UsageTag {
    let route = &cached.route;
    UsageTag {
        pool: route.pool,
        model: route.model.clone(),
        family: route.family,
        client: client.id,
        minute: minute_now(),
        client_tpm: client.limits.tpm.is_some(),
        price: cached.price,
    }
}

fn saturating(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Ledger {
    fn shard(&self, client: Uuid) -> &Mutex<Shard> {
        &self.shards[(client.as_u64_pair().1 as usize) % SHARDS]
    }

    fn add(&self, tag: &UsageTag, credential: Option<Uuid>, counts: Counts) {
        let key = Key {
            workspace: tag.pool.workspace,
            api_key: tag.client,
            model: tag.pool.model,
            credential,
            minute: tag.minute,
        };
        let spend = (counts.input > 0 || counts.output > 0).then(|| Spend {
            month: month_of(tag.minute),
            tokens: counts.input.saturating_add(counts.output),
            usd: tag.price.of(
                u64::try_from(counts.input).unwrap_or(0),
                u64::try_from(counts.output).unwrap_or(0),
            ),
        });
        let mut shard = locked(self.shard(tag.client));
        if let Some(spend) = spend {
            shard.spend.entry(tag.client).or_default().merge(spend);
        }
        match shard.rows.get_mut(&key) {
            Some(row) => row.add(&counts),
            None => {
                shard.rows.insert(key, counts);
            }
        }
    }

    /// What `client` spent in the month of `minute`: written (every replica's, as of the last
    /// refresh) plus this replica's not yet written.
    pub fn spent(&self, client: Uuid, minute: i64) -> Spend {
        let month = month_of(minute);
        let mut total = Spend {
            month,
            ..Spend::default()
        };
        total.add_of(month, locked(self.shard(client)).spend.get(&client));
        total.add_of(month, locked(&self.in_flight).get(&client));
        total.add_of(month, locked(&self.base).get(&client));
        total
    }

    /// Reads the month's written spend of `keys` (workspace, key) into the base. Serialised with
    /// the flushes, so a write in progress is never counted twice.
    pub async fn refresh(
        &self,
        db: &PgPool,
        keys: &[(Uuid, Uuid)],
    ) -> Result<(), rotor_storage::Error> {
        let _writing = self.pending.lock().await;
        let read = self.read_base(db, keys).await?;
        self.apply_base(read, false);
        Ok(())
    }

    /// The month's written spend of `keys` (zero for keys without usage).
    async fn read_base(
        &self,
        db: &PgPool,
        keys: &[(Uuid, Uuid)],
    ) -> Result<Vec<(Uuid, Spend)>, rotor_storage::Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let month = month_of(minute_now());
        let ids: Vec<_> = keys
            .iter()
            .map(|(w, k)| ((*w).into(), (*k).into()))
            .collect();
        let used = rotor_storage::usage::since(db, &ids, month_start(month)).await?;
        let zero = Spend {
            month,
            ..Spend::default()
        };
        let mut read: HashMap<Uuid, Spend> = keys.iter().map(|(_, k)| (*k, zero)).collect();
        for (k, u) in used {
            let spend = Spend {
                month,
                tokens: u.input_tokens.saturating_add(u.output_tokens),
                usd: u.cost_usd.unwrap_or(0.0),
            };
            read.insert(k.uuid(), spend);
        }
        Ok(read.into_iter().collect())
    }

    /// Replaces the base of the keys read; after a flush, what was in flight is in it now.
    fn apply_base(&self, read: Vec<(Uuid, Spend)>, written: bool) {
        let mut base = locked(&self.base);
        let mut in_flight = locked(&self.in_flight);
        base.extend(read);
        if written {
            in_flight.clear();
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

    /// Moves every counter to `db` in one transaction (on failure they stay for the next call),
    /// then reads the month's written spend of `budgeted` keys (workspace, key).
    pub async fn flush(
        &self,
        db: &PgPool,
        budgeted: &[(Uuid, Uuid)],
    ) -> Result<usize, rotor_storage::Error> {
        let mut pending = self.pending.lock().await;
        let mut dropped = 0u64;
        for shard in &self.shards {
            let (taken, spend) = {
                let mut shard = locked(shard);
                let spend = std::mem::take(&mut shard.spend);
                let mut in_flight = locked(&self.in_flight);
                for (k, s) in &spend {
                    in_flight.entry(*k).or_default().merge(*s);
                }
                (std::mem::take(&mut shard.rows), spend)
            };
            drop(spend);
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
        let written = if pending.is_empty() {
            0
        } else {
            let rows: Vec<Increment> = pending.iter().map(increment).collect();
            rotor_storage::usage::add(db, &rows).await?;
            pending.clear();
            rows.len()
        };
        // Everything taken is written now: the base read next includes it.
        match self.read_base(db, budgeted).await {
            Ok(read) => self.apply_base(read, true),
            // Until a read succeeds, the old base plus what is in flight is the spend.
            Err(e) => tracing::warn!(error = %e, "cannot read the month's spend of budgeted keys"),
        }
        Ok(written)
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
                    let budgeted = state.gateway().budgeted(None);
                    match state.ledger().flush(state.db(), &budgeted).await {
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
        match state.ledger().flush(state.db(), &[]).await {
            Ok(_) => return,
            Err(e) if attempt == 3 => {
                tracing::error!(error = %e, "usage not written at shutdown; these counts are lost")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
