//! A credential's config checked against its provider's schema: on create, and merged on
//! PATCH under the masked-value rule.

use super::{FieldKind, FieldSpec, Provider};
use crate::crypto::Secret;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Longest accepted field value.
const MAX_VALUE: usize = 4096;

/// A credential's config split into its clear and secret parts.
#[derive(Debug, Default, Clone)]
pub struct SplitConfig {
    /// Text fields.
    pub plain: Map<String, Value>,
    /// Secret fields, decrypted.
    pub secrets: BTreeMap<String, Secret>,
}

/// Problems with a config, by field path (`config.api_key`).
pub type FieldProblems = BTreeMap<String, String>;

fn check_value(spec: &FieldSpec, raw: &str, problems: &mut FieldProblems) -> Option<String> {
    let key = format!("config.{}", spec.name);
    let value = raw.trim();
    if value.is_empty() {
        problems.insert(key, "required".into());
        return None;
    }
    if value.chars().count() > MAX_VALUE {
        problems.insert(key, format!("must be at most {MAX_VALUE} characters"));
        return None;
    }
    if value.chars().any(char::is_control) {
        problems.insert(key, "must not contain control characters".into());
        return None;
    }
    if spec.kind == FieldKind::Secret && value.contains('\u{2026}') {
        problems.insert(
            key,
            "looks like a masked value: send the secret in clear".into(),
        );
        return None;
    }
    if spec.is_url {
        return match normalize_url(value) {
            Some(url) => Some(url),
            None => {
                problems.insert(
                    key,
                    "must be an http:// or https:// URL without credentials, query or fragment"
                        .into(),
                );
                None
            }
        };
    }
    Some(value.to_owned())
}

/// Checks an upstream URL and returns it without a trailing slash.
pub fn normalize_url(value: &str) -> Option<String> {
    let url = url::Url::parse(value).ok()?;
    let ok = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    ok.then(|| url.as_str().trim_end_matches('/').to_owned())
}

/// Names every key of `config` the provider's schema does not have.
fn unknown_fields(provider: &Provider, config: &Map<String, Value>) -> FieldProblems {
    config
        .keys()
        .filter(|key| !provider.fields.iter().any(|f| f.name == key.as_str()))
        .map(|key| (format!("config.{key}"), "unknown field".to_owned()))
        .collect()
}

