//! Provider credentials: secrets encrypted at rest and masked in every answer, merge-PATCH
//! with the masked-value rule, validation against the provider, and safe deletion.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, FieldErrors, List, ListQuery, Manager, Member, PathId, TargetJson};
use crate::lifecycle::{self, Recovery};
use crate::responses::{Authed, Body, Managers, Paged, Scoped};
use crate::routes::load_balancing::{at_ms, LastError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use rotor_dispatch::client::Validation;
use rotor_dispatch::lifecycle::CredentialRecord;
use rotor_dispatch::state::StateBackend;
use rotor_storage::credentials::{
    self, Credential, CredentialInput, CredentialPatch, DEFAULT_QUOTA_COOLDOWN_SECONDS,
    QUOTA_COOLDOWN_SECONDS,
};
use rotor_storage::{providers, CredentialId, WorkspaceId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// How long `/validate` waits for the provider.
pub const VALIDATE_TIMEOUT: Duration = Duration::from_secs(10);

/// `/workspaces/{ws}/credentials*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_credentials, create_credential))
        .routes(routes!(
            get_credential,
            update_credential,
            delete_credential
        ))
        .routes(routes!(validate_credential))
}

/// A credential to store.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    /// Provider id (see `GET /providers`).
    #[schema(example = "openai")]
    pub provider: String,
    /// Name, unique per provider in the workspace.
    #[schema(example = "team-key-1", min_length = 1, max_length = 100)]
    pub name: String,
    /// Seconds the credential leaves every pool after a quota error, 60..=604800 (default
    /// 3600).
    #[schema(minimum = 60, maximum = 604800, example = 3600)]
    pub quota_cooldown_seconds: Option<i32>,
    /// Fields of the provider's credential schema.
    #[schema(value_type = std::collections::HashMap<String, String>, example = json!({"api_key": "sk-…", "base_url": "https://api.openai.com/v1"}))]
    pub config: Map<String, Value>,
}

/// Changes to a credential. A secret sent back in its masked form keeps the stored value;
/// changing `base_url`/`endpoint` requires every secret in clear.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialUpdate {
    /// New name.
    pub name: Option<String>,
    /// New quota cooldown in seconds, 60..=604800; omitted or null keeps the stored value.
    #[schema(minimum = 60, maximum = 604800)]
    pub quota_cooldown_seconds: Option<i32>,
    /// Fields to change (`null` clears an optional field).
    #[schema(value_type = Option<std::collections::HashMap<String, Option<String>>>)]
    pub config: Option<Map<String, Value>>,
}

