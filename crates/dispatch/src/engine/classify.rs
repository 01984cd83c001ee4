//! What a call to a provider that brought no answer means: the attempt's `outcome` label,
//! whether it counts against the credential, and what the client is told if no later attempt does better.

use super::Failure;
use crate::client::CallError;
use crate::series::AnswerClass;

/// The meaning of a call that failed before an answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Verdict {
    /// The attempt's outcome.
    pub class: AnswerClass,
    /// Whether it is a transient failure of the credential's provider (§14: cooling with a
    /// half-open trial).
    pub transient: bool,
    /// What the client gets if this is the last attempt.
    pub failure: Failure,
}

impl Verdict {
    /// No first byte within the attempt's timeout.
    pub const TIMEOUT: Verdict = Verdict {
        class: AnswerClass::Timeout,
        transient: true,
        failure: Failure::Timeout,
    };

    /// A transport error, as the client classified it.
    pub fn of(error: CallError) -> Self {
        match error {
            // Nothing was sent: the credential is fine, the address is not.
            CallError::BlockedAddress => Verdict {
                class: AnswerClass::Blocked,
                transient: false,
                failure: Failure::Blocked,
            },
            CallError::Timeout => Self::TIMEOUT,
            CallError::Unreachable => Verdict {
                class: AnswerClass::UpstreamError,
                transient: true,
                failure: Failure::Unavailable,
            },
        }
    }
}
