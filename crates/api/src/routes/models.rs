//! Models: the names clients call, mapped to a provider model and a default credential.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, FieldErrors, List, ListQuery, Manager, Member, PathId, TargetJson};
use crate::responses::{Authed, Body, Invalid, Managers, Paged, Scoped};
use crate::routes::load_balancing::summary;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use rotor_storage::models::{self, Model, ModelChange, ModelType, NewModel, Prices};
use rotor_storage::providers;
use rotor_storage::{CredentialId, ModelId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/workspaces/{ws}/models*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_models, create_model))
        .routes(routes!(get_model, update_model, delete_model))
}

/// A model to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewModelRequest {
    /// Provider id.
    #[schema(example = "openai")]
    pub provider: String,
    /// What clients send in `model`; unique in the workspace.
    #[schema(example = "gpt-4o", min_length = 1, max_length = 200)]
    pub name: String,
    /// The provider's model name (defaults to `name`).
    pub upstream_model: Option<String>,
    /// `llm` or `text-embedding`.
    pub model_type: ModelType,
    /// The default credential: same workspace and provider.
    pub credential_id: CredentialId,
    /// Price of a million input tokens (cached ones too), US dollars: 0 to 100000.
    #[schema(example = 2.5, minimum = 0, maximum = 100000)]
    pub input_usd_per_mtok: Option<f64>,
    /// Price of a million output tokens, US dollars: 0 to 100000.
    #[schema(example = 10, minimum = 0, maximum = 100000)]
    pub output_usd_per_mtok: Option<f64>,
}

/// Highest price per million tokens a model may carry (a guard against typos, not a market view).
const MAX_PRICE: f64 = 100_000.0;

/// 422 for a price out of bounds.
fn check_price(errors: &mut FieldErrors, field: &str, price: Option<f64>) {
    if price.is_some_and(|p| !(0.0..=MAX_PRICE).contains(&p)) {
        errors.add(field, "must be a number from 0 to 100000");
    }
}

/// Changes to a model.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelUpdate {
    /// New default credential (same workspace and provider).
    pub credential_id: Option<CredentialId>,
    /// New upstream model name.
    pub upstream_model: Option<String>,
    /// New input price per million tokens, US dollars (`null` removes it).
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100000)]
    pub input_usd_per_mtok: Option<Option<f64>>,
    /// New output price per million tokens, US dollars (`null` removes it).
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100000)]
    pub output_usd_per_mtok: Option<Option<f64>>,
}

/// Whether the model balances across a pool.
#[derive(Serialize, ToSchema)]
pub struct LoadBalancingSummary {
    /// The pool is switched on.
    pub enabled: bool,
    /// The pool is actually used (switched on, feature available, two distinct credentials).
    pub effective: bool,
}

/// A model.
#[derive(Serialize, ToSchema)]
pub struct ModelView {
    /// Model id.
    pub id: ModelId,
    /// Provider id.
    pub provider: String,
    /// Name clients use.
    pub name: String,
    /// Name sent upstream.
    pub upstream_model: String,
    /// Kind of model.
    pub model_type: ModelType,
    /// Default credential.
    pub credential_id: CredentialId,
    /// Load-balancing state (the "special icon").
    pub load_balancing: LoadBalancingSummary,
    /// Price of a million input tokens (cached ones too), US dollars; null when unpriced.
    pub input_usd_per_mtok: Option<f64>,
    /// Price of a million output tokens, US dollars; null when unpriced.
    pub output_usd_per_mtok: Option<f64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

fn view(m: Model, load_balancing: LoadBalancingSummary) -> ModelView {
    ModelView {
        id: m.id,
        provider: m.provider,
        name: m.name,
        upstream_model: m.upstream_model,
        model_type: m.model_type,
        credential_id: m.credential_id,
        load_balancing,
        input_usd_per_mtok: m.input_usd_per_mtok,
        output_usd_per_mtok: m.output_usd_per_mtok,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

async fn with_summary(
    state: &AppState,
    ws: &rotor_storage::MemberWorkspace,
    m: Model,
) -> ApiResult<ModelView> {
    let config = rotor_storage::load_balancing::get(state.db(), ws.id, m.id).await?;
    Ok(view(m, summary(state, ws.plan, Some(&config))))
}

fn model_name(errors: &mut FieldErrors, field: &str, value: &str) -> String {
    let v = errors.name(field, value, 200);
    if v.chars().any(char::is_whitespace) {
        errors.add(field, "must not contain whitespace");
    }
    v
}

/// The workspace's models.
#[utoipa::path(get, path = "/workspaces/{ws}/models", tag = "models", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ListQuery), responses(
    (status = 200, body = List<ModelView>),
    Authed, Scoped, Paged,
))]
pub async fn list_models(
    State(state): State<AppState>,
    member: Member,
    query: ListQuery,
) -> ApiResult<Json<List<ModelView>>> {
    let page = models::list(state.db(), member.workspace.id, query.page()?).await?;
    let ids: Vec<ModelId> = page.data.iter().map(|m| m.id).collect();
    let configs =
        rotor_storage::load_balancing::get_many(state.db(), member.workspace.id, &ids).await?;
    let list = List::from(page);
    let plan = member.workspace.plan;
    let data = list.data.into_iter().map(|m| {
        let lb = summary(&state, plan, configs.get(&m.id));
        view(m, lb)
    });
    Ok(Json(List {
        data: data.collect(),
        next_cursor: list.next_cursor,
    }))
}

