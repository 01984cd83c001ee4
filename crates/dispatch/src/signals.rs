//! What each API family's error answers say about the credential that got them, on top of the
//! status: Anthropic's `anthropic-ratelimit-*-reset` instants, Gemini's `RetryInfo.retryDelay`
//! and `API_KEY_INVALID` in the error body.

use crate::cooldown::{self, Reason, MAX_RESET};
use crate::target::Family;
use reqwest::header::HeaderMap;
use std::time::{Duration, SystemTime};

/// The statuses whose body can change what an answer means (read before deciding).
pub fn body_matters(family: Family, status: u16) -> bool {
    family == Family::Gemini && matches!(status, 400 | 429)
}

/// The cooldown an upstream answer of `family` calls for, if any; `body` is the error body
/// when [`body_matters`], else empty.
pub fn for_answer(
    family: Family,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    cooldown_seconds: u32,
) -> Option<(Duration, Reason)> {
    let configured = Duration::from_secs(u64::from(cooldown_seconds));
    match (family, status) {
        (_, 429) => {
            let now = SystemTime::now();
            let reset = [
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
            .unwrap_or_default()
            .min(MAX_RESET);
            Some((configured.max(reset), Reason::RateLimited))
        }
        _ if rejects_key(family, status, body) => Some((configured, Reason::Rejected)),
        _ => cooldown::for_status(status, headers, cooldown_seconds),
    }
}

/// Whether an answer says the key itself is refused: 401/403 in every family, and Gemini's
/// 400 `API_KEY_INVALID` (also how credential validation reads a Gemini model list).
pub fn rejects_key(family: Family, status: u16, body: &[u8]) -> bool {
    matches!(status, 401 | 403)
        || (family == Family::Gemini && status == 400 && gemini_reason(body, "API_KEY_INVALID"))
}

/// The latest `anthropic-ratelimit-*-reset` (RFC 3339) among the limits whose `-remaining` is
/// 0: the instant the exhausted limit refills.
fn anthropic_reset(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: String| {
        headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .map(str::to_owned)
    };
    ["requests", "tokens", "input-tokens", "output-tokens"]
        .into_iter()
        .filter(|limit| {
            text(format!("anthropic-ratelimit-{limit}-remaining")).as_deref() == Some("0")
        })
        .filter_map(|limit| text(format!("anthropic-ratelimit-{limit}-reset")))
        .filter_map(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
        .filter_map(|at| SystemTime::from(at).duration_since(now).ok())
        .max()
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
    use crate::cooldown::TRANSIENT;
    use reqwest::header::{HeaderName, HeaderValue};

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
        let (d, reason) = for_answer(Family::Anthropic, 429, &h, b"", 60).unwrap();
        assert_eq!(reason, Reason::RateLimited);
        assert!((115..=120).contains(&d.as_secs()), "{d:?}");
        // The same headers mean nothing to another family; the configured cooldown holds.
        let (d, _) = for_answer(Family::OpenAi, 429, &h, b"", 60).unwrap();
        assert_eq!(d.as_secs(), 60);
        assert_eq!(
            for_answer(Family::Anthropic, 529, &HeaderMap::new(), b"", 60),
            Some((TRANSIENT, Reason::UpstreamError))
        );
    }

    #[test]
    fn gemini_retry_delay_and_invalid_keys_come_from_the_body() {
        let body = br#"{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "237s"}]}}"#;
        assert!(body_matters(Family::Gemini, 429));
        let (d, reason) = for_answer(Family::Gemini, 429, &HeaderMap::new(), body, 60).unwrap();
        assert_eq!((d.as_secs(), reason), (237, Reason::RateLimited));
        let invalid = br#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}"#;
        assert_eq!(
            for_answer(Family::Gemini, 400, &HeaderMap::new(), invalid, 60),
            Some((Duration::from_secs(60), Reason::Rejected))
        );
        let other =
            br#"{"error": {"code": 400, "message": "bad request", "status": "INVALID_ARGUMENT"}}"#;
        assert_eq!(
            for_answer(Family::Gemini, 400, &HeaderMap::new(), other, 60),
            None
        );
        assert_eq!(
            for_answer(Family::Gemini, 400, &HeaderMap::new(), b"not json", 60),
            None
        );
        assert_eq!(
            for_answer(Family::Gemini, 503, &HeaderMap::new(), b"", 60),
            Some((TRANSIENT, Reason::UpstreamError))
        );
    }
}
