//! A provider's answer (or its absence) classified once into the trigger of §14 that it is,
//! with the reset it announces and the error to show: the only input the transitions take.

use super::LastError;
use crate::signals;
use crate::target::Family;
use http::header::HeaderMap;
use std::time::{Duration, UNIX_EPOCH};

/// What an answer means for the credential that got it (the "entered on" column of §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// 2xx: the credential works (a half-open trial succeeded).
    Success,
    /// 429 that is not about quota: the (model, credential) cools down.
    RateLimited,
    /// The credit or daily quota is gone: the credential leaves every pool for a while.
    QuotaExhausted,
    /// 401, 403, Gemini `API_KEY_INVALID`: the credential leaves every pool until recovered.
    Rejected,
    /// 5xx, 529, timeout, no connection, broken stream: cooling with a half-open trial.
    Transient,
    /// Any other answer is the caller's to see and changes nothing.
    Other,
}

impl Trigger {
    /// Whether the answer is an error worth showing as `last_error`.
    pub const fn is_error(self) -> bool {
        !matches!(self, Trigger::Success | Trigger::Other)
    }
}

/// One classified answer: the trigger, the reset it announces and the error to remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// What the answer means.
    pub trigger: Trigger,
    /// A 429's reset (cools `max(cooldown_seconds, it)`), else when a spent limit refills.
    pub reset: Option<Duration>,
    /// The upstream status (none when no answer came).
    pub status: Option<u16>,
    /// The upstream's error code from the body, when it has one.
    pub code: Option<String>,
}

impl Classified {
    /// The `last_error` this answer leaves, if it is an error.
    pub fn last_error(&self, now_ms: u64) -> Option<LastError> {
        self.trigger.is_error().then(|| LastError {
            status: self.status,
            code: self.code.clone(),
            at_ms: now_ms,
        })
    }
}

/// Whether the body must be read before classifying (quota, key and error-code bodies).
pub fn body_matters(family: Family, status: u16) -> bool {
    match status {
        400 => family != Family::OpenAi,
        401..=403 | 429 | 500..=599 => true,
        _ => false,
    }
}

/// Classifies an answer once (`body`: the error body when [`body_matters`], else empty).
pub fn classify(
    family: Family,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: u64,
) -> Classified {
    let trigger = if (200..300).contains(&status) {
        Trigger::Success
    } else if signals::exhausts_quota(family, status, body) {
        Trigger::QuotaExhausted
    } else if status == 429 {
        Trigger::RateLimited
    } else if signals::rejects_key(family, status, body) {
        Trigger::Rejected
    } else if matches!(status, 500 | 502 | 503 | 504 | 529) {
        Trigger::Transient
    } else {
        Trigger::Other
    };
    let now = UNIX_EPOCH + Duration::from_millis(now_ms);
    let reset = match trigger {
        Trigger::RateLimited => signals::reset_of(family, headers, body, now),
        _ => signals::spent_limit_reset(family, headers, now),
    };
    let code = if trigger.is_error() {
        signals::error_code(family, body)
    } else {
        None
    };
    Classified {
        trigger,
        reset,
        status: Some(status),
        code,
    }
}

