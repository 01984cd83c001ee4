//! What each API family's error answers say about the credential that got them, on top of the
//! status: Anthropic's `anthropic-ratelimit-*-reset` instants, Gemini's `RetryInfo.retryDelay`
//! and `API_KEY_INVALID` in the error body, the `-remaining: 0` limits of any answer, the
//! quota-exhaustion bodies of every family (§14) and the upstream's own error code.

use crate::cooldown::{self, MAX_RESET};
use crate::target::Family;
use http::header::{HeaderMap, HeaderName};
use std::time::{Duration, SystemTime};

/// The longest reset a 429 of `family` announces (headers, and Gemini's `RetryInfo` in the
/// body), capped at [`MAX_RESET`]: the cooldown is `max(cooldown_seconds, this)`.
pub fn reset_of(
    family: Family,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Option<Duration> {
    [
        cooldown::reset_from_headers(headers, now),
        (family == Family::Anthropic)
            .then(|| anthropic_reset(headers, now))
            .flatten(),
        (family == Family::Gemini)
            .then(|| gemini_retry_delay(body))
            .flatten(),
    ]
    .into_iter()
    .flatten()
    .max()
    .map(|d| d.min(MAX_RESET))
}

/// When an answer (a success too) says one of the credential's limits is spent — a
/// `-remaining` header of 0 — the time until the latest such limit refills, capped at
/// [`MAX_RESET`]: Rotor cools the entry until then instead of finding out by a 429.
pub fn spent_limit_reset(family: Family, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    // Each (remaining, reset) pair of OpenAI's limits.
    const OPENAI: [(HeaderName, HeaderName); 2] = [
        (
            HeaderName::from_static("x-ratelimit-remaining-requests"),
            HeaderName::from_static("x-ratelimit-reset-requests"),
        ),
        (
            HeaderName::from_static("x-ratelimit-remaining-tokens"),
            HeaderName::from_static("x-ratelimit-reset-tokens"),
        ),
    ];
    let reset = match family {
        Family::OpenAi => OPENAI
            .iter()
            .filter(|(remaining, _)| text(headers, remaining) == Some("0"))
            .filter_map(|(_, reset)| text(headers, reset))
            .filter_map(cooldown::parse_go_duration)
            .max(),
        Family::Anthropic => anthropic_reset(headers, now),
        Family::Gemini => None,
    };
    reset.map(|d| d.min(MAX_RESET))
}

/// Whether an error answer says the credential's credit or daily quota is gone (§14): a 402
/// anywhere; OpenAI's 429 `insufficient_quota`; Anthropic's 400 "credit balance is too low";
/// Gemini's 429 whose `QuotaFailure` names a per-day quota.
pub fn exhausts_quota(family: Family, status: u16, body: &[u8]) -> bool {
    match (family, status) {
        (_, 402) => true,
        (Family::OpenAi, 429) => {
            let e = error_envelope(body);
            [e.code.as_deref(), e.kind.as_deref()].contains(&Some("insufficient_quota"))
        }
        (Family::Anthropic, 400) => error_envelope(body)
            .message
            .is_some_and(|m| m.to_ascii_lowercase().contains("credit balance is too low")),
        (Family::Gemini, 429) => gemini_details(body)
            .iter()
            .filter(|d| d.kind.ends_with("google.rpc.QuotaFailure"))
            .flat_map(|d| &d.violations)
            .any(QuotaViolation::per_day),
        _ => false,
    }
}

/// The upstream's own error code, for `last_error.code`: OpenAI's `error.code` (else its
/// `error.type`), Anthropic's `error.type`, Gemini's `ErrorInfo.reason` (else `error.status`).
/// Only short identifier-like codes count: free-form text never becomes a label.
pub fn error_code(family: Family, body: &[u8]) -> Option<String> {
    let e = error_envelope(body);
    let code = match family {
        Family::OpenAi => e.code.or(e.kind),
        Family::Anthropic => e.kind,
        Family::Gemini => gemini_details(body)
            .into_iter()
            .filter(|d| d.kind.ends_with("google.rpc.ErrorInfo"))
            .find_map(|d| d.reason)
            .or(e.status),
    };
    code.filter(|c| {
        (1..=64).contains(&c.len())
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    })
}

/// Whether an answer says the key itself is refused: 401/403 in every family, and Gemini's
/// 400 `API_KEY_INVALID` (also how credential validation reads a Gemini model list).
pub fn rejects_key(family: Family, status: u16, body: &[u8]) -> bool {
    matches!(status, 401 | 403)
        || (family == Family::Gemini && status == 400 && gemini_reason(body, "API_KEY_INVALID"))
}

/// A header's trimmed text.
fn text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The latest `anthropic-ratelimit-*-reset` (RFC 3339) among the limits whose `-remaining` is
/// 0: the instant the exhausted limit refills.
fn anthropic_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    // Each (remaining, reset) pair of Anthropic's limits.
    const ANTHROPIC: [(HeaderName, HeaderName); 4] = [
        (
            HeaderName::from_static("anthropic-ratelimit-requests-remaining"),
            HeaderName::from_static("anthropic-ratelimit-requests-reset"),
        ),
        (
            HeaderName::from_static("anthropic-ratelimit-tokens-remaining"),
            HeaderName::from_static("anthropic-ratelimit-tokens-reset"),
        ),
        (
            HeaderName::from_static("anthropic-ratelimit-input-tokens-remaining"),
            HeaderName::from_static("anthropic-ratelimit-input-tokens-reset"),
        ),
        (
            HeaderName::from_static("anthropic-ratelimit-output-tokens-remaining"),
            HeaderName::from_static("anthropic-ratelimit-output-tokens-reset"),
        ),
    ];
    ANTHROPIC
        .iter()
        .filter(|(remaining, _)| text(headers, remaining) == Some("0"))
        .filter_map(|(_, reset)| text(headers, reset))
        .filter_map(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .filter_map(|at| SystemTime::from(at).duration_since(now).ok())
        .max()
}

/// The `error` object every family wraps its errors in (OpenAI, Anthropic and Gemini alike),
/// read leniently: any field may be missing or of another type.
#[derive(Default)]
struct ErrorFields {
    code: Option<String>,
    kind: Option<String>,
    message: Option<String>,
    status: Option<String>,
}

fn error_envelope(body: &[u8]) -> ErrorFields {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ErrorFields::default();
    };
    let Some(e) = v.get("error") else {
        return ErrorFields::default();
    };
    let text = |k: &str| e.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    ErrorFields {
        code: text("code"),
        kind: text("type"),
        message: text("message"),
        status: text("status"),
    }
}

