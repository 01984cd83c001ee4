//! Compact string forms of the lifecycle records as Redis stores them, chosen so the pick
//! script reads what it needs with one `string.match` (`<circuit>|<last error>`):
//!
//! - entry circuit: `c` (closed), `r:<until>:<step>` / `t:<until>:<step>` (open, rate-limited
//!   or transient), `h:<step>:<trial until>` (half-open; 0: no trial out);
//! - credential state: `a` (available), `q:<until>:<since>` (quota), `x:<since>` (rejected);
//! - last error: empty, or `<status>:<at>:<code>` (status empty when none; code `-` when none,
//!   else `=` and the code);
//! - window (its own hash field): `<minute>:<requests>:<tokens>`.
//!
//! Anything unreadable decodes as available: a garbled value never stops a pick.

use crate::lifecycle::{
    Circuit, CoolReason, CredentialRecord, CredentialState, EntryRecord, LastError, Window,
};

/// An entry record's stored form (its window is stored apart, see [`encode_window`]).
pub fn encode_entry(record: &EntryRecord) -> String {
    let circuit = match record.circuit {
        Circuit::Closed => "c".to_owned(),
        Circuit::Open {
            reason,
            until_ms,
            step,
        } => {
            let k = match reason {
                CoolReason::RateLimited => 'r',
                CoolReason::Transient => 't',
            };
            format!("{k}:{until_ms}:{step}")
        }
        Circuit::HalfOpen {
            step,
            trial_until_ms,
        } => format!("h:{step}:{trial_until_ms}"),
    };
    format!("{circuit}|{}", encode_error(record.last_error.as_ref()))
}

/// An entry record from its stored form (window empty; unreadable parts read as available).
pub fn decode_entry(value: &str) -> EntryRecord {
    let (circuit, error) = value.split_once('|').unwrap_or((value, ""));
    EntryRecord {
        circuit: decode_circuit(circuit).unwrap_or_default(),
        window: Window::default(),
        last_error: decode_error(error),
    }
}

fn decode_circuit(s: &str) -> Option<Circuit> {
    let mut parts = s.split(':');
    let kind = parts.next()?;
    let mut num = || parts.next().and_then(|p| p.parse::<u64>().ok());
    match kind {
        "c" => Some(Circuit::Closed),
        "r" | "t" => {
            let until_ms = num()?;
            let step = u8::try_from(num()?).ok()?;
            let reason = if kind == "r" {
                CoolReason::RateLimited
            } else {
                CoolReason::Transient
            };
            Some(Circuit::Open {
                reason,
                until_ms,
                step,
            })
        }
        "h" => {
            let step = u8::try_from(num()?).ok()?;
            let trial_until_ms = num()?;
            Some(Circuit::HalfOpen {
                step,
                trial_until_ms,
            })
        }
        _ => None,
    }
}

/// A credential record's stored form.
pub fn encode_credential(record: &CredentialRecord) -> String {
    let state = match record.state {
        CredentialState::Available => "a".to_owned(),
        CredentialState::QuotaExhausted { until_ms, since_ms } => {
            format!("q:{until_ms}:{since_ms}")
        }
        CredentialState::Rejected { since_ms } => format!("x:{since_ms}"),
    };
    format!("{state}|{}", encode_error(record.last_error.as_ref()))
}

/// A credential record from its stored form (unreadable states read as available).
pub fn decode_credential(value: &str) -> CredentialRecord {
    let (state, error) = value.split_once('|').unwrap_or((value, ""));
    CredentialRecord {
        state: decode_state(state).unwrap_or_default(),
        last_error: decode_error(error),
    }
}

fn decode_state(s: &str) -> Option<CredentialState> {
    let mut parts = s.split(':');
    let kind = parts.next()?;
    let mut num = || parts.next().and_then(|p| p.parse::<u64>().ok());
    match kind {
        "a" => Some(CredentialState::Available),
        "q" => Some(CredentialState::QuotaExhausted {
            until_ms: num()?,
            since_ms: num()?,
        }),
        "x" => Some(CredentialState::Rejected { since_ms: num()? }),
        _ => None,
    }
}

fn encode_error(error: Option<&LastError>) -> String {
    let Some(e) = error else {
        return String::new();
    };
    let status = e.status.map(|s| s.to_string()).unwrap_or_default();
    let code = match &e.code {
        Some(c) => format!("={c}"),
        None => "-".to_owned(),
    };
    format!("{status}:{}:{code}", e.at_ms)
}

fn decode_error(s: &str) -> Option<LastError> {
    let mut parts = s.splitn(3, ':');
    let status = match parts.next()? {
        "" => None,
        s => Some(s.parse().ok()?),
    };
    let at_ms = parts.next()?.parse().ok()?;
    let code = match parts.next()? {
        "-" => None,
        c => Some(c.strip_prefix('=')?.to_owned()),
    };
    Some(LastError {
        status,
        code,
        at_ms,
    })
}

/// A window's stored form (written by the scripts; here for the codec tests).
#[cfg(test)]
pub fn encode_window(w: Window) -> String {
    format!("{}:{}:{}", w.minute, w.requests, w.tokens)
}

/// A window from its stored form (unreadable: empty).
pub fn decode_window(value: &str) -> Window {
    let mut parts = value.split(':').map(|p| p.parse::<u64>().ok());
    let mut next = || parts.next().flatten();
    match (next(), next(), next()) {
        (Some(minute), Some(requests), Some(tokens)) => Window {
            minute,
            requests: u32::try_from(requests).unwrap_or(u32::MAX),
            tokens,
        },
        _ => Window::default(),
    }
}

#[cfg(test)]
mod tests;
