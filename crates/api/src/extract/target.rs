//! Target ids in the path, and the middle of the error precedence: a write names its target
//! after the body's syntax was checked (400) and before its shape is (422), so a missing
//! target is a 404 whatever the body says.

use super::json::JsonBody;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use rotor_storage::{ApiKeyId, CredentialId, ModelId, TokenId, UserId, WorkspaceId};
use serde::de::DeserializeOwned;
use std::future::Future;

/// An id type and the path segment that carries it.
pub trait PathParam: Sized + Copy + Send + Sync + std::str::FromStr + 'static {
    /// The `{name}` of the segment in the route.
    const NAME: &'static str;
}

macro_rules! path_params {
    ($($id:ty => $name:literal),* $(,)?) => {$(
        impl PathParam for $id {
            const NAME: &'static str = $name;
        }
    )*};
}

path_params! {
    WorkspaceId => "ws",
    UserId => "user_id",
    CredentialId => "id",
    ModelId => "id",
    ApiKeyId => "id",
    TokenId => "id",
}

/// Reads the id from the request's path: anything but a UUID is a 404 (no such resource).
pub(super) fn path_id<T: PathParam>(params: &RawPathParams) -> Result<T, ApiError> {
    params
        .iter()
        .find(|(k, _)| *k == T::NAME)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(ApiError::not_found)
}

/// The typed id in the route's `{id}` (or `{user_id}`, `{ws}`) segment.
pub struct PathId<T>(pub T);

impl<T: PathParam, S: Send + Sync> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        path_id(&params).map(PathId)
    }
}

/// The workspace a request was authorised for; [`super::Member`] leaves it in the request's
/// extensions for the extractors that run after it.
#[derive(Debug, Clone, Copy)]
pub struct Scope(pub WorkspaceId);

/// A target that must exist (in the caller's workspace, when there is one) before its body's
/// shape is checked.
pub trait Target: PathParam {
    /// `NotFound` when there is no such target in `scope`.
    fn ensure(
        self,
        state: &AppState,
        scope: Option<WorkspaceId>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

macro_rules! scoped_target {
    ($id:ty, $repo:ident) => {
        impl Target for $id {
            async fn ensure(
                self,
                state: &AppState,
                scope: Option<WorkspaceId>,
            ) -> Result<(), ApiError> {
                let ws = scope.ok_or_else(ApiError::not_found)?;
                Ok(rotor_storage::$repo::ensure_exists(state.db(), ws, self).await?)
            }
        }
    };
}

scoped_target!(CredentialId, credentials);
scoped_target!(ModelId, models);
scoped_target!(UserId, members);

impl Target for WorkspaceId {
    async fn ensure(self, state: &AppState, _scope: Option<WorkspaceId>) -> Result<(), ApiError> {
        Ok(rotor_storage::workspaces::ensure_exists(state.db(), self).await?)
    }
}

/// A write to an existing target: the body is well-formed JSON (400 …), then the target
/// exists (404), then the body has the right shape (422).
pub struct TargetJson<T, B> {
    /// The target's id.
    pub id: T,
    /// The parsed body.
    pub body: B,
}

impl<T: Target, B: DeserializeOwned> FromRequest<AppState> for TargetJson<T, B> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let PathId(id) = PathId::<T>::from_request_parts(&mut parts, state).await?;
        let scope = parts.extensions.get::<Scope>().map(|s| s.0);
        let json = JsonBody::from_request(Request::from_parts(parts, body), state).await?;
        id.ensure(state, scope).await?;
        Ok(TargetJson {
            id,
            body: json.parse()?,
        })
    }
}
