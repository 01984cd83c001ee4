//! Workspaces, the tenants: the caller's list, creation, details with features, rename.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser, FieldErrors, List, ListQuery, Manager, Member};
use crate::responses::{Authed, Body, Invalid, Managers, Paged, Scoped};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rotor_storage::WorkspaceId;
use rotor_storage::{MemberWorkspace, Plan, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/workspaces` and `/workspaces/{ws}`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_workspaces, create_workspace))
        .routes(routes!(get_workspace, update_workspace))
}

/// A new workspace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// Name, 1 to 100 characters.
    #[schema(example = "Research", min_length = 1, max_length = 100)]
    pub name: String,
}

/// Changes to a workspace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceUpdate {
    /// New name, 1 to 100 characters.
    pub name: Option<String>,
}

/// What the workspace may use.
#[derive(Serialize, ToSchema)]
pub struct Features {
    /// Load-balancing pools (a valid license, or a paid plan in saas mode).
    pub load_balancing: bool,
}

/// A workspace with the caller's role and its features.
#[derive(Serialize, ToSchema)]
pub struct WorkspaceDetail {
    /// Workspace id.
    pub id: WorkspaceId,
    /// Name.
    pub name: String,
    /// The caller's role.
    pub role: Role,
    /// Plan.
    pub plan: Plan,
    /// Features available now.
    pub features: Features,
}

fn detail(state: &AppState, ws: MemberWorkspace) -> WorkspaceDetail {
    WorkspaceDetail {
        id: ws.id,
        name: ws.name,
        role: ws.role,
        plan: ws.plan,
        features: Features {
            load_balancing: state.has_load_balancing(ws.plan),
        },
    }
}

/// The workspaces the caller belongs to.
#[utoipa::path(get, path = "/workspaces", tag = "workspaces", security(("bearer" = [])), params(ListQuery), responses(
    (status = 200, body = List<MemberWorkspace>),
    Authed, Paged,
))]
pub async fn list_workspaces(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    query: ListQuery,
) -> ApiResult<Json<List<MemberWorkspace>>> {
    let page =
        rotor_storage::workspaces::list_for_member(state.db(), user.id, query.page()?).await?;
    Ok(Json(page.into()))
}

/// Create a workspace; the caller becomes its owner and the plan is `sandbox`.
#[utoipa::path(post, path = "/workspaces", tag = "workspaces", security(("bearer" = [])), request_body = NewWorkspace, responses(
    (status = 201, body = MemberWorkspace),
    (status = 403, body = ErrorBody, description = "license_limit_reached"),
    Authed, Body, Invalid,
))]
pub async fn create_workspace(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<NewWorkspace>,
) -> ApiResult<(StatusCode, Json<MemberWorkspace>)> {
    state.check_workspace_limit(rotor_storage::workspaces::count(state.db()).await?)?;
    let mut errors = FieldErrors::default();
    let name = errors.name("name", &body.name, 100);
    errors.finish()?;
    let ws = rotor_storage::workspaces::create(state.db(), user.id, &name, |n| {
        state.check_workspace_limit(n)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(ws)))
}

/// A workspace the caller belongs to, with its plan and features.
#[utoipa::path(get, path = "/workspaces/{ws}", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id")), responses(
    (status = 200, body = WorkspaceDetail),
    Authed, Scoped,
))]
pub async fn get_workspace(State(state): State<AppState>, member: Member) -> Json<WorkspaceDetail> {
    Json(detail(&state, member.workspace))
}

/// Rename a workspace (owners and admins).
#[utoipa::path(patch, path = "/workspaces/{ws}", tag = "workspaces", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id")), request_body = WorkspaceUpdate, responses(
    (status = 200, body = WorkspaceDetail),
    Authed, Scoped, Managers, Body, Invalid,
))]
pub async fn update_workspace(
    State(state): State<AppState>,
    member: Member<Manager>,
    ApiJson(body): ApiJson<WorkspaceUpdate>,
) -> ApiResult<Json<WorkspaceDetail>> {
    let mut ws = member.workspace;
    if let Some(name) = body.name {
        let mut errors = FieldErrors::default();
        let name = errors.name("name", &name, 100);
        errors.finish()?;
        if name != ws.name {
            rotor_storage::workspaces::rename(state.db(), ws.id, member.user.id, &name).await?;
            state.committed(ws.id).await;
            ws.name = name;
        }
    }
    Ok(Json(detail(&state, ws)))
}
