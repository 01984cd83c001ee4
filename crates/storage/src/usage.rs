//! The usage ledger: additive upserts of the gateway's per-minute counts (with an hourly
//! rollup written alongside), the usage report, and the retention sweep.

use crate::ids::*;
use crate::Result;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// What a replica adds to one ledger row (its increments since its last flush).
#[derive(Debug, Clone)]
pub struct Increment {
    /// Workspace.
    pub workspace: WorkspaceId,
    /// The gateway API key that asked.
    pub api_key: ApiKeyId,
    /// The model.
    pub model: ModelId,
    /// Its name (stored once, so the row stays readable after the model is deleted).
    pub model_name: String,
    /// The serving credential; none for Rotor's own refusals.
    pub credential: Option<CredentialId>,
    /// The UTC minute (seconds since the epoch / 60).
    pub minute: i64,
    /// Requests.
    pub requests: i64,
    /// Requests answered with a status ≥ 400.
    pub errors: i64,
    /// Input tokens, cached ones included.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cached input tokens.
    pub cached_input_tokens: i64,
}

/// Rows per statement (each statement binds one array per column, whatever its length).
const BATCH: usize = 5000;

/// Adds `rows` to the ledger, in one transaction: all of them or (on an error) none.
pub async fn add(pool: &PgPool, rows: &[Increment]) -> Result<()> {
    let mut tx = pool.begin().await?;
    for chunk in rows.chunks(BATCH) {
        let col = |f: fn(&Increment) -> i64| chunk.iter().map(f).collect::<Vec<i64>>();
        let workspaces: Vec<Uuid> = chunk.iter().map(|r| r.workspace.uuid()).collect();
        let keys: Vec<Uuid> = chunk.iter().map(|r| r.api_key.uuid()).collect();
        let models: Vec<Uuid> = chunk.iter().map(|r| r.model.uuid()).collect();
        let names: Vec<&str> = chunk.iter().map(|r| r.model_name.as_str()).collect();
        let credentials: Vec<Uuid> = chunk
            .iter()
            .map(|r| r.credential.map_or(Uuid::nil(), CredentialId::uuid))
            .collect();
        let minutes = col(|r| r.minute * 60);
        let hours = col(|r| r.minute.div_euclid(60) * 3600);
        let days = col(|r| r.minute.div_euclid(1440) * 86400);
        for (table, time, at) in [
            ("usage_minutes", "minute", &minutes),
            ("usage_hours", "hour", &hours),
            ("usage_days", "day", &days),
        ] {
            sqlx::query(&format!(
                "INSERT INTO {table} AS u (workspace_id, {time}, api_key_id, model_id, credential_id, \
                   model_name, requests, errors, input_tokens, output_tokens, cached_input_tokens) \
                 SELECT w, to_timestamp(t), k, m, c, min(n), sum(r), sum(e), sum(i), sum(o), sum(ci) \
                 FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], \
                   $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[]) \
                   AS x (w, t, k, m, c, n, r, e, i, o, ci) \
                 GROUP BY w, t, k, m, c \
                 ON CONFLICT (workspace_id, {time}, api_key_id, model_id, credential_id) DO UPDATE SET \
                   requests = u.requests + EXCLUDED.requests, errors = u.errors + EXCLUDED.errors, \
                   input_tokens = u.input_tokens + EXCLUDED.input_tokens, \
                   output_tokens = u.output_tokens + EXCLUDED.output_tokens, \
                   cached_input_tokens = u.cached_input_tokens + EXCLUDED.cached_input_tokens"
            ))
            .bind(&workspaces)
            .bind(at)
            .bind(&keys)
            .bind(&models)
            .bind(&credentials)
            .bind(&names)
            .bind(col(|r| r.requests))
            .bind(col(|r| r.errors))
            .bind(col(|r| r.input_tokens))
            .bind(col(|r| r.output_tokens))
            .bind(col(|r| r.cached_input_tokens))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// What a usage report groups its rows by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grouping {
    /// By gateway API key.
    pub api_key: bool,
    /// By model (name).
    pub model: bool,
    /// By serving credential.
    pub credential: bool,
    /// By UTC day.
    pub day: bool,
    /// By UTC hour.
    pub hour: bool,
}

/// One row of a usage report: the grouped fields (others `None`) and the sums.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageRow {
    /// The API key (grouped by `api_key`).
    pub api_key_id: Option<ApiKeyId>,
    /// Its name, while it exists.
    pub api_key_name: Option<String>,
    /// The model's name (grouped by `model`).
    pub model: Option<String>,
    /// The serving credential (grouped by `credential`; none for Rotor's own refusals).
    pub credential_id: Option<CredentialId>,
    /// Its name, while it exists.
    pub credential_name: Option<String>,
    /// The UTC day, `YYYY-MM-DD` (grouped by `day`).
    pub day: Option<String>,
    /// The UTC hour's start (grouped by `hour`).
    pub hour: Option<DateTime<Utc>>,
    /// Requests.
    pub requests: i64,
    /// Requests answered with a status ≥ 400.
    pub errors: i64,
    /// Input tokens, cached ones included.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cached input tokens.
    pub cached_input_tokens: i64,
    /// Cost at the models' current prices; none when no model of the row has a price.
    pub cost_usd: Option<f64>,
}

/// The workspace's usage in `[from, to)` grouped by `by`: a minute counts when its start is in
/// the range. Whole hours are read from the hourly rollup, the edges from the minutes.
pub async fn report(
    pool: &PgPool,
    workspace: WorkspaceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    by: Grouping,
) -> Result<Vec<UsageRow>> {
    let (first_hour, last_hour) = whole_hours(from, to);
    // Whole days from the daily rollup, unless the report is by hour or no day is whole.
    let (first_day, last_day) = match whole_days(from, to) {
        (a, b) if a < b && !by.hour => (a, b),
        _ => (first_hour, first_hour),
    };
    // Rows are summed per group (and per model, for its price) before anything is joined:
    // names and prices are looked up once per group, not once per stored row.
    let parts = [
        (by.api_key, "s.api_key_id", "api_key_id"),
        (by.model, "s.model_name", "model"),
        (by.credential, "s.credential_id", "credential_id"),
        (by.day, "date_trunc('day', s.t AT TIME ZONE 'UTC')", "day"),
        (
            by.hour,
            "date_trunc('hour', s.t AT TIME ZONE 'UTC')",
            "hour",
        ),
    ];
    let on: Vec<_> = parts.iter().filter(|p| p.0).collect();
    let mut inner_select = vec!["s.model_id".to_owned()];
    let mut inner_group = vec!["s.model_id".to_owned()];
    let mut outer = Vec::new();
    for (_, expr, name) in &on {
        inner_select.push(format!("{expr} AS {name}"));
        inner_group.push((*expr).to_owned());
        outer.push(format!("a.{name}"));
    }
    let col = |grouped: bool, expr: &str, none: &str, name: &str| {
        format!("{} AS {name}", if grouped { expr } else { none })
    };
    let columns = [
        col(by.api_key, "a.api_key_id", "NULL::uuid", "api_key_id"),
        col(by.api_key, "min(k.name)", "NULL::text", "api_key_name"),
        col(by.model, "a.model", "NULL::text", "model"),
        col(
            by.credential,
            "NULLIF(a.credential_id, '00000000-0000-0000-0000-000000000000'::uuid)",
            "NULL::uuid",
            "credential_id",
        ),
        col(
            by.credential,
            "min(c.name)",
            "NULL::text",
            "credential_name",
        ),
        col(by.day, "to_char(a.day, 'YYYY-MM-DD')", "NULL::text", "day"),
        col(
            by.hour,
            "a.hour AT TIME ZONE 'UTC'",
            "NULL::timestamptz",
            "hour",
        ),
    ];
    let (group_by, order_by) = if outer.is_empty() {
        (String::new(), String::new())
    } else {
        (
            format!("GROUP BY {}", outer.join(", ")),
            format!("ORDER BY {}", outer.join(", ")),
        )
    };
    let key_join = if by.api_key {
        "LEFT JOIN api_keys k ON k.workspace_id = $1 AND k.id = a.api_key_id"
    } else {
        ""
    };
    let credential_join = if by.credential {
        "LEFT JOIN credentials c ON c.workspace_id = $1 AND c.id = a.credential_id"
    } else {
        ""
    };
    let sql = format!(
        "WITH s AS ( \
           SELECT hour AS t, api_key_id, model_id, credential_id, model_name, requests, errors, \
                  input_tokens, output_tokens, cached_input_tokens \
           FROM usage_hours WHERE workspace_id = $1 AND hour >= $4 AND hour < $5 \
                AND (hour < $6 OR hour >= $7) \
           UNION ALL \
           SELECT day, api_key_id, model_id, credential_id, model_name, requests, errors, \
                  input_tokens, output_tokens, cached_input_tokens \
           FROM usage_days WHERE workspace_id = $1 AND day >= $6 AND day < $7 \
           UNION ALL \
           SELECT minute, api_key_id, model_id, credential_id, model_name, requests, errors, \
                  input_tokens, output_tokens, cached_input_tokens \
           FROM usage_minutes WHERE workspace_id = $1 AND minute >= $2 AND minute < $3 \
                AND (minute < $4 OR minute >= $5)), \
         a AS ( \
           SELECT {}, sum(s.requests) AS requests, sum(s.errors) AS errors, \
             sum(s.input_tokens) AS input_tokens, sum(s.output_tokens) AS output_tokens, \
             sum(s.cached_input_tokens) AS cached_input_tokens \
           FROM s GROUP BY {}) \
         SELECT {}, sum(a.requests)::bigint AS requests, sum(a.errors)::bigint AS errors, \
           sum(a.input_tokens)::bigint AS input_tokens, sum(a.output_tokens)::bigint AS output_tokens, \
           sum(a.cached_input_tokens)::bigint AS cached_input_tokens, \
           CASE WHEN bool_or(m.input_usd_per_mtok IS NOT NULL OR m.output_usd_per_mtok IS NOT NULL) \
             THEN (sum(a.input_tokens * coalesce(m.input_usd_per_mtok, 0) \
                     + a.output_tokens * coalesce(m.output_usd_per_mtok, 0)) / 1000000)::float8 \
           END AS cost_usd \
         FROM a \
         LEFT JOIN models m ON m.workspace_id = $1 AND m.id = a.model_id \
         {key_join} {credential_join} \
         {group_by} HAVING count(*) > 0 {order_by}",
        inner_select.join(", "),
        inner_group.join(", "),
        columns.join(", ")
    );
    let rows = sqlx::query_as::<_, UsageRow>(&sql)
        .bind(workspace)
        .bind(from)
        .bind(to)
        .bind(first_hour)
        .bind(last_hour)
        .bind(first_day)
        .bind(last_day)
        .fetch_all(pool)
        .await?;
    Ok(rows)
}

/// The first whole hour at or after `from` and the end of the last whole hour before `to`
/// (the first may be after the second: then no whole hour lies in the range).
fn whole_hours(from: DateTime<Utc>, to: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    whole(from, to, 3600)
}

/// [`whole_hours`] for UTC days.
fn whole_days(from: DateTime<Utc>, to: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    whole(from, to, 86_400)
}

fn whole(from: DateTime<Utc>, to: DateTime<Utc>, unit: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    let floor = |t: DateTime<Utc>| t.timestamp().div_euclid(unit) * unit;
    let from_floor = floor(from);
    let first = if from.timestamp() == from_floor && from.timestamp_subsec_nanos() == 0 {
        from_floor
    } else {
        from_floor + unit
    };
    let at = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or(from);
    (at(first), at(floor(to)))
}

/// What a key used in a month (`usage_this_month`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, serde::Serialize, utoipa::ToSchema, sqlx::FromRow,
)]
pub struct MonthUsage {
    /// Requests.
    pub requests: i64,
    /// Input tokens, cached ones included.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cost at the models' current prices; null when none of the models it used is priced.
    pub cost_usd: Option<f64>,
}

