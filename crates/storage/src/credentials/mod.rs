//! Provider credentials: clear fields in `config`, secret fields encrypted under the
//! workspace's data key (created on first use), decrypted only into [`Secret`] values.

mod sealing;

pub use sealing::{data_key, missing_key_ids, rewrap_all};
use sealing::{encrypt_all, to_credential};

use crate::audit::{self, NewEvent};
use crate::crypto::Keyring;
use crate::ids::*;
use crate::page::{Keyed, Keyset, Page, Paged};
use crate::providers::{self, MergeError, SplitConfig};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool};
use std::ops::RangeInclusive;
use uuid::Uuid;

/// Bounds of `quota_cooldown_seconds`: a minute to a week out of every pool after a quota error.
pub const QUOTA_COOLDOWN_SECONDS: RangeInclusive<i32> = 60..=604_800;
/// `quota_cooldown_seconds` of a credential created without one (an hour).
pub const DEFAULT_QUOTA_COOLDOWN_SECONDS: i32 = 3600;

/// A stored credential with its secrets decrypted (when they could be).
#[derive(Debug, Clone)]
pub struct Credential {
    /// Credential id.
    pub id: CredentialId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Provider id.
    pub provider: String,
    /// Name, unique per provider in the workspace.
    pub name: String,
    /// Seconds the credential stays out of every pool after its quota ran out.
    pub quota_cooldown_seconds: i32,
    /// Clear and secret fields; `secrets` is empty when `readable` is false.
    pub config: SplitConfig,
    /// False when a secret failed to decrypt (tampered or its key is missing).
    pub readable: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Keyed for Credential {
    fn key(&self) -> (DateTime<Utc>, Uuid) {
        (self.created_at, self.id.uuid())
    }
}

impl Credential {
    /// The config as responses show it: clear fields, and secrets masked.
    pub fn masked_config(&self) -> Map<String, Value> {
        let mut out = self.config.plain.clone();
        if let Some(provider) = providers::find(&self.provider) {
            for f in provider
                .fields
                .iter()
                .filter(|f| f.kind == providers::FieldKind::Secret)
            {
                let shown = match (self.readable, self.config.secrets.get(f.name)) {
                    (true, Some(s)) => s.masked(),
                    (false, _) => "****".to_owned(),
                    (true, None) => continue,
                };
                out.insert(f.name.to_owned(), Value::String(shown));
            }
        }
        out
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: CredentialId,
    workspace_id: WorkspaceId,
    provider: String,
    name: String,
    quota_cooldown_seconds: i32,
    config: Value,
    secrets: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Keyed for Row {
    fn key(&self) -> (DateTime<Utc>, Uuid) {
        (self.created_at, self.id.uuid())
    }
}

const COLUMNS: &str = "id, workspace_id, provider, name, quota_cooldown_seconds, config, secrets, \
     created_at, updated_at";

/// A credential to store, already validated.
#[derive(Debug)]
pub struct CredentialInput<'a> {
    /// Provider id.
    pub provider: &'a str,
    /// Name, unique per provider in the workspace.
    pub name: &'a str,
    /// Within [`QUOTA_COOLDOWN_SECONDS`].
    pub quota_cooldown_seconds: i32,
    /// Clear and secret fields of the provider's schema.
    pub config: SplitConfig,
}

/// Stores a new credential (already validated) and records `credential.created`.
pub async fn create(
    pool: &PgPool,
    keyring: &Keyring,
    workspace: WorkspaceId,
    actor: UserId,
    input: CredentialInput<'_>,
) -> Result<Credential> {
    let CredentialInput {
        provider,
        name,
        quota_cooldown_seconds,
        config,
    } = input;
    let mut tx = pool.begin().await?;
    let key = data_key(&mut tx, keyring, workspace, true)
        .await?
        .ok_or(Error::Unreadable)?;
    let id = CredentialId::new();
    let secrets = encrypt_all(&key, id, &config.secrets);
    let row: Row = sqlx::query_as(&format!(
        "INSERT INTO credentials (id, workspace_id, provider, name, quota_cooldown_seconds, config, secrets) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(workspace)
    .bind(provider)
    .bind(name)
    .bind(quota_cooldown_seconds)
    .bind(Value::Object(config.plain.clone()))
    .bind(secrets)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        NewEvent::workspace(workspace, actor, "credential.created", "credential", id)
            .with_details(serde_json::json!({ "provider": provider, "name": name,
                "quota_cooldown_seconds": quota_cooldown_seconds, "config": config.plain })),
    )
    .await?;
    tx.commit().await?;
    Ok(to_credential(row, Some(&key)))
}

/// A workspace's credentials, oldest first; ones that cannot be decrypted are flagged.
pub async fn list(
    pool: &PgPool,
    keyring: &Keyring,
    workspace: WorkspaceId,
    page: Page,
) -> Result<Paged<Credential>> {
    let mut conn = pool.acquire().await?;
    let select = format!("SELECT {COLUMNS} FROM credentials WHERE workspace_id = $1");
    let rows: Paged<Row> = page
        .list(&mut *conn, &select, workspace, Keyset::OLDEST_FIRST)
        .await?;
    let key = if rows.data.is_empty() {
        None
    } else {
        data_key(&mut conn, keyring, workspace, false)
            .await
            .ok()
            .flatten()
    };
    Ok(rows.map(|r| to_credential(r, key.as_ref())))
}

async fn load(
    conn: &mut PgConnection,
    keyring: &Keyring,
    workspace: WorkspaceId,
    id: CredentialId,
    lock: bool,
) -> Result<Credential> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM credentials WHERE workspace_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(workspace)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let row = row.ok_or(Error::NotFound)?;
    let key = data_key(conn, keyring, workspace, false)
        .await
        .ok()
        .flatten();
    Ok(to_credential(row, key.as_ref()))
}

/// One credential of the workspace, even if its secrets cannot be decrypted (`readable`).
pub async fn get(
    pool: &PgPool,
    keyring: &Keyring,
    workspace: WorkspaceId,
    id: CredentialId,
) -> Result<Credential> {
    let mut conn = pool.acquire().await?;
    load(&mut conn, keyring, workspace, id, false).await
}

/// A credential change: a new name, quota cooldown and/or a config patch (merged, see
/// [`providers::merge`]).
#[derive(Debug, Default)]
pub struct CredentialPatch<'a> {
    /// New name.
    pub name: Option<&'a str>,
    /// New quota cooldown, within [`QUOTA_COOLDOWN_SECONDS`].
    pub quota_cooldown_seconds: Option<i32>,
    /// Fields to change.
    pub config: Option<&'a Map<String, Value>>,
}

/// Applies a PATCH in one transaction and records `credential.updated`.
pub async fn update(
    pool: &PgPool,
    keyring: &Keyring,
    workspace: WorkspaceId,
    id: CredentialId,
    actor: UserId,
    patch: CredentialPatch<'_>,
) -> Result<Credential> {
    let mut tx = pool.begin().await?;
    let current = load(&mut tx, keyring, workspace, id, true).await?;
    let mut details = Map::new();
    let mut config = current.config.clone();
    if let Some(changes) = patch.config {
        // An unreadable credential can be repaired by sending every secret in clear: the merge
        // then starts from no secrets, so masked values cannot stand in for lost ones.
        let provider = providers::find(&current.provider).ok_or(Error::Unreadable)?;

        config = providers::merge(provider, &current.config, changes).map_err(|e| match e {
            MergeError::Invalid(fields) => Error::Invalid {
                code: "validation_failed",
                fields,
            },
            MergeError::SecretRequired(names) => Error::Invalid {
                code: "secret_required",
                fields: names
                    .into_iter()
                    .map(|n| {
                        (
                            n,
                            "required in clear when base_url or endpoint changes".to_owned(),
                        )
                    })
                    .collect(),
            },
        })?;
        let mut changed: Vec<String> = Vec::new();
        for f in provider.fields {
            let before = current.config.plain.get(f.name).cloned().or_else(|| {
                current
                    .config
                    .secrets
                    .get(f.name)
                    .map(|s| Value::String(s.expose().to_owned()))
            });
            let after = config.plain.get(f.name).cloned().or_else(|| {
                config
                    .secrets
                    .get(f.name)
                    .map(|s| Value::String(s.expose().to_owned()))
            });
            if before != after {
                changed.push(f.name.to_owned());
                if f.kind == providers::FieldKind::Text {
                    details.insert(
                        f.name.to_owned(),
                        serde_json::json!({ "from": before, "to": after }),
                    );
                }
            }
        }
        details.insert("fields".into(), serde_json::json!(changed));
    }
    let name = patch.name.unwrap_or(&current.name);
    if name != current.name {
        details.insert(
            "name".into(),
            serde_json::json!({ "from": current.name, "to": name }),
        );
    }
    let quota_cooldown_seconds = patch
        .quota_cooldown_seconds
        .unwrap_or(current.quota_cooldown_seconds);
    if quota_cooldown_seconds != current.quota_cooldown_seconds {
        details.insert(
            "quota_cooldown_seconds".into(),
            serde_json::json!({ "from": current.quota_cooldown_seconds, "to": quota_cooldown_seconds }),
        );
    }
    let key = data_key(&mut tx, keyring, workspace, true)
        .await?
        .ok_or(Error::Unreadable)?;
    let secrets = if patch.config.is_some() {
        Some(encrypt_all(&key, id, &config.secrets))
    } else {
        None
    };
    let row: Row = sqlx::query_as(&format!(
        "UPDATE credentials SET name = $3, config = $4, secrets = COALESCE($5, secrets), \
         quota_cooldown_seconds = $6, updated_at = clock_timestamp() \
         WHERE workspace_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(workspace)
    .bind(id)
    .bind(name)
    .bind(Value::Object(config.plain.clone()))
    .bind(secrets)
    .bind(quota_cooldown_seconds)
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        NewEvent::workspace(workspace, actor, "credential.updated", "credential", id)
            .with_details(Value::Object(details)),
    )
    .await?;
    tx.commit().await?;
    Ok(to_credential(row, Some(&key)))
}

/// Deletes a credential unless a model uses it as its default ([`Error::CredentialInUse`] names them).
pub async fn delete(
    pool: &PgPool,
    workspace: WorkspaceId,
    id: CredentialId,
    actor: UserId,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT provider, name FROM credentials WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(workspace)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let (provider, name) = row.ok_or(Error::NotFound)?;
    let models: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM models WHERE workspace_id = $1 AND credential_id = $2 ORDER BY name",
    )
    .bind(workspace)
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    if !models.is_empty() {
        return Err(Error::CredentialInUse(models));
    }
    crate::load_balancing::remove_credential(&mut tx, workspace, id, actor).await?;
    sqlx::query("DELETE FROM credentials WHERE workspace_id = $1 AND id = $2")
        .bind(workspace)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        NewEvent::workspace(workspace, actor, "credential.deleted", "credential", id)
            .with_details(serde_json::json!({ "provider": provider, "name": name })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// 404 unless the credential exists in the workspace.
pub async fn ensure_exists(pool: &PgPool, workspace: WorkspaceId, id: CredentialId) -> Result<()> {
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM credentials WHERE workspace_id = $1 AND id = $2)",
    )
    .bind(workspace)
    .bind(id)
    .fetch_one(pool)
    .await?;
    found.then_some(()).ok_or(Error::NotFound)
}
