//! Request extractors that enforce the error precedence of DESIGN §11: authentication (401),
//! workspace membership (404), role (403), then the body (413/415/400/422), then target ids.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use chrono::{DateTime, Utc};
use rotor_storage::{MemberWorkspace, Page, Paged, Role, User};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

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

/// A well-formed JSON body whose shape is checked later, with [`JsonBody::parse`]: routes
/// that name a target id answer 404 for a missing target before 422 for a bad body (§11).
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

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
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
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large());
        }
        let read = axum::body::to_bytes(req.into_body(), MAX_BODY);
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

/// The signed-in user, from a session JWT or a personal access token (`rp-…`).
#[derive(Clone)]
pub struct AuthUser(pub User);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let user = if token.starts_with("rp-") {
            rotor_storage::tokens::authenticate(state.db(), &crate::auth::sha256(token)).await?
        } else {
            let claims = state
                .jwt()
                .verify(token)
                .ok_or_else(ApiError::unauthorized)?;
            rotor_storage::users::get(state.db(), claims.sub)
                .await?
                .filter(|u| u.token_version == claims.ver)
        };
        let user = AuthUser(user.ok_or_else(ApiError::unauthorized)?);
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case): the one
/// parser of bearer tokens, for sessions, personal tokens, API keys and the metrics token.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// What a route demands of the caller's role in the workspace.
pub trait RoleRequirement {
    /// Whether `role` satisfies it.
    fn allows(role: Role) -> bool;
}

/// Any member may (read access).
pub struct AnyRole;
impl RoleRequirement for AnyRole {
    fn allows(_: Role) -> bool {
        true
    }
}

/// Owners and admins only (write access).
pub struct Manager;
impl RoleRequirement for Manager {
    fn allows(role: Role) -> bool {
        role.can_manage()
    }
}

/// The caller as a member of the workspace in the `{ws}` path segment, with a role `R` allows.
/// Not a member, no such workspace or not a UUID: 404. Member with too weak a role: 403.
pub struct Member<R = AnyRole> {
    /// The signed-in user.
    pub user: User,
    /// The workspace, as the user sees it (with their role).
    pub workspace: MemberWorkspace,
    _role: PhantomData<R>,
}

impl<R: RoleRequirement> FromRequestParts<AppState> for Member<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        let ws = params
            .iter()
            .find(|(k, _)| *k == "ws")
            .map(|(_, v)| v)
            .ok_or_else(ApiError::not_found)?;
        let ws = Uuid::parse_str(ws).map_err(|_| ApiError::not_found())?;
        let workspace = rotor_storage::workspaces::get_for_member(state.db(), ws, user.id)
            .await?
            .ok_or_else(ApiError::not_found)?;
        if !R::allows(workspace.role) {
            return Err(ApiError::forbidden());
        }
        Ok(Member {
            user,
            workspace,
            _role: PhantomData,
        })
    }
}

/// An instance administrator (403 for other signed-in users).
pub struct InstanceAdmin(pub User);

impl FromRequestParts<AppState> for InstanceAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "instance administrators only",
            ));
        }
        Ok(InstanceAdmin(user))
    }
}

/// Every path parameter, for handlers to read target ids after the body was checked.
pub struct PathIds(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found())?;
        Ok(PathIds(
            params
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ))
    }
}

impl PathIds {
    /// The UUID in path segment `name`; anything else is a 404 (no such resource).
    pub fn uuid(&self, name: &str) -> Result<Uuid, ApiError> {
        self.0
            .get(name)
            .and_then(|v| Uuid::parse_str(v).ok())
            .ok_or_else(ApiError::not_found)
    }
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The raw `?limit=&cursor=`, decoded by serde_urlencoded; unknown parameters are ignored.
#[derive(serde::Deserialize)]
struct RawListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(raw) =
            axum::extract::Query::<RawListQuery>::try_from_uri(&parts.uri)
                .map_err(|_| ApiError::field("query", "not a valid query string"))?;
        let limit = raw
            .limit
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|n| (1..=200).contains(n))
                    .ok_or_else(|| ApiError::field("limit", "must be an integer from 1 to 200"))
            })
            .transpose()?;
        Ok(ListQuery {
            limit,
            cursor: raw.cursor,
        })
    }
}

impl ListQuery {
    /// The storage page this query asks for (422 for a cursor we did not issue).
    pub fn page(&self) -> Result<Page, ApiError> {
        let after =
            match &self.cursor {
                None => None,
                Some(c) if c.is_empty() => None,
                Some(c) => Some(decode_cursor(c).ok_or_else(|| {
                    ApiError::field("cursor", "not a cursor returned by this API")
                })?),
            };
        Ok(Page {
            limit: self.limit.unwrap_or(50),
            after,
        })
    }
}

fn decode_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (micros, id) = raw.split_once(':')?;
    let ts = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((ts, Uuid::parse_str(id).ok()?))
}

fn encode_cursor((ts, id): (DateTime<Utc>, Uuid)) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}:{}",
        ts.timestamp_micros(),
        id
    ))
}

/// The body of every list: a page of `data` and the cursor of the next page, if any.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Pass as `?cursor=` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> From<Paged<T>> for List<T> {
    fn from(p: Paged<T>) -> Self {
        List {
            data: p.data,
            next_cursor: p.next.map(encode_cursor),
        }
    }
}

/// The client's address: the TCP peer, or the `X-Forwarded-For` client when the peer is a
/// trusted proxy (`ROTOR_TRUSTED_PROXIES`).
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let trusted = |ip: &IpAddr| {
            state
                .config()
                .trusted_proxies
                .iter()
                .any(|n| n.contains(ip))
        };
        if !trusted(&peer) {
            return Ok(ClientAddr(peer));
        }
        // Walk X-Forwarded-For from the right, skipping our own proxies.
        let forwarded: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let client = forwarded
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .copied()
            .unwrap_or(peer);
        Ok(ClientAddr(client))
    }
}

/// Collects field problems so one 422 can name them all.
#[derive(Default)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    /// Records a problem with `field`.
    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| problem.into());
    }

    /// 422 when any problem was recorded.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }

    /// Checks a required display name: trimmed, 1 to `max` characters, no control characters.
    pub fn name(&mut self, field: &str, value: &str, max: usize) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.add(field, "must not be empty");
        } else if trimmed.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        } else if trimmed.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
        trimmed.to_owned()
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

    #[tokio::test]
    async fn list_queries_are_decoded_by_the_library() {
        let parse = |uri: &'static str| async move {
            let (mut parts, _) = axum::http::Request::builder()
                .uri(uri)
                .body(())
                .unwrap()
                .into_parts();
            ListQuery::from_request_parts(&mut parts, &()).await
        };
        let q = parse("/x?limit=5&cursor=a%2Bb+c&other=1").await.unwrap();
        assert_eq!((q.limit, q.cursor.as_deref()), (Some(5), Some("a+b c")));
        let q = parse("/x").await.unwrap();
        assert_eq!((q.limit, q.cursor), (None, None));
        for bad in ["/x?limit=0", "/x?limit=201", "/x?limit=ten", "/x?limit=%FF"] {
            let e = parse(bad).await.unwrap_err();
            assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let key = (
            DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            Uuid::new_v4(),
        );
        let q = ListQuery {
            limit: None,
            cursor: Some(encode_cursor(key)),
        };
        assert_eq!(q.page().unwrap().after, Some(key));
        let q = ListQuery {
            limit: None,
            cursor: Some("garbage!".into()),
        };
        assert!(q.page().is_err());
    }
}
