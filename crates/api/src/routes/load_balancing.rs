//! A model's load-balancing pool: read with an `ETag`, replace (PUT) or toggle/tune (PATCH)
//! with optional `If-Match`, and clear cooldowns. Switching off keeps every entry; any write
//! that leaves the pool enabled needs the `load_balancing` feature. The lifecycle settings
//! (`max_wait_ms`, `affinity`, `affinity_ttl_seconds`, entries' `rpm` and `tpm`) are stored
//! and shown here with each entry's live status (§14).

use crate::error::ApiResult;
use crate::extract::{IfMatch, Manager, Member, PathId, TargetJson};
use crate::responses::{Authed, Body, Managers, PoolWrite, Scoped};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rotor_dispatch::lifecycle::{self, CredentialRecord, EntryRecord, Limits};
use rotor_dispatch::state::{PoolKey, StateBackend};
use rotor_storage::load_balancing::{self as lb, Config, EntryInput, Write};

use rotor_storage::{Affinity, CredentialId, EntryId, ModelId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/workspaces/{ws}/models/{id}/load-balancing*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_config, put_config, patch_config))
        .routes(routes!(clear_cooldowns))
}

/// Live state of an entry (§14), the same on every replica.
#[derive(Serialize, ToSchema)]
pub struct EntryStatus {
    /// `available`, `cooling_down`, `at_capacity`, `quota_exhausted` (its credential's quota
    /// or credit is spent: every model) or `rejected` (the provider refuses its credential:
    /// out of every pool until the credential is changed, validated or probed back).
    #[schema(example = "available")]
    pub state: &'static str,
    /// With `cooling_down`: `rate_limited` or `transient` (server errors, timeouts: tried
    /// again by one half-open trial, then with a doubling backoff).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Seconds until the entry serves again by itself (0 when it serves, or never by itself).
    pub cooldown_remaining_s: u64,
    /// The latest upstream error of the entry or its credential (kept after it recovers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// Requests this minute (entries with `rpm` or `tpm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpm_used: Option<u32>,
    /// Tokens this minute (entries with `rpm` or `tpm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm_used: Option<u64>,
}

/// The last upstream error an entry or credential got.
#[derive(Serialize, ToSchema)]
pub struct LastError {
    /// The upstream HTTP status (null for connect errors, timeouts and broken streams).
    pub status: Option<u16>,
    /// The upstream's error code when its body has one (`insufficient_quota`,
    /// `rate_limit_exceeded`), else null.
    pub code: Option<String>,
    /// When it happened.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl From<&lifecycle::LastError> for LastError {
    fn from(e: &lifecycle::LastError) -> Self {
        Self {
            status: e.status,
            code: e.code.clone(),
            at: at_ms(e.at_ms),
        }
    }
}

/// A time in ms since the epoch.
pub fn at_ms(ms: u64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)).unwrap_or_default()
}

impl From<lifecycle::EntryStatus> for EntryStatus {
    fn from(s: lifecycle::EntryStatus) -> Self {
        Self {
            state: s.state.as_str(),
            reason: s.reason.map(lifecycle::CoolReason::as_str),
            cooldown_remaining_s: s.cooldown_remaining_s,
            last_error: s.last_error.as_ref().map(LastError::from),
            rpm_used: s.rpm_used,
            tpm_used: s.tpm_used,
        }
    }
}

/// One entry of the pool.
#[derive(Serialize, ToSchema)]
pub struct EntryView {
    /// Entry id (stable across toggles; send it back in a PUT to keep it).
    pub id: EntryId,
    /// The credential, or null for the Default Config (the model's current default credential).
    pub credential_id: Option<CredentialId>,
    /// The credential's name, or "Default Config".
    pub credential_name: String,
    /// Whether the entry takes part in the rotation.
    pub enabled: bool,
    /// Relative share of the traffic, 1..=100.
    pub weight: i32,
    /// The model's name at this entry's provider, when it differs from the model's
    /// `upstream_model`; null: the model's.
    pub upstream_model: Option<String>,
    /// Requests per minute this entry may take (1..=1000000); null: no limit.
    pub rpm: Option<i32>,
    /// Tokens per minute this entry may take (1..=1000000000); null: no limit.
    pub tpm: Option<i64>,
    /// Live state.
    pub status: EntryStatus,
}

