//! How long a rate-limited credential rests: the reset a provider announces in `Retry-After`
//! (seconds or an HTTP date), `retry-after-ms`, or OpenAI's `x-ratelimit-reset-requests`/
//! `-tokens` (`6m0s`, `20ms`), capped at an hour (§5.4); and the first transient cooldown.

use http::header::HeaderMap;
use std::time::{Duration, SystemTime};

/// Longest cooldown a provider's reset header can impose.
pub const MAX_RESET: Duration = Duration::from_secs(3600);
/// Cooldown after a server error, connect error, timeout or broken stream.
pub const TRANSIENT: Duration = Duration::from_secs(10);

/// The longest reset any of the provider's headers announces, capped at [`MAX_RESET`].
pub fn reset_from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let mut resets = Vec::new();
    if let Some(v) = text("retry-after") {
        if let Ok(secs) = v.parse::<f64>() {
            if secs.is_finite() && secs >= 0.0 {
                resets.push(Duration::from_secs_f64(secs.min(MAX_RESET.as_secs_f64())));
            }
        } else if let Ok(at) = httpdate::parse_http_date(v) {
            resets.push(at.duration_since(now).unwrap_or_default());
        }
    }
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            resets.push(Duration::from_secs_f64(
                (ms / 1000.0).min(MAX_RESET.as_secs_f64()),
            ));
        }
    }
    for name in ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"] {
        if let Some(d) = text(name).and_then(parse_go_duration) {
            resets.push(d);
        }
    }
    resets.into_iter().max().map(|d| d.min(MAX_RESET))
}

/// Parses OpenAI's reset durations: `6m0s`, `20ms`, `1.5s`, `1h2m3s`.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" | "" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    total
        .is_finite()
        .then(|| Duration::from_secs_f64(total.min(MAX_RESET.as_secs_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn every_reset_header_form() {
        let now = SystemTime::now();
        assert_eq!(
            reset_from_headers(&headers(&[("retry-after", "120")]), now),
            Some(Duration::from_secs(120))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(90));
        let d = reset_from_headers(&headers(&[("retry-after", &date)]), now).unwrap();
        assert!(
            d > Duration::from_secs(88) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        assert_eq!(
            reset_from_headers(&headers(&[("retry-after-ms", "1500")]), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            reset_from_headers(&headers(&[("x-ratelimit-reset-requests", "6m0s")]), now),
            Some(Duration::from_secs(360))
        );
        assert_eq!(
            reset_from_headers(&headers(&[("x-ratelimit-reset-tokens", "20ms")]), now),
            Some(Duration::from_millis(20))
        );
        assert_eq!(
            reset_from_headers(&headers(&[("retry-after", "99999")]), now),
            Some(MAX_RESET)
        );
        assert_eq!(
            reset_from_headers(&headers(&[("retry-after", "soon")]), now),
            None
        );
        assert_eq!(
            parse_go_duration("1m2.5s"),
            Some(Duration::from_secs_f64(62.5))
        );
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Some(MAX_RESET),
            "capped at an hour"
        );

        assert_eq!(parse_go_duration("x"), None);
    }
}
