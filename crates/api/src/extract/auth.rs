//! Who is calling and what they may do: the signed-in user (401), their membership of the
//! workspace in the path (404) and their role there (403), checked before anything else.

use super::headers::bearer;
use super::target::{path_id, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::StatusCode;
use rotor_storage::{MemberWorkspace, Role, User, WorkspaceId};
use std::marker::PhantomData;

/// The signed-in user, from a session JWT or a personal access token (`rp-…`).
#[derive(Clone)]
pub struct AuthUser(pub User);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let user = if token.starts_with("rp-") {
            rotor_storage::tokens::authenticate(state.db(), &crate::auth::sha256(token)).await?
        } else {
            let claims = state
                .jwt()
                .verify(token)
                .ok_or_else(ApiError::unauthorized)?;
            rotor_storage::users::get(state.db(), claims.sub.into())
                .await?
                .filter(|u| u.token_version == claims.ver)
        };
        let user = AuthUser(user.ok_or_else(ApiError::unauthorized)?);
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// What a route demands of the caller's role in the workspace.
pub trait RoleRequirement {
    /// Whether `role` satisfies it.
    fn allows(role: Role) -> bool;
}

/// Any member may (read access).
pub struct AnyRole;
impl RoleRequirement for AnyRole {
    fn allows(_: Role) -> bool {
        true
    }
}

/// Owners and admins only (write access).
pub struct Manager;
impl RoleRequirement for Manager {
    fn allows(role: Role) -> bool {
        role.can_manage()
    }
}

/// The caller as a member of the workspace in the `{ws}` path segment, with a role `R` allows.
/// Not a member, no such workspace or not a UUID: 404. Member with too weak a role: 403.
pub struct Member<R = AnyRole> {
    /// The signed-in user.
    pub user: User,
    /// The workspace, as the user sees it (with their role).
    pub workspace: MemberWorkspace,
    _role: PhantomData<R>,
}

impl<R: RoleRequirement> FromRequestParts<AppState> for Member<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        let ws: WorkspaceId = path_id(&params)?;
        let workspace = rotor_storage::workspaces::get_for_member(state.db(), ws, user.id)
            .await?
            .ok_or_else(ApiError::not_found)?;
        if !R::allows(workspace.role) {
            return Err(ApiError::forbidden());
        }
        parts.extensions.insert(Scope(workspace.id));
        Ok(Member {
            user,
            workspace,
            _role: PhantomData,
        })
    }
}

/// An instance administrator (403 for other signed-in users).
pub struct InstanceAdmin(pub User);

impl FromRequestParts<AppState> for InstanceAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "instance administrators only",
            ));
        }
        Ok(InstanceAdmin(user))
    }
}
