//! The built-in provider catalogue: each provider's credential schema and defaults.

mod config;

pub use config::*;

/// Whether a config field is stored encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Encrypted at rest, masked in responses.
    Secret,
    /// Stored and shown in clear.
    Text,
}

/// One field of a provider's credential schema.
#[derive(Debug)]
pub struct FieldSpec {
    /// Field name in `config`.
    pub name: &'static str,
    /// Secret or text.
    pub kind: FieldKind,
    /// Whether a value must exist (a default counts).
    pub required: bool,
    /// Value used when none is given.
    pub default: Option<&'static str>,
    /// An upstream address: changing it requires every secret in clear.
    pub is_url: bool,
    /// What the field is.
    pub description: &'static str,
}

/// A provider Rotor can call.
#[derive(Debug)]
pub struct Provider {
    /// Stable id, e.g. `openai`.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Its credential schema.
    pub fields: &'static [FieldSpec],
}

/// A clear text field; `required` with a default means the default is used when omitted.
const fn text(
    name: &'static str,
    required: bool,
    default: Option<&'static str>,
    description: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        kind: FieldKind::Text,
        required,
        default,
        is_url: false,
        description,
    }
}

/// A required secret field (encrypted, masked).
const fn secret(name: &'static str, description: &'static str) -> FieldSpec {
    FieldSpec {
        kind: FieldKind::Secret,
        ..text(name, true, None, description)
    }
}

/// A required upstream address, with the provider's default when it has one.
const fn address(
    name: &'static str,
    default: Option<&'static str>,
    description: &'static str,
) -> FieldSpec {
    FieldSpec {
        is_url: true,
        ..text(name, true, default, description)
    }
}

/// Azure OpenAI API version used when a credential names none.
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// Every built-in provider.
pub static PROVIDERS: &[Provider] = &[
    Provider {
        id: "openai",
        name: "OpenAI",
        fields: &[
            secret("api_key", "API key (sk-…)"),
            address(
                "base_url",
                Some("https://api.openai.com/v1"),
                "API base URL",
            ),
            text("organization", false, None, "OpenAI-Organization header"),
        ],
    },
    Provider {
        id: "openai_compatible",
        name: "OpenAI-compatible API",
        fields: &[
            secret("api_key", "API key sent as a Bearer token"),
            address(
                "base_url",
                None,
                "API base URL, e.g. http://localhost:8000/v1",
            ),
        ],
    },
    Provider {
        id: "azure_openai",
        name: "Azure OpenAI",
        fields: &[
            secret("api_key", "Azure OpenAI key (api-key header)"),
            address(
                "endpoint",
                None,
                "Resource endpoint, e.g. https://NAME.openai.azure.com",
            ),
            text(
                "api_version",
                true,
                Some(AZURE_DEFAULT_API_VERSION),
                "api-version query parameter",
            ),
            text(
                "deployment",
                false,
                None,
                "Deployment name (defaults to the model's upstream_model)",
            ),
        ],
    },
];

/// The provider with this id.
pub fn find(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id)
}
