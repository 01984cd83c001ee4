//! Every endpoint Rotor relays, its API family, and where it lives at each kind of provider.

use super::ProviderKind;

/// The API families Rotor serves natively (a model serves its provider's family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// OpenAI's API, also spoken by Azure OpenAI and compatible servers.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API.
    Gemini,
}

impl Family {
    /// The family's name in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::OpenAi => "openai",
            Family::Anthropic => "anthropic",
            Family::Gemini => "gemini",
        }
    }
}

/// One relayed endpoint. Endpoints that name a stored object (a Responses id) carry the rest
/// of their path in the call, after the endpoint's URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// OpenAI `POST /chat/completions`.
    ChatCompletions,
    /// OpenAI `POST /completions`.
    Completions,
    /// OpenAI `POST /embeddings`.
    Embeddings,
    /// OpenAI `POST /moderations`.
    Moderations,
    /// OpenAI `POST /images/generations`.
    ImageGenerations,
    /// OpenAI `POST /audio/speech`.
    AudioSpeech,
    /// OpenAI `POST /audio/transcriptions` (multipart).
    AudioTranscriptions,
    /// OpenAI `POST /audio/translations` (multipart).
    AudioTranslations,
    /// `POST /rerank` (Cohere/Jina shape, compatible servers).
    Rerank,
    /// OpenAI `/responses` (and `/responses/{id}…` with the rest of the path in the call).
    Responses,
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// Anthropic `POST /v1/messages/count_tokens`.
    MessagesCountTokens,
    /// Gemini `:generateContent`.
    GenerateContent,
    /// Gemini `:streamGenerateContent` (with `alt=sse`).
    StreamGenerateContent,
    /// Gemini `:countTokens`.
    CountTokens,
    /// Gemini `:embedContent`.
    EmbedContent,
    /// Gemini `:batchEmbedContents`.
    BatchEmbedContents,
}

impl Endpoint {
    /// Every endpoint, in declaration order (the index of a target's URL table).
    pub const ALL: [Endpoint; 17] = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Moderations,
        Endpoint::ImageGenerations,
        Endpoint::AudioSpeech,
        Endpoint::AudioTranscriptions,
        Endpoint::AudioTranslations,
        Endpoint::Rerank,
        Endpoint::Responses,
        Endpoint::Messages,
        Endpoint::MessagesCountTokens,
        Endpoint::GenerateContent,
        Endpoint::StreamGenerateContent,
        Endpoint::CountTokens,
        Endpoint::EmbedContent,
        Endpoint::BatchEmbedContents,
    ];

    /// Its position in [`Endpoint::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The family whose endpoint this is.
    pub fn family(self) -> Family {
        use Endpoint::*;
        match self {
            ChatCompletions | Completions | Embeddings | Moderations | ImageGenerations
            | AudioSpeech | AudioTranscriptions | AudioTranslations | Rerank | Responses => {
                Family::OpenAi
            }
            Messages | MessagesCountTokens => Family::Anthropic,
            GenerateContent
            | StreamGenerateContent
            | CountTokens
            | EmbedContent
            | BatchEmbedContents => Family::Gemini,
        }
    }

    /// The endpoint's path after an OpenAI-shaped base URL (`…/v1`).
    fn openai_path(self) -> &'static str {
        use Endpoint::*;
        match self {
            ChatCompletions => "chat/completions",
            Completions => "completions",
            Embeddings => "embeddings",
            Moderations => "moderations",
            ImageGenerations => "images/generations",
            AudioSpeech => "audio/speech",
            AudioTranscriptions => "audio/transcriptions",
            AudioTranslations => "audio/translations",
            Rerank => "rerank",
            _ => "responses",
        }
    }

    /// The Gemini method after `models/{model}:`.
    fn gemini_method(self) -> &'static str {
        use Endpoint::*;
        match self {
            StreamGenerateContent => "streamGenerateContent?alt=sse",
            CountTokens => "countTokens",
            EmbedContent => "embedContent",
            BatchEmbedContents => "batchEmbedContents",
            _ => "generateContent",
        }
    }

    /// The URL of this endpoint at a provider of `kind` at `base` (no trailing slash), for
    /// the model called `model` there; `None` when the provider does not serve it.
    pub(super) fn url(
        self,
        kind: ProviderKind,
        base: &str,
        model: &str,
        azure_api_version: &str,
    ) -> Option<String> {
        if kind.family() != self.family() {
            return None;
        }
        Some(match kind {
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
                format!("{base}/{}", self.openai_path())
            }
            // Azure serves the Responses API outside deployments; the rest per deployment.
            ProviderKind::AzureOpenAi if self == Endpoint::Responses => {
                format!("{base}/openai/responses?api-version={azure_api_version}")
            }
            ProviderKind::AzureOpenAi => format!(
                "{base}/openai/deployments/{model}/{}?api-version={azure_api_version}",
                self.openai_path()
            ),
            ProviderKind::Anthropic => match self {
                Endpoint::MessagesCountTokens => format!("{base}/v1/messages/count_tokens"),
                _ => format!("{base}/v1/messages"),
            },
            ProviderKind::Gemini => {
                format!("{base}/v1beta/models/{model}:{}", self.gemini_method())
            }
        })
    }
}
