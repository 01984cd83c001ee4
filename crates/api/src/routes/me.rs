//! The signed-in user: profile, password change and personal access tokens for automation.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser, FieldErrors, List, ListQuery, PathId};
use crate::responses::{Authed, Body, Invalid, Paged, Scoped};
use crate::routes::auth::check_password;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use rotor_storage::TokenId;
use rotor_storage::{PersonalToken, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/me*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(delete_token))
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/me", tag = "me", security(("bearer" = [])), responses(
    (status = 200, body = User),
    Authed,
))]
pub async fn me(AuthUser(user): AuthUser) -> Json<User> {
    Json(user)
}

/// The current and the new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password in use now.
    pub current_password: String,
    /// At least 8 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// Change the password. Every session token issued before stops working; personal access
/// tokens stay valid until revoked or expired.
#[utoipa::path(post, path = "/me/password", tag = "me", security(("bearer" = [])), request_body = PasswordChange, responses(
    (status = 204, description = "changed"),
    (status = 401, body = ErrorBody, description = "unauthorized"),
    (status = 422, body = ErrorBody, description = "validation_failed (including a wrong current_password)"),
    (status = 429, body = ErrorBody, description = "too_many_requests (10 wrong current_password in 15 minutes)"),
    (status = 503, body = ErrorBody, description = "database_unavailable (or busy with Retry-After: 1 when more than 64 password checks are waiting)"),
    Body,
))]
pub async fn change_password(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    let mut errors = FieldErrors::default();
    check_password(&mut errors, "new_password", &body.new_password);
    errors.finish()?;
    // As for login, the slot is taken before `current_password` is checked.
    let slot = state
        .throttle()
        .take_user(user.id.uuid())
        .map_err(ApiError::too_many_requests)?;
    let stored = rotor_storage::users::password_hash(state.db(), user.id).await?;
    if !state
        .passwords()
        .verify(Some(stored.clone()), body.current_password)
        .await?
    {
        return Err(ApiError::field(
            "current_password",
            "does not match the current password",
        ));
    }
    state.throttle().user_succeeded(slot);
    let new_hash = state.passwords().hash(body.new_password).await?;
    rotor_storage::users::change_password(state.db(), user.id, &stored, &new_hash).await?;
    tracing::info!(user_id = %user.id, "password changed");
    Ok(StatusCode::NO_CONTENT)
}

/// A personal access token to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What it is for.
    #[schema(example = "terraform", min_length = 1, max_length = 100)]
    pub name: String,
    /// Optional expiry (RFC 3339, in the future).
    pub expires_at: Option<DateTime<Utc>>,
}

/// A created token; `token` is shown only here.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// Token id.
    pub id: TokenId,
    /// Name.
    pub name: String,
    /// First 11 characters.
    pub prefix: String,
    /// The token (`rp-…`): use it as `Authorization: Bearer …`. Not retrievable later.
    pub token: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The caller's personal access tokens (without their secrets).
#[utoipa::path(get, path = "/me/tokens", tag = "me", security(("bearer" = [])), params(ListQuery), responses(
    (status = 200, body = List<PersonalToken>),
    Authed, Paged,
))]
pub async fn list_tokens(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    query: ListQuery,
) -> ApiResult<Json<List<PersonalToken>>> {
    let page = rotor_storage::tokens::list(state.db(), user.id, query.page()?).await?;
    Ok(Json(page.into()))
}

/// Create a personal access token, usable wherever a session token is.
#[utoipa::path(post, path = "/me/tokens", tag = "me", security(("bearer" = [])), request_body = NewToken, responses(
    (status = 201, body = CreatedToken),
    Authed, Body, Invalid,
))]
pub async fn create_token(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let mut errors = FieldErrors::default();
    let name = errors.name("name", &body.name, 100);
    if body.expires_at.is_some_and(|t| t <= Utc::now()) {
        errors.add("expires_at", "must be in the future");
    }
    errors.finish()?;
    let secret = crate::auth::new_secret("rp-");
    let t = rotor_storage::tokens::create(
        state.db(),
        user.id,
        &name,
        &secret.prefix,
        &secret.hash,
        body.expires_at,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            token: secret.value,
            created_at: t.created_at,
            expires_at: t.expires_at,
        }),
    ))
}

/// Revoke one of the caller's personal access tokens.
#[utoipa::path(delete, path = "/me/tokens/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "token id")), responses(
    (status = 204, description = "revoked"),
    Authed, Scoped,
))]
pub async fn delete_token(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    PathId(id): PathId<TokenId>,
) -> ApiResult<StatusCode> {
    rotor_storage::tokens::delete(state.db(), user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
