//! Workspace API keys for the gateway: shown once at creation, stored as SHA-256, revocable,
//! each with its own rate limits and monthly budgets and what it used this month.

use crate::error::ApiResult;
use crate::extract::{present, ApiJson, FieldErrors, List, ListQuery, Manager, Member, PathId};
use crate::responses::{Authed, Body, Invalid, Managers, Paged, Scoped};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use rotor_storage::api_keys::{KeyUpdate, NewApiKey};
use rotor_storage::usage::MonthUsage;
use rotor_storage::{ApiKey, ApiKeyId, KeyLimits, WorkspaceId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/workspaces/{ws}/api-keys*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(get_key, update_key, revoke_key))
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
    /// Requests per UTC minute, 1–1,000,000 (omit for none).
    #[schema(minimum = 1, maximum = 1000000)]
    pub rpm: Option<i32>,
    /// Input plus output tokens per UTC minute, 1–1,000,000,000 (omit for none).
    #[schema(minimum = 1, maximum = 1000000000)]
    pub tpm: Option<i64>,
    /// Input plus output tokens per UTC month, 1–10^15 (omit for none).
    #[schema(minimum = 1, maximum = 1000000000000000_i64)]
    pub monthly_token_budget: Option<i64>,
    /// US dollars per UTC month at the models' prices, 0.01–1,000,000,000 (omit for none).
    #[schema(minimum = 0.01, maximum = 1000000000)]
    pub monthly_budget_usd: Option<f64>,
}

/// Changes to a key: an absent field is kept, `null` removes a limit, a list or an expiry.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyChanges {
    /// New name.
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Model names the key may call (`null`: all of the workspace's models).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_models: Option<Option<Vec<String>>>,
    /// Expiry (RFC 3339, in the future; `null`: never).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// Requests per UTC minute, 1–1,000,000 (`null`: none).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 1000000)]
    pub rpm: Option<Option<i32>>,
    /// Tokens per UTC minute, 1–1,000,000,000 (`null`: none).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1000000000)]
    pub tpm: Option<Option<i64>>,
    /// Tokens per UTC month, 1–10^15 (`null`: none).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1000000000000000_i64)]
    pub monthly_token_budget: Option<Option<i64>>,
    /// US dollars per UTC month, 0.01–1,000,000,000 (`null`: none).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, minimum = 0.01, maximum = 1000000000)]
    pub monthly_budget_usd: Option<Option<f64>>,
}

/// A key as listed, with what it used this UTC month (written every few seconds).
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    /// The stored key.
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// Its usage since the start of the month (UTC).
    pub usage_this_month: MonthUsage,
}

/// A created key; `key` appears only in this answer.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The stored key's listing.
    #[serde(flatten)]
    pub api_key: KeyView,
    /// The key (`rk-…`), for `Authorization: Bearer …` on `/v1`. Not retrievable later.
    pub key: String,
}

/// 422s for limits out of their bounds.
fn check_limits(errors: &mut FieldErrors, l: &KeyLimits) {
    if let Some(v) = l.rpm {
        errors.range("rpm", v, 1..=1_000_000);
    }
    if let Some(v) = l.tpm {
        errors.range("tpm", v, 1..=1_000_000_000);
    }
    if let Some(v) = l.monthly_token_budget {
        errors.range("monthly_token_budget", v, 1..=1_000_000_000_000_000);
    }
    if let Some(v) = l.monthly_budget_usd {
        if !(0.01..=1e9).contains(&v) {
            errors.add(
                "monthly_budget_usd",
                "must be a number from 0.01 to 1000000000",
            );
        }
    }
}

/// The checked, sorted and deduplicated list of allowed models.
fn allowed_models(errors: &mut FieldErrors, models: Vec<String>) -> Vec<String> {
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
}

fn check_expiry(errors: &mut FieldErrors, at: Option<DateTime<Utc>>) {
    if at.is_some_and(|t| t <= Utc::now()) {
        errors.add("expires_at", "must be in the future");
    }
}

/// The month's usage of `keys` of `workspace` (zero for keys that used nothing).
async fn month_usage(
    state: &AppState,
    workspace: WorkspaceId,
    keys: &[ApiKeyId],
) -> ApiResult<HashMap<ApiKeyId, MonthUsage>> {
    let pairs: Vec<_> = keys.iter().map(|k| (workspace, *k)).collect();
    let month = crate::ledger::month_of(Utc::now().timestamp().div_euclid(60));
    let since = crate::ledger::month_start(month);
    let used = rotor_storage::usage::since(state.db(), &pairs, since).await?;
    Ok(used.into_iter().collect())
}

async fn view(state: &AppState, workspace: WorkspaceId, api_key: ApiKey) -> ApiResult<KeyView> {
    let mut used = month_usage(state, workspace, &[api_key.id]).await?;
    let usage_this_month = used.remove(&api_key.id).unwrap_or_default();
    Ok(KeyView {
        api_key,
        usage_this_month,
    })
}