#[derive(serde::Deserialize)]
struct GeminiError {
    error: GeminiStatus,
}

#[derive(serde::Deserialize)]
struct GeminiStatus {
    #[serde(default)]
    details: Vec<GeminiDetail>,
}

#[derive(serde::Deserialize)]
struct GeminiDetail {
    #[serde(rename = "@type", default)]
    kind: String,
    #[serde(rename = "retryDelay")]
    retry_delay: Option<String>,
    reason: Option<String>,
    #[serde(default)]
    violations: Vec<QuotaViolation>,
}

/// One violation of a Gemini `QuotaFailure`.
#[derive(serde::Deserialize)]
struct QuotaViolation {
    #[serde(rename = "quotaId", default)]
    quota_id: String,
    #[serde(rename = "quotaMetric", default)]
    quota_metric: String,
}

impl QuotaViolation {
    /// A daily quota (`GenerateRequestsPerDayPerProjectPerModel-FreeTier`,
    /// `…/generate_requests_per_model_per_day`): it comes back tomorrow, not in a minute.
    fn per_day(&self) -> bool {
        self.quota_id.contains("PerDay") || self.quota_metric.contains("per_day")
    }
}

fn gemini_details(body: &[u8]) -> Vec<GeminiDetail> {
    serde_json::from_slice::<GeminiError>(body)
        .map(|e| e.error.details)
        .unwrap_or_default()
}

/// `RetryInfo.retryDelay` (`"37s"`, `"0.5s"`) of a Gemini error body.
fn gemini_retry_delay(body: &[u8]) -> Option<Duration> {
    gemini_details(body)
        .into_iter()
        .filter(|d| d.kind.ends_with("google.rpc.RetryInfo"))
        .filter_map(|d| d.retry_delay)
        .filter_map(|d| d.trim().strip_suffix('s')?.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_RESET.as_secs_f64())))
        .max()
}

/// Whether a Gemini error body carries an `ErrorInfo` with this `reason`.
fn gemini_reason(body: &[u8], reason: &str) -> bool {
    gemini_details(body)
        .iter()
        .any(|d| d.kind.ends_with("google.rpc.ErrorInfo") && d.reason.as_deref() == Some(reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn anthropic_reset_of_the_exhausted_limit_counts() {
        let at = |secs: i64| (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339();
        let h = headers(&[
            ("anthropic-ratelimit-requests-remaining", "0".into()),
            ("anthropic-ratelimit-requests-reset", at(120)),
            ("anthropic-ratelimit-tokens-remaining", "5000".into()),
            ("anthropic-ratelimit-tokens-reset", at(900)),
        ]);
        let d = reset_of(Family::Anthropic, &h, b"", SystemTime::now()).unwrap();
        assert!((115..=120).contains(&d.as_secs()), "{d:?}");
        // The same headers mean nothing to another family.
        assert_eq!(reset_of(Family::OpenAi, &h, b"", SystemTime::now()), None);
    }

    #[test]
    fn gemini_retry_delay_and_invalid_keys_come_from_the_body() {
        let body = br#"{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "237s"}]}}"#;
        let d = reset_of(Family::Gemini, &HeaderMap::new(), body, SystemTime::now()).unwrap();
        assert_eq!(d.as_secs(), 237);
        let invalid = br#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}"#;
        assert!(rejects_key(Family::Gemini, 400, invalid));
        let other =
            br#"{"error": {"code": 400, "message": "bad request", "status": "INVALID_ARGUMENT"}}"#;
        assert!(!rejects_key(Family::Gemini, 400, other));
        assert!(!rejects_key(Family::Gemini, 400, b"not json"));
        assert!(rejects_key(Family::OpenAi, 401, b""));
    }
}
