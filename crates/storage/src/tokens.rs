//! Personal access tokens: long-lived bearer tokens for automation, stored hashed.

use crate::ids::*;
use crate::page::{Keyset, Page, Paged};
use crate::types::{PersonalToken, User};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use sqlx::PgPool;

const COLUMNS: &str = "id, name, prefix, created_at, expires_at, last_used_at";

/// Stores a new token for `user`.
pub async fn create(
    pool: &PgPool,
    user: UserId,
    name: &str,
    prefix: &str,
    hash: &[u8],
    expires_at: Option<DateTime<Utc>>,
) -> Result<PersonalToken> {
    let row: PersonalToken = sqlx::query_as(&format!(
        "INSERT INTO personal_tokens (id, user_id, name, prefix, token_hash, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(TokenId::new())
    .bind(user)
    .bind(name)
    .bind(prefix)
    .bind(hash)
    .bind(expires_at)
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// The user's tokens, oldest first.
pub async fn list(pool: &PgPool, user: UserId, page: Page) -> Result<Paged<PersonalToken>> {
    let select = format!("SELECT {COLUMNS} FROM personal_tokens WHERE user_id = $1");
    page.list::<PersonalToken, _, _>(pool, &select, user, Keyset::OLDEST_FIRST)
        .await
}

/// Revokes one of the user's tokens.
pub async fn delete(pool: &PgPool, user: UserId, id: TokenId) -> Result<()> {
    let done = sqlx::query("DELETE FROM personal_tokens WHERE user_id = $1 AND id = $2")
        .bind(user)
        .bind(id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// The user a live (unexpired) token belongs to; marks it used at most once a minute.
pub async fn authenticate(pool: &PgPool, hash: &[u8]) -> Result<Option<User>> {
    let row: Option<(UserId, String, String, bool, i32)> = sqlx::query_as(
        "WITH t AS ( \
            UPDATE personal_tokens SET last_used_at = now() \
            WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > now()) \
              AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') \
            RETURNING user_id) \
         SELECT u.id, u.email, u.name, u.is_admin, u.token_version FROM users u \
         WHERE u.id = COALESCE((SELECT user_id FROM t), \
            (SELECT user_id FROM personal_tokens WHERE token_hash = $1 \
             AND (expires_at IS NULL OR expires_at > now())))",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(id, email, name, is_admin, token_version)| User {
        id,
        email,
        name,
        is_admin,
        token_version,
    }))
}
