//! Instance administration: every workspace, and plans in saas mode.

use crate::config::Deployment;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, InstanceAdmin, JsonBody, List, ListQuery, PathIds};
use crate::license::{LicenseStatus, Rejected};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rotor_storage::{AuditEvent, Plan, Workspace};
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
    (status = 401, body = ErrorBody, description = "unauthorized"),
    (status = 403, body = ErrorBody, description = "forbidden"),
    (status = 422, body = ErrorBody, description = "validation_failed (limit or cursor)"),
    (status = 503, body = ErrorBody, description = "database_unavailable"),
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
    (status = 400, body = ErrorBody, description = "invalid_json"),
    (status = 401, body = ErrorBody, description = "unauthorized"),
    (status = 403, body = ErrorBody, description = "forbidden"),
    (status = 404, body = ErrorBody, description = "not_found"),
    (status = 409, body = ErrorBody, description = "plans_not_available (self-hosted mode)"),
    (status = 413, body = ErrorBody, description = "payload_too_large"),
    (status = 415, body = ErrorBody, description = "unsupported_media_type"),
    (status = 422, body = ErrorBody, description = "validation_failed"),
    (status = 503, body = ErrorBody, description = "database_unavailable"),
))]
pub async fn set_plan(
    State(state): State<AppState>,
    InstanceAdmin(admin): InstanceAdmin,
    ids: PathIds,
    body: axum::extract::Request,
) -> ApiResult<Json<Workspace>> {
    if state.config().deployment == Deployment::SelfHosted {
        return Err(ApiError::conflict(
            "plans_not_available",
            "plans do not apply to a self-hosted instance; features come from its license",
        ));
    }
    use axum::extract::FromRequest;
    let body = JsonBody::from_request(body, &state).await?;
    let ws = ids.uuid("ws")?;
    rotor_storage::workspaces::ensure_exists(state.db(), ws).await?;
    let change: PlanChange = body.parse()?;

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
    (status = 401, body = ErrorBody, description = "unauthorized"),
    (status = 403, body = ErrorBody, description = "forbidden"),
    (status = 503, body = ErrorBody, description = "database_unavailable"),
))]
pub async fn license_status(
    State(state): State<AppState>,
    _admin: InstanceAdmin,
) -> Json<LicenseStatus> {
    Json(state.license().status(chrono::Utc::now()))
}

/// Install a license (persisted; the valid license installed last is the active one). An
/// expired or invalid token changes nothing.
#[utoipa::path(put, path = "/admin/license", tag = "admin", security(("bearer" = [])), request_body = LicenseInstall, responses(
    (status = 200, body = LicenseStatus),
    (status = 400, body = ErrorBody, description = "invalid_json"),
    (status = 401, body = ErrorBody, description = "unauthorized"),
    (status = 403, body = ErrorBody, description = "forbidden"),
    (status = 413, body = ErrorBody, description = "payload_too_large"),
    (status = 415, body = ErrorBody, description = "unsupported_media_type"),
    (status = 422, body = ErrorBody, description = "license_expired, license_invalid, license_not_saas (saas mode) or validation_failed"),
    (status = 503, body = ErrorBody, description = "database_unavailable"),
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
            Ok(Json(state.license().status(chrono::Utc::now())))
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
    (status = 401, body = ErrorBody, description = "unauthorized"),
    (status = 403, body = ErrorBody, description = "forbidden"),
    (status = 422, body = ErrorBody, description = "validation_failed (limit or cursor)"),
    (status = 503, body = ErrorBody, description = "database_unavailable"),
))]
pub async fn instance_events(
    State(state): State<AppState>,
    _admin: InstanceAdmin,
    query: ListQuery,
) -> ApiResult<Json<List<AuditEvent>>> {
    let page = rotor_storage::audit::list_instance(state.db(), query.page()?).await?;
    Ok(Json(page.into()))
}
