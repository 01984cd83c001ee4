//! Keyset pagination over (created_at, id), the order every list uses.

use crate::Result;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Postgres};
use uuid::Uuid;

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Rows to return (1..=200, checked by the API layer).
    pub limit: i64,
    /// The key of the last row of the previous page, if any.
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

/// Rows that can be paged by their (created_at, id) key.
pub trait Keyed {
    /// The sort key of this row.
    fn key(&self) -> (DateTime<Utc>, Uuid);
}

/// One page of rows and the key to continue from, when there is more.
#[derive(Debug)]
pub struct Paged<T> {
    /// The rows of this page.
    pub data: Vec<T>,
    /// The key of the last row when another page follows.
    pub next: Option<(DateTime<Utc>, Uuid)>,
}

impl<T> Paged<T> {
    /// The same page with every row converted (the continuation key stays).
    pub(crate) fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            data: self.data.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

impl Page {
    /// The `LIMIT` to query: one more than asked, to know whether another page exists.
    pub(crate) fn fetch(&self) -> i64 {
        self.limit + 1
    }

    fn after_ts(&self) -> Option<DateTime<Utc>> {
        self.after.map(|a| a.0)
    }

    fn after_id(&self) -> Option<Uuid> {
        self.after.map(|a| a.1)
    }

    /// This page of `select`, a `SELECT … WHERE <condition on $1>` with `$1` bound to
    /// `scope`, ordered by `key`, as domain values.
    pub(crate) async fn list<'e, R, T, S>(
        &self,
        exec: impl PgExecutor<'e>,
        select: &str,
        scope: S,
        key: Keyset,
    ) -> Result<Paged<T>>
    where
        R: FromPgRow,
        T: From<R> + Keyed,
        S: Bind,
    {
        let Keyset {
            created_at,
            id,
            newest_first,
        } = key;
        let (after, order) = if newest_first {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let sql = format!(
            "{select} AND ($2::timestamptz IS NULL OR ({created_at}, {id}) {after} ($2, $3)) \
             ORDER BY {created_at} {order}, {id} {order} LIMIT $4"
        );
        // One row more than the page, to know whether another follows.
        let rows: Vec<R> = sqlx::query_as(&sql)
            .bind(scope)
            .bind(self.after_ts())
            .bind(self.after_id())
            .bind(self.fetch())
            .fetch_all(exec)
            .await?;
        Ok(self.finish(rows.into_iter().map(T::from).collect()))
    }

    /// Cuts the over-fetched rows down to the page and computes the continuation key.
    pub(crate) fn finish<T: Keyed>(&self, mut rows: Vec<T>) -> Paged<T> {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(Keyed::key)
        } else {
            None
        };
        Paged { data: rows, next }
    }
}

/// A row type sqlx can read from a Postgres row.
pub(crate) trait FromPgRow: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin {}
impl<R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin> FromPgRow for R {}

/// A value sqlx can bind as a Postgres parameter.
pub(crate) trait Bind:
    for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send
{
}
impl<S: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send> Bind for S {}

/// The key columns a list is ordered by, and which way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keyset {
    /// The creation-time column.
    pub created_at: &'static str,
    /// The id column (ties).
    pub id: &'static str,
    /// Newest first (the audit log) instead of oldest first.
    pub newest_first: bool,
}

impl Keyset {
    /// `created_at, id`, oldest first: most lists.
    pub(crate) const OLDEST_FIRST: Keyset = Keyset {
        created_at: "created_at",
        id: "id",
        newest_first: false,
    };
}
