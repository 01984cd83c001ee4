//! Workspace API keys: stored as SHA-256 hashes with a display prefix, never in clear.

use crate::audit::{self, NewEvent};
use crate::ids::*;
use crate::page::{Keyset, Page, Paged};
use crate::types::{ApiKey, KeyLimits};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

const COLUMNS: &str = "id, name, prefix, allowed_models, expires_at, rpm, tpm, \
     monthly_token_budget, monthly_budget_usd::float8 AS monthly_budget_usd, created_at, last_used_at";

/// A key to store: everything but the secret itself.
#[derive(Debug)]
pub struct NewApiKey<'a> {
    /// Name.
    pub name: &'a str,
    /// Display prefix (first 11 characters of the key).
    pub prefix: &'a str,
    /// SHA-256 of the whole key.
    pub hash: &'a [u8],
    /// Allowed model names, `None` for all.
    pub allowed_models: Option<&'a [String]>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Limits.
    pub limits: KeyLimits,
}

/// Stores a new key and records `api_key.created`.
pub async fn create(
    pool: &PgPool,
    workspace_id: WorkspaceId,
    actor: UserId,
    key: NewApiKey<'_>,
) -> Result<ApiKey> {
    let mut tx = pool.begin().await?;
    let id = ApiKeyId::new();
    let row: ApiKey = sqlx::query_as(&format!(
        "INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash, allowed_models, expires_at, \
           created_by, rpm, tpm, monthly_token_budget, monthly_budget_usd) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(workspace_id)
    .bind(key.name)
    .bind(key.prefix)
    .bind(key.hash)
    .bind(key.allowed_models)
    .bind(key.expires_at)
    .bind(actor)
    .bind(key.limits.rpm)
    .bind(key.limits.tpm)
    .bind(key.limits.monthly_token_budget)
    .bind(key.limits.monthly_budget_usd)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        NewEvent::workspace(workspace_id, actor, "api_key.created", "api_key", id).with_details(
            serde_json::json!({
                "name": key.name,
                "prefix": key.prefix,
                "allowed_models": key.allowed_models,
                "expires_at": key.expires_at,
                "limits": key.limits,
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// A workspace's keys, oldest first.
pub async fn list(pool: &PgPool, workspace_id: WorkspaceId, page: Page) -> Result<Paged<ApiKey>> {
    let select = format!("SELECT {COLUMNS} FROM api_keys WHERE workspace_id = $1");
    page.list::<ApiKey, _, _>(pool, &select, workspace_id, Keyset::OLDEST_FIRST)
        .await
}

/// One key of this workspace.
pub async fn get(pool: &PgPool, workspace_id: WorkspaceId, id: ApiKeyId) -> Result<ApiKey> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound)
}

/// Changes a key of this workspace (locked, so concurrent changes apply one after the other)
/// and records `api_key.updated` with what changed; `merge` builds the new state from the old.
pub async fn update<F>(
    pool: &PgPool,
    workspace_id: WorkspaceId,
    id: ApiKeyId,
    actor: UserId,
    merge: F,
) -> Result<ApiKey>
where
    F: FnOnce(&ApiKey) -> Result<KeyUpdate>,
{
    let mut tx = pool.begin().await?;
    let current: ApiKey = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE workspace_id = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound)?;
    let next = merge(&current)?;
    let row: ApiKey = sqlx::query_as(&format!(
        "UPDATE api_keys SET name = $3, allowed_models = $4, expires_at = $5, rpm = $6, tpm = $7, \
           monthly_token_budget = $8, monthly_budget_usd = $9 \
         WHERE workspace_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(workspace_id)
    .bind(id)
    .bind(&next.name)
    .bind(next.allowed_models.as_deref())
    .bind(next.expires_at)
    .bind(next.limits.rpm)
    .bind(next.limits.tpm)
    .bind(next.limits.monthly_token_budget)
    .bind(next.limits.monthly_budget_usd)
    .fetch_one(&mut *tx)
    .await?;
    let mut changed = serde_json::Map::new();
    let mut diff = |field: &str, before: serde_json::Value, after: serde_json::Value| {
        if before != after {
            changed.insert(
                field.to_owned(),
                serde_json::json!({"from": before, "to": after}),
            );
        }
    };
    diff(
        "name",
        serde_json::json!(&current.name),
        serde_json::json!(&row.name),
    );
    diff(
        "allowed_models",
        serde_json::json!(&current.allowed_models),
        serde_json::json!(&row.allowed_models),
    );
    diff(
        "expires_at",
        serde_json::json!(&current.expires_at),
        serde_json::json!(&row.expires_at),
    );
    diff(
        "rpm",
        serde_json::json!(&current.limits.rpm),
        serde_json::json!(&row.limits.rpm),
    );
    diff(
        "tpm",
        serde_json::json!(&current.limits.tpm),
        serde_json::json!(&row.limits.tpm),
    );
    diff(
        "monthly_token_budget",
        serde_json::json!(&current.limits.monthly_token_budget),
        serde_json::json!(&row.limits.monthly_token_budget),
    );
    diff(
        "monthly_budget_usd",
        serde_json::json!(&current.limits.monthly_budget_usd),
        serde_json::json!(&row.limits.monthly_budget_usd),
    );
    if !changed.is_empty() {
        let details =
            serde_json::json!({"name": row.name, "prefix": row.prefix, "changes": changed});
        let event = NewEvent::workspace(workspace_id, actor, "api_key.updated", "api_key", id);
        audit::record(&mut tx, event.with_details(details)).await?;
    }
    tx.commit().await?;
    Ok(row)
}

/// The whole new state of a key's changeable fields (the caller merged the request into it).
#[derive(Debug)]
pub struct KeyUpdate {
    /// Name.
    pub name: String,
    /// Allowed model names, `None` for all.
    pub allowed_models: Option<Vec<String>>,
    /// Expiry, `None` for never.
    pub expires_at: Option<DateTime<Utc>>,
    /// Limits.
    pub limits: KeyLimits,
}

/// Deletes (revokes) a key of this workspace and records `api_key.revoked`.
pub async fn delete(
    pool: &PgPool,
    workspace_id: WorkspaceId,
    id: ApiKeyId,
    actor: UserId,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, String)> = sqlx::query_as(
        "DELETE FROM api_keys WHERE workspace_id = $1 AND id = $2 RETURNING name, prefix",
    )
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let (name, prefix) = row.ok_or(Error::NotFound)?;
    audit::record(
        &mut tx,
        NewEvent::workspace(workspace_id, actor, "api_key.revoked", "api_key", id)
            .with_details(serde_json::json!({ "name": name, "prefix": prefix })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What the gateway needs to know of a live key (loaded at startup, never the key itself).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LiveKey {
    /// Key id.
    pub id: ApiKeyId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// SHA-256 of the key.
    pub key_hash: Vec<u8>,
    /// Allowed model names (`None`: all).
    pub allowed_models: Option<Vec<String>>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Limits.
    #[sqlx(flatten)]
    pub limits: KeyLimits,
}

const LIVE: &str = "SELECT id, workspace_id, key_hash, allowed_models, expires_at, rpm, tpm, \
     monthly_token_budget, monthly_budget_usd::float8 AS monthly_budget_usd FROM api_keys";

/// Every key of the instance (the gateway's in-memory table).
pub async fn all_live(pool: &PgPool) -> Result<Vec<LiveKey>> {
    Ok(sqlx::query_as(LIVE).fetch_all(pool).await?)
}

/// Every key of one workspace (to refresh the table after a change).
pub async fn live_for_workspace(pool: &PgPool, workspace_id: WorkspaceId) -> Result<Vec<LiveKey>> {
    Ok(sqlx::query_as(&format!("{LIVE} WHERE workspace_id = $1"))
        .bind(workspace_id)
        .fetch_all(pool)
        .await?)
}

/// Records that the gateway accepted a key (callers limit this to once a minute per key).
pub async fn touch(pool: &PgPool, id: ApiKeyId) -> Result<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = now() WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