/// A model's load-balancing configuration.
#[derive(Serialize, ToSchema)]
pub struct LoadBalancingView {
    /// Switched on.
    pub enabled: bool,
    /// Actually used: enabled, the workspace has the feature, and two distinct credentials.
    pub effective: bool,
    /// Why not effective: `disabled`, `feature_not_available` or `not_enough_entries`.
    pub reason: Option<&'static str>,
    /// Seconds a rate-limited credential leaves the rotation (1..=3600).
    pub cooldown_seconds: i32,
    /// Most distinct credentials tried per request (1..=10).
    pub max_attempts: i32,
    /// Milliseconds a request may wait for a credential to come back instead of a 429 (0..=60000).
    pub max_wait_ms: i32,
    /// `none`, or `session`: requests with the same affinity key stick to one credential.
    pub affinity: Affinity,
    /// Seconds a sticky credential is kept after its last use (30..=86400).
    pub affinity_ttl_seconds: i32,
    /// Bumps on every write; also the `ETag`.
    pub version: i64,
    /// Ordered entries.
    pub entries: Vec<EntryView>,
}

/// An entry to store.
#[derive(Deserialize, ToSchema)]
pub struct EntryInputBody {
    /// Keep an existing entry's id (optional).
    pub id: Option<EntryId>,
    /// A credential of a provider of the model's API family in this workspace (an Azure
    /// deployment may serve an OpenAI model), or null for the Default Config.
    pub credential_id: Option<CredentialId>,
    /// Takes part in the rotation (default true).
    pub enabled: Option<bool>,
    /// Relative share, 1..=100 (default 1).
    pub weight: Option<i32>,
    /// The model's name at this entry's provider, 1 to 200 characters without whitespace
    /// (default: the model's `upstream_model`).
    pub upstream_model: Option<String>,
    /// Requests per minute, 1..=1000000; omitted or null: no limit.
    #[schema(minimum = 1, maximum = 1000000)]
    pub rpm: Option<i32>,
    /// Tokens per minute, 1..=1000000000; omitted or null: no limit.
    #[schema(minimum = 1, maximum = 1000000000)]
    pub tpm: Option<i64>,
}

/// The whole configuration (a GET body may be sent back as is).
#[derive(Deserialize, ToSchema)]
pub struct PutBody {
    /// Switch the pool on or off.
    pub enabled: bool,
    /// 1..=3600; omitted keeps the stored value (60 by default).
    pub cooldown_seconds: Option<i32>,
    /// 1..=10; omitted keeps the stored value (3 by default).
    pub max_attempts: Option<i32>,
    /// 0..=60000; omitted keeps the stored value (0 by default: never wait).
    #[schema(minimum = 0, maximum = 60000)]
    pub max_wait_ms: Option<i32>,
    /// `none` or `session`; omitted keeps the stored value (`none` by default).
    pub affinity: Option<Affinity>,
    /// 30..=86400; omitted keeps the stored value (300 by default).
    #[schema(minimum = 30, maximum = 86400)]
    pub affinity_ttl_seconds: Option<i32>,
    /// The entries, in order; they replace the stored ones.
    pub entries: Vec<EntryInputBody>,
}

/// A toggle or tuning that leaves the entries alone.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    /// Switch the pool on or off.
    pub enabled: Option<bool>,
    /// 1..=3600.
    pub cooldown_seconds: Option<i32>,
    /// 1..=10.
    pub max_attempts: Option<i32>,
    /// 0..=60000.
    #[schema(minimum = 0, maximum = 60000)]
    pub max_wait_ms: Option<i32>,
    /// `none` or `session`.
    pub affinity: Option<Affinity>,
    /// 30..=86400.
    #[schema(minimum = 30, maximum = 86400)]
    pub affinity_ttl_seconds: Option<i32>,
}

