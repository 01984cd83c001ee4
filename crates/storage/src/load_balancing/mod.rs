//! Load-balancing pools: one config per model (enabled flag, cooldown, attempts, waiting,
//! affinity, version) with ordered entries. Switching off only clears `enabled`; entries are never dropped by a
//! toggle, a downgrade or an expired license — only by a PUT that replaces them or by deleting
//! the credential they point at.

mod write;

pub use write::write;

use crate::audit::{self, NewEvent};
use crate::ids::*;
use crate::{Affinity, Error, Result};
use sqlx::{PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;

/// Shown for the entry that follows the model's default credential.
pub const DEFAULT_CONFIG_NAME: &str = "Default Config";

/// Bounds of `cooldown_seconds`, checked on every write (and by the column's CHECK).
pub const COOLDOWN_SECONDS: RangeInclusive<i32> = 1..=3600;
/// Bounds of `max_attempts`.
pub const MAX_ATTEMPTS: RangeInclusive<i32> = 1..=10;
/// Bounds of `max_wait_ms`: at most a minute of waiting for a credential.
pub const MAX_WAIT_MS: RangeInclusive<i32> = 0..=60_000;
/// Bounds of `affinity_ttl_seconds`: how long a sticky credential is kept.
pub const AFFINITY_TTL_SECONDS: RangeInclusive<i32> = 30..=86_400;
/// Bounds of an entry's `weight` (its relative share).
pub const WEIGHT: RangeInclusive<i32> = 1..=100;
/// Bounds of an entry's `rpm` (requests per minute).
pub const RPM: RangeInclusive<i32> = 1..=1_000_000;
/// Bounds of an entry's `tpm` (tokens per minute).
pub const TPM: RangeInclusive<i64> = 1..=1_000_000_000;

/// One pool entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Entry id (stable across toggles).
    pub id: EntryId,
    /// `None` is the Default Config entry.
    pub credential_id: Option<CredentialId>,
    /// The credential's name, or "Default Config".
    pub credential_name: String,
    /// Whether the entry takes part in the rotation.
    pub enabled: bool,
    /// Relative share, 1..=100.
    pub weight: i32,
    /// The model's name at this entry's provider, when it differs from the model's
    /// `upstream_model` (mixed pools: a compatible server may call the model otherwise).
    pub upstream_model: Option<String>,
    /// Requests per minute this entry may take; `None` is no limit.
    pub rpm: Option<i32>,
    /// Tokens per minute this entry may take; `None` is no limit.
    pub tpm: Option<i64>,
}

/// A model's load-balancing config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The model.
    pub model_id: ModelId,
    /// The model's current default credential (what the Default Config entry resolves to).
    pub default_credential: CredentialId,
    /// Switched on.
    pub enabled: bool,
    /// Seconds a rate-limited credential stays out of the rotation.
    pub cooldown_seconds: i32,
    /// Most distinct credentials tried per request.
    pub max_attempts: i32,
    /// How long a request may wait for a credential to return instead of a 429.
    pub max_wait_ms: i32,
    /// Whether requests of one session stick to one credential.
    pub affinity: Affinity,
    /// How long a sticky credential is kept after its last use.
    pub affinity_ttl_seconds: i32,
    /// Bumps once per successful write.
    pub version: i64,
    /// Ordered entries.
    pub entries: Vec<Entry>,
}

impl Config {
    /// The distinct credentials of the enabled entries, the Default Config resolved.
    pub fn distinct_enabled(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.enabled)
            .map(|e| e.credential_id.unwrap_or(self.default_credential))
            .collect::<HashSet<_>>()
            .len()
    }

    /// Why the pool is not used (`None` when it is), given whether the workspace has the feature.
    pub fn reason(&self, feature: bool) -> Option<&'static str> {
        if !self.enabled {
            Some("disabled")
        } else if !feature {
            Some("feature_not_available")
        } else if self.distinct_enabled() < 2 {
            Some("not_enough_entries")
        } else {
            None
        }
    }
}