/// A credential as shown to members: secrets masked.
#[derive(Serialize, ToSchema)]
pub struct CredentialView {
    /// Credential id.
    pub id: CredentialId,
    /// Provider id.
    pub provider: String,
    /// Name.
    pub name: String,
    /// Seconds the credential leaves every pool after a quota error (60..=604800).
    #[schema(example = 3600)]
    pub quota_cooldown_seconds: i32,
    /// Config with secrets masked (`sk-…abcd`, or `****` when short).
    #[schema(value_type = std::collections::HashMap<String, String>)]
    pub config: Map<String, Value>,
    /// Its standing with the provider, in every pool (§14).
    pub health: CredentialHealth,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A credential's standing with its provider, the same on every replica.
#[derive(Serialize, ToSchema)]
pub struct CredentialHealth {
    /// `available`; `rejected` (the provider refuses the key: out of every pool until the
    /// credential's config is changed, a validation succeeds or a probe does); or
    /// `quota_exhausted` (its quota or credit is spent: out of every pool for
    /// `quota_cooldown_seconds`, or until a probe succeeds).
    #[schema(example = "available")]
    pub state: &'static str,
    /// Since when (the last change of the credential when it never left `available`).
    pub since: DateTime<Utc>,
    /// The error that put it in its state (kept once it recovered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
}

impl CredentialView {
    fn of(c: &Credential, record: Option<&CredentialRecord>, now_ms: u64) -> Self {
        let health = record.map(|r| r.health(now_ms));
        let since = health
            .as_ref()
            .and_then(|h| h.since_ms)
            .map_or(c.updated_at, at_ms);
        let health = CredentialHealth {
            state: health.as_ref().map_or("available", |h| h.state.as_str()),
            since,
            last_error: health
                .as_ref()
                .and_then(|h| h.last_error.as_ref())
                .map(LastError::from),
        };
        CredentialView {
            id: c.id,
            provider: c.provider.clone(),
            name: c.name.clone(),
            quota_cooldown_seconds: c.quota_cooldown_seconds,
            config: c.masked_config(),
            health,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// The views of `credentials` of `workspace`, each with its health.
async fn views(
    state: &AppState,
    workspace: WorkspaceId,
    credentials: &[Credential],
) -> Vec<CredentialView> {
    let ids: Vec<uuid::Uuid> = credentials.iter().map(|c| c.id.uuid()).collect();
    let engine = state.engine();
    let records = engine.state().credentials(workspace.uuid(), &ids).await;
    let now_ms = engine.clock().now_ms();
    credentials
        .iter()
        .map(|c| {
            let record = records
                .iter()
                .find(|(id, _)| *id == c.id.uuid())
                .map(|(_, r)| r);
            CredentialView::of(c, record, now_ms)
        })
        .collect()
}

/// The view of one credential of `workspace`.
async fn view(state: &AppState, workspace: WorkspaceId, credential: &Credential) -> CredentialView {
    let mut all = views(state, workspace, std::slice::from_ref(credential)).await;
    match all.pop() {
        Some(v) => v,
        None => CredentialView::of(credential, None, 0),
    }
}

/// The result of calling the provider with the credential.
#[derive(Serialize, ToSchema)]
pub struct ValidationResult {
    /// True only when the provider answered 2xx.
    pub valid: bool,
    /// Why not: `unauthorized`, `forbidden`, `rate_limited`, `unreachable`, `timeout`,
    /// `blocked_address` or `upstream_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// The workspace's credentials (secrets masked).
#[utoipa::path(get, path = "/workspaces/{ws}/credentials", tag = "credentials", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ListQuery), responses(
    (status = 200, body = List<CredentialView>),
    Authed, Scoped, Paged,
))]
pub async fn list_credentials(
    State(state): State<AppState>,
    member: Member,
    query: ListQuery,
) -> ApiResult<Json<List<CredentialView>>> {
    let page = credentials::list(
        state.db(),
        state.keyring(),
        member.workspace.id,
        query.page()?,
    )
    .await?;
    let next = List::from(page);
    Ok(Json(List {
        data: views(&state, member.workspace.id, &next.data).await,
        next_cursor: next.next_cursor,
    }))
}

/// Store a credential (owners and admins). Secret fields are encrypted before they are written.
#[utoipa::path(post, path = "/workspaces/{ws}/credentials", tag = "credentials", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id")), request_body = NewCredential, responses(
    (status = 201, body = CredentialView),
    (status = 409, body = ErrorBody, description = "credential_exists"),
    (status = 422, body = ErrorBody, description = "validation_failed (unknown provider, missing, unknown or mistyped field, quota_cooldown_seconds out of range)"),
    Authed, Scoped, Managers, Body,
))]
pub async fn create_credential(
    State(state): State<AppState>,
    member: Member<Manager>,
    ApiJson(body): ApiJson<NewCredential>,
) -> ApiResult<(StatusCode, Json<CredentialView>)> {
    let mut errors = FieldErrors::default();
    let name = errors.name("name", &body.name, 100);
    let quota_cooldown_seconds = body
        .quota_cooldown_seconds
        .unwrap_or(DEFAULT_QUOTA_COOLDOWN_SECONDS);
    errors.range(
        "quota_cooldown_seconds",
        quota_cooldown_seconds,
        QUOTA_COOLDOWN_SECONDS,
    );
    let provider = providers::find(&body.provider);
    if provider.is_none() {
        errors.add("provider", "unknown provider (see GET /api/v1/providers)");
    }
    let config = provider.map(|p| providers::validate_new(p, &body.config));
    if let Some(Err(problems)) = &config {
        for (field, problem) in problems {
            errors.add(field, problem.clone());
        }
    }
    errors.finish()?;
    let (Some(provider), Some(Ok(config))) = (provider, config) else {
        return Err(ApiError::internal());
    };
    let created = credentials::create(
        state.db(),
        state.keyring(),
        member.workspace.id,
        member.user.id,
        CredentialInput {
            provider: provider.id,
            name: &name,
            quota_cooldown_seconds,
            config,
        },
    )
    .await?;
    state.committed(member.workspace.id).await;
    let view = view(&state, member.workspace.id, &created).await;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One credential (secrets masked). 500 `credential_unreadable` if its secrets cannot be decrypted.
#[utoipa::path(get, path = "/workspaces/{ws}/credentials/{id}", tag = "credentials", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "credential id")), responses(
    (status = 200, body = CredentialView),
    (status = 500, body = ErrorBody, description = "credential_unreadable"),
    Authed, Scoped,
))]
pub async fn get_credential(
    State(state): State<AppState>,
    member: Member,
    PathId(id): PathId<CredentialId>,
) -> ApiResult<Json<CredentialView>> {
    let c = credentials::get(state.db(), state.keyring(), member.workspace.id, id).await?;
    if !c.readable {
        return Err(rotor_storage::Error::Unreadable.into());
    }
    Ok(Json(view(&state, member.workspace.id, &c).await))
}