/// Create a model (owners and admins).
#[utoipa::path(post, path = "/workspaces/{ws}/models", tag = "models", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id")), request_body = NewModelRequest, responses(
    (status = 201, body = ModelView),
    (status = 409, body = ErrorBody, description = "model_exists"),
    (status = 422, body = ErrorBody, description = "validation_failed (unknown provider, credential of another workspace or provider)"),
    Authed, Scoped, Managers, Body,
))]
pub async fn create_model(
    State(state): State<AppState>,
    member: Member<Manager>,
    ApiJson(body): ApiJson<NewModelRequest>,
) -> ApiResult<(StatusCode, Json<ModelView>)> {
    let mut errors = FieldErrors::default();
    let name = model_name(&mut errors, "name", &body.name);
    let upstream = match &body.upstream_model {
        Some(u) => model_name(&mut errors, "upstream_model", u),
        None => name.clone(),
    };
    if providers::find(&body.provider).is_none() {
        errors.add("provider", "unknown provider (see GET /api/v1/providers)");
    }
    check_price(&mut errors, "input_usd_per_mtok", body.input_usd_per_mtok);
    check_price(&mut errors, "output_usd_per_mtok", body.output_usd_per_mtok);
    errors.finish()?;
    let new = NewModel {
        provider: &body.provider,
        name: &name,
        upstream_model: &upstream,
        model_type: body.model_type,
        credential_id: body.credential_id,
        prices: Prices {
            input_usd_per_mtok: body.input_usd_per_mtok,
            output_usd_per_mtok: body.output_usd_per_mtok,
        },
    };
    let model = models::create(state.db(), member.workspace.id, member.user.id, new).await?;
    state.committed(member.workspace.id).await;
    let lb = LoadBalancingSummary {
        enabled: false,
        effective: false,
    };
    Ok((StatusCode::CREATED, Json(view(model, lb))))
}

/// One model.
#[utoipa::path(get, path = "/workspaces/{ws}/models/{id}", tag = "models", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "model id")), responses(
    (status = 200, body = ModelView),
    Authed, Scoped,
))]
pub async fn get_model(
    State(state): State<AppState>,
    member: Member,
    PathId(id): PathId<ModelId>,
) -> ApiResult<Json<ModelView>> {
    let model = models::get(state.db(), member.workspace.id, id).await?;
    Ok(Json(with_summary(&state, &member.workspace, model).await?))
}

/// Change a model's default credential, upstream name or prices (owners and admins).
#[utoipa::path(patch, path = "/workspaces/{ws}/models/{id}", tag = "models", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "model id")),
    request_body = ModelUpdate, responses(
    (status = 200, body = ModelView),
    Authed, Scoped, Managers, Body, Invalid,
))]
pub async fn update_model(
    State(state): State<AppState>,
    member: Member<Manager>,
    TargetJson { id, body }: TargetJson<ModelId, ModelUpdate>,
) -> ApiResult<Json<ModelView>> {
    let mut errors = FieldErrors::default();
    let upstream = body
        .upstream_model
        .as_deref()
        .map(|u| model_name(&mut errors, "upstream_model", u));
    check_price(
        &mut errors,
        "input_usd_per_mtok",
        body.input_usd_per_mtok.flatten(),
    );
    check_price(
        &mut errors,
        "output_usd_per_mtok",
        body.output_usd_per_mtok.flatten(),
    );
    errors.finish()?;
    let change = ModelChange {
        credential_id: body.credential_id,
        upstream_model: upstream.as_deref(),
        input_usd_per_mtok: body.input_usd_per_mtok,
        output_usd_per_mtok: body.output_usd_per_mtok,
    };
    let model = models::update(state.db(), member.workspace.id, id, member.user.id, change).await?;
    state.committed(member.workspace.id).await;
    Ok(Json(with_summary(&state, &member.workspace, model).await?))
}

/// Delete a model and its load-balancing pool (owners and admins).
#[utoipa::path(delete, path = "/workspaces/{ws}/models/{id}", tag = "models", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "model id")), responses(
    (status = 204, description = "deleted"),
    Authed, Scoped, Managers,
))]
pub async fn delete_model(
    State(state): State<AppState>,
    member: Member<Manager>,
    PathId(id): PathId<ModelId>,
) -> ApiResult<StatusCode> {
    models::delete(state.db(), member.workspace.id, id, member.user.id).await?;
    state.committed(member.workspace.id).await;
    Ok(StatusCode::NO_CONTENT)
}
