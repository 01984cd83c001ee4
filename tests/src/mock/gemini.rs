//! The Gemini API (Google AI) as the mock speaks it, under `/v1beta` and `/v1`:
//! `POST models/{model}:generateContent`, `:streamGenerateContent` (`?alt=sse`: `data:`
//! chunks; without it a streamed JSON array), `:countTokens`, `:embedContent`,
//! `:batchEmbedContents`, and `GET models[/{model}]`. Matched against the official
//! `google-genai` Python SDK (`tests/it/mock_families.rs`) and Google's observed answers:
//!
//! - the key in `x-goog-api-key` or `?key=` (without one, 403 `PERMISSION_DENIED` "Method
//!   doesn't allow unregistered callers", or 401 `UNAUTHENTICATED` for a Bearer token);
//! - JSON answers and errors are pretty-printed with two-space indents, SSE chunks are one
//!   line each (`{"a": 1,"b": 2}`) ended by `\r\n\r\n`, as Google's front ends write them;
//! - errors are `{"error": {"code", "message", "status", "details"}}`, the details of
//!   `google.rpc` types: 429 `RESOURCE_EXHAUSTED` with `QuotaFailure`, `Help` and (scripted by
//!   [`MockKey::gemini_retry_delay`](super::MockKey::gemini_retry_delay)) `RetryInfo`; 400
//!   `API_KEY_INVALID` word for word; 403 `CONSUMER_SUSPENDED`, whose message names the key
//!   as Google's does; 503 `UNAVAILABLE`. Each ends with a `DebugInfo` detail holding the body
//!   canary;
//! - streamed chunks carry `usageMetadata` with the prompt count only; the last adds
//!   `finishReason` and the full counts;
//! - `batchEmbedContents` requires each inner request's `model` to be the path's (as the
//!   API documents; the mock's wording of that 400).

use super::json::{arr, n, obj, s, J};
use super::{id_chars, next_serial, paced, respond, Incoming, BODY_CANARY};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

const TEXT: &str = "Hello from the mock.";
const PROMPT_TOKENS: u64 = 5;
const CANDIDATES_TOKENS: u64 = 7;
const JSON: &str = "application/json; charset=UTF-8";
const SERVICE: &str = "generativelanguage.googleapis.com";

/// `v1beta` or `v1`, and what follows it, of a Gemini path.
fn split_version(path: &str) -> Option<(&str, &str)> {
    ["v1beta", "v1"].into_iter().find_map(|v| {
        let rest = path.strip_prefix('/')?.strip_prefix(v)?;
        (rest.is_empty() || rest.starts_with('/')).then(|| (v, rest.trim_start_matches('/')))
    })
}

/// The `{model}` and `{method}` of `/{version}/models/{model}[:{method}]`.
fn model_and_method(path: &str) -> Option<(&str, Option<&str>)> {
    let rest = split_version(path)?.1.strip_prefix("models/")?;
    let (model, method) = match rest.split_once(':') {
        Some((m, method)) => (m, Some(method)),
        None => (rest, None),
    };
    (!model.is_empty()).then_some((model, method))
}

/// The `{model}` of a Gemini path.
pub(super) fn path_model(path: &str) -> Option<String> {
    model_and_method(path).map(|(m, _)| m.to_owned())
}