async fn view(state: &AppState, member: &Member<impl Sized>, c: Config) -> Response {
    let pool = PoolKey {
        workspace: member.workspace.id.uuid(),
        model: c.model_id.uuid(),
    };
    let default_credential = c.default_credential;
    let credentials = pool_credentials(&c);
    let dispatch = state.engine().state();
    let book = dispatch.book(pool).await;
    let records = dispatch.credentials(pool.workspace, &credentials).await;
    let now_ms = state.engine().clock().now_ms();
    let none_entry = EntryRecord::default();
    let none_credential = CredentialRecord::default();
    let feature = state.has_load_balancing(member.workspace.plan);
    let reason = c.reason(feature);
    let version = c.version;
    let body = LoadBalancingView {
        enabled: c.enabled,
        effective: reason.is_none(),
        reason,
        cooldown_seconds: c.cooldown_seconds,
        max_attempts: c.max_attempts,
        max_wait_ms: c.max_wait_ms,
        affinity: c.affinity,
        affinity_ttl_seconds: c.affinity_ttl_seconds,
        version: c.version,
        entries: c
            .entries
            .into_iter()
            .map(|e| EntryView {
                id: e.id,
                credential_id: e.credential_id,
                credential_name: e.credential_name,
                enabled: e.enabled,
                weight: e.weight,
                upstream_model: e.upstream_model,
                rpm: e.rpm,
                tpm: e.tpm,
                status: {
                    let credential = e.credential_id.unwrap_or(default_credential).uuid();
                    let limits = Limits {
                        rpm: e.rpm.and_then(|r| u32::try_from(r).ok()),
                        tpm: e.tpm.and_then(|t| u64::try_from(t).ok()),
                    };
                    let record = records
                        .iter()
                        .find(|(id, _)| *id == credential)
                        .map_or(&none_credential, |(_, r)| r);
                    let entry = book.get(credential).unwrap_or(&none_entry);
                    lifecycle::EntryStatus::of(entry, record, limits, now_ms).into()
                },
            })
            .collect(),
    };
    let mut response = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// The model's pool with an `ETag: "<version>"` header.
#[utoipa::path(get, path = "/workspaces/{ws}/models/{id}/load-balancing", tag = "load-balancing", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "model id")), responses(
    (status = 200, body = LoadBalancingView, headers(("ETag" = String, description = "\"<version>\""))),
    Authed, Scoped,
))]
pub async fn get_config(
    State(state): State<AppState>,
    member: Member,
    PathId(id): PathId<ModelId>,
) -> ApiResult<Response> {
    let config = lb::get(state.db(), member.workspace.id, id).await?;
    Ok(view(&state, &member, config).await)
}

/// Replace the pool (owners and admins). Enabling needs the feature (403) and two distinct
/// enabled credentials (422 `not_enough_entries`); a stale `If-Match` is 412. A refused write
/// changes nothing.
#[utoipa::path(put, path = "/workspaces/{ws}/models/{id}/load-balancing", tag = "load-balancing", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "model id"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\" from the ETag")),
    request_body = PutBody, responses(
    (status = 200, body = LoadBalancingView, headers(("ETag" = String, description = "\"<version>\""))),
    Authed, Scoped, Body, PoolWrite,
))]
pub async fn put_config(
    State(state): State<AppState>,
    member: Member<Manager>,
    IfMatch(if_match): IfMatch,
    TargetJson { id, body }: TargetJson<ModelId, PutBody>,
) -> ApiResult<Response> {
    let entries = body
        .entries
        .into_iter()
        .map(|e| EntryInput {
            id: e.id,
            credential_id: e.credential_id,
            enabled: e.enabled.unwrap_or(true),
            weight: e.weight.unwrap_or(1),
            upstream_model: e.upstream_model,
            rpm: e.rpm,
            tpm: e.tpm,
        })
        .collect();
    let write = Write {
        enabled: Some(body.enabled),
        cooldown_seconds: body.cooldown_seconds,
        max_attempts: body.max_attempts,
        max_wait_ms: body.max_wait_ms,
        affinity: body.affinity,
        affinity_ttl_seconds: body.affinity_ttl_seconds,
        entries: Some(entries),
        if_match,
    };
    save(&state, &member, id, write).await
}

