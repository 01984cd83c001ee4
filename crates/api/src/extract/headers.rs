//! Typed request headers, parsed in one place: bearer tokens (sessions, personal tokens, API
//! keys, the metrics token) and `If-Match` version preconditions.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, IF_MATCH};
use axum::http::request::Parts;
use axum::http::HeaderMap;

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case): the one
/// parser of bearer tokens, for sessions, personal tokens, API keys and the metrics token.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The versions an `If-Match` header accepts: `None` when there is no precondition (no
/// header, or `*`), else the listed entity tags (strong or weak) that are version numbers;
/// an empty list matches no version (412).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfMatch(pub Option<Vec<i64>>);

impl IfMatch {
    /// Reads every `If-Match` header of a request.
    pub fn parse(headers: &HeaderMap) -> Self {
        let mut tags = headers
            .get_all(IF_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .peekable();
        if tags.peek().is_none() {
            return IfMatch(None);
        }
        let tags: Vec<&str> = tags.collect();
        if tags.contains(&"*") {
            return IfMatch(None);
        }
        let versions = tags
            .iter()
            .filter_map(|t| t.trim_start_matches("W/").trim_matches('"').parse().ok())
            .collect();
        IfMatch(Some(versions))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(IfMatch::parse(&parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_token_required() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        for (value, want) in [
            ("Bearer rk-1", Some("rk-1")),
            ("bearer rk-1", Some("rk-1")),
            ("BEARER  rk-1 ", Some("rk-1")),
            ("Bearer ", None),
            ("Basic abc", None),
            ("rk-1", None),
        ] {
            h.insert(AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(bearer(&h), want, "{value}");
        }
    }

    #[test]
    fn if_match_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(IfMatch::parse(&h), IfMatch(None));
        h.insert(IF_MATCH, HeaderValue::from_static("\"7\", W/\"8\""));
        assert_eq!(IfMatch::parse(&h), IfMatch(Some(vec![7, 8])));
        h.insert(IF_MATCH, HeaderValue::from_static("*"));
        assert_eq!(IfMatch::parse(&h), IfMatch(None));
        h.insert(IF_MATCH, HeaderValue::from_static("\"garbage\""));
        assert_eq!(IfMatch::parse(&h), IfMatch(Some(vec![])));
        h.append(IF_MATCH, HeaderValue::from_static("\"3\""));
        assert_eq!(IfMatch::parse(&h), IfMatch(Some(vec![3])));
    }
}
