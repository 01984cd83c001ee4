//! A key's own limits (DESIGN §15): its monthly budgets against the ledger's spend, checked
//! here; its minute rates handed to dispatch, which admits them in the request's first pick
//! (one Redis round trip for both, so they hold across replicas). A limit refuses a request
//! once the usage before it has reached the limit; a refused request is not counted against a
//! rate.

use super::cache::KeyInfo;
use super::error::GatewayError;
use crate::ledger::{month_of, month_start};
use crate::state::AppState;
use axum::http::StatusCode;
use rotor_dispatch::engine::UsageTag;
use rotor_dispatch::lifecycle::Limits;
use rotor_dispatch::state::ClientAdmit;

/// Refuses the request of `key` tagged `tag` when a monthly budget is spent.
pub fn admit(state: &AppState, key: &KeyInfo, tag: &UsageTag) -> Result<(), GatewayError> {
    let l = key.limits;
    if key.budgeted() {
        let spent = state.ledger().spent(key.id, tag.minute);
        let tokens = l.monthly_token_budget.is_some_and(|b| spent.tokens >= b);
        let usd = l.monthly_budget_usd.is_some_and(|b| spent.usd >= b);
        if tokens || usd {
            let what = if tokens { "token" } else { "US dollar" };
            let resets = month_start(month_of(tag.minute) + 1);
            metrics::counter!("rotor_api_key_refusals_total", "reason" => "budget_exceeded")
                .increment(1);
            return Err(GatewayError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "api_key_budget_exceeded",
                format!(
                    "this API key has spent its monthly {what} budget; it resets at {}",
                    resets.format("%Y-%m-%dT%H:%M:%SZ")
                ),
            )
            .no_retry());
        }
    }
    Ok(())
}

/// The key's per-minute limits for dispatch to admit (none when it has no rate limit).
pub fn client(key: &KeyInfo) -> Option<ClientAdmit> {
    let l = key.limits;
    (l.rpm.is_some() || l.tpm.is_some()).then(|| ClientAdmit {
        workspace: key.workspace_id,
        key: key.id,
        limits: Limits {
            rpm: l.rpm.and_then(|r| u32::try_from(r).ok()),
            tpm: l.tpm.and_then(|t| u64::try_from(t).ok()),
        },
    })
}