/// A timeout, connect error or broken stream: transient (a refused address is no trigger at all).
pub fn transport() -> Classified {
    Classified {
        trigger: Trigger::Transient,
        reset: None,
        status: None,
        code: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderName, HeaderValue};

    const NOW: u64 = 1_800_000_000_000;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn of(family: Family, status: u16, body: &str) -> Classified {
        classify(family, status, &HeaderMap::new(), body.as_bytes(), NOW)
    }

    #[test]
    fn openai_insufficient_quota_is_quota_not_a_rate_limit() {
        let body = r#"{"error": {"message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}"#;
        let c = of(Family::OpenAi, 429, body);
        assert_eq!(c.trigger, Trigger::QuotaExhausted);
        assert_eq!(c.code.as_deref(), Some("insufficient_quota"));
        let limited = r#"{"error": {"message": "Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1.", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}"#;
        let c = of(Family::OpenAi, 429, limited);
        assert_eq!(c.trigger, Trigger::RateLimited);
        assert_eq!(c.code.as_deref(), Some("rate_limit_exceeded"));
        // The same code means nothing to another family's 429 shape, nor to an OpenAI 400.
        assert_eq!(of(Family::OpenAi, 400, body).trigger, Trigger::Other);
        assert_eq!(
            of(Family::OpenAi, 429, "not json").trigger,
            Trigger::RateLimited
        );
    }

    #[test]
    fn a_402_is_quota_in_every_family() {
        for family in [Family::OpenAi, Family::Anthropic, Family::Gemini] {
            assert_eq!(
                of(family, 402, "").trigger,
                Trigger::QuotaExhausted,
                "{family:?}"
            );
        }
    }

    #[test]
    fn anthropic_low_credit_balance_is_quota() {
        let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."},"request_id":"req_011CbrFTcXhtiMzr3s6EocF7"}"#;
        let c = of(Family::Anthropic, 400, body);
        assert_eq!(c.trigger, Trigger::QuotaExhausted);
        assert_eq!(c.code.as_deref(), Some("invalid_request_error"));
        assert!(body_matters(Family::Anthropic, 400));
        let other = r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#;
        assert_eq!(of(Family::Anthropic, 400, other).trigger, Trigger::Other);
        // Only Anthropic says it this way.
        assert_eq!(of(Family::OpenAi, 400, body).trigger, Trigger::Other);
    }

    #[test]
    fn gemini_per_day_quota_is_quota_and_per_minute_a_rate_limit() {
        let day = r#"{"error": {"code": 429, "message": "You exceeded your current quota, please check your plan and billing details.", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                 "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                 "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"}, "quotaValue": "200"}]},
              {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
              {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}"#;
        let c = of(Family::Gemini, 429, day);
        assert_eq!(c.trigger, Trigger::QuotaExhausted);
        assert_eq!(c.code.as_deref(), Some("RESOURCE_EXHAUSTED"));
        let metric = r#"{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_model_per_day", "quotaId": "GenerateRequestsPerDayPerProjectPerModel"}]}]}}"#;
        assert_eq!(
            of(Family::Gemini, 429, metric).trigger,
            Trigger::QuotaExhausted
        );
        let minute = day
            .replace("PerDay", "PerMinute")
            .replace("quotaValue\": \"200", "quotaValue\": \"15");
        let c = of(Family::Gemini, 429, &minute);
        assert_eq!(c.trigger, Trigger::RateLimited);
        assert_eq!(c.reset, Some(Duration::from_secs(37)));
        let bare = r#"{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(of(Family::Gemini, 429, bare).trigger, Trigger::RateLimited);
    }

    #[test]
    fn keys_errors_and_other_answers() {
        for status in [401, 403] {
            assert_eq!(of(Family::OpenAi, status, "").trigger, Trigger::Rejected);
        }
        let invalid = r#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}"#;
        let c = of(Family::Gemini, 400, invalid);
        assert_eq!(c.trigger, Trigger::Rejected);
        assert_eq!(c.code.as_deref(), Some("API_KEY_INVALID"));
        for status in [500, 502, 503, 504, 529] {
            assert_eq!(
                of(Family::Anthropic, status, "").trigger,
                Trigger::Transient
            );
        }
        for status in [200, 201] {
            assert_eq!(of(Family::OpenAi, status, "").trigger, Trigger::Success);
        }
        for status in [301, 400, 404, 409, 422, 501] {
            let c = of(Family::OpenAi, status, r#"{"error": {"code": "x"}}"#);
            assert_eq!(
                (c.trigger, c.last_error(NOW)),
                (Trigger::Other, None),
                "{status}"
            );
        }
        let t = transport();
        assert_eq!((t.trigger, t.status), (Trigger::Transient, None));
        // A free-form text is never taken for a code.
        let prose = r#"{"error": {"code": "this is not a code", "type": "server_error"}}"#;
        assert_eq!(of(Family::OpenAi, 500, prose).code, None);
    }

    #[test]
    fn resets_of_a_429_and_spent_limits_of_any_answer() {
        let h = headers(&[("retry-after", "120")]);
        let c = classify(Family::OpenAi, 429, &h, b"", NOW);
        assert_eq!(c.reset, Some(Duration::from_secs(120)));
        let spent = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-remaining-tokens", "1200"),
            ("x-ratelimit-reset-tokens", "59m"),
        ]);
        let c = classify(Family::OpenAi, 200, &spent, b"", NOW);
        assert_eq!(
            (c.trigger, c.reset),
            (Trigger::Success, Some(Duration::from_secs(360)))
        );
        let left = headers(&[
            ("x-ratelimit-remaining-requests", "3"),
            ("x-ratelimit-reset-requests", "6m0s"),
        ]);
        assert_eq!(classify(Family::OpenAi, 200, &left, b"", NOW).reset, None);
        let at = chrono::DateTime::from_timestamp_millis((NOW + 90_000) as i64)
            .unwrap()
            .to_rfc3339();
        let anthropic = headers(&[
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", &at),
        ]);
        let c = classify(Family::Anthropic, 200, &anthropic, b"", NOW);
        assert_eq!(c.reset, Some(Duration::from_secs(90)));
        let far = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "3h"),
        ]);
        assert_eq!(
            classify(Family::OpenAi, 200, &far, b"", NOW).reset,
            Some(Duration::from_secs(3600)),
            "capped at an hour"
        );
    }
}