/// Toggle or tune the pool without touching its entries (owners and admins).
#[utoipa::path(patch, path = "/workspaces/{ws}/models/{id}/load-balancing", tag = "load-balancing", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "model id"),
        ("If-Match" = Option<String>, Header, description = "\"<version>\" from the ETag")),
    request_body = PatchBody, responses(
    (status = 200, body = LoadBalancingView, headers(("ETag" = String, description = "\"<version>\""))),
    Authed, Scoped, Body, PoolWrite,
))]
pub async fn patch_config(
    State(state): State<AppState>,
    member: Member<Manager>,
    IfMatch(if_match): IfMatch,
    TargetJson { id, body }: TargetJson<ModelId, PatchBody>,
) -> ApiResult<Response> {
    let write = Write {
        enabled: body.enabled,
        cooldown_seconds: body.cooldown_seconds,
        max_attempts: body.max_attempts,
        max_wait_ms: body.max_wait_ms,
        affinity: body.affinity,
        affinity_ttl_seconds: body.affinity_ttl_seconds,
        entries: None,
        if_match,
    };
    save(&state, &member, id, write).await
}

async fn save(
    state: &AppState,
    member: &Member<Manager>,
    model: ModelId,
    write: Write,
) -> ApiResult<Response> {
    let feature = state.has_load_balancing(member.workspace.plan);
    let config = lb::write(
        state.db(),
        member.workspace.id,
        model,
        member.user.id,
        write,
        feature,
    )
    .await?;
    state.committed(member.workspace.id).await;
    tracing::info!(model_id = %model, version = config.version, enabled = config.enabled, "load balancing updated");
    Ok(view(state, member, config).await)
}

/// Put every credential of the model back in the rotation (owners and admins): ends cooling
/// down, half-open backoff, at capacity, and the spent quota of the pool's credentials (an
/// admin who topped up credit); never `rejected` (change or validate the credential).
#[utoipa::path(delete, path = "/workspaces/{ws}/models/{id}/load-balancing/cooldowns", tag = "load-balancing", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), ("id" = Uuid, Path, description = "model id")), responses(
    (status = 204, description = "cleared"),
    Authed, Scoped, Managers,
))]
pub async fn clear_cooldowns(
    State(state): State<AppState>,
    member: Member<Manager>,
    PathId(id): PathId<ModelId>,
) -> ApiResult<StatusCode> {
    let config = lb::get(state.db(), member.workspace.id, id).await?;
    lb::record_cooldowns_cleared(state.db(), member.workspace.id, id, member.user.id).await?;
    let pool = PoolKey {
        workspace: member.workspace.id.uuid(),
        model: id.uuid(),
    };
    let engine = state.engine();
    let now_ms = engine.clock().now_ms();
    let recovered = engine
        .state()
        .reset(pool, &pool_credentials(&config), now_ms)
        .await;
    for credential in recovered {
        let actor = Some(member.user.id);
        let by = crate::lifecycle::Recovery::Reset;
        crate::lifecycle::recovered(&state, pool.workspace, credential, actor, by).await;
    }
    state.committed(member.workspace.id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Every credential the pool's entries and the model's default name, once each.
fn pool_credentials(c: &Config) -> Vec<uuid::Uuid> {
    let mut ids: Vec<uuid::Uuid> = c
        .entries
        .iter()
        .map(|e| e.credential_id.unwrap_or(c.default_credential).uuid())
        .chain([c.default_credential.uuid()])
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// `{enabled, effective}` of a model's config, for model answers.
pub fn summary(
    state: &AppState,
    plan: rotor_storage::Plan,
    c: Option<&Config>,
) -> crate::routes::models::LoadBalancingSummary {
    let feature = state.has_load_balancing(plan);
    match c {
        Some(c) => crate::routes::models::LoadBalancingSummary {
            enabled: c.enabled,
            effective: c.reason(feature).is_none(),
        },
        None => crate::routes::models::LoadBalancingSummary {
            enabled: false,
            effective: false,
        },
    }
}