/// Validates a new credential's config: unknown, missing and wrongly typed fields are named.
pub fn validate_new(
    provider: &Provider,
    config: &Map<String, Value>,
) -> Result<SplitConfig, FieldProblems> {
    let mut problems = unknown_fields(provider, config);
    let mut out = SplitConfig::default();
    for spec in provider.fields {
        let value = match config.get(spec.name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => check_value(spec, s, &mut problems),
            Some(_) => {
                problems.insert(format!("config.{}", spec.name), "must be a string".into());
                continue;
            }
        };
        store(spec, value, &mut out, &mut problems);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn store(
    spec: &FieldSpec,
    value: Option<String>,
    out: &mut SplitConfig,
    problems: &mut FieldProblems,
) {
    let value = value.or_else(|| spec.default.map(str::to_owned));
    match (value, spec.kind) {
        (Some(v), FieldKind::Secret) => {
            out.secrets.insert(spec.name.to_owned(), Secret::new(v));
        }
        (Some(v), FieldKind::Text) => {
            out.plain.insert(spec.name.to_owned(), Value::String(v));
        }
        (None, _) if spec.required => {
            problems
                .entry(format!("config.{}", spec.name))
                .or_insert_with(|| "required".into());
        }
        (None, _) => {}
    }
}

/// Why a config PATCH was refused.
#[derive(Debug)]
pub enum MergeError {
    /// Field problems (422 `validation_failed`).
    Invalid(FieldProblems),
    /// A URL field changed without every secret in clear (422 `secret_required`).
    SecretRequired(Vec<String>),
}

/// Applies a PATCH to a stored config: present fields replace, absent ones stay, `null`
/// clears an optional field, and a secret sent back in its masked form keeps the stored
/// value. Changing a URL field requires every secret in clear, so a stored key can never
/// be redirected to a new host.
pub fn merge(
    provider: &Provider,
    current: &SplitConfig,
    patch: &Map<String, Value>,
) -> Result<SplitConfig, MergeError> {
    let mut problems = unknown_fields(provider, patch);
    let mut out = SplitConfig::default();
    let mut secrets_in_clear = Vec::new();
    let mut url_changed = false;
    for spec in provider.fields {
        let current_value: Option<String> = match spec.kind {
            FieldKind::Secret => current
                .secrets
                .get(spec.name)
                .map(|s| s.expose().to_owned()),
            FieldKind::Text => current
                .plain
                .get(spec.name)
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        let value = match patch.get(spec.name) {
            None => current_value.clone(),
            Some(Value::Null) => {
                if spec.required && spec.default.is_none() {
                    problems.insert(
                        format!("config.{}", spec.name),
                        "required: cannot be cleared".into(),
                    );
                }
                None
            }
            Some(Value::String(s)) => {
                let masked_current = current.secrets.get(spec.name).map(Secret::masked);
                if spec.kind == FieldKind::Secret && masked_current.as_deref() == Some(s.as_str()) {
                    current_value.clone()
                } else {
                    let v = check_value(spec, s, &mut problems);
                    if spec.kind == FieldKind::Secret && v.is_some() {
                        secrets_in_clear.push(spec.name);
                    }
                    v
                }
            }
            Some(_) => {
                problems.insert(format!("config.{}", spec.name), "must be a string".into());
                continue;
            }
        };
        // The effective URL is what a call would use: a cleared field falls back to the
        // default, which is a new host for the stored secret just the same (see SECURITY.md).
        let effective = |v: &Option<String>| v.clone().or_else(|| spec.default.map(str::to_owned));
        if spec.is_url
            && patch.contains_key(spec.name)
            && effective(&value) != effective(&current_value)
        {
            url_changed = true;
        }
        store(spec, value, &mut out, &mut problems);
    }
    if !problems.is_empty() {
        return Err(MergeError::Invalid(problems));
    }
    if url_changed {
        let missing: Vec<String> = provider
            .fields
            .iter()
            .filter(|f| {
                f.kind == FieldKind::Secret
                    && out.secrets.contains_key(f.name)
                    && !secrets_in_clear.contains(&f.name)
            })
            .map(|f| format!("config.{}", f.name))
            .collect();
        if !missing.is_empty() {
            return Err(MergeError::SecretRequired(missing));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::find;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn schema_names_unknown_missing_and_mistyped_fields() {
        let p = find("openai_compatible").unwrap();
        let e = validate_new(p, &obj(json!({"api_key": 5, "extra": "x"}))).unwrap_err();
        assert_eq!(e["config.api_key"], "must be a string");
        assert_eq!(e["config.extra"], "unknown field");
        assert_eq!(e["config.base_url"], "required");
        let ok = validate_new(
            find("openai").unwrap(),
            &obj(json!({"api_key": "sk-1234567890abcdef"})),
        )
        .unwrap();
        assert_eq!(ok.plain["base_url"], "https://api.openai.com/v1");
        assert!(!ok.plain.contains_key("api_key"));
    }

    #[test]
    fn merge_keeps_masked_secrets_and_guards_url_changes() {
        let p = find("openai_compatible").unwrap();
        let cur = validate_new(
            p,
            &obj(json!({"api_key": "sk-1234567890abcdef", "base_url": "https://a.example/v1"})),
        )
        .unwrap();
        let masked = cur.secrets["api_key"].masked();
        let same = merge(p, &cur, &obj(json!({"api_key": masked}))).unwrap();
        assert_eq!(same.secrets["api_key"].expose(), "sk-1234567890abcdef");
        match merge(
            p,
            &cur,
            &obj(json!({"base_url": "https://evil.example/v1", "api_key": masked})),
        ) {
            Err(MergeError::SecretRequired(f)) => assert_eq!(f, ["config.api_key"]),
            other => panic!("{other:?}"),
        }
        let moved = merge(
            p,
            &cur,
            &obj(json!({"base_url": "https://b.example/v1/", "api_key": "sk-new-key-000000"})),
        )
        .unwrap();
        assert_eq!(moved.plain["base_url"], "https://b.example/v1");
        assert!(matches!(
            merge(p, &cur, &obj(json!({"base_url": null}))),
            Err(MergeError::Invalid(_))
        ));
    }

    #[test]
    fn clearing_a_url_to_its_default_needs_the_secret_too() {
        let p = find("openai").unwrap();
        let cur = validate_new(
            p,
            &obj(json!({"api_key": "sk-1234567890abcdef", "base_url": "https://proxy.example/v1"})),
        )
        .unwrap();
        let masked = cur.secrets["api_key"].masked();
        for patch in [
            json!({"base_url": null}),
            json!({"base_url": null, "api_key": masked}),
            json!({"base_url": "https://api.openai.com/v1"}),
        ] {
            assert!(
                matches!(
                    merge(p, &cur, &obj(patch.clone())),
                    Err(MergeError::SecretRequired(_))
                ),
                "{patch}"
            );
        }
        let back = merge(
            p,
            &cur,
            &obj(json!({"base_url": null, "api_key": "sk-new-key-000000"})),
        )
        .unwrap();
        assert_eq!(back.plain["base_url"], "https://api.openai.com/v1");
        // Already on the default: clearing it changes nothing and needs no secret.
        assert!(merge(p, &back, &obj(json!({"base_url": null}))).is_ok());
        assert!(merge(
            p,
            &cur,
            &obj(json!({"base_url": "https://proxy.example/v1/"}))
        )
        .is_ok());
    }
}
