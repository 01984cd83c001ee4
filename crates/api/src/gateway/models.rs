//! `/v1/models`: the workspace's models in OpenAI's shape, filtered by what the key may use.

use super::docs::{ListErrors, ModelErrors};
use super::error::GatewayError;
use super::{allowed, authenticate};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use rotor_storage::models::Model;
use serde::Serialize;
use utoipa::ToSchema;

/// A model in OpenAI's shape.
#[derive(Serialize, ToSchema)]
pub struct ModelObject {
    /// The name to send as `model`.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// Creation time (seconds).
    pub created: i64,
    /// The provider.
    pub owned_by: String,
}

impl From<Model> for ModelObject {
    fn from(m: Model) -> Self {
        Self {
            id: m.name,
            object: "model",
            created: m.created_at.timestamp(),
            owned_by: m.provider,
        }
    }
}

/// OpenAI's model list.
#[derive(Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// The models.
    pub data: Vec<ModelObject>,
}

/// The workspace's models (those the key may use).
#[utoipa::path(get, path = "/v1/models", tag = "gateway", security(("api_key" = [])),
    responses((status = 200, body = ModelList), ListErrors))]
pub async fn list_models(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ModelList>, GatewayError> {
    let key = authenticate(&state, &headers)?;
    let models = rotor_storage::models::all(state.db(), key.workspace_id.into())
        .await
        .map_err(|_| GatewayError::database_unavailable("the model list"))?;
    let data = models
        .into_iter()
        .filter(|m| allowed(&key, &m.name).is_ok())
        .map(ModelObject::from)
        .collect();
    Ok(Json(ModelList {
        object: "list",
        data,
    }))
}

/// One model by name.
#[utoipa::path(get, path = "/v1/models/{name}", tag = "gateway", security(("api_key" = [])),
    params(("name" = String, Path, description = "model name")),
    responses((status = 200, body = ModelObject), ModelErrors))]
pub async fn get_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ModelObject>, GatewayError> {
    let key = authenticate(&state, &headers)?;
    if name.contains('\0') {
        return Err(GatewayError::model_not_found(&name));
    }
    allowed(&key, &name)?;
    let m = rotor_storage::models::get_by_name(state.db(), key.workspace_id.into(), &name)
        .await
        .map_err(|_| GatewayError::database_unavailable("the model"))?
        .ok_or_else(|| {
            GatewayError::new(
                axum::http::StatusCode::NOT_FOUND,
                "model_not_found",
                format!("the model `{name}` does not exist"),
            )
        })?;
    Ok(Json(ModelObject::from(m)))
}