/// An entry of a PUT.
#[derive(Debug, Clone)]
pub struct EntryInput {
    /// Keep this existing entry's id (optional).
    pub id: Option<EntryId>,
    /// Credential, or `None` for the Default Config.
    pub credential_id: Option<CredentialId>,
    /// Takes part in the rotation.
    pub enabled: bool,
    /// 1..=100.
    pub weight: i32,
    /// This entry's own name of the model at its provider.
    pub upstream_model: Option<String>,
    /// Requests per minute, `None`: no limit.
    pub rpm: Option<i32>,
    /// Tokens per minute, `None`: no limit.
    pub tpm: Option<i64>,
}

/// A write: PUT sets `entries`, PATCH leaves them `None`.
#[derive(Debug, Clone, Default)]
pub struct Write {
    /// New enabled flag.
    pub enabled: Option<bool>,
    /// New cooldown.
    pub cooldown_seconds: Option<i32>,
    /// New attempt limit.
    pub max_attempts: Option<i32>,
    /// New longest wait.
    pub max_wait_ms: Option<i32>,
    /// New affinity.
    pub affinity: Option<Affinity>,
    /// New affinity lifetime.
    pub affinity_ttl_seconds: Option<i32>,
    /// Replacement entries.
    pub entries: Option<Vec<EntryInput>>,
    /// Versions `If-Match` accepts (`None`: no precondition).
    pub if_match: Option<Vec<i64>>,
}

/// An entry row, with its model and its credential's name.
#[derive(sqlx::FromRow)]
struct EntryRow {
    model_id: ModelId,
    id: EntryId,
    credential_id: Option<CredentialId>,
    credential_name: Option<String>,
    enabled: bool,
    weight: i32,
    upstream_model: Option<String>,
    rpm: Option<i32>,
    tpm: Option<i64>,
}

impl From<EntryRow> for Entry {
    fn from(r: EntryRow) -> Self {
        Entry {
            id: r.id,
            credential_id: r.credential_id,
            credential_name: r
                .credential_name
                .unwrap_or_else(|| DEFAULT_CONFIG_NAME.to_owned()),
            enabled: r.enabled,
            weight: r.weight,
            upstream_model: r.upstream_model,
            rpm: r.rpm,
            tpm: r.tpm,
        }
    }
}

const ENTRY_SELECT: &str = "SELECT e.model_id, e.id, e.credential_id, cr.name AS credential_name, \
     e.enabled, e.weight, e.upstream_model, e.rpm, e.tpm FROM lb_entries e \
     LEFT JOIN credentials cr ON cr.id = e.credential_id AND cr.workspace_id = e.workspace_id";

/// A config row with its model's default credential; entries are loaded separately.
#[derive(sqlx::FromRow)]
struct HeadRow {
    model_id: ModelId,
    default_credential: CredentialId,
    enabled: bool,
    cooldown_seconds: i32,
    max_attempts: i32,
    max_wait_ms: i32,
    affinity: Affinity,
    affinity_ttl_seconds: i32,
    version: i64,
}

impl From<HeadRow> for Config {
    fn from(r: HeadRow) -> Self {
        Config {
            model_id: r.model_id,
            default_credential: r.default_credential,
            enabled: r.enabled,
            cooldown_seconds: r.cooldown_seconds,
            max_attempts: r.max_attempts,
            max_wait_ms: r.max_wait_ms,
            affinity: r.affinity,
            affinity_ttl_seconds: r.affinity_ttl_seconds,
            version: r.version,
            entries: Vec::new(),
        }
    }
}

const HEAD_SELECT: &str = "SELECT c.model_id, m.credential_id AS default_credential, c.enabled, \
     c.cooldown_seconds, c.max_attempts, c.max_wait_ms, c.affinity, c.affinity_ttl_seconds, \
     c.version FROM lb_configs c JOIN models m ON m.id = c.model_id AND m.workspace_id = c.workspace_id";

async fn load(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    model: ModelId,
    lock: bool,
) -> Result<Config> {
    let head: Option<HeadRow> = sqlx::query_as(&format!(
        "{HEAD_SELECT} WHERE c.workspace_id = $1 AND c.model_id = $2{}",
        if lock { " FOR UPDATE OF c" } else { "" }
    ))
    .bind(workspace)
    .bind(model)
    .fetch_optional(&mut *conn)
    .await?;
    let mut config = Config::from(head.ok_or(Error::NotFound)?);
    let rows: Vec<EntryRow> = sqlx::query_as(&format!(
        "{ENTRY_SELECT} WHERE e.workspace_id = $1 AND e.model_id = $2 ORDER BY e.position"
    ))
    .bind(workspace)
    .bind(model)
    .fetch_all(&mut *conn)
    .await?;
    config.entries = rows.into_iter().map(Entry::from).collect();
    Ok(config)
}

