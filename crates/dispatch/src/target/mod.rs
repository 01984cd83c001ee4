//! A resolved upstream target: which provider API shape to speak, where, and with which key.

mod endpoint;

pub use endpoint::{Endpoint, Family};

use http::header::{HeaderMap, HeaderName, HeaderValue, InvalidHeaderValue, AUTHORIZATION};
use http::Uri;
use std::fmt;
use url::Url;
use zeroize::Zeroizing;

/// The `anthropic-version` Anthropic gets when the client sends none.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

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
    /// Anthropic's Messages API (`x-api-key`; `anthropic-version` comes with the request).
    Anthropic,
    /// Google's Gemini API (`x-goog-api-key`, the model in the path).
    Gemini,
}

impl ProviderKind {
    /// The provider for a catalogue id.
    pub fn from_id(id: &str) -> Option<Self> {
        match id {
            "openai" => Some(ProviderKind::OpenAi),
            "openai_compatible" => Some(ProviderKind::OpenAiCompatible),
            "azure_openai" => Some(ProviderKind::AzureOpenAi),
            "anthropic" => Some(ProviderKind::Anthropic),
            "gemini" => Some(ProviderKind::Gemini),
            _ => None,
        }
    }

    /// The API family this provider speaks.
    pub fn family(self) -> Family {
        match self {
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible | ProviderKind::AzureOpenAi => {
                Family::OpenAi
            }
            ProviderKind::Anthropic => Family::Anthropic,
            ProviderKind::Gemini => Family::Gemini,
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
        let base = &self.base_url;
        match self.kind {
            ProviderKind::AzureOpenAi => {
                format!("{base}/openai/models?api-version={}", self.api_version())
            }
            ProviderKind::Anthropic => format!("{base}/v1/models"),
            ProviderKind::Gemini => format!("{base}/v1beta/models"),
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => format!("{base}/models"),
        }
    }

    fn api_version(&self) -> &str {
        self.api_version.as_deref().unwrap_or(AZURE_API_VERSION)
    }

    /// The URL of `endpoint` for the model called `upstream_model` at the provider (`None`
    /// when the endpoint is of another family).
    pub fn url(&self, endpoint: Endpoint, upstream_model: &str) -> Option<String> {
        let model = match self.kind {
            ProviderKind::AzureOpenAi => self.deployment.as_deref().unwrap_or(upstream_model),
            _ => upstream_model,
        };
        endpoint.url(self.kind, &self.base_url, model, self.api_version())
    }

    /// Adds the provider's authentication headers to `headers` (marked sensitive, so that no
    /// debug output shows them); a key that cannot go in a header is refused.
    pub fn authorize(&self, headers: &mut HeaderMap) -> Result<(), InvalidHeaderValue> {
        let secret = |value: String| {
            let mut value = HeaderValue::try_from(value)?;
            value.set_sensitive(true);
            Ok::<_, InvalidHeaderValue>(value)
        };
        let key = || secret(self.api_key.as_str().to_owned());
        match self.kind {
            ProviderKind::AzureOpenAi => {
                headers.insert(HeaderName::from_static("api-key"), key()?);
            }
            ProviderKind::Anthropic => {
                headers.insert(HeaderName::from_static("x-api-key"), key()?);
                // The client's `anthropic-version`, when it sends one, wins over this default.
                headers
                    .entry(HeaderName::from_static("anthropic-version"))
                    .or_insert(HeaderValue::from_static(ANTHROPIC_VERSION));
            }
            ProviderKind::Gemini => {
                headers.insert(HeaderName::from_static("x-goog-api-key"), key()?);
            }
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
                let bearer = secret(format!("Bearer {}", self.api_key.as_str()))?;
                headers.insert(AUTHORIZATION, bearer);
                if let Some(org) = &self.organization {
                    let org = HeaderValue::try_from(org.as_str())?;
                    headers.insert(HeaderName::from_static("openai-organization"), org);
                }
            }
        }
        Ok(())
    }
}

/// A target as one model's route calls it: the URL of each endpoint of its family is built
/// and parsed once, when the route resolves, so an attempt formats and parses nothing.
#[derive(Debug)]
pub struct ModelTarget {
    target: Target,
    /// By [`Endpoint::index`]; `None`: another family's endpoint, or a URL that does not parse
    /// (the address policy refuses what it cannot judge).
    urls: [Option<(Url, Uri)>; Endpoint::ALL.len()],
    /// The provider's authentication headers, built once (`None`: the key cannot go in a
    /// header).
    auth: Option<HeaderMap>,
}