/// The workspace's API keys (never their secrets), with their usage this month.
#[utoipa::path(get, path = "/workspaces/{ws}/api-keys", tag = "api-keys", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ListQuery), responses(
    (status = 200, body = List<KeyView>),
    Authed, Scoped, Paged,
))]
pub async fn list_keys(
    State(state): State<AppState>,
    member: Member,
    query: ListQuery,
) -> ApiResult<Json<List<KeyView>>> {
    let ws = member.workspace.id;
    let page: List<ApiKey> = rotor_storage::api_keys::list(state.db(), ws, query.page()?)
        .await?
        .into();
    let ids: Vec<ApiKeyId> = page.data.iter().map(|k| k.id).collect();
    let mut used = month_usage(&state, ws, &ids).await?;
    Ok(Json(List {
        data: page
            .data
            .into_iter()
            .map(|api_key| KeyView {
                usage_this_month: used.remove(&api_key.id).unwrap_or_default(),
                api_key,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One API key, with its usage this month.
#[utoipa::path(get, path = "/workspaces/{ws}/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "key id")), responses(
    (status = 200, body = KeyView),
    Authed, Scoped,
))]
pub async fn get_key(
    State(state): State<AppState>,
    member: Member,
    PathId(id): PathId<ApiKeyId>,
) -> ApiResult<Json<KeyView>> {
    let ws = member.workspace.id;
    let api_key = rotor_storage::api_keys::get(state.db(), ws, id).await?;
    Ok(Json(view(&state, ws, api_key).await?))
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
    check_expiry(&mut errors, body.expires_at);
    let limits = KeyLimits {
        rpm: body.rpm,
        tpm: body.tpm,
        monthly_token_budget: body.monthly_token_budget,
        monthly_budget_usd: body.monthly_budget_usd,
    };
    check_limits(&mut errors, &limits);
    let allowed_models = body.allowed_models.map(|m| allowed_models(&mut errors, m));
    errors.finish()?;
    let secret = crate::auth::new_secret("rk-");
    let key = NewApiKey {
        name: &name,
        prefix: &secret.prefix,
        hash: &secret.hash,
        allowed_models: allowed_models.as_deref(),
        expires_at: body.expires_at,
        limits,
    };
    let api_key =
        rotor_storage::api_keys::create(state.db(), member.workspace.id, member.user.id, key)
            .await?;
    state.committed(member.workspace.id).await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            api_key: KeyView {
                api_key,
                usage_this_month: MonthUsage::default(),
            },
            key: secret.value,
        }),
    ))
}

/// Change an API key's name, allowed models, expiry or limits (owners and admins); every
/// replica applies the change to the key's next request.
#[utoipa::path(patch, path = "/workspaces/{ws}/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "key id")),
    request_body = KeyChanges, responses(
    (status = 200, body = KeyView),
    Authed, Scoped, Managers, Body, Invalid,
))]
pub async fn update_key(
    State(state): State<AppState>,
    member: Member<Manager>,
    PathId(id): PathId<ApiKeyId>,
    ApiJson(body): ApiJson<KeyChanges>,
) -> ApiResult<Json<KeyView>> {
    let mut errors = FieldErrors::default();
    let name = body.name.as_deref().map(|n| errors.name("name", n, 100));
    if let Some(at) = body.expires_at {
        check_expiry(&mut errors, at);
    }
    let models = body
        .allowed_models
        .map(|m| m.map(|m| allowed_models(&mut errors, m)));
    let set = KeyLimits {
        rpm: body.rpm.flatten(),
        tpm: body.tpm.flatten(),
        monthly_token_budget: body.monthly_token_budget.flatten(),
        monthly_budget_usd: body.monthly_budget_usd.flatten(),
    };
    check_limits(&mut errors, &set);
    errors.finish()?;
    let ws = member.workspace.id;
    let api_key = rotor_storage::api_keys::update(state.db(), ws, id, member.user.id, |old| {
        let l = old.limits;
        Ok(KeyUpdate {
            name: name.unwrap_or_else(|| old.name.clone()),
            allowed_models: models.unwrap_or_else(|| old.allowed_models.clone()),
            expires_at: body.expires_at.unwrap_or(old.expires_at),
            limits: KeyLimits {
                rpm: body.rpm.unwrap_or(l.rpm),
                tpm: body.tpm.unwrap_or(l.tpm),
                monthly_token_budget: body.monthly_token_budget.unwrap_or(l.monthly_token_budget),
                monthly_budget_usd: body.monthly_budget_usd.unwrap_or(l.monthly_budget_usd),
            },
        })
    })
    .await?;
    state.committed(ws).await;
    Ok(Json(view(&state, ws, api_key).await?))
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
