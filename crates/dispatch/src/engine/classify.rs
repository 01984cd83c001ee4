//! What a call to a provider that brought no answer means: the attempt's `outcome` label, the
//! cooldown it triggers, and what the client is told if no later attempt does better.

use super::Failure;
use crate::client::CallError;
use crate::cooldown::{Reason, TRANSIENT};
use crate::series::AnswerClass;
use std::time::Duration;

/// The meaning of a call that failed before an answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Verdict {
    /// The attempt's outcome.
    pub class: AnswerClass,
    /// The cooldown it triggers, if any.
    pub cooldown: Option<(Duration, Reason)>,
    /// What the client gets if this is the last attempt.
    pub failure: Failure,
}

impl Verdict {
    /// No first byte within the attempt's timeout.
    pub const TIMEOUT: Verdict = Verdict {
        class: AnswerClass::Timeout,
        cooldown: Some((TRANSIENT, Reason::Timeout)),
        failure: Failure::Timeout,
    };

    /// A transport error, as the client classified it.
    pub fn of(error: CallError) -> Self {
        match error {
            // Nothing was sent: the credential is fine, the address is not.
            CallError::BlockedAddress => Verdict {
                class: AnswerClass::Blocked,
                cooldown: None,
                failure: Failure::Blocked,
            },
            CallError::Timeout => Self::TIMEOUT,
            CallError::Unreachable => Verdict {
                class: AnswerClass::UpstreamError,
                cooldown: Some((TRANSIENT, Reason::Unreachable)),
                failure: Failure::Unavailable,
            },
        }
    }
}
