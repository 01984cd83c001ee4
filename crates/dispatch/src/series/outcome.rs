//! The `outcome` label of requests and attempts: the class of an answer, as a closed enum.

/// The `outcome` label: the class of an answer. A closed set, so a label can never be
/// misspelt into a series nobody reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerClass {
    /// 2xx/3xx.
    Ok,
    /// A 4xx that is the caller's to see.
    ClientError,
    /// 429, or every credential cooling down.
    RateLimited,
    /// 5xx, an unreachable provider, a rejected or unreadable credential.
    UpstreamError,
    /// No answer in time.
    Timeout,
    /// The address policy refused the provider.
    Blocked,
}

impl AnswerClass {
    /// Every outcome, in declaration order (the order of a series' outcome counters).
    pub const ALL: [AnswerClass; 6] = [
        AnswerClass::Ok,
        AnswerClass::ClientError,
        AnswerClass::RateLimited,
        AnswerClass::UpstreamError,
        AnswerClass::Timeout,
        AnswerClass::Blocked,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            AnswerClass::Ok => "ok",
            AnswerClass::ClientError => "client_error",
            AnswerClass::RateLimited => "rate_limited",
            AnswerClass::UpstreamError => "upstream_error",
            AnswerClass::Timeout => "timeout",
            AnswerClass::Blocked => "blocked",
        }
    }

    /// The class of an upstream answer with `status`.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=399 => AnswerClass::Ok,
            429 => AnswerClass::RateLimited,
            400..=499 => AnswerClass::ClientError,
            _ => AnswerClass::UpstreamError,
        }
    }

    /// Its position in [`AnswerClass::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_sits_at_its_index() {
        for (i, c) in AnswerClass::ALL.into_iter().enumerate() {
            assert_eq!(c.index(), i, "{c:?}");
        }
    }

    #[test]
    fn statuses_fall_into_their_class() {
        for (status, class) in [
            (200, AnswerClass::Ok),
            (302, AnswerClass::Ok),
            (400, AnswerClass::ClientError),
            (404, AnswerClass::ClientError),
            (429, AnswerClass::RateLimited),
            (500, AnswerClass::UpstreamError),
            (529, AnswerClass::UpstreamError),
            (101, AnswerClass::UpstreamError),
        ] {
            assert_eq!(AnswerClass::of_status(status), class, "{status}");
        }
    }
}
