//! A workspace's audit log: who changed what, newest first, never a secret.

use crate::error::ApiResult;
use crate::extract::{List, ListQuery, Member};
use crate::responses::{Authed, Paged, Scoped};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use rotor_storage::AuditEvent;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/workspaces/{ws}/audit-events`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

/// The workspace's audit events, newest first.
#[utoipa::path(get, path = "/workspaces/{ws}/audit-events", tag = "audit", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ListQuery), responses(
    (status = 200, body = List<AuditEvent>),
    Authed, Scoped, Paged,
))]
pub async fn list_events(
    State(state): State<AppState>,
    member: Member,
    query: ListQuery,
) -> ApiResult<Json<List<AuditEvent>>> {
    let page = rotor_storage::audit::list_workspace(state.db(), member.workspace.id, query.page()?)
        .await?;
    Ok(Json(page.into()))
}
