//! Workspaces (the tenants): creation with an owner, member views, renames and plans.

use crate::audit::{self, NewEvent};
use crate::ids::*;
use crate::page::{Keyset, Page, Paged};
use crate::types::{parse_plan, MemberWorkspace, Plan, Role, Workspace};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// Inserts a workspace owned by `owner` and records `workspace.created`.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    owner: UserId,
    name: &str,
) -> Result<MemberWorkspace> {
    let id = WorkspaceId::new();
    let (created_at,): (DateTime<Utc>,) =
        sqlx::query_as("INSERT INTO workspaces (id, name) VALUES ($1, $2) RETURNING created_at")
            .bind(id)
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query("INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(id)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        NewEvent::workspace(id, owner, "workspace.created", "workspace", id)
            .with_details(serde_json::json!({ "name": name }))
            .instance_level(),
    )
    .await?;
    Ok(MemberWorkspace {
        id,
        name: name.to_owned(),
        role: Role::Owner,
        plan: Plan::Sandbox,
        created_at,
    })
}

/// Creates a workspace owned by `owner`. `allow` sees how many workspaces exist and may veto.
pub async fn create(
    pool: &PgPool,
    owner: UserId,
    name: &str,
    allow: impl FnOnce(i64) -> Result<()>,
) -> Result<MemberWorkspace> {
    let mut tx = pool.begin().await?;
    // Same lock as signup: the workspace count checked by `allow` cannot race.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(crate::users::SIGNUP_LOCK)
        .execute(&mut *tx)
        .await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM workspaces")
        .fetch_one(&mut *tx)
        .await?;
    allow(count)?;
    let ws = insert(&mut tx, owner, name).await?;
    tx.commit().await?;
    Ok(ws)
}

/// The workspace as `user` sees it, or `None` when `user` is not a member (or it does not exist).
pub async fn get_for_member(
    pool: &PgPool,
    workspace_id: WorkspaceId,
    user: UserId,
) -> Result<Option<MemberWorkspace>> {
    let row: Option<MemberWorkspace> = sqlx::query_as(
        "SELECT w.id, w.name, m.role, w.plan, w.created_at FROM workspaces w \
         JOIN memberships m ON m.workspace_id = w.id AND m.user_id = $2 WHERE w.id = $1",
    )
    .bind(workspace_id)
    .bind(user)
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

const W_OLDEST_FIRST: Keyset = Keyset {
    created_at: "w.created_at",
    id: "w.id",
    newest_first: false,
};

/// The workspaces `user` belongs to, oldest first.
pub async fn list_for_member(
    pool: &PgPool,
    user: UserId,
    page: Page,
) -> Result<Paged<MemberWorkspace>> {
    let select = "SELECT w.id, w.name, m.role, w.plan, w.created_at FROM workspaces w \
         JOIN memberships m ON m.workspace_id = w.id WHERE m.user_id = $1";
    page.list::<MemberWorkspace, _, _>(pool, select, user, W_OLDEST_FIRST)
        .await
}

/// A text column of `workspaces` that a write replaces.
#[derive(Clone, Copy)]
enum Column {
    Name,
    Plan,
}

/// Locks the workspace's row, sets `column` to `value` and returns the value it replaced
/// (for the audit event); `NotFound` when there is no such workspace.
async fn replace_column(
    conn: &mut PgConnection,
    workspace_id: WorkspaceId,
    column: Column,
    value: &str,
) -> Result<String> {
    let column = match column {
        Column::Name => "name",
        Column::Plan => "plan",
    };
    let old: Option<String> = sqlx::query_scalar(&format!(
        "SELECT {column} FROM workspaces WHERE id = $1 FOR UPDATE"
    ))
    .bind(workspace_id)
    .fetch_optional(&mut *conn)
    .await?;
    let old = old.ok_or(Error::NotFound)?;
    sqlx::query(&format!(
        "UPDATE workspaces SET {column} = $2, updated_at = now() WHERE id = $1"
    ))
    .bind(workspace_id)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    Ok(old)
}

/// Renames a workspace and records `workspace.updated`.
pub async fn rename(
    pool: &PgPool,
    workspace_id: WorkspaceId,
    actor: UserId,
    name: &str,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let old = replace_column(&mut tx, workspace_id, Column::Name, name).await?;
    audit::record(
        &mut tx,
        NewEvent::workspace(
            workspace_id,
            actor,
            "workspace.updated",
            "workspace",
            workspace_id,
        )
        .with_details(serde_json::json!({ "name": { "from": old, "to": name } })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

const ADMIN_SELECT: &str = "SELECT w.id, w.name, w.plan, w.created_at, \
     (SELECT count(*) FROM memberships m WHERE m.workspace_id = w.id) AS member_count FROM workspaces w";

/// Every workspace of the instance, oldest first (instance administrators only).
pub async fn list_all(pool: &PgPool, page: Page) -> Result<Paged<Workspace>> {
    let select = format!("{ADMIN_SELECT} WHERE $1");
    page.list::<Workspace, _, _>(pool, &select, true, W_OLDEST_FIRST)
        .await
}

/// Sets a workspace's plan and records `workspace.plan_changed` (also in the instance log).
pub async fn set_plan(
    pool: &PgPool,
    workspace_id: WorkspaceId,
    actor: UserId,
    plan: Plan,
) -> Result<Workspace> {
    let mut tx = pool.begin().await?;
    let old = replace_column(&mut tx, workspace_id, Column::Plan, plan.as_str()).await?;
    audit::record(
        &mut tx,
        NewEvent::workspace(
            workspace_id,
            actor,
            "workspace.plan_changed",
            "workspace",
            workspace_id,
        )
        .with_details(serde_json::json!({ "from": old, "to": plan.as_str() }))
        .instance_level(),
    )
    .await?;
    let row: Workspace = sqlx::query_as(&format!("{ADMIN_SELECT} WHERE w.id = $1"))
        .bind(workspace_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// How many workspaces the instance holds (license `max_workspaces`).
pub async fn count(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM workspaces")
        .fetch_one(pool)
        .await?)
}

/// 404 unless the workspace exists (instance administrators' routes).
pub async fn ensure_exists(pool: &PgPool, id: WorkspaceId) -> Result<()> {
    let found: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM workspaces WHERE id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await?;
    found.then_some(()).ok_or(Error::NotFound)
}

/// A workspace's plan.
pub async fn plan(pool: &PgPool, id: WorkspaceId) -> Result<Plan> {
    let plan: Option<String> = sqlx::query_scalar("SELECT plan FROM workspaces WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    plan.map(|p| parse_plan(&p)).ok_or(Error::NotFound)
}
