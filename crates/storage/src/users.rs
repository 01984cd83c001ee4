//! Users: signup (with the first-user-is-admin rule), lookup and password changes.

use crate::audit::{self, NewEvent};
use crate::ids::*;
use crate::types::{MemberWorkspace, User};
use crate::{Error, Result};
use sqlx::PgPool;

/// Serialises signups so that exactly one user can be the first (and admin).
pub(crate) const SIGNUP_LOCK: i64 = 0x526f_746f_7201;

#[derive(sqlx::FromRow)]
struct UserRow {
    id: UserId,
    email: String,
    name: String,
    is_admin: bool,
    token_version: i32,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            name: r.name,
            is_admin: r.is_admin,
            token_version: r.token_version,
        }
    }
}

/// What a signup needs.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// Email (uniqueness is case-insensitive).
    pub email: &'a str,
    /// Display name.
    pub name: &'a str,
    /// argon2id PHC string.
    pub password_hash: &'a str,
    /// Name of the personal workspace created with the account.
    pub workspace_name: &'a str,
}

/// The outcome of a signup attempt.
#[derive(Debug)]
pub enum Signup {
    /// The user and their personal workspace exist.
    Created(User, MemberWorkspace),
    /// Signup is closed and the instance already has users.
    Closed,
}

/// Creates a user and a personal workspace they own, in one transaction. The first user of
/// an empty instance becomes instance admin and may sign up even when signup is closed.
/// `allow_workspace` sees how many workspaces exist and may veto (license limit).
pub async fn signup(
    pool: &PgPool,
    new: NewUser<'_>,
    open: bool,
    allow_workspace: impl FnOnce(i64) -> Result<()>,
) -> Result<Signup> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SIGNUP_LOCK)
        .execute(&mut *tx)
        .await?;
    let has_users: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(&mut *tx)
        .await?;
    if has_users && !open {
        return Ok(Signup::Closed);
    }
    let workspaces: i64 = sqlx::query_scalar("SELECT count(*) FROM workspaces")
        .fetch_one(&mut *tx)
        .await?;
    allow_workspace(workspaces)?;

    let user_id = UserId::new();
    let row: UserRow = sqlx::query_as(
        "INSERT INTO users (id, email, name, password_hash, is_admin) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, email, name, is_admin, token_version",
    )
    .bind(user_id)
    .bind(new.email)
    .bind(new.name)
    .bind(new.password_hash)
    .bind(!has_users)
    .fetch_one(&mut *tx)
    .await?;
    let workspace = crate::workspaces::insert(&mut tx, user_id, new.workspace_name).await?;
    tx.commit().await?;
    Ok(Signup::Created(row.into(), workspace))
}

/// A user and their password hash, by email (case-insensitive).
pub async fn find_by_email(pool: &PgPool, email: &str) -> Result<Option<(User, String)>> {
    let row: Option<(UserId, String, String, bool, i32, String)> = sqlx::query_as(
        "SELECT id, email, name, is_admin, token_version, password_hash FROM users WHERE lower(email) = lower($1)",
    )
    .bind(email)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(id, email, name, is_admin, token_version, hash)| {
        (
            User {
                id,
                email,
                name,
                is_admin,
                token_version,
            },
            hash,
        )
    }))
}

/// A user by id.
pub async fn get(pool: &PgPool, id: UserId) -> Result<Option<User>> {
    let row: Option<UserRow> =
        sqlx::query_as("SELECT id, email, name, is_admin, token_version FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(User::from))
}

/// The stored password hash of a user.
pub async fn password_hash(pool: &PgPool, id: UserId) -> Result<String> {
    sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(Error::NotFound)
}

/// Replaces the password hash and invalidates every JWT issued before, when the stored hash is
/// still `expected_hash` (so two concurrent changes cannot both succeed on a stale password).
pub async fn change_password(
    pool: &PgPool,
    id: UserId,
    expected_hash: &str,
    new_hash: &str,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE users SET password_hash = $3, token_version = token_version + 1, updated_at = now() \
         WHERE id = $1 AND password_hash = $2",
    )
    .bind(id)
    .bind(expected_hash)
    .bind(new_hash)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::PasswordChangedConcurrently);
    }
    audit::record(
        &mut tx,
        NewEvent {
            workspace_id: None,
            instance_level: true,
            actor: Some(id),
            action: "user.password_changed",
            target_type: "user",
            target_id: Some(id.uuid()),
            details: serde_json::json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether the instance has any user yet (a closed instance still admits the first).
pub async fn any_exist(pool: &PgPool) -> Result<bool> {
    Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)")
        .fetch_one(pool)
        .await?)
}
