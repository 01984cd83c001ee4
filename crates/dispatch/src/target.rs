//! A resolved upstream target: which provider API shape to speak, where, and with which key.

use std::fmt;
use zeroize::Zeroizing;

/// The request shapes Rotor speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// api.openai.com (Bearer key, optional OpenAI-Organization).
    OpenAi,
    /// Any server speaking OpenAI's API at `base_url` (Bearer key).
    OpenAiCompatible,
    /// Azure OpenAI (`api-key` header, deployments in the URL, `api-version` query).
    AzureOpenAi,
}

impl ProviderKind {
    /// The provider for a catalogue id.
    pub fn from_id(id: &str) -> Option<Self> {
        match id {
            "openai" => Some(ProviderKind::OpenAi),
            "openai_compatible" => Some(ProviderKind::OpenAiCompatible),
            "azure_openai" => Some(ProviderKind::AzureOpenAi),
            _ => None,
        }
    }
}

/// Where and how to call one credential's provider.
#[derive(Clone)]
pub struct Target {
    /// Request shape.
    pub kind: ProviderKind,
    /// `base_url` (OpenAI shapes) or `endpoint` (Azure), without a trailing slash.
    pub base_url: String,
    /// The provider key.
    pub api_key: Zeroizing<String>,
    /// OpenAI organization header.
    pub organization: Option<String>,
    /// Azure `api-version`.
    pub api_version: Option<String>,
    /// Azure deployment (defaults to the model's upstream name).
    pub deployment: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &"****")
            .finish_non_exhaustive()
    }
}

impl Target {
    /// The URL that lists models (used to validate a credential).
    pub fn models_url(&self) -> String {
        match self.kind {
            ProviderKind::AzureOpenAi => format!(
                "{}/openai/models?api-version={}",
                self.base_url,
                self.api_version.as_deref().unwrap_or("2024-10-21")
            ),
            _ => format!("{}/models", self.base_url),
        }
    }

    /// Adds the provider's authentication headers.
    pub fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.kind {
            ProviderKind::AzureOpenAi => req.header("api-key", self.api_key.as_str()),
            _ => {
                let req = req.bearer_auth(self.api_key.as_str());
                match &self.organization {
                    Some(org) => req.header("OpenAI-Organization", org),
                    None => req,
                }
            }
        }
    }
}
