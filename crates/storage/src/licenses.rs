//! Installed licenses (verified by the API layer before they are stored). The active one is
//! the valid license installed last.

use crate::audit::{self, NewEvent};
use crate::ids::*;
use crate::Result;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// A license to record.
#[derive(Debug)]
pub struct NewLicense<'a> {
    /// The compact JWS.
    pub token: &'a str,
    /// Its `jti` claim.
    pub jti: Option<&'a str>,
    /// Its `sub` claim.
    pub licensee: &'a str,
    /// Its `exp` claim.
    pub expires_at: DateTime<Utc>,
    /// Non-secret claims for the audit event.
    pub details: serde_json::Value,
}

/// Stores a license and records `license.installed` in the instance log.
pub async fn install(pool: &PgPool, license: NewLicense<'_>, actor: Option<UserId>) -> Result<()> {
    let mut tx = pool.begin().await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO licenses (id, token, jti, licensee, expires_at, installed_by) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(license.token)
    .bind(license.jti)
    .bind(license.licensee)
    .bind(license.expires_at)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        NewEvent {
            workspace_id: None,
            instance_level: true,
            actor,
            action: "license.installed",
            target_type: "license",
            target_id: Some(id),
            details: license.details,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every stored token, most recently installed first.
pub async fn tokens_newest_first(pool: &PgPool) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT token FROM licenses ORDER BY installed_at DESC, id DESC")
            .fetch_all(pool)
            .await?,
    )
}

/// Whether this exact token is already stored.
pub async fn is_stored(pool: &PgPool, token: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM licenses WHERE token = $1)")
            .bind(token)
            .fetch_one(pool)
            .await?,
    )
}