/// The usage of each of `keys` (workspace, key) since `since` (a month's start: whole days),
/// from the daily rollup. Keys without usage are missing.
pub async fn since(
    pool: &PgPool,
    keys: &[(WorkspaceId, ApiKeyId)],
    since: DateTime<Utc>,
) -> Result<Vec<(ApiKeyId, MonthUsage)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let workspaces: Vec<Uuid> = keys.iter().map(|k| k.0.uuid()).collect();
    let ids: Vec<Uuid> = keys.iter().map(|k| k.1.uuid()).collect();
    #[derive(sqlx::FromRow)]
    struct Row {
        api_key_id: ApiKeyId,
        #[sqlx(flatten)]
        usage: MonthUsage,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT h.api_key_id, sum(h.requests)::bigint AS requests, \
           sum(h.input_tokens)::bigint AS input_tokens, sum(h.output_tokens)::bigint AS output_tokens, \
           CASE WHEN bool_or(m.input_usd_per_mtok IS NOT NULL OR m.output_usd_per_mtok IS NOT NULL) \
             THEN (sum(h.input_tokens * coalesce(m.input_usd_per_mtok, 0) \
                     + h.output_tokens * coalesce(m.output_usd_per_mtok, 0)) / 1000000)::float8 \
           END AS cost_usd \
         FROM unnest($1::uuid[], $2::uuid[]) AS k (w, id) \
         JOIN usage_days h ON h.workspace_id = k.w AND h.day >= $3 AND h.api_key_id = k.id \
         LEFT JOIN models m ON m.workspace_id = h.workspace_id AND m.id = h.model_id \
         GROUP BY h.api_key_id",
    )
    .bind(&workspaces)
    .bind(&ids)
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.api_key_id, r.usage)).collect())
}

