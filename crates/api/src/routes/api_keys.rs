//! Workspace API keys for the gateway: shown once at creation, stored as SHA-256, revocable.

use crate::error::ApiResult;
use crate::extract::{ApiJson, FieldErrors, List, ListQuery, Manager, Member, PathId};
use crate::responses::{Authed, Body, Invalid, Managers, Paged, Scoped};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use rotor_storage::api_keys::NewApiKey;
use rotor_storage::ApiKey;
use rotor_storage::ApiKeyId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/workspaces/{ws}/api-keys*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// A key to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// What it is for.
    #[schema(example = "chatbot-prod", min_length = 1, max_length = 100)]
    pub name: String,
    /// Model names the key may call (omit for all of the workspace's models).
    pub allowed_models: Option<Vec<String>>,
    /// Optional expiry (RFC 3339, in the future).
    pub expires_at: Option<DateTime<Utc>>,
}

/// A created key; `key` appears only in this answer.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The stored key's listing.
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The key (`rk-…`), for `Authorization: Bearer …` on `/v1`. Not retrievable later.
    pub key: String,
}

/// The workspace's API keys (never their secrets).
#[utoipa::path(get, path = "/workspaces/{ws}/api-keys", tag = "api-keys", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ListQuery), responses(
    (status = 200, body = List<ApiKey>),
    Authed, Scoped, Paged,
))]
pub async fn list_keys(
    State(state): State<AppState>,
    member: Member,
    query: ListQuery,
) -> ApiResult<Json<List<ApiKey>>> {
    let page =
        rotor_storage::api_keys::list(state.db(), member.workspace.id, query.page()?).await?;
    Ok(Json(page.into()))
}

/// Create an API key (owners and admins).
#[utoipa::path(post, path = "/workspaces/{ws}/api-keys", tag = "api-keys", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id")), request_body = NewKey, responses(
    (status = 201, body = CreatedKey),
    Authed, Scoped, Managers, Body, Invalid,
))]
pub async fn create_key(
    State(state): State<AppState>,
    member: Member<Manager>,
    ApiJson(body): ApiJson<NewKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let mut errors = FieldErrors::default();
    let name = errors.name("name", &body.name, 100);
    if body.expires_at.is_some_and(|t| t <= Utc::now()) {
        errors.add("expires_at", "must be in the future");
    }
    let allowed_models = body.allowed_models.map(|models| {
        if models.len() > 500 {
            errors.add("allowed_models", "at most 500 models");
        }
        let mut names: Vec<String> = models
            .iter()
            .enumerate()
            .map(|(i, m)| errors.name(&format!("allowed_models[{i}]"), m, 200))
            .collect();
        names.sort();
        names.dedup();
        names
    });
    errors.finish()?;
    let secret = crate::auth::new_secret("rk-");
    let key = NewApiKey {
        name: &name,
        prefix: &secret.prefix,
        hash: &secret.hash,
        allowed_models: allowed_models.as_deref(),
        expires_at: body.expires_at,
    };
    let api_key =
        rotor_storage::api_keys::create(state.db(), member.workspace.id, member.user.id, key)
            .await?;
    state.committed(member.workspace.id).await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            api_key,
            key: secret.value,
        }),
    ))
}

/// Revoke an API key; it stops working at once.
#[utoipa::path(delete, path = "/workspaces/{ws}/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "key id")), responses(
    (status = 204, description = "revoked"),
    Authed, Scoped, Managers,
))]
pub async fn revoke_key(
    State(state): State<AppState>,
    member: Member<Manager>,
    PathId(id): PathId<ApiKeyId>,
) -> ApiResult<StatusCode> {
    rotor_storage::api_keys::delete(state.db(), member.workspace.id, id, member.user.id).await?;
    // The key goes from this replica's table at once, whatever the reload below does.
    state.gateway().remove_key(id.uuid());
    state.committed(member.workspace.id).await;
    Ok(StatusCode::NO_CONTENT)
}
