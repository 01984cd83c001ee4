//! The sealing of credential secrets: each workspace's data key (created on first use,
//! wrapped by the master key), field encryption, and re-wrapping after a key rotation.

use super::{Credential, Row};
use crate::crypto::{DataKey, Keyring, Secret};
use crate::ids::*;
use crate::providers::SplitConfig;
use crate::{Error, Result};
use base64::Engine;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The workspace's data key; created (and stored wrapped) when `create` and none exists.
pub async fn data_key(
    conn: &mut PgConnection,
    keyring: &Keyring,
    workspace: WorkspaceId,
    create: bool,
) -> Result<Option<DataKey>> {
    let row: Option<(String, Vec<u8>)> =
        sqlx::query_as("SELECT key_id, wrapped_key FROM workspace_keys WHERE workspace_id = $1")
            .bind(workspace)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((key_id, wrapped)) = row {
        return keyring.unwrap(workspace.uuid(), &wrapped, &key_id).map(Some).map_err(|e| {
            tracing::error!(workspace_id = %workspace, error = %e, "workspace data key cannot be unwrapped");
            Error::Unreadable
        });
    }
    if !create {
        return Ok(None);
    }
    let (key, wrapped, key_id) = keyring.new_data_key(workspace.uuid());
    let inserted = sqlx::query(
        "INSERT INTO workspace_keys (workspace_id, key_id, wrapped_key) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(workspace)
    .bind(&key_id)
    .bind(&wrapped)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Some(key));
    }
    // Another transaction created it first: use theirs.
    Box::pin(data_key(conn, keyring, workspace, false)).await
}

pub(super) fn encrypt_all(
    key: &DataKey,
    credential: CredentialId,
    secrets: &BTreeMap<String, Secret>,
) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    Value::Object(
        secrets
            .iter()
            .map(|(field, s)| {
                (
                    field.clone(),
                    Value::String(b64.encode(key.encrypt(credential.uuid(), field, s))),
                )
            })
            .collect(),
    )
}

pub(super) fn decrypt_all(
    key: Option<&DataKey>,
    row: &Row,
) -> std::result::Result<BTreeMap<String, Secret>, ()> {
    let Value::Object(map) = &row.secrets else {
        return Err(());
    };
    if map.is_empty() {
        return Ok(BTreeMap::new());
    }
    let key = key.ok_or(())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    map.iter()
        .map(|(field, v)| {
            let sealed = v.as_str().and_then(|s| b64.decode(s).ok()).ok_or(())?;
            key.decrypt(row.id.uuid(), field, &sealed)
                .map(|s| (field.clone(), s))
                .map_err(|_| ())
        })
        .collect()
}

pub(super) fn to_credential(row: Row, key: Option<&DataKey>) -> Credential {
    let secrets = decrypt_all(key, &row);
    if secrets.is_err() {
        tracing::error!(credential_id = %row.id, workspace_id = %row.workspace_id, "credential secret cannot be decrypted");
    }
    let plain = row.config.as_object().cloned().unwrap_or_default();
    let readable = secrets.is_ok();
    Credential {
        id: row.id,
        workspace_id: row.workspace_id,
        provider: row.provider,
        name: row.name,
        quota_cooldown_seconds: row.quota_cooldown_seconds,
        config: SplitConfig {
            plain,
            secrets: secrets.unwrap_or_default(),
        },
        readable,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Master key ids that wrap some workspace key but are not in `keyring` (startup check).
pub async fn missing_key_ids(pool: &PgPool, keyring: &Keyring) -> Result<Vec<String>> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT key_id FROM workspace_keys ORDER BY key_id")
            .fetch_all(pool)
            .await?;
    Ok(ids.into_iter().filter(|id| !keyring.has(id)).collect())
}

/// Re-wraps every workspace key not under the current master key; returns how many changed.
pub async fn rewrap_all(pool: &PgPool, keyring: &Keyring) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let rows: Vec<(Uuid, String, Vec<u8>)> = sqlx::query_as(
        "SELECT workspace_id, key_id, wrapped_key FROM workspace_keys WHERE key_id <> $1 ORDER BY workspace_id FOR UPDATE",
    )
    .bind(keyring.current_id())
    .fetch_all(&mut *tx)
    .await?;
    let mut count = 0;
    for (workspace, key_id, wrapped) in rows {
        let rewrapped = keyring
            .rewrap(workspace, &wrapped, &key_id)
            .map_err(|e| Error::Migration(format!("workspace {workspace}: {e}")))?;
        sqlx::query("UPDATE workspace_keys SET key_id = $2, wrapped_key = $3, rewrapped_at = now() WHERE workspace_id = $1")
            .bind(workspace)
            .bind(keyring.current_id())
            .bind(rewrapped)
            .execute(&mut *tx)
            .await?;
        count += 1;
    }
    tx.commit().await?;
    Ok(count)
}