impl ModelTarget {
    /// `target` serving the model called `upstream_model` at the provider.
    pub fn new(target: Target, upstream_model: &str) -> Self {
        let urls = Endpoint::ALL.map(|endpoint| {
            let url = Url::parse(&target.url(endpoint, upstream_model)?).ok()?;
            let uri = Uri::try_from(url.as_str()).ok()?;
            Some((url, uri))
        });
        let mut auth = HeaderMap::new();
        let auth = target.authorize(&mut auth).is_ok().then_some(auth);
        Self { target, urls, auth }
    }

    /// The provider's request shape.
    pub fn kind(&self) -> ProviderKind {
        self.target.kind
    }

    /// Where to send a request for `endpoint` (`None`: not served, or the URL does not parse).
    pub fn url(&self, endpoint: Endpoint) -> Option<&Url> {
        self.urls[endpoint.index()].as_ref().map(|(url, _)| url)
    }

    /// [`ModelTarget::url`] as the request's URI.
    pub fn uri(&self, endpoint: Endpoint) -> Option<&Uri> {
        self.urls[endpoint.index()].as_ref().map(|(_, uri)| uri)
    }

    /// [`ModelTarget::url`] with `suffix` appended to its path (`/{id}/cancel` of a stored
    /// response); a query in `suffix` (`?limit=5`) follows the URL's own (Azure's
    /// `api-version`).
    pub fn url_with(&self, endpoint: Endpoint, suffix: &str) -> Option<Url> {
        let (tail, query) = suffix.split_once('?').unwrap_or((suffix, ""));
        let mut url = self.url(endpoint)?.clone();
        let path = format!("{}{tail}", url.path());
        url.set_path(&path);
        if !query.is_empty() {
            let joined = match url.query() {
                Some(own) if !own.is_empty() => format!("{own}&{query}"),
                _ => query.to_owned(),
            };
            url.set_query(Some(&joined));
        }
        Some(url)
    }

    /// The provider's authentication headers (`None`: the key cannot go in a header).
    pub fn auth(&self) -> Option<&HeaderMap> {
        self.auth.as_ref()
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

    #[test]
    fn each_family_gets_its_own_urls_and_no_other() {
        let mut anthropic = target(ProviderKind::Anthropic, None, None);
        anthropic.base_url = "https://api.anthropic.com".to_owned();
        let t = ModelTarget::new(anthropic, "claude-sonnet-4-5");
        let url = |t: &ModelTarget, e| t.url(e).map(|u| u.as_str().to_owned());
        assert_eq!(
            url(&t, Endpoint::Messages).as_deref(),
            Some("https://api.anthropic.com/v1/messages")
        );
        assert_eq!(
            url(&t, Endpoint::MessagesCountTokens).as_deref(),
            Some("https://api.anthropic.com/v1/messages/count_tokens")
        );
        assert_eq!(url(&t, Endpoint::ChatCompletions), None);
        let mut gemini = target(ProviderKind::Gemini, None, None);
        gemini.base_url = "https://generativelanguage.googleapis.com".to_owned();
        let g = ModelTarget::new(gemini, "gemini-2.5-flash");
        assert_eq!(
            url(&g, Endpoint::StreamGenerateContent).as_deref(),
            Some("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        );
        assert_eq!(
            url(&g, Endpoint::BatchEmbedContents).as_deref(),
            Some("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:batchEmbedContents")
        );
        assert_eq!(url(&g, Endpoint::Messages), None);
        let openai = ModelTarget::new(target(ProviderKind::OpenAi, None, None), "gpt-4o");
        assert_eq!(
            openai
                .url_with(Endpoint::Responses, "/resp_1/cancel")
                .map(|u| u.to_string())
                .as_deref(),
            Some("https://llm.example/v1/responses/resp_1/cancel")
        );
        let azure = ModelTarget::new(target(ProviderKind::AzureOpenAi, None, None), "gpt-4o");
        assert_eq!(
            azure
                .url_with(Endpoint::Responses, "/resp_1")
                .map(|u| u.to_string())
                .as_deref(),
            Some("https://llm.example/v1/openai/responses/resp_1?api-version=2024-10-21")
        );
        assert_eq!(
            azure
                .url_with(Endpoint::Responses, "/resp_1/input_items?limit=5&order=asc")
                .map(|u| u.to_string())
                .as_deref(),
            Some("https://llm.example/v1/openai/responses/resp_1/input_items?api-version=2024-10-21&limit=5&order=asc")
        );
        assert_eq!(
            openai
                .url_with(Endpoint::Responses, "/resp_1?include[]=x")
                .map(|u| u.to_string())
                .as_deref(),
            Some("https://llm.example/v1/responses/resp_1?include[]=x")
        );
        assert_eq!(
            url(&azure, Endpoint::AudioTranscriptions).as_deref(),
            Some("https://llm.example/v1/openai/deployments/gpt-4o/audio/transcriptions?api-version=2024-10-21")
        );
    }
}