/// Change a credential's name, quota cooldown or config (owners and admins).
#[utoipa::path(patch, path = "/workspaces/{ws}/credentials/{id}", tag = "credentials", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "credential id")),
    request_body = CredentialUpdate, responses(
    (status = 200, body = CredentialView),
    (status = 409, body = ErrorBody, description = "credential_exists"),
    (status = 422, body = ErrorBody, description = "validation_failed or secret_required"),
    (status = 500, body = ErrorBody, description = "credential_unreadable"),
    Authed, Scoped, Managers, Body,
))]
pub async fn update_credential(
    State(state): State<AppState>,
    member: Member<Manager>,
    TargetJson { id, body }: TargetJson<CredentialId, CredentialUpdate>,
) -> ApiResult<Json<CredentialView>> {
    let mut errors = FieldErrors::default();
    let name = body.name.as_deref().map(|n| errors.name("name", n, 100));
    if let Some(seconds) = body.quota_cooldown_seconds {
        errors.range("quota_cooldown_seconds", seconds, QUOTA_COOLDOWN_SECONDS);
    }
    errors.finish()?;
    let patch = CredentialPatch {
        name: name.as_deref(),
        quota_cooldown_seconds: body.quota_cooldown_seconds,
        config: body.config.as_ref(),
    };
    let updated = credentials::update(
        state.db(),
        state.keyring(),
        member.workspace.id,
        id,
        member.user.id,
        patch,
    )
    .await?;
    state.committed(member.workspace.id).await;
    if body.config.is_some() {
        // A changed key is a new chance: the credential returns to every pool.
        let (ws, id) = (member.workspace.id.uuid(), updated.id.uuid());
        let actor = Some(member.user.id);
        lifecycle::recover(&state, ws, id, actor, Recovery::Changed).await;
    }
    Ok(Json(view(&state, member.workspace.id, &updated).await))
}

/// Delete a credential (owners and admins): refused while a model uses it as its default.
#[utoipa::path(delete, path = "/workspaces/{ws}/credentials/{id}", tag = "credentials", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "credential id")), responses(
    (status = 204, description = "deleted"),
    (status = 409, body = ErrorBody, description = "credential_in_use (details.models names them)"),
    Authed, Scoped, Managers,
))]
pub async fn delete_credential(
    State(state): State<AppState>,
    member: Member<Manager>,
    PathId(id): PathId<CredentialId>,
) -> ApiResult<StatusCode> {
    credentials::delete(state.db(), member.workspace.id, id, member.user.id).await?;
    state.committed(member.workspace.id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Call the provider with the credential (`GET {base_url}/models`, 10 s timeout) and say
/// whether it works. The provider's answer body is never returned.
#[utoipa::path(post, path = "/workspaces/{ws}/credentials/{id}/validate", tag = "credentials", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "credential id")), responses(
    (status = 200, body = ValidationResult),
    (status = 500, body = ErrorBody, description = "credential_unreadable"),
    Authed, Scoped, Managers,
))]
pub async fn validate_credential(
    State(state): State<AppState>,
    member: Member<Manager>,
    PathId(id): PathId<CredentialId>,
) -> ApiResult<Json<ValidationResult>> {
    let c = credentials::get(state.db(), state.keyring(), member.workspace.id, id).await?;
    let target = crate::targets::target(&c)
        .ok_or_else(|| ApiError::from(rotor_storage::Error::Unreadable))?;
    let outcome = state.upstream().validate(&target, VALIDATE_TIMEOUT).await;
    tracing::info!(credential_id = %id, outcome = outcome.code().unwrap_or("valid"), "credential validated");
    if outcome == Validation::Valid {
        let (ws, actor) = (member.workspace.id.uuid(), Some(member.user.id));
        lifecycle::recover(&state, ws, id.uuid(), actor, Recovery::Validated).await;
    }
    Ok(Json(ValidationResult {
        valid: outcome == Validation::Valid,
        error: outcome.code(),
    }))
}
