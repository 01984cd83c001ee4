//! Keyset pagination over (created_at, id), the order every list uses.

use chrono::{DateTime, Utc};
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

impl Page {
    /// The `LIMIT` to query: one more than asked, to know whether another page exists.
    pub(crate) fn fetch(&self) -> i64 {
        self.limit + 1
    }

    pub(crate) fn after_ts(&self) -> Option<DateTime<Utc>> {
        self.after.map(|a| a.0)
    }

    pub(crate) fn after_id(&self) -> Option<Uuid> {
        self.after.map(|a| a.1)
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
