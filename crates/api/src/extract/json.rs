//! JSON bodies of the management API: the media type (415), the size (413), the syntax (400),
//! then the shape (422 naming the field); error messages never echo the input.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

/// Largest management request body.
pub const MAX_BODY: usize = 1024 * 1024;
/// Longest a management body may take to arrive (408 after).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A JSON body: `application/json` (415 otherwise), at most 1 MiB (413), well-formed (400),
/// of the right shape (422 naming the field). Error messages never echo the input.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBody(value) = JsonBody::from_request(req, state).await?;
        parse_value(value).map(ApiJson)
    }
}

/// A well-formed JSON body whose shape is checked later, with [`JsonBody::parse`]: a route
/// that names a target answers 404 for a missing target before 422 for a bad body.
pub struct JsonBody(pub serde_json::Value);

impl JsonBody {
    /// The body as `T` (422 naming the field otherwise).
    pub fn parse<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        parse_value(self.0)
    }

    /// The body as `T`, U+0000 allowed: for login, which answers such input 401 itself.
    pub fn parse_allowing_nul<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        parse_shape(self.0)
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body exceeds 1 MiB",
            )
        };
        // Refused before reading when the size is declared; else axum's body limit
        // (`DefaultBodyLimit`, set to MAX_BODY on the management router) cuts the read.
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large());
        }
        let read = Bytes::from_request(req, state);
        let bytes = tokio::time::timeout(BODY_TIMEOUT, read)
            .await
            .map_err(|_| ApiError::request_timeout())?
            .map_err(|_| too_large())?;
        Ok(JsonBody(syntax(&bytes)?))
    }
}

fn syntax(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!(
                "request body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses JSON text: 400 for malformed JSON, then 422 naming the field for a wrong shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    parse_value(syntax(bytes)?)
}

/// Converts a JSON value to `T`. Only objects are accepted at the top (never arrays read by
/// position); errors name the field and never quote the input.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if let Some(field) = nul_field(&value, "") {
        return Err(ApiError::field(&field, "must not contain U+0000"));
    }
    parse_shape(value)
}

/// The path of the first string (or object key) holding U+0000, which PostgreSQL cannot store
/// in text: `body`, `config.api_key`, `allowed_models[2]`. A key is named by its parent.
pub fn nul_field(value: &serde_json::Value, path: &str) -> Option<String> {
    let here = || {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        serde_json::Value::String(s) => s.contains('\0').then(here),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_field(v, &format!("{}[{i}]", here()))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                return Some(here());
            }
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            nul_field(v, &child)
        }),
        _ => None,
    }
}

fn parse_shape<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let (field, problem) =
            describe_data_error(&err.path().to_string(), &err.inner().to_string());
        ApiError::field(&field, problem)
    })
}

fn describe_data_error(path: &str, message: &str) -> (String, String) {
    let message = message.split(" at line ").next().unwrap_or(message);
    let join = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_owned()
        } else if path.ends_with(name) {
            path.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let quoted = |m: &str| m.split('`').nth(1).map(str::to_owned);
    if let Some(rest) = message.strip_prefix("missing field ") {
        return (join(&quoted(rest).unwrap_or_default()), "required".into());
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return (
            join(&quoted(rest).unwrap_or_default()),
            "unknown field".into(),
        );
    }
    let field = if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    match message.split_once(", expected ") {
        Some((_, expected)) => (field, format!("expected {expected}")),
        None if message.starts_with("unknown variant") => {
            let expected = message
                .split_once("expected ")
                .map(|x| x.1)
                .unwrap_or("a known value");
            (field, format!("expected {expected}"))
        }
        None => (field, "invalid value".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        n: u8,
    }

    #[test]
    fn json_errors_name_fields_without_echoing_values() {
        let e = parse_json::<Body>(br#"{"email": 5, "n": 1}"#).unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let e = parse_json::<Body>(br#"{"email": "sk-secret-value", "n": "sk-secret-value"}"#)
            .unwrap_err();
        let body = format!("{e:?}");
        assert!(!body.contains("sk-secret"), "{body}");
        assert!(body.contains("\"n\""), "{body}");
        let e = parse_json::<Body>(br#"{"n": 1}"#).unwrap_err();
        assert!(format!("{e:?}").contains("email"));
        let e = parse_json::<Body>(br#"{"email": "a", "n": 1, "x": 2}"#).unwrap_err();
        assert!(format!("{e:?}").contains("unknown field"));
        let e = parse_json::<Body>(br#"{"email": "#).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = parse_json::<Body>(br#"{"email": "a", "n": 1} trailing"#).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn nul_anywhere_is_named_by_its_field() {
        let v = serde_json::json!({"name": "ok", "config": {"api_key": "sk\0"}});
        assert_eq!(nul_field(&v, "").as_deref(), Some("config.api_key"));
        let v = serde_json::json!({"allowed_models": ["a", "b\0"]});
        assert_eq!(nul_field(&v, "").as_deref(), Some("allowed_models[1]"));
        let v = serde_json::json!({"config": {"x\0": 1}});
        assert_eq!(nul_field(&v, "").as_deref(), Some("config"));
        assert_eq!(
            nul_field(&serde_json::json!({"a": ["b", {"c": 1}]}), ""),
            None
        );
        let e = parse_json::<Body>(br#"{"email": "a\u0000", "n": 1}"#).unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