/// The `model` of each inner request of a `batchEmbedContents` body.
pub(super) fn inner_models(json: Option<&serde_json::Value>) -> Vec<String> {
    json.and_then(|j| j.get("requests"))
        .and_then(|r| r.as_array())
        .map(|requests| {
            requests
                .iter()
                .filter_map(|r| r.get("model").and_then(|m| m.as_str()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A request without a Gemini key, refused before any script applies.
pub(super) fn refusal(req: &Incoming) -> Option<Response> {
    if req.header("x-goog-api-key").is_some() || req.query_param("key").is_some() {
        return None;
    }
    Some(if req.header("authorization").is_some() {
        unauthenticated()
    } else {
        error(
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            Vec::new(),
        )
    })
}

/// The `status` word Google pairs with an HTTP status.
fn status_word(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        500..=599 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

fn error_info(reason: &str, metadata: J) -> J {
    obj([
        ("@type", s("type.googleapis.com/google.rpc.ErrorInfo")),
        ("reason", s(reason)),
        ("domain", s("googleapis.com")),
        ("metadata", metadata),
    ])
}

fn localized(message: &str) -> J {
    obj([
        (
            "@type",
            s("type.googleapis.com/google.rpc.LocalizedMessage"),
        ),
        ("locale", s("en-US")),
        ("message", s(message)),
    ])
}

/// `1500` ms as a protobuf JSON duration: `"1.500s"` (`"37s"` when whole).
fn duration(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

/// The error object `{"error": {...}}`, its details ending with the canary.
fn error_json(status: StatusCode, message: &str, mut details: Vec<J>) -> J {
    details.push(obj([
        ("@type", s("type.googleapis.com/google.rpc.DebugInfo")),
        ("detail", s(BODY_CANARY)),
    ]));
    obj([(
        "error",
        obj([
            ("code", n(u64::from(status.as_u16()))),
            ("message", s(message)),
            ("status", s(status_word(status))),
            ("details", J::Arr(details)),
        ]),
    )])
}

fn error(status: StatusCode, message: &str, details: Vec<J>) -> Response {
    respond(status, JSON, error_json(status, message, details).pretty())
}

/// The scripted error `status` as Google answers it.
pub(super) fn error_answer(status: StatusCode, req: &Incoming) -> Response {
    let model = req.model.as_deref().unwrap_or("gemini-mock");
    let key = req.key.as_deref().unwrap_or_default();
    let mut r = match status.as_u16() {
        400 if req.script.api_key_invalid => {
            let message = "API key not valid. Please pass a valid API key.";
            let info = error_info("API_KEY_INVALID", obj([("service", s(SERVICE))]));
            error(status, message, vec![info, localized(message)])
        }
        400 => error(status, "Request contains an invalid argument.", Vec::new()),
        401 => unauthenticated(),
        403 => {
            let message = format!("Permission denied: Consumer 'api_key:{key}' has been suspended.");
            let info = error_info(
                "CONSUMER_SUSPENDED",
                obj([
                    ("consumer", s("projects/895908428397")),
                    ("service", s(SERVICE)),
                    ("containerInfo", s(format!("api_key:{key}"))),
                ]),
            );
            error(status, &message, vec![info, localized(&message)])
        }
        404 => error(
            status,
            &format!("models/{model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods."),
            Vec::new(),
        ),
        429 => quota_exceeded(model, req.script.gemini_retry_delay_ms),
        500 => error(
            status,
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            Vec::new(),
        ),
        503 => error(status, "The model is overloaded. Please try again later.", Vec::new()),
        504 => error(status, "The request timed out. Please try again.", Vec::new()),
        _ => error(
            status,
            status.canonical_reason().unwrap_or("Error"),
            Vec::new(),
        ),
    };
    if let Some(v) = req
        .script
        .retry_after
        .and_then(|n| HeaderValue::from_str(&n.to_string()).ok())
    {
        r.headers_mut().insert("retry-after", v);
    }
    r
}

/// 401 `UNAUTHENTICATED`, as for a Bearer token that is no Google credential.
fn unauthenticated() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        Vec::new(),
    )
}

/// The free tier's per-minute quota, spent.
fn quota_exceeded(model: &str, retry_delay_ms: Option<u64>) -> Response {
    let metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests";
    let mut message = format!(
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/usage?tab=rate-limit. \n* Quota exceeded for metric: {metric}, limit: 10, model: {model}"
    );
    let mut details = vec![
        obj([
            ("@type", s("type.googleapis.com/google.rpc.QuotaFailure")),
            (
                "violations",
                arr([obj([
                    ("quotaMetric", s(metric)),
                    (
                        "quotaId",
                        s("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
                    ),
                    (
                        "quotaDimensions",
                        obj([("location", s("global")), ("model", s(model))]),
                    ),
                    ("quotaValue", s("10")),
                ])]),
            ),
        ]),
        obj([
            ("@type", s("type.googleapis.com/google.rpc.Help")),
            (
                "links",
                arr([obj([
                    ("description", s("Learn more about Gemini API quotas")),
                    (
                        "url",
                        s("https://ai.google.dev/gemini-api/docs/rate-limits"),
                    ),
                ])]),
            ),
        ]),
    ];
    if let Some(ms) = retry_delay_ms {
        message.push_str(&format!("\nPlease retry in {}.", duration(ms)));
        details.push(obj([
            ("@type", s("type.googleapis.com/google.rpc.RetryInfo")),
            ("retryDelay", s(duration(ms))),
        ]));
    }
    error(StatusCode::TOO_MANY_REQUESTS, &message, details)
}

/// A 400 `INVALID_ARGUMENT` for a malformed request body.
fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message, Vec::new())
}

/// The answer to a request the script lets through.
pub(super) fn answer(req: &Incoming) -> Response {
    let Some((version, rest)) = split_version(&req.path) else {
        return not_found(&req.path);
    };
    if rest == "models" {
        return respond(StatusCode::OK, JSON, models().pretty());
    }
    let Some((model, method)) = model_and_method(&req.path) else {
        return not_found(&req.path);
    };
    let body = |name: &str| req.json.as_ref().and_then(|j| j.get(name));
    match method {
        None => respond(StatusCode::OK, JSON, model_info(model).pretty()),
        Some("generateContent" | "streamGenerateContent") if body("contents").is_none() => {
            let request = if method == Some("generateContent") {
                "GenerateContentRequest"
            } else {
                "StreamGenerateContentRequest"
            };
            invalid(&format!(
                "* {request}.contents: contents is not specified\n"
            ))
        }
        Some("generateContent") => {
            let response = candidate_chunk(model, &response_id(), TEXT, Some(CANDIDATES_TOKENS));
            respond(StatusCode::OK, JSON, response.pretty())
        }
        Some("streamGenerateContent") => stream(req, model),
        Some("countTokens") => {
            let body = obj([
                ("totalTokens", n(PROMPT_TOKENS)),
                ("promptTokensDetails", prompt_details()),
            ]);
            respond(StatusCode::OK, JSON, body.pretty())
        }
        Some("embedContent") if body("content").is_none() => {
            invalid("* EmbedContentRequest.content: content is not specified\n")
        }
        Some("embedContent") => {
            let body = obj([("embedding", embedding())]);
            respond(StatusCode::OK, JSON, body.pretty())
        }
        Some("batchEmbedContents") => batch_embed(req, model),
        Some(other) => not_found(&format!("/{version}/models/{model}:{other}")),
    }
}

fn not_found(path: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!("Method not found: {path}"),
        Vec::new(),
    )
}

fn embedding() -> J {
    obj([("values", arr([J::Float(0.1), J::Float(0.2), J::Float(0.3)]))])
}

fn batch_embed(req: &Incoming, model: &str) -> Response {
    let requests = req
        .json
        .as_ref()
        .and_then(|j| j.get("requests"))
        .and_then(|r| r.as_array());
    let Some(requests) = requests.filter(|r| !r.is_empty()) else {
        return invalid("* BatchEmbedContentsRequest.requests: requests is not specified\n");
    };
    let want = format!("models/{model}");
    for (i, r) in requests.iter().enumerate() {
        let inner = r.get("model").and_then(|m| m.as_str()).unwrap_or_default();
        if inner != want {
            return invalid(&format!(
                "* BatchEmbedContentsRequest.requests[{i}].model: model '{inner}' does not match the model of the request, '{want}'\n"
            ));
        }
    }
    let body = obj([("embeddings", arr(requests.iter().map(|_| embedding())))]);
    respond(StatusCode::OK, JSON, body.pretty())
}

fn response_id() -> String {
    id_chars(next_serial(), 22)
}

fn prompt_details() -> J {
    arr([obj([
        ("modality", s("TEXT")),
        ("tokenCount", n(PROMPT_TOKENS)),
    ])])
}

/// A `GenerateContentResponse`: `candidates` tokens so far when it is the last (it then has
/// `finishReason` and the full usage), else only the prompt's count.
fn candidate_chunk(model: &str, id: &str, text: &str, candidates: Option<u64>) -> J {
    let mut candidate = vec![(
        "content",
        obj([
            ("parts", arr([obj([("text", s(text))])])),
            ("role", s("model")),
        ]),
    )];
    let mut usage = vec![("promptTokenCount", n(PROMPT_TOKENS))];
    if let Some(c) = candidates {
        candidate.push(("finishReason", s("STOP")));
        usage.push(("candidatesTokenCount", n(c)));
        usage.push(("totalTokenCount", n(PROMPT_TOKENS + c)));
    } else {
        usage.push(("totalTokenCount", n(PROMPT_TOKENS)));
    }
    candidate.push(("index", n(0)));
    usage.push(("promptTokensDetails", prompt_details()));
    obj([
        ("candidates", arr([J::Obj(candidate)])),
        ("usageMetadata", J::Obj(usage)),
        ("modelVersion", s(model)),
        ("responseId", s(id)),
    ])
}

fn stream(req: &Incoming, model: &str) -> Response {
    let script = &req.script;
    let chunks = script.chunks.unwrap_or(3);
    let id = response_id();
    let mut objects: Vec<J> = (0..chunks.max(1))
        .map(|i| {
            let text = if chunks == 0 {
                String::new()
            } else {
                format!("tok{i} ")
            };
            let last = i + 1 >= chunks;
            candidate_chunk(model, &id, &text, last.then_some(chunks))
        })
        .collect();
    if let Some(n) = script.error_after {
        // A failure after the stream started: Google sends the error object as a chunk.
        objects.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        objects.push(error_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            Vec::new(),
        ));
    }
    if req.query_param("alt").as_deref() == Some("sse") {
        let events = objects
            .iter()
            .map(|o| format!("data: {}\r\n\r\n", o.google_compact()))
            .collect();
        return respond(StatusCode::OK, "text/event-stream", paced(events, script));
    }
    // Without `alt=sse`: one JSON array, its elements sent as they come.
    let last = objects.len().saturating_sub(1);
    let events = objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let open = if i == 0 { "[" } else { "" };
            let close = if i == last { "\n]" } else { "\n,\r\n" };
            format!("{open}{}{close}", o.pretty())
        })
        .collect();
    respond(StatusCode::OK, JSON, paced(events, script))
}

