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

const fn field(
    name: &'static str,
    kind: FieldKind,
    required: bool,
    default: Option<&'static str>,
    is_url: bool,
    description: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        kind,
        required,
        default,
        is_url,
        description,
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
            field(
                "api_key",
                FieldKind::Secret,
                true,
                None,
                false,
                "API key (sk-…)",
            ),
            field(
                "base_url",
                FieldKind::Text,
                true,
                Some("https://api.openai.com/v1"),
                true,
                "API base URL",
            ),
            field(
                "organization",
                FieldKind::Text,
                false,
                None,
                false,
                "OpenAI-Organization header",
            ),
        ],
    },
    Provider {
        id: "openai_compatible",
        name: "OpenAI-compatible API",
        fields: &[
            field(
                "api_key",
                FieldKind::Secret,
                true,
                None,
                false,
                "API key sent as a Bearer token",
            ),
            field(
                "base_url",
                FieldKind::Text,
                true,
                None,
                true,
                "API base URL, e.g. http://localhost:8000/v1",
            ),
        ],
    },
    Provider {
        id: "azure_openai",
        name: "Azure OpenAI",
        fields: &[
            field(
                "api_key",
                FieldKind::Secret,
                true,
                None,
                false,
                "Azure OpenAI key (api-key header)",
            ),
            field(
                "endpoint",
                FieldKind::Text,
                true,
                None,
                true,
                "Resource endpoint, e.g. https://NAME.openai.azure.com",
            ),
            field(
                "api_version",
                FieldKind::Text,
                true,
                Some(AZURE_DEFAULT_API_VERSION),
                false,
                "api-version query parameter",
            ),
            field(
                "deployment",
                FieldKind::Text,
                false,
                None,
                false,
                "Deployment name (defaults to the model's upstream_model)",
            ),
        ],
    },
];

/// The provider with this id.
pub fn find(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id)
}
