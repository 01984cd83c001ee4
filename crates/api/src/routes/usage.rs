//! A workspace's usage (DESIGN §15): the ledger summed over a range of at most 92 days,
//! grouped by API key, model, credential, day and/or hour, as JSON or CSV. Every member reads it.

use crate::error::{ApiError, ApiResult};
use crate::extract::Member;
use crate::responses::{Authed, Scoped};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use rotor_storage::usage::{Grouping, UsageRow};
use rotor_storage::{ApiKeyId, CredentialId};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod csv;

/// Longest range one report covers.
const MAX_RANGE_DAYS: i64 = 92;
/// The range without `from`/`to`.
const DEFAULT_RANGE_DAYS: i64 = 30;

/// `/workspaces/{ws}/usage`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_usage))
}

/// `?from=&to=&group_by=&format=`, decoded by serde_urlencoded; checked by [`Report::of`].
#[derive(Debug, Default, serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Start of the range, RFC 3339 (default: `to` minus 30 days); a minute counts when its
    /// start is in `[from, to)`.
    #[param(format = DateTime, example = "2026-11-01T00:00:00Z")]
    pub from: Option<String>,
    /// End of the range, RFC 3339, exclusive (default: now); at most 92 days after `from`.
    #[param(format = DateTime, example = "2026-12-01T00:00:00Z")]
    pub to: Option<String>,
    /// Comma-separated, any of `api_key`, `model`, `credential`, `day`, `hour` (default `day`).
    #[param(example = "api_key,model,day")]
    pub group_by: Option<String>,
    /// `json` (default) or `csv` (`text/csv` with a header row).
    #[param(example = "csv")]
    pub format: Option<String>,
}

/// A checked query: the range, the grouping and whether CSV was asked for.
struct Report {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    by: Grouping,
    csv: bool,
}

fn time(field: &str, value: Option<String>) -> ApiResult<Option<DateTime<Utc>>> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::field(field, "must be an RFC 3339 timestamp"))
        })
        .transpose()
}

fn grouping(value: Option<&str>) -> ApiResult<Grouping> {
    let mut by = Grouping::default();
    let value = value.filter(|v| !v.is_empty()).unwrap_or("day");
    for part in value.split(',').map(str::trim) {
        let flag = match part {
            "api_key" => &mut by.api_key,
            "model" => &mut by.model,
            "credential" => &mut by.credential,
            "day" => &mut by.day,
            "hour" => &mut by.hour,
            _ => {
                return Err(ApiError::field(
                    "group_by",
                    "must list api_key, model, credential, day or hour, comma-separated",
                ))
            }
        };
        *flag = true;
    }
    Ok(by)
}

impl Report {
    fn of(raw: UsageQuery, now: DateTime<Utc>) -> ApiResult<Report> {
        let from = time("from", raw.from)?;
        let to = time("to", raw.to)?;
        let (from, to) = match (from, to) {
            (Some(f), Some(t)) => (f, t),
            (Some(f), None) => (f, now.min(f + Duration::days(MAX_RANGE_DAYS))),
            (None, Some(t)) => (t - Duration::days(DEFAULT_RANGE_DAYS), t),
            (None, None) => (now - Duration::days(DEFAULT_RANGE_DAYS), now),
        };
        if from >= to {
            return Err(ApiError::field("from", "must be before `to`"));
        }
        if to - from > Duration::days(MAX_RANGE_DAYS) {
            return Err(ApiError::field(
                "to",
                "must be at most 92 days after `from`",
            ));
        }
        let csv = match raw.format.as_deref() {
            None | Some("") | Some("json") => false,
            Some("csv") => true,
            Some(_) => return Err(ApiError::field("format", "must be json or csv")),
        };
        let by = grouping(raw.group_by.as_deref())?;
        Ok(Report { from, to, by, csv })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for UsageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<UsageQuery>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .map_err(|_| ApiError::field("query", "not a valid query string"))
    }
}

