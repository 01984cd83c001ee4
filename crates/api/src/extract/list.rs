//! Pagination: `?limit=&cursor=` decoded by serde_urlencoded, and the `{data, next_cursor}`
//! body of every list.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use chrono::{DateTime, Utc};
use rotor_storage::{Page, Paged};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::FromRequestParts;
    use axum::http::StatusCode;

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
