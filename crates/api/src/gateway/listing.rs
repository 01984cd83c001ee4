//! The model list in each family's shape, so that each SDK's `models.list()` and
//! `models.get()` work through Rotor: OpenAI's `{object: list, data}`, Anthropic's
//! `{data: [{type: model, id, display_name, created_at}], has_more, first_id, last_id}` (asked
//! for with `anthropic-version`), Gemini's `{models: [{name: "models/…", …}]}` (asked for with
//! `x-goog-api-key` or `?key=`, and always under `/v1beta`). Anthropic and Gemini clients see
//! only the models of their family.

use rotor_dispatch::target::Family;
use rotor_storage::models::{Model, ModelType};
use serde_json::{json, Value};

/// The family whose shape a model-list request asks for, from where its key and version are.
pub fn asked_by(headers: &axum::http::HeaderMap, uri: &axum::http::Uri) -> Family {
    let has_query_key = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("key=")));
    if headers.contains_key("x-goog-api-key") || has_query_key {
        Family::Gemini
    } else if headers.contains_key("anthropic-version") {
        Family::Anthropic
    } else {
        Family::OpenAi
    }
}

/// Whether `m` is listed to a client of `family` (OpenAI clients see every model, as before).
pub fn listed(family: Family, m: &Model) -> bool {
    family == Family::OpenAi || crate::targets::family_of(&m.provider) == family
}

/// Anthropic's model object.
pub fn anthropic_model(m: &Model) -> Value {
    json!({
        "type": "model",
        "id": m.name,
        "display_name": m.name,
        "created_at": m.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// Anthropic's model list (one page).
pub fn anthropic_list(models: &[Model]) -> Value {
    json!({
        "data": models.iter().map(anthropic_model).collect::<Vec<_>>(),
        "has_more": false,
        "first_id": models.first().map(|m| m.name.as_str()),
        "last_id": models.last().map(|m| m.name.as_str()),
    })
}

/// Gemini's model object: the methods Rotor serves for the model's kind.
pub fn gemini_model(m: &Model) -> Value {
    let methods: &[&str] = match m.model_type {
        ModelType::TextEmbedding => &["embedContent", "batchEmbedContents", "countTokens"],
        _ => &["generateContent", "streamGenerateContent", "countTokens"],
    };
    json!({
        "name": format!("models/{}", m.name),
        "baseModelId": m.name,
        "version": "rotor",
        "displayName": m.name,
        "description": format!("{} through Rotor", m.upstream_model),
        "supportedGenerationMethods": methods,
    })
}

/// Gemini's model list (one page, no `nextPageToken`).
pub fn gemini_list(models: &[Model]) -> Value {
    json!({"models": models.iter().map(gemini_model).collect::<Vec<_>>()})
}
