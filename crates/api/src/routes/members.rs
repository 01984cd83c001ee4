//! Workspace members and their roles: owners and admins manage members, only owners touch the
//! `owner` and `admin` roles, and a workspace always keeps an owner.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, List, ListQuery, Manager, Member, PathId, TargetJson};
use crate::responses::{Authed, Body, Invalid, Managers, Paged, Scoped};
use crate::routes::auth::check_email;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rotor_storage::UserId;
use rotor_storage::{Member as MemberView, Role};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/workspaces/{ws}/members*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members, add_member))
        .routes(routes!(update_member, remove_member))
}

/// A user to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// Email of an existing user.
    pub email: String,
    /// Role to grant; `owner` and `admin` only by an owner.
    pub role: Role,
}

/// A role change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdate {
    /// The new role.
    pub role: Role,
}

/// Whether `actor` may move a member from `current` to `new` (either side privileged needs an owner).
fn may_change(actor: Role, current: Role, new: Option<Role>) -> bool {
    actor == Role::Owner
        || (actor.can_manage() && !current.is_privileged() && !new.is_some_and(Role::is_privileged))
}

/// The workspace's members.
#[utoipa::path(get, path = "/workspaces/{ws}/members", tag = "members", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ListQuery), responses(
    (status = 200, body = List<MemberView>),
    Authed, Scoped, Paged,
))]
pub async fn list_members(
    State(state): State<AppState>,
    member: Member,
    query: ListQuery,
) -> ApiResult<Json<List<MemberView>>> {
    let page = rotor_storage::members::list(state.db(), member.workspace.id, query.page()?).await?;
    Ok(Json(page.into()))
}

/// Add an existing user to the workspace.
#[utoipa::path(post, path = "/workspaces/{ws}/members", tag = "members", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id")), request_body = NewMember, responses(
    (status = 201, body = MemberView),
    (status = 403, body = ErrorBody, description = "forbidden (role; only owners grant owner/admin)"),
    (status = 404, body = ErrorBody, description = "not_found or user_not_found"),
    (status = 409, body = ErrorBody, description = "member_exists"),
    Authed, Body, Invalid,
))]
pub async fn add_member(
    State(state): State<AppState>,
    member: Member<Manager>,
    ApiJson(body): ApiJson<NewMember>,
) -> ApiResult<(StatusCode, Json<MemberView>)> {
    if !may_change(member.workspace.role, Role::Normal, Some(body.role)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only owners grant the owner and admin roles",
        ));
    }
    let mut errors = crate::extract::FieldErrors::default();
    let email = check_email(&mut errors, "email", &body.email);
    errors.finish()?;
    let added = rotor_storage::members::add(
        state.db(),
        member.workspace.id,
        member.user.id,
        &email,
        body.role,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// Change a member's role. Demoting the last owner is refused.
#[utoipa::path(patch, path = "/workspaces/{ws}/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("user_id" = Uuid, Path, description = "member's user id")),
    request_body = MemberUpdate, responses(
    (status = 200, body = MemberView),
    (status = 409, body = ErrorBody, description = "last_owner"),
    Authed, Scoped, Managers, Body, Invalid,
))]
pub async fn update_member(
    State(state): State<AppState>,
    member: Member<Manager>,
    TargetJson { id: target, body }: TargetJson<UserId, MemberUpdate>,
) -> ApiResult<Json<MemberView>> {
    let actor = member.workspace.role;
    let updated = rotor_storage::members::update_role(
        state.db(),
        member.workspace.id,
        target,
        member.user.id,
        body.role,
        |current, new| may_change(actor, current, Some(new)),
    )
    .await?;
    Ok(Json(updated))
}

/// Remove a member (any member may leave). Removing the last owner is refused.
#[utoipa::path(delete, path = "/workspaces/{ws}/members/{user_id}", tag = "members", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("user_id" = Uuid, Path, description = "member's user id")),
    responses(
    (status = 204, description = "removed"),
    (status = 409, body = ErrorBody, description = "last_owner"),
    Authed, Scoped, Managers,
))]
pub async fn remove_member(
    State(state): State<AppState>,
    member: Member,
    target: Result<PathId<UserId>, ApiError>,
) -> ApiResult<StatusCode> {
    let actor = member.workspace.role;
    let leaving = target.as_ref().is_ok_and(|t| t.0 == member.user.id);
    if !leaving && !actor.can_manage() {
        return Err(ApiError::forbidden());
    }
    let PathId(target) = target?;
    rotor_storage::members::remove(
        state.db(),
        member.workspace.id,
        target,
        member.user.id,
        |current| leaving || may_change(actor, current, None),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
