//! Writing a pool: every check of a PUT or PATCH, in order, inside one transaction.

use super::*;
use crate::audit::{self, NewEvent};
use crate::ids::*;
use crate::{Error, Result};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Applies a PUT or PATCH in one transaction. Checks, in order: the model exists (404); a
/// config left enabled needs `feature` (403); ranges, credentials of this workspace and
/// provider, and two distinct enabled credentials when enabled (422); `If-Match` (412).
/// A rejected write changes nothing.
pub async fn write(
    pool: &PgPool,
    workspace: WorkspaceId,
    model: ModelId,
    actor: UserId,
    w: Write,
    feature: bool,
) -> Result<Config> {
    let mut tx = pool.begin().await?;
    let current = load(&mut tx, workspace, model, true).await?;
    let enabled = w.enabled.unwrap_or(current.enabled);
    if enabled && !feature {
        return Err(Error::FeatureNotAvailable);
    }

    let mut fields = BTreeMap::new();
    let cooldown_seconds = w.cooldown_seconds.unwrap_or(current.cooldown_seconds);
    if !(1..=3600).contains(&cooldown_seconds) {
        fields.insert(
            "cooldown_seconds".to_owned(),
            "must be from 1 to 3600".to_owned(),
        );
    }
    let max_attempts = w.max_attempts.unwrap_or(current.max_attempts);
    if !(1..=10).contains(&max_attempts) {
        fields.insert("max_attempts".to_owned(), "must be from 1 to 10".to_owned());
    }
    let provider: String =
        sqlx::query_scalar("SELECT provider FROM models WHERE workspace_id = $1 AND id = $2")
            .bind(workspace)
            .bind(model)
            .fetch_one(&mut *tx)
            .await?;
    let mut next = current.clone();
    next.enabled = enabled;
    next.cooldown_seconds = cooldown_seconds;
    next.max_attempts = max_attempts;
    if let Some(inputs) = &w.entries {
        if inputs.len() > 100 {
            fields.insert("entries".to_owned(), "at most 100 entries".to_owned());
        }
        let ids: Vec<CredentialId> = inputs.iter().filter_map(|e| e.credential_id).collect();
        let found: Vec<(CredentialId, String, String)> = sqlx::query_as(
            "SELECT id, provider, name FROM credentials WHERE workspace_id = $1 AND id = ANY($2)",
        )
        .bind(workspace)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let found: HashMap<CredentialId, (String, String)> =
            found.into_iter().map(|(id, p, n)| (id, (p, n))).collect();
        let existing: HashSet<EntryId> = current.entries.iter().map(|e| e.id).collect();
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            if let Some(name) = &input.upstream_model {
                if name.is_empty() || name.chars().count() > 200 {
                    fields.insert(
                        format!("entries[{i}].upstream_model"),
                        "must be 1 to 200 characters".to_owned(),
                    );
                } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    fields.insert(
                        format!("entries[{i}].upstream_model"),
                        "must not contain whitespace".to_owned(),
                    );
                }
            }
            if !(1..=100).contains(&input.weight) {
                fields.insert(
                    format!("entries[{i}].weight"),
                    "must be from 1 to 100".to_owned(),
                );
            }
            let id = match input.id {
                Some(id) if existing.contains(&id) && seen.insert(id) => id,
                Some(_) => {
                    fields.insert(
                        format!("entries[{i}].id"),
                        "not an entry of this pool (omit it for a new entry)".to_owned(),
                    );
                    EntryId::new()
                }
                None => EntryId::new(),
            };
            let credential_name = match input.credential_id {
                None => DEFAULT_CONFIG_NAME.to_owned(),
                Some(c) => match found.get(&c) {
                    None => {
                        fields.insert(
                            format!("entries[{i}].credential_id"),
                            "no such credential in this workspace".to_owned(),
                        );
                        String::new()
                    }
                    Some((p, _)) if !same_family(p, &provider) => {
                        fields.insert(
                            format!("entries[{i}].credential_id"),
                            format!("is a {p} credential, not one of the model's API family ({provider})"),
                        );
                        String::new()
                    }
                    Some((_, name)) => name.clone(),
                },
            };
            entries.push(Entry {
                id,
                credential_id: input.credential_id,
                credential_name,
                enabled: input.enabled,
                weight: input.weight,
                upstream_model: input.upstream_model.clone(),
            });
        }
        next.entries = entries;
    }
    if !fields.is_empty() {
        return Err(Error::Invalid {
            code: "validation_failed",
            fields,
        });
    }
    if enabled && next.distinct_enabled() < 2 {
        return Err(Error::Invalid {
            code: "not_enough_entries",
            fields: [(
                "entries".to_owned(),
                "enabling needs at least two distinct enabled credentials".to_owned(),
            )]
            .into(),
        });
    }
    if let Some(versions) = &w.if_match {
        if !versions.contains(&current.version) {
            return Err(Error::VersionConflict {
                current: current.version,
            });
        }
    }

    next.version = current.version + 1;
    sqlx::query(
        "UPDATE lb_configs SET enabled = $3, cooldown_seconds = $4, max_attempts = $5, version = $6, \
         updated_at = clock_timestamp() WHERE workspace_id = $1 AND model_id = $2",
    )
    .bind(workspace)
    .bind(model)
    .bind(next.enabled)
    .bind(next.cooldown_seconds)
    .bind(next.max_attempts)
    .bind(next.version)
    .execute(&mut *tx)
    .await?;
    if w.entries.is_some() {
        sqlx::query("DELETE FROM lb_entries WHERE workspace_id = $1 AND model_id = $2")
            .bind(workspace)
            .bind(model)
            .execute(&mut *tx)
            .await?;
        for (position, e) in next.entries.iter().enumerate() {
            sqlx::query(
                "INSERT INTO lb_entries (id, model_id, workspace_id, position, credential_id, enabled, weight, upstream_model) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(e.id)
            .bind(model)
            .bind(workspace)
            .bind(i32::try_from(position).unwrap_or(i32::MAX))
            .bind(e.credential_id)
            .bind(e.enabled)
            .bind(e.weight)
            .bind(&e.upstream_model)
            .execute(&mut *tx)
            .await?;
        }
    }
    let mut details = serde_json::json!({
        "enabled": next.enabled,
        "cooldown_seconds": next.cooldown_seconds,
        "max_attempts": next.max_attempts,
        "version": next.version,
    });
    if w.entries.is_some() {
        details["entries"] = serde_json::json!(next
            .entries
            .iter()
            .map(|e| serde_json::json!({"id": e.id, "credential_id": e.credential_id, "enabled": e.enabled, "weight": e.weight, "upstream_model": e.upstream_model}))
            .collect::<Vec<_>>());
    }
    audit::record(
        &mut tx,
        NewEvent::workspace(workspace, actor, "load_balancing.updated", "model", model)
            .with_details(details),
    )
    .await?;
    tx.commit().await?;
    Ok(next)
}

/// Whether a credential of `credential` may serve a model of `model`: any provider of the
/// model's API family (an Azure deployment in an OpenAI pool), never another family.
fn same_family(credential: &str, model: &str) -> bool {
    match (
        crate::providers::find(credential),
        crate::providers::find(model),
    ) {
        (Some(c), Some(m)) => c.family() == m.family(),
        _ => credential == model,
    }
}
