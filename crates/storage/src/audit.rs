//! The audit log: every write records who did what, inside the write's own transaction.

use crate::ids::*;
use crate::page::{Keyset, Page, Paged};
use crate::types::AuditEvent;
use crate::Result;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// An event to record. `workspace_id: None` with `instance_level` marks instance events.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// The workspace the change belongs to.
    pub workspace_id: Option<WorkspaceId>,
    /// Whether instance administrators see it in the instance log.
    pub instance_level: bool,
    /// The user who made the change.
    pub actor: Option<UserId>,
    /// `resource.verb`.
    pub action: &'a str,
    /// The kind of target.
    pub target_type: &'a str,
    /// The target's id.
    pub target_id: Option<Uuid>,
    /// Non-secret details.
    pub details: serde_json::Value,
}

impl<'a> NewEvent<'a> {
    /// An event in a workspace's log.
    pub fn workspace(
        workspace_id: WorkspaceId,
        actor: UserId,
        action: &'a str,
        target_type: &'a str,
        target_id: impl Into<Uuid>,
    ) -> Self {
        Self {
            workspace_id: Some(workspace_id),
            instance_level: false,
            actor: Some(actor),
            action,
            target_type,
            target_id: Some(target_id.into()),
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// Attaches non-secret details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// Also shows the event in the instance administrators' log.
    pub fn instance_level(mut self) -> Self {
        self.instance_level = true;
        self
    }
}

/// Records an event that belongs to no write (what dispatch observed: a credential's state
/// changed), on a connection of its own.
pub async fn record_alone(pool: &PgPool, event: NewEvent<'_>) -> Result<()> {
    let mut conn = pool.acquire().await?;
    record(&mut conn, event).await
}

/// Records an event on the caller's connection (normally inside the write's transaction).
pub async fn record(conn: &mut PgConnection, event: NewEvent<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events \
         (id, workspace_id, instance_level, actor_user_id, action, target_type, target_id, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::new_v4())
    .bind(event.workspace_id)
    .bind(event.instance_level)
    .bind(event.actor)
    .bind(event.action)
    .bind(event.target_type)
    .bind(event.target_id)
    .bind(event.details)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: EventId,
    actor_user_id: Option<UserId>,
    action: String,
    target_type: String,
    target_id: Option<Uuid>,
    details: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl From<Row> for AuditEvent {
    fn from(r: Row) -> Self {
        AuditEvent {
            id: r.id,
            actor_user_id: r.actor_user_id,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            details: r.details,
            created_at: r.created_at,
        }
    }
}

/// A workspace's events, newest first.
pub async fn list_workspace(
    pool: &PgPool,
    workspace_id: WorkspaceId,
    page: Page,
) -> Result<Paged<AuditEvent>> {
    let select = format!("{SELECT} WHERE workspace_id = $1");
    page.list::<Row, _, _>(pool, &select, workspace_id, NEWEST_FIRST)
        .await
}

const SELECT: &str =
    "SELECT id, actor_user_id, action, target_type, target_id, details, created_at FROM audit_events";

const NEWEST_FIRST: Keyset = Keyset {
    newest_first: true,
    ..Keyset::OLDEST_FIRST
};

/// Instance-level events (plans, license, admin actions), newest first.
pub async fn list_instance(pool: &PgPool, page: Page) -> Result<Paged<AuditEvent>> {
    let select = format!("{SELECT} WHERE instance_level = $1");
    page.list::<Row, _, _>(pool, &select, true, NEWEST_FIRST)
        .await
}