/// One row of the report: the fields it is grouped by, then the sums.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    /// The API key (grouped by `api_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<ApiKeyId>,
    /// Its name (grouped by `api_key`; null once the key is deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_name: Option<Option<String>>,
    /// The model's name (grouped by `model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The serving credential (grouped by `credential`; null for Rotor's own refusals).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub credential_id: Option<Option<CredentialId>>,
    /// Its name (grouped by `credential`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub credential_name: Option<Option<String>>,
    /// The UTC day, `YYYY-MM-DD` (grouped by `day`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-12-01")]
    pub day: Option<String>,
    /// The UTC hour's start (grouped by `hour`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour: Option<DateTime<Utc>>,
    /// Gateway requests that named the model.
    pub requests: i64,
    /// Those answered with a status ≥ 400 (Rotor's own refusals included).
    pub errors: i64,
    /// Input tokens, cached ones included.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Input tokens read from the provider's prompt cache.
    pub cached_input_tokens: i64,
    /// Cost at the models' current prices (cached input at the input price); null when no
    /// model of the row has a price (unpriced models add nothing).
    pub cost_usd: Option<f64>,
}

/// The report: `{data: [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    /// Rows, ordered by their group fields.
    pub data: Vec<UsageView>,
}

fn view(by: Grouping, r: UsageRow) -> UsageView {
    UsageView {
        api_key_id: r.api_key_id.filter(|_| by.api_key),
        api_key_name: by.api_key.then_some(r.api_key_name),
        model: r.model.filter(|_| by.model),
        credential_id: by.credential.then_some(r.credential_id),
        credential_name: by.credential.then_some(r.credential_name),
        day: r.day.filter(|_| by.day),
        hour: r.hour.filter(|_| by.hour),
        requests: r.requests,
        errors: r.errors,
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cached_input_tokens: r.cached_input_tokens,
        cost_usd: r.cost_usd,
    }
}

/// The workspace's usage (every member).
#[utoipa::path(get, path = "/workspaces/{ws}/usage", tag = "usage", security(("bearer" = [])),
    params(("ws" = Uuid, Path, description = "workspace id"), UsageQuery), responses(
    (status = 200, description = "the report; with `format=csv`, CSV with a header row",
        content((UsageReport = "application/json"), (String = "text/csv"))),
    (status = 422, body = crate::error::ErrorBody, description = "validation_failed (from, to, group_by or format)"),
    Authed, Scoped,
))]
pub async fn get_usage(
    State(state): State<AppState>,
    member: Member,
    query: UsageQuery,
) -> ApiResult<Response> {
    let report = Report::of(query, Utc::now())?;
    let rows = rotor_storage::usage::report(
        state.db(),
        member.workspace.id,
        report.from,
        report.to,
        report.by,
    )
    .await?;
    let data: Vec<UsageView> = rows.into_iter().map(|r| view(report.by, r)).collect();
    if report.csv {
        let mut r = csv::render(report.by, &data).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        return Ok(r);
    }
    Ok(Json(UsageReport { data }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(from: Option<&str>, to: Option<&str>, group_by: Option<&str>) -> UsageQuery {
        UsageQuery {
            from: from.map(Into::into),
            to: to.map(Into::into),
            group_by: group_by.map(Into::into),
            format: None,
        }
    }

    #[test]
    fn ranges_default_to_thirty_days_and_stop_at_ninety_two() {
        let now: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        let r = Report::of(raw(None, None, None), now).unwrap();
        assert_eq!((r.to - r.from).num_days(), 30);
        assert!(r.by.day && !r.by.hour);
        let far = raw(
            Some("2026-01-01T00:00:00Z"),
            Some("2026-06-01T00:00:00Z"),
            None,
        );
        assert_eq!(Report::of(far, now).err().unwrap().status(), 422);
        let backwards = raw(
            Some("2026-02-01T00:00:00Z"),
            Some("2026-01-01T00:00:00Z"),
            None,
        );
        assert!(Report::of(backwards, now).is_err());
        assert!(Report::of(raw(None, None, Some("day,week")), now).is_err());
        let all = Report::of(raw(None, None, Some("api_key,model,credential,hour")), now).unwrap();
        assert!(all.by.api_key && all.by.model && all.by.credential && all.by.hour && !all.by.day);
    }
}