/// A model's config.
pub async fn get(pool: &PgPool, workspace: WorkspaceId, model: ModelId) -> Result<Config> {
    let mut conn = pool.acquire().await?;
    load(&mut conn, workspace, model, false).await
}

/// The configs of several models of a workspace (for model lists), by model id.
pub async fn get_many(
    pool: &PgPool,
    workspace: WorkspaceId,
    models: &[ModelId],
) -> Result<HashMap<ModelId, Config>> {
    // Two queries for the whole page, not two per model.
    let heads: Vec<HeadRow> = sqlx::query_as(&format!(
        "{HEAD_SELECT} WHERE c.workspace_id = $1 AND c.model_id = ANY($2)"
    ))
    .bind(workspace)
    .bind(models)
    .fetch_all(pool)
    .await?;
    let rows: Vec<EntryRow> = sqlx::query_as(&format!(
        "{ENTRY_SELECT} WHERE e.workspace_id = $1 AND e.model_id = ANY($2) \
         ORDER BY e.model_id, e.position"
    ))
    .bind(workspace)
    .bind(models)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<ModelId, Config> = heads
        .into_iter()
        .map(|h| (h.model_id, Config::from(h)))
        .collect();
    for row in rows {
        if let Some(c) = out.get_mut(&row.model_id) {
            c.entries.push(row.into());
        }
    }
    Ok(out)
}

/// Creates the (disabled, empty) config of a new model.
pub(crate) async fn create_default(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    model: ModelId,
) -> Result<()> {
    sqlx::query("INSERT INTO lb_configs (model_id, workspace_id) VALUES ($1, $2)")
        .bind(model)
        .bind(workspace)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records that an admin cleared a model's cooldowns (the state itself lives in dispatch).
pub async fn record_cooldowns_cleared(
    pool: &PgPool,
    workspace: WorkspaceId,
    model: ModelId,
    actor: UserId,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let exists: Option<ModelId> =
        sqlx::query_scalar("SELECT id FROM models WHERE workspace_id = $1 AND id = $2")
            .bind(workspace)
            .bind(model)
            .fetch_optional(&mut *tx)
            .await?;
    exists.ok_or(Error::NotFound)?;
    audit::record(
        &mut tx,
        NewEvent::workspace(
            workspace,
            actor,
            "load_balancing.cooldowns_cleared",
            "model",
            model,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes every pool entry pointing at `credential`, bumping each affected model's version
/// and recording it. Runs inside the credential delete's transaction.
pub(crate) async fn remove_credential(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    credential: CredentialId,
    actor: UserId,
) -> Result<()> {
    let models: Vec<ModelId> = sqlx::query_scalar(
        "SELECT DISTINCT model_id FROM lb_entries WHERE workspace_id = $1 AND credential_id = $2 ORDER BY model_id",
    )
    .bind(workspace)
    .bind(credential)
    .fetch_all(&mut *conn)
    .await?;
    for model in models {
        let version: i64 = sqlx::query_scalar(
            "UPDATE lb_configs SET version = version + 1, updated_at = clock_timestamp() \
             WHERE workspace_id = $1 AND model_id = $2 RETURNING version",
        )
        .bind(workspace)
        .bind(model)
        .fetch_one(&mut *conn)
        .await?;
        let removed = sqlx::query("DELETE FROM lb_entries WHERE workspace_id = $1 AND model_id = $2 AND credential_id = $3")
            .bind(workspace)
            .bind(model)
            .bind(credential)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        audit::record(
            conn,
            NewEvent::workspace(workspace, actor, "load_balancing.updated", "model", model)
                .with_details(serde_json::json!({
                    "reason": "credential_deleted",
                    "credential_id": credential,
                    "entries_removed": removed,
                    "version": version,
                })),
        )
        .await?;
    }
    Ok(())
}
