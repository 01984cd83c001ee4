//! Workspace API keys: stored as SHA-256 hashes with a display prefix, never in clear.

use crate::audit::{self, NewEvent};
use crate::ids::*;
use crate::page::{Keyset, Page, Paged};
use crate::types::ApiKey;
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

const COLUMNS: &str = "id, name, prefix, allowed_models, expires_at, created_at, last_used_at";

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
        "INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash, allowed_models, expires_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(workspace_id)
    .bind(key.name)
    .bind(key.prefix)
    .bind(key.hash)
    .bind(key.allowed_models)
    .bind(key.expires_at)
    .bind(actor)
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
}

const LIVE: &str = "SELECT id, workspace_id, key_hash, allowed_models, expires_at FROM api_keys";

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
