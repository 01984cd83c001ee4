//! Instance administration: every workspace, and plans in saas mode.

use crate::config::Deployment;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, InstanceAdmin, List, ListQuery, TargetJson};
use crate::license::{LicenseStatus, Rejected};
use crate::responses::{Authed, Body, Invalid, Managers, Paged, Scoped};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rotor_storage::{AuditEvent, Plan, Workspace, WorkspaceId};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/admin/*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_all_workspaces))
        .routes(routes!(set_plan))
        .routes(routes!(license_status, install_license))
        .routes(routes!(instance_events))
}

/// A plan to set.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChange {
    /// The new plan.
    pub plan: Plan,
}

/// Every workspace of the instance (instance administrators).
#[utoipa::path(get, path = "/admin/workspaces", tag = "admin", security(("bearer" = [])), params(ListQuery), responses(
    (status = 200, body = List<Workspace>),
    Authed, Managers, Paged,
))]
pub async fn list_all_workspaces(
    State(state): State<AppState>,
    _admin: InstanceAdmin,
    query: ListQuery,
) -> ApiResult<Json<List<Workspace>>> {
    let page = rotor_storage::workspaces::list_all(state.db(), query.page()?).await?;
    Ok(Json(page.into()))
}

/// Set a workspace's plan (saas mode; a self-hosted instance has no plans: 409).
#[utoipa::path(put, path = "/admin/workspaces/{ws}/plan", tag = "admin", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id")), request_body = PlanChange, responses(
    (status = 200, body = Workspace),
    (status = 409, body = ErrorBody, description = "plans_not_available (self-hosted mode)"),
    Authed, Scoped, Managers, Body, Invalid,
))]
pub async fn set_plan(
    State(state): State<AppState>,
    InstanceAdmin(admin): InstanceAdmin,
    _saas: PlansApply,
    TargetJson {
        id: ws,
        body: change,
    }: TargetJson<WorkspaceId, PlanChange>,
) -> ApiResult<Json<Workspace>> {
    let updated =
        rotor_storage::workspaces::set_plan(state.db(), ws, admin.id, change.plan).await?;
    state.committed(ws).await;
    tracing::info!(workspace_id = %ws, plan = change.plan.as_str(), "plan changed");
    Ok(Json(updated))
}

/// A license to install.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseInstall {
    /// The license token (a compact JWS signed by the vendor).
    pub license: String,
}

/// The instance's license status and the key this binary trusts (instance administrators).
#[utoipa::path(get, path = "/admin/license", tag = "admin", security(("bearer" = [])), responses(
    (status = 200, body = LicenseStatus),
    Authed, Managers,
))]
pub async fn license_status(
    State(state): State<AppState>,
    _admin: InstanceAdmin,
) -> Json<LicenseStatus> {
    Json(
        state
            .license()
            .status(chrono::Utc::now(), state.config().deployment),
    )
}

/// Install a license (persisted; the valid license installed last is the active one). An
/// expired or invalid token changes nothing.
#[utoipa::path(put, path = "/admin/license", tag = "admin", security(("bearer" = [])), request_body = LicenseInstall, responses(
    (status = 200, body = LicenseStatus),
    (status = 422, body = ErrorBody, description = "license_expired, license_invalid, license_not_saas (saas mode) or validation_failed"),
    Authed, Managers, Body,
))]
pub async fn install_license(
    State(state): State<AppState>,
    InstanceAdmin(admin): InstanceAdmin,
    ApiJson(body): ApiJson<LicenseInstall>,
) -> ApiResult<Json<LicenseStatus>> {
    // Installed, it would be the active license, without which saas mode cannot run.
    if state.config().deployment == Deployment::Saas
        && crate::license::lacks_saas(state.license().verifier(), &body.license)
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "license_not_saas",
            "this instance runs in saas mode and the license does not list `saas`; nothing was changed",
        ));
    }
    match crate::license::install(state.db(), state.license(), &body.license, Some(admin.id))
        .await?
    {
        Ok(claims) => {
            crate::sync::publish(&state, crate::sync::Change::License).await;
            tracing::info!(licensee = %claims.sub, expires_at = %claims.expires_at(), "license installed");
            Ok(Json(
                state
                    .license()
                    .status(chrono::Utc::now(), state.config().deployment),
            ))
        }
        Err(Rejected::Expired) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "license_expired",
            "the license has expired; nothing was changed",
        )),
        Err(Rejected::Invalid) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "license_invalid",
            "not a license signed by the key this binary trusts; nothing was changed",
        )),
    }
}

/// Instance-level events (license, plans, workspaces created, password changes), newest first.
#[utoipa::path(get, path = "/admin/audit-events", tag = "admin", security(("bearer" = [])), params(ListQuery), responses(
    (status = 200, body = List<AuditEvent>),
    Authed, Managers, Paged,
))]
pub async fn instance_events(
    State(state): State<AppState>,
    _admin: InstanceAdmin,
    query: ListQuery,
) -> ApiResult<Json<List<AuditEvent>>> {
    let page = rotor_storage::audit::list_instance(state.db(), query.page()?).await?;
    Ok(Json(page.into()))
}

/// Plans exist only on the hosted service: on a self-hosted instance a plan change is a 409
/// before its body is read (features come from the license there).
pub struct PlansApply;

impl axum::extract::FromRequestParts<AppState> for PlansApply {
    type Rejection = ApiError;

    async fn from_request_parts(
        _parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        if state.config().deployment == Deployment::SelfHosted {
            return Err(ApiError::conflict(
                "plans_not_available",
                "plans do not apply to a self-hosted instance; features come from its license",
            ));
        }
        Ok(PlansApply)
    }
}
