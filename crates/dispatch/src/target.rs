//! A resolved upstream target: which provider API shape to speak, where, and with which key.

use std::fmt;
use url::Url;
use zeroize::Zeroizing;

/// The `api-version` Azure gets when the credential names none.
const AZURE_API_VERSION: &str = "2024-10-21";

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

/// Which OpenAI endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/chat/completions`.
    ChatCompletions,
    /// `/embeddings`.
    Embeddings,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat/completions",
            Endpoint::Embeddings => "embeddings",
        }
    }
}

impl Target {
    /// The URL that lists models (used to validate a credential).
    pub fn models_url(&self) -> String {
        match self.kind {
            ProviderKind::AzureOpenAi => format!(
                "{}/openai/models?api-version={}",
                self.base_url,
                self.api_version.as_deref().unwrap_or(AZURE_API_VERSION)
            ),
            _ => format!("{}/models", self.base_url),
        }
    }

    /// The URL of `endpoint` for the model called `upstream_model` at the provider.
    pub fn url(&self, endpoint: Endpoint, upstream_model: &str) -> String {
        match self.kind {
            ProviderKind::AzureOpenAi => format!(
                "{}/openai/deployments/{}/{}?api-version={}",
                self.base_url,
                self.deployment.as_deref().unwrap_or(upstream_model),
                endpoint.path(),
                self.api_version.as_deref().unwrap_or(AZURE_API_VERSION),
            ),
            _ => format!("{}/{}", self.base_url, endpoint.path()),
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

/// A target as one model's route calls it: the URL of each endpoint is built and parsed once,
/// when the route resolves, so an attempt formats and parses nothing.
#[derive(Debug)]
pub struct ModelTarget {
    target: Target,
    /// `None`: the URL does not parse, and the address policy refuses what it cannot judge.
    chat_completions: Option<Url>,
    embeddings: Option<Url>,
}

impl ModelTarget {
    /// `target` serving the model called `upstream_model` at the provider.
    pub fn new(target: Target, upstream_model: &str) -> Self {
        let url = |endpoint| Url::parse(&target.url(endpoint, upstream_model)).ok();
        Self {
            chat_completions: url(Endpoint::ChatCompletions),
            embeddings: url(Endpoint::Embeddings),
            target,
        }
    }

    /// Where to send a request for `endpoint` (`None` when the URL does not parse).
    pub fn url(&self, endpoint: Endpoint) -> Option<&Url> {
        match endpoint {
            Endpoint::ChatCompletions => self.chat_completions.as_ref(),
            Endpoint::Embeddings => self.embeddings.as_ref(),
        }
    }

    /// Adds the provider's authentication headers.
    pub fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        self.target.authorize(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: ProviderKind, deployment: Option<&str>, api_version: Option<&str>) -> Target {
        Target {
            kind,
            base_url: "https://llm.example/v1".to_owned(),
            api_key: Zeroizing::new("sk".to_owned()),
            organization: None,
            api_version: api_version.map(str::to_owned),
            deployment: deployment.map(str::to_owned),
        }
    }

    #[test]
    fn each_endpoint_url_is_built_once_for_the_model() {
        let openai = ModelTarget::new(target(ProviderKind::OpenAi, None, None), "gpt-4o");
        let url = |t: &ModelTarget, e| t.url(e).map(Url::as_str).map(str::to_owned);
        assert_eq!(
            url(&openai, Endpoint::ChatCompletions).as_deref(),
            Some("https://llm.example/v1/chat/completions")
        );
        assert_eq!(
            url(&openai, Endpoint::Embeddings).as_deref(),
            Some("https://llm.example/v1/embeddings")
        );
        let azure = ModelTarget::new(target(ProviderKind::AzureOpenAi, None, None), "gpt-4o");
        assert_eq!(
            url(&azure, Endpoint::ChatCompletions).as_deref(),
            Some("https://llm.example/v1/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21")
        );
        let named = target(ProviderKind::AzureOpenAi, Some("prod"), Some("2025-01-01"));
        assert_eq!(
            url(&ModelTarget::new(named, "gpt-4o"), Endpoint::Embeddings).as_deref(),
            Some(
                "https://llm.example/v1/openai/deployments/prod/embeddings?api-version=2025-01-01"
            )
        );
        let mut broken = target(ProviderKind::OpenAiCompatible, None, None);
        broken.base_url = "not a url".to_owned();
        assert_eq!(
            ModelTarget::new(broken, "m").url(Endpoint::Embeddings),
            None
        );
    }
}