/// Deletes rows older than `before`, a bounded batch at a time; returns how many went.
pub async fn purge(pool: &PgPool, before: DateTime<Utc>) -> Result<u64> {
    let mut gone = 0;
    for (table, time) in [
        ("usage_minutes", "minute"),
        ("usage_hours", "hour"),
        ("usage_days", "day"),
    ] {
        loop {
            let done = sqlx::query(&format!(
                "DELETE FROM {table} WHERE ctid IN \
                 (SELECT ctid FROM {table} WHERE {time} < $1 LIMIT 10000)"
            ))
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected();
            gone += done;
            if done < 10000 {
                break;
            }
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn whole_hours_round_inwards() {
        let (a, b) = whole_hours(t("2026-12-01T10:10:00Z"), t("2026-12-01T13:20:00Z"));
        assert_eq!(
            (a, b),
            (t("2026-12-01T11:00:00Z"), t("2026-12-01T13:00:00Z"))
        );
        let (a, b) = whole_hours(t("2026-12-01T10:00:00Z"), t("2026-12-01T12:00:00Z"));
        assert_eq!(
            (a, b),
            (t("2026-12-01T10:00:00Z"), t("2026-12-01T12:00:00Z"))
        );
        let (a, b) = whole_hours(t("2026-12-01T10:10:00Z"), t("2026-12-01T10:50:00Z"));
        assert!(a > b);
        let (a, b) = whole_days(t("2026-12-01T10:10:00Z"), t("2026-12-04T13:20:00Z"));
        assert_eq!(
            (a, b),
            (t("2026-12-02T00:00:00Z"), t("2026-12-04T00:00:00Z"))
        );
    }
}
