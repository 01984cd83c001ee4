//! The built-in provider catalogue: each provider's API family, wire format, credential
//! schema and defaults.

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

/// The API family a provider speaks: a model serves its family's endpoints, and a pool may mix
/// providers of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// OpenAI's API (chat, embeddings, Responses, …), also spoken by Azure and compatible servers.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (`generateContent`, …).
    Gemini,
}

/// How requests to a provider are built: URLs and authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// api.openai.com: Bearer key, optional `OpenAI-Organization`.
    OpenAi,
    /// Any server speaking OpenAI's API at `base_url`: Bearer key.
    OpenAiCompatible,
    /// Azure OpenAI: `api-key`, deployments in the URL, `api-version`.
    AzureOpenAi,
    /// Anthropic: `x-api-key` and `anthropic-version`.
    Anthropic,
    /// Gemini: `x-goog-api-key`, the model in the path.
    Gemini,
}

impl Wire {
    /// The family this wire format belongs to.
    pub const fn family(self) -> Family {
        match self {
            Wire::OpenAi | Wire::OpenAiCompatible | Wire::AzureOpenAi => Family::OpenAi,
            Wire::Anthropic => Family::Anthropic,
            Wire::Gemini => Family::Gemini,
        }
    }
}

/// A provider Rotor can call.
#[derive(Debug)]
pub struct Provider {
    /// Stable id, e.g. `openai`.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// How it is called (presets of compatible servers speak [`Wire::OpenAiCompatible`]).
    pub wire: Wire,
    /// Its credential schema.
    pub fields: &'static [FieldSpec],
}

impl Provider {
    /// The provider's API family.
    pub const fn family(&self) -> Family {
        self.wire.family()
    }
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

/// A hosted server that speaks OpenAI's API: `openai_compatible` with its `base_url` filled in.
macro_rules! preset {
    ($id:literal, $name:literal, $base_url:literal) => {
        Provider {
            id: $id,
            name: $name,
            wire: Wire::OpenAiCompatible,
            fields: &[
                secret("api_key", "API key sent as a Bearer token"),
                address("base_url", Some($base_url), "API base URL"),
            ],
        }
    };
}

/// Azure OpenAI API version used when a credential names none.
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// Every built-in provider.
pub static PROVIDERS: &[Provider] = &[
    Provider {
        id: "openai",
        name: "OpenAI",
        wire: Wire::OpenAi,
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
        wire: Wire::OpenAiCompatible,
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
        wire: Wire::AzureOpenAi,
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
    Provider {
        id: "anthropic",
        name: "Anthropic",
        wire: Wire::Anthropic,
        fields: &[
            secret("api_key", "API key (sk-ant-…), sent as x-api-key"),
            address(
                "base_url",
                Some("https://api.anthropic.com"),
                "API base URL",
            ),
        ],
    },
    Provider {
        id: "gemini",
        name: "Google Gemini",
        wire: Wire::Gemini,
        fields: &[
            secret("api_key", "Gemini API key, sent as x-goog-api-key"),
            address(
                "base_url",
                Some("https://generativelanguage.googleapis.com"),
                "API base URL",
            ),
        ],
    },
    preset!("mistral", "Mistral AI", "https://api.mistral.ai/v1"),
    preset!("groq", "Groq", "https://api.groq.com/openai/v1"),
    preset!("deepseek", "DeepSeek", "https://api.deepseek.com/v1"),
    preset!("openrouter", "OpenRouter", "https://openrouter.ai/api/v1"),
    preset!("together", "Together AI", "https://api.together.xyz/v1"),
    preset!(
        "fireworks",
        "Fireworks AI",
        "https://api.fireworks.ai/inference/v1"
    ),
    preset!("xai", "xAI", "https://api.x.ai/v1"),
];

/// The provider with this id.
pub fn find(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id)
}
