//! The model list (`/v1/models`, Gemini's `/v1beta/models`): the workspace's models, filtered
//! by what the key may use, in the shape of the family that asks (see [`super::listing`]).

use super::docs::{GeminiListErrors, GeminiModelErrors, ListErrors, ModelErrors};
use super::error::GatewayError;
use super::{allowed, authenticate_in, listing, shapes};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rotor_dispatch::target::Family;
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

/// The workspace's models (those the key may use), in the shape of the family that asks:
/// OpenAI's by default, Anthropic's with `anthropic-version`, Gemini's with `x-goog-api-key`.
#[utoipa::path(get, path = "/v1/models", tag = "gateway", security(("api_key" = [])),
    responses((status = 200, body = ModelList, description = "OpenAI's list (Anthropic's or Gemini's shape when their SDK asks)"), ListErrors))]
pub async fn list_models(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let family = listing::asked_by(&headers, &uri);
    list_in(&state, family, &headers, &uri).await
}

/// One model by name, in the shape of the family that asks (as [`list_models`]).
#[utoipa::path(get, path = "/v1/models/{name}", tag = "gateway", security(("api_key" = [])),
    params(("name" = String, Path, description = "model name")),
    responses((status = 200, body = ModelObject, description = "OpenAI's model object (Anthropic's or Gemini's shape when their SDK asks)"), ModelErrors))]
pub async fn get_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let family = listing::asked_by(&headers, &uri);
    get_in(&state, family, &name, &headers, &uri).await
}

/// Gemini's model list.
#[utoipa::path(get, path = "/v1beta/models", tag = "gateway", operation_id = "gemini_list_models",
    security(("gemini_key" = []), ("gemini_query_key" = [])),
    responses((status = 200, description = "Gemini's model list: the workspace's Gemini models"), GeminiListErrors))]
pub async fn gemini_list_models(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    list_in(&state, Family::Gemini, &headers, &uri).await
}

/// One Gemini model by name.
#[utoipa::path(get, path = "/v1beta/models/{name}", tag = "gateway", operation_id = "gemini_get_model",
    security(("gemini_key" = []), ("gemini_query_key" = [])),
    params(("name" = String, Path, description = "model name")),
    responses((status = 200, description = "Gemini's model object"), GeminiModelErrors))]
pub async fn gemini_get_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    get_in(&state, Family::Gemini, &name, &headers, &uri).await
}

async fn list_in(state: &AppState, family: Family, headers: &HeaderMap, uri: &Uri) -> Response {
    let answer = async {
        let key = authenticate_in(state, family, headers, uri)?;
        let models = rotor_storage::models::all(state.db(), key.workspace_id.into())
            .await
            .map_err(|_| GatewayError::database_unavailable("the model list"))?;
        let models: Vec<Model> = models
            .into_iter()
            .filter(|m| allowed(&key, &m.name).is_ok() && listing::listed(family, m))
            .collect();
        Ok::<_, GatewayError>(match family {
            Family::OpenAi => Json(ModelList {
                object: "list",
                data: models.into_iter().map(ModelObject::from).collect(),
            })
            .into_response(),
            Family::Anthropic => Json(listing::anthropic_list(&models)).into_response(),
            Family::Gemini => Json(listing::gemini_list(&models)).into_response(),
        })
    };
    answer.await.unwrap_or_else(|e| shapes::render(e, family))
}

async fn get_in(
    state: &AppState,
    family: Family,
    name: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> Response {
    let answer = async {
        let key = authenticate_in(state, family, headers, uri)?;
        if name.contains('\0') {
            return Err(GatewayError::model_not_found(name));
        }
        allowed(&key, name)?;
        let m = rotor_storage::models::get_by_name(state.db(), key.workspace_id.into(), name)
            .await
            .map_err(|_| GatewayError::database_unavailable("the model"))?
            .filter(|m| listing::listed(family, m))
            .ok_or_else(|| GatewayError::model_not_found(name))?;
        Ok(match family {
            Family::OpenAi => Json(ModelObject::from(m)).into_response(),
            Family::Anthropic => Json(listing::anthropic_model(&m)).into_response(),
            Family::Gemini => Json(listing::gemini_model(&m)).into_response(),
        })
    };
    answer.await.unwrap_or_else(|e| shapes::render(e, family))
}
