//! Models: what clients put in `model`, mapped to a provider's `upstream_model` and a
//! default credential of the same workspace and provider.

use crate::audit::{self, NewEvent};
use crate::ids::*;
use crate::page::{Keyed, Keyset, Page, Paged};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

/// What a model does (descriptive: shown in `/v1/models`; the endpoint a client calls decides
/// what is sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ModelType {
    /// Chat and text generation.
    #[serde(rename = "llm")]
    Llm,
    /// Embeddings.
    #[serde(rename = "text-embedding")]
    TextEmbedding,
    /// Reranking.
    #[serde(rename = "rerank")]
    Rerank,
    /// Speech to text (transcription, translation).
    #[serde(rename = "speech2text")]
    Speech2Text,
    /// Text to speech.
    #[serde(rename = "tts")]
    Tts,
    /// Moderation.
    #[serde(rename = "moderation")]
    Moderation,
    /// Image generation.
    #[serde(rename = "image")]
    Image,
}

impl ModelType {
    /// Every type, in the order the API documents them.
    pub const ALL: [ModelType; 7] = [
        ModelType::Llm,
        ModelType::TextEmbedding,
        ModelType::Rerank,
        ModelType::Speech2Text,
        ModelType::Tts,
        ModelType::Moderation,
        ModelType::Image,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelType::Llm => "llm",
            ModelType::TextEmbedding => "text-embedding",
            ModelType::Rerank => "rerank",
            ModelType::Speech2Text => "speech2text",
            ModelType::Tts => "tts",
            ModelType::Moderation => "moderation",
            ModelType::Image => "image",
        }
    }

    /// The type stored as `name` (a CHECK constraint keeps the column to these names;
    /// anything else reads as `llm`).
    pub fn from_stored(name: &str) -> ModelType {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .unwrap_or(ModelType::Llm)
    }
}