fn model_json(name: &str, version: &str, display: &str, description: &str, embed: bool) -> J {
    let mut fields = vec![
        ("name", s(format!("models/{name}"))),
        ("version", s(version)),
        ("displayName", s(display)),
        ("description", s(description)),
    ];
    if embed {
        fields.extend([
            ("inputTokenLimit", n(2048)),
            ("outputTokenLimit", n(1)),
            ("supportedGenerationMethods", arr([s("embedContent")])),
        ]);
    } else {
        fields.extend([
            ("inputTokenLimit", n(1_048_576)),
            ("outputTokenLimit", n(8192)),
            (
                "supportedGenerationMethods",
                arr([s("generateContent"), s("countTokens")]),
            ),
            ("temperature", n(1)),
            ("topP", J::Float(0.95)),
            ("topK", n(40)),
            ("maxTemperature", n(2)),
        ]);
    }
    J::Obj(fields)
}

fn model_info(model: &str) -> J {
    let embed = model.contains("embedding");
    model_json(model, "001", model, "A model of the mock.", embed)
}

/// One page of models (no `nextPageToken`); the canary stands in a description.
fn models() -> J {
    obj([(
        "models",
        arr([
            model_json(
                "gemini-2.0-flash",
                "2.0",
                "Gemini 2.0 Flash",
                "Gemini 2.0 Flash",
                false,
            ),
            model_json(
                "text-embedding-004",
                "004",
                "Text Embedding 004",
                BODY_CANARY,
                true,
            ),
        ]),
    )])
}
