//! The provider catalogue: which providers exist and what their credentials hold.

use crate::extract::{AuthUser, List};
use crate::responses::Authed;
use crate::state::AppState;
use axum::Json;
use rotor_storage::providers::{Family, FieldKind, PROVIDERS};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `/providers`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_providers))
}

/// Kind of a credential field.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Encrypted at rest and masked in responses.
    Secret,
    /// Stored and shown in clear.
    Text,
}

/// One field of a credential's `config`.
#[derive(Serialize, ToSchema)]
pub struct SchemaField {
    /// Field name.
    pub name: &'static str,
    /// `secret` or `text`.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Whether it must have a value (a default counts).
    pub required: bool,
    /// Value used when none is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<&'static str>,
    /// What it is.
    pub description: &'static str,
}

/// A provider and its credential schema.
#[derive(Serialize, ToSchema)]
pub struct ProviderView {
    /// Provider id, used in credentials and models.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// The API family its models serve (`openai`, `anthropic`, `gemini`); a pool may mix
    /// providers of one family.
    pub family: Family,
    /// Fields of a credential's `config`.
    pub credential_schema: Vec<SchemaField>,
}

/// The built-in providers (any signed-in user).
#[utoipa::path(get, path = "/providers", tag = "providers", security(("bearer" = [])), responses(
    (status = 200, body = List<ProviderView>),
    Authed,
))]
pub async fn list_providers(_user: AuthUser) -> Json<List<ProviderView>> {
    let data = PROVIDERS
        .iter()
        .map(|p| ProviderView {
            id: p.id,
            name: p.name,
            family: p.family(),
            credential_schema: p
                .fields
                .iter()
                .map(|f| SchemaField {
                    name: f.name,
                    kind: if f.kind == FieldKind::Secret {
                        FieldType::Secret
                    } else {
                        FieldType::Text
                    },
                    required: f.required,
                    default: f.default,
                    description: f.description,
                })
                .collect(),
        })
        .collect();
    Json(List {
        data,
        next_cursor: None,
    })
}