/// A stored model.
#[derive(Debug, Clone)]
pub struct Model {
    /// Model id.
    pub id: ModelId,
    /// Provider id.
    pub provider: String,
    /// Name clients send in `model` (unique in the workspace).
    pub name: String,
    /// Name sent upstream.
    pub upstream_model: String,
    /// Kind of model.
    pub model_type: ModelType,
    /// The default credential ("Default Config").
    pub credential_id: CredentialId,
    /// Price of a million input tokens (cached ones too), US dollars.
    pub input_usd_per_mtok: Option<f64>,
    /// Price of a million output tokens, US dollars.
    pub output_usd_per_mtok: Option<f64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Keyed for Model {
    fn key(&self) -> (DateTime<Utc>, Uuid) {
        (self.created_at, self.id.uuid())
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: ModelId,
    provider: String,
    name: String,
    upstream_model: String,
    model_type: String,
    credential_id: CredentialId,
    input_usd_per_mtok: Option<f64>,
    output_usd_per_mtok: Option<f64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Model {
    fn from(r: Row) -> Self {
        Model {
            id: r.id,
            provider: r.provider,
            name: r.name,
            upstream_model: r.upstream_model,
            model_type: ModelType::from_stored(&r.model_type),
            credential_id: r.credential_id,
            input_usd_per_mtok: r.input_usd_per_mtok,
            output_usd_per_mtok: r.output_usd_per_mtok,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "id, provider, name, upstream_model, model_type, credential_id, \
     input_usd_per_mtok::float8 AS input_usd_per_mtok, \
     output_usd_per_mtok::float8 AS output_usd_per_mtok, created_at, updated_at";

/// A price as PostgreSQL reads it into `numeric` exactly (the shortest decimal of the float).
fn price(p: Option<f64>) -> Option<String> {
    p.map(|p| p.to_string())
}

/// A model's optional prices, US dollars per million tokens (validated by the API).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Prices {
    /// Input tokens, cached ones too.
    pub input_usd_per_mtok: Option<f64>,
    /// Output tokens.
    pub output_usd_per_mtok: Option<f64>,
}

/// A model to create (validated by the API).
#[derive(Debug)]
pub struct NewModel<'a> {
    /// Provider id.
    pub provider: &'a str,
    /// Name.
    pub name: &'a str,
    /// Upstream name.
    pub upstream_model: &'a str,
    /// Kind.
    pub model_type: ModelType,
    /// Default credential.
    pub credential_id: CredentialId,
    /// Prices.
    pub prices: Prices,
}

/// 422 unless `credential` is a credential of `workspace` for `provider`.
async fn check_credential(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
    provider: &str,
    credential: CredentialId,
) -> Result<()> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT provider FROM credentials WHERE workspace_id = $1 AND id = $2")
            .bind(workspace)
            .bind(credential)
            .fetch_optional(&mut *conn)
            .await?;
    match found {
        None => Err(Error::field(
            "credential_id",
            "no such credential in this workspace",
        )),
        Some(p) if p != provider => Err(Error::field(
            "credential_id",
            format!("is a {p} credential, not {provider}"),
        )),
        Some(_) => Ok(()),
    }
}

/// Creates a model and records `model.created`.
pub async fn create(
    pool: &PgPool,
    workspace: WorkspaceId,
    actor: UserId,
    new: NewModel<'_>,
) -> Result<Model> {
    let mut tx = pool.begin().await?;
    check_credential(&mut tx, workspace, new.provider, new.credential_id).await?;
    let id = ModelId::new();
    let row: Row = sqlx::query_as(&format!(
        "INSERT INTO models (id, workspace_id, provider, name, upstream_model, model_type, credential_id, \
           input_usd_per_mtok, output_usd_per_mtok) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::numeric, $9::numeric) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(workspace)
    .bind(new.provider)
    .bind(new.name)
    .bind(new.upstream_model)
    .bind(new.model_type.as_str())
    .bind(new.credential_id)
    .bind(price(new.prices.input_usd_per_mtok))
    .bind(price(new.prices.output_usd_per_mtok))
    .fetch_one(&mut *tx)
    .await?;
    crate::load_balancing::create_default(&mut tx, workspace, id).await?;
    audit::record(
        &mut tx,
        NewEvent::workspace(workspace, actor, "model.created", "model", id).with_details(
            serde_json::json!({
                "name": new.name,
                "provider": new.provider,
                "upstream_model": new.upstream_model,
                "model_type": new.model_type.as_str(),
                "credential_id": new.credential_id,
                "input_usd_per_mtok": new.prices.input_usd_per_mtok,
                "output_usd_per_mtok": new.prices.output_usd_per_mtok,
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(row.into())
}

/// A workspace's models, oldest first.
pub async fn list(pool: &PgPool, workspace: WorkspaceId, page: Page) -> Result<Paged<Model>> {
    let select = format!("SELECT {COLUMNS} FROM models WHERE workspace_id = $1");
    page.list::<Row, _, _>(pool, &select, workspace, Keyset::OLDEST_FIRST)
        .await
}

/// One model of the workspace.
pub async fn get(pool: &PgPool, workspace: WorkspaceId, id: ModelId) -> Result<Model> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM models WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(Model::from).ok_or(Error::NotFound)
}

/// What a PATCH changes on a model (`None`: kept).
#[derive(Debug, Default)]
pub struct ModelChange<'a> {
    /// New default credential.
    pub credential_id: Option<CredentialId>,
    /// New upstream name.
    pub upstream_model: Option<&'a str>,
    /// New input price (`Some(None)`: removed).
    pub input_usd_per_mtok: Option<Option<f64>>,
    /// New output price (`Some(None)`: removed).
    pub output_usd_per_mtok: Option<Option<f64>>,
}

/// Changes a model's default credential, upstream name and/or prices; records `model.updated`.
pub async fn update(
    pool: &PgPool,
    workspace: WorkspaceId,
    id: ModelId,
    actor: UserId,
    change: ModelChange<'_>,
) -> Result<Model> {
    let ModelChange {
        credential_id,
        upstream_model,
        input_usd_per_mtok,
        output_usd_per_mtok,
    } = change;
    let mut tx = pool.begin().await?;
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM models WHERE workspace_id = $1 AND id = $2 FOR UPDATE"
    ))
    .bind(workspace)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let current = Model::from(row.ok_or(Error::NotFound)?);
    if let Some(c) = credential_id {
        check_credential(&mut tx, workspace, &current.provider, c).await?;
    }
    let new_credential = credential_id.unwrap_or(current.credential_id);
    let new_upstream = upstream_model.unwrap_or(&current.upstream_model);
    let new_input = input_usd_per_mtok.unwrap_or(current.input_usd_per_mtok);
    let new_output = output_usd_per_mtok.unwrap_or(current.output_usd_per_mtok);
    let row: Row = sqlx::query_as(&format!(
        "UPDATE models SET credential_id = $3, upstream_model = $4, input_usd_per_mtok = $5::numeric, \
           output_usd_per_mtok = $6::numeric, updated_at = clock_timestamp() \
         WHERE workspace_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(workspace)
    .bind(id)
    .bind(new_credential)
    .bind(new_upstream)
    .bind(price(new_input))
    .bind(price(new_output))
    .fetch_one(&mut *tx)
    .await?;
    let mut details = serde_json::Map::new();
    if new_credential != current.credential_id {
        details.insert(
            "credential_id".into(),
            serde_json::json!({"from": current.credential_id, "to": new_credential}),
        );
    }
    if new_upstream != current.upstream_model {
        details.insert(
            "upstream_model".into(),
            serde_json::json!({"from": current.upstream_model, "to": new_upstream}),
        );
    }
    for (field, from, to) in [
        ("input_usd_per_mtok", current.input_usd_per_mtok, new_input),
        (
            "output_usd_per_mtok",
            current.output_usd_per_mtok,
            new_output,
        ),
    ] {
        if from != to {
            details.insert(field.into(), serde_json::json!({"from": from, "to": to}));
        }
    }
    audit::record(
        &mut tx,
        NewEvent::workspace(workspace, actor, "model.updated", "model", id)
            .with_details(serde_json::Value::Object(details)),
    )
    .await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Deletes a model (and, through the schema, its load-balancing pool); records `model.deleted`.
pub async fn delete(
    pool: &PgPool,
    workspace: WorkspaceId,
    id: ModelId,
    actor: UserId,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let name: Option<String> =
        sqlx::query_scalar("DELETE FROM models WHERE workspace_id = $1 AND id = $2 RETURNING name")
            .bind(workspace)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let name = name.ok_or(Error::NotFound)?;
    audit::record(
        &mut tx,
        NewEvent::workspace(workspace, actor, "model.deleted", "model", id)
            .with_details(serde_json::json!({ "name": name })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// 404 unless the model exists in the workspace.
pub async fn ensure_exists(pool: &PgPool, workspace: WorkspaceId, id: ModelId) -> Result<()> {
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM models WHERE workspace_id = $1 AND id = $2)",
    )
    .bind(workspace)
    .bind(id)
    .fetch_one(pool)
    .await?;
    found.then_some(()).ok_or(Error::NotFound)
}

/// A model of the workspace by the name clients use.
pub async fn get_by_name(
    pool: &PgPool,
    workspace: WorkspaceId,
    name: &str,
) -> Result<Option<Model>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM models WHERE workspace_id = $1 AND name = $2"
    ))
    .bind(workspace)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Model::from))
}

/// Every model of the workspace, oldest first (the gateway's `/v1/models`).
pub async fn all(pool: &PgPool, workspace: WorkspaceId) -> Result<Vec<Model>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM models WHERE workspace_id = $1 ORDER BY created_at, id"
    ))
    .bind(workspace)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Model::from).collect())
}
