//! Memberships: who belongs to a workspace with which role, and the last-owner rule.

use crate::audit::{self, NewEvent};
use crate::ids::*;
use crate::page::{Keyset, Page, Paged};
use crate::types::{parse_role, Member, Role};
use crate::{Error, Result};
use sqlx::{PgConnection, PgPool};

const SELECT: &str = "SELECT m.user_id, u.email, u.name, m.role, m.created_at \
     FROM memberships m JOIN users u ON u.id = m.user_id";

/// A workspace's members, in the order they joined.
pub async fn list(pool: &PgPool, workspace_id: WorkspaceId, page: Page) -> Result<Paged<Member>> {
    let select = format!("{SELECT} WHERE m.workspace_id = $1");
    let key = Keyset {
        created_at: "m.created_at",
        id: "m.user_id",
        newest_first: false,
    };
    page.list::<Member, _, _>(pool, &select, workspace_id, key)
        .await
}

async fn get_conn(
    conn: &mut PgConnection,
    workspace_id: WorkspaceId,
    user_id: UserId,
) -> Result<Member> {
    let row: Option<Member> = sqlx::query_as(&format!(
        "{SELECT} WHERE m.workspace_id = $1 AND m.user_id = $2"
    ))
    .bind(workspace_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.ok_or(Error::NotFound)
}

/// Adds an existing user (by email) with `role`, recording `member.added`.
pub async fn add(
    pool: &PgPool,
    workspace_id: WorkspaceId,
    actor: UserId,
    email: &str,
    role: Role,
) -> Result<Member> {
    let mut tx = pool.begin().await?;
    let user: Option<UserId> =
        sqlx::query_scalar("SELECT id FROM users WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?;
    let user = user.ok_or(Error::UserNotFound)?;
    let inserted = sqlx::query(
        "INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(workspace_id)
    .bind(user)
    .bind(role.as_str())
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(Error::AlreadyMember);
    }
    audit::record(
        &mut tx,
        NewEvent::workspace(workspace_id, actor, "member.added", "member", user)
            .with_details(serde_json::json!({ "role": role.as_str() })),
    )
    .await?;
    let member = get_conn(&mut tx, workspace_id, user).await?;
    tx.commit().await?;
    Ok(member)
}

/// Locks the workspace's memberships and returns the target's current role and the owner count.
async fn lock(
    conn: &mut PgConnection,
    workspace_id: WorkspaceId,
    user_id: UserId,
) -> Result<(Role, i64)> {
    let rows: Vec<(UserId, String)> = sqlx::query_as(
        "SELECT user_id, role FROM memberships WHERE workspace_id = $1 ORDER BY user_id FOR UPDATE",
    )
    .bind(workspace_id)
    .fetch_all(&mut *conn)
    .await?;
    let owners = rows.iter().filter(|(_, r)| r == "owner").count();
    let target = rows
        .iter()
        .find(|(u, _)| *u == user_id)
        .ok_or(Error::NotFound)?;
    Ok((
        parse_role(&target.1),
        i64::try_from(owners).unwrap_or(i64::MAX),
    ))
}

/// Changes a member's role. `allowed(current, new)` decides whether the actor may do it
/// (checked under lock); demoting the last owner fails with [`Error::LastOwner`].
pub async fn update_role(
    pool: &PgPool,
    workspace_id: WorkspaceId,
    user_id: UserId,
    actor: UserId,
    role: Role,
    allowed: impl FnOnce(Role, Role) -> bool,
) -> Result<Member> {
    let mut tx = pool.begin().await?;
    let (current, owners) = lock(&mut tx, workspace_id, user_id).await?;
    if !allowed(current, role) {
        return Err(Error::Forbidden);
    }
    if current == Role::Owner && role != Role::Owner && owners <= 1 {
        return Err(Error::LastOwner);
    }
    sqlx::query("UPDATE memberships SET role = $3 WHERE workspace_id = $1 AND user_id = $2")
        .bind(workspace_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
    if current != role {
        audit::record(
            &mut tx,
            NewEvent::workspace(workspace_id, actor, "member.updated", "member", user_id)
                .with_details(serde_json::json!({ "role": { "from": current.as_str(), "to": role.as_str() } })),
        )
        .await?;
    }
    let member = get_conn(&mut tx, workspace_id, user_id).await?;
    tx.commit().await?;
    Ok(member)
}

/// Removes a member. `allowed(current)` decides whether the actor may (checked under lock);
/// removing the last owner fails with [`Error::LastOwner`].
pub async fn remove(
    pool: &PgPool,
    workspace_id: WorkspaceId,
    user_id: UserId,
    actor: UserId,
    allowed: impl FnOnce(Role) -> bool,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let (current, owners) = lock(&mut tx, workspace_id, user_id).await?;
    if !allowed(current) {
        return Err(Error::Forbidden);
    }
    if current == Role::Owner && owners <= 1 {
        return Err(Error::LastOwner);
    }
    sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
        .bind(workspace_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        NewEvent::workspace(workspace_id, actor, "member.removed", "member", user_id)
            .with_details(serde_json::json!({ "role": current.as_str() })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// 404 unless `user_id` is a member of the workspace.
pub async fn ensure_exists(
    pool: &PgPool,
    workspace_id: WorkspaceId,
    user_id: UserId,
) -> Result<()> {
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM memberships WHERE workspace_id = $1 AND user_id = $2)",
    )
    .bind(workspace_id)
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    found.then_some(()).ok_or(Error::NotFound)
}
