//! Writing a pool: every check of a PUT or PATCH, in order, inside one transaction.

use super::*;
use crate::audit::{self, NewEvent};
use crate::ids::*;
use crate::{Error, Result};
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Display;
use std::ops::RangeInclusive;

/// Applies a PUT or PATCH in one transaction. Checks, in order: the model exists (404); a
/// config left enabled needs `feature` (403); ranges, credentials of this workspace and
/// provider, and two distinct enabled credentials when enabled (422); `If-Match` (412).
/// A rejected write changes nothing; the audit event names every setting that changed, from
/// what to what.
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
    let mut next = current.clone();
    next.enabled = enabled;
    next.cooldown_seconds = w.cooldown_seconds.unwrap_or(current.cooldown_seconds);
    in_range(
        &mut fields,
        "cooldown_seconds",
        next.cooldown_seconds,
        COOLDOWN_SECONDS,
    );
    next.max_attempts = w.max_attempts.unwrap_or(current.max_attempts);
    in_range(&mut fields, "max_attempts", next.max_attempts, MAX_ATTEMPTS);
    next.max_wait_ms = w.max_wait_ms.unwrap_or(current.max_wait_ms);
    in_range(&mut fields, "max_wait_ms", next.max_wait_ms, MAX_WAIT_MS);
    next.affinity = w.affinity.unwrap_or(current.affinity);
    next.affinity_ttl_seconds = w
        .affinity_ttl_seconds
        .unwrap_or(current.affinity_ttl_seconds);
    in_range(
        &mut fields,
        "affinity_ttl_seconds",
        next.affinity_ttl_seconds,
        AFFINITY_TTL_SECONDS,
    );
    let provider: String =
        sqlx::query_scalar("SELECT provider FROM models WHERE workspace_id = $1 AND id = $2")
            .bind(workspace)
            .bind(model)
            .fetch_one(&mut *tx)
            .await?;
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
            in_range(
                &mut fields,
                &format!("entries[{i}].weight"),
                input.weight,
                WEIGHT,
            );
            if let Some(rpm) = input.rpm {
                in_range(&mut fields, &format!("entries[{i}].rpm"), rpm, RPM);
            }
            if let Some(tpm) = input.tpm {
                in_range(&mut fields, &format!("entries[{i}].tpm"), tpm, TPM);
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
                rpm: input.rpm,
                tpm: input.tpm,
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
        "UPDATE lb_configs SET enabled = $3, cooldown_seconds = $4, max_attempts = $5, \
         max_wait_ms = $6, affinity = $7, affinity_ttl_seconds = $8, version = $9, \
         updated_at = clock_timestamp() WHERE workspace_id = $1 AND model_id = $2",
    )
    .bind(workspace)
    .bind(model)
    .bind(next.enabled)
    .bind(next.cooldown_seconds)
    .bind(next.max_attempts)
    .bind(next.max_wait_ms)
    .bind(next.affinity.as_str())
    .bind(next.affinity_ttl_seconds)
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
                "INSERT INTO lb_entries (id, model_id, workspace_id, position, credential_id, enabled, weight, upstream_model, rpm, tpm) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(e.id)
            .bind(model)
            .bind(workspace)
            .bind(i32::try_from(position).unwrap_or(i32::MAX))
            .bind(e.credential_id)
            .bind(e.enabled)
            .bind(e.weight)
            .bind(&e.upstream_model)
            .bind(e.rpm)
            .bind(e.tpm)
            .execute(&mut *tx)
            .await?;
        }
    }
    let mut details = settings(&next);
    details["changes"] = Value::Object(changes(&current, &next));
    details["version"] = json!(next.version);
    if w.entries.is_some() {
        details["entries"] = json!(next
            .entries
            .iter()
            .map(
                |e| json!({"id": e.id, "credential_id": e.credential_id, "enabled": e.enabled,
                "weight": e.weight, "upstream_model": e.upstream_model, "rpm": e.rpm, "tpm": e.tpm})
            )
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

/// Records "must be from A to B" for `field` when `value` is outside `range`.
fn in_range<T: PartialOrd + Display>(
    fields: &mut BTreeMap<String, String>,
    field: &str,
    value: T,
    range: RangeInclusive<T>,
) {
    if !range.contains(&value) {
        fields.insert(
            field.to_owned(),
            format!("must be from {} to {}", range.start(), range.end()),
        );
    }
}

/// The pool's settings as the audit log shows them.
fn settings(c: &Config) -> Value {
    json!({
        "enabled": c.enabled,
        "cooldown_seconds": c.cooldown_seconds,
        "max_attempts": c.max_attempts,
        "max_wait_ms": c.max_wait_ms,
        "affinity": c.affinity,
        "affinity_ttl_seconds": c.affinity_ttl_seconds,
    })
}

/// `{setting: {from, to}}` for every setting a write changed (entries are listed whole).
fn changes(before: &Config, after: &Config) -> Map<String, Value> {
    let (Value::Object(before), Value::Object(after)) = (settings(before), settings(after)) else {
        return Map::new();
    };
    after
        .into_iter()
        .filter(|(k, v)| before.get(k) != Some(v))
        .map(|(k, v)| {
            let from = before.get(&k).cloned().unwrap_or(Value::Null);
            (k, json!({"from": from, "to": v}))
        })
        .collect()
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
