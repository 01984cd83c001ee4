//! Client windows in Redis: one hash per API key under its workspace's hash tag. A request is
//! admitted by the pick's own script call (or, without a pick, by one script call); the tokens
//! of finished requests are summed here and added every [`FLUSH_EVERY`] by the tokens script,
//! one call per key, off the request path.

use super::keys::client_window;
use super::{RedisState, WINDOW_TTL_MS};
use crate::lifecycle::{Limits, MINUTE_MS};
use crate::state::clients::ClientWindows;
use crate::state::ClientAdmit;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, Weak};
use std::time::Duration;
use uuid::Uuid;

/// How often counted client tokens are added in Redis (how late another replica sees them).
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Tokens by (workspace, client, minute) not yet added in Redis.
#[derive(Default)]
pub struct Pending(Mutex<HashMap<(Uuid, Uuid, u64), u64>>);

/// Adds the pending tokens every [`FLUSH_EVERY`] while the state lives.
pub fn spawn_flusher(state: Weak<RedisState>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(FLUSH_EVERY).await;
            let Some(state) = state.upgrade() else { break };
            state.flush_client_tokens().await;
        }
    });
}

impl RedisState {
    /// Adds every pending token count in Redis (dropped when Redis is down: the in-process
    /// windows counted them already).
    pub async fn flush_client_tokens(&self) {
        let taken = std::mem::take(
            &mut *self
                .client_tokens
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for ((workspace, client, minute), tokens) in taken {
            let key = client_window(workspace, client);
            let mut inv = self.scripts.client_tokens.key(&key);
            inv.arg(minute).arg(tokens).arg(WINDOW_TTL_MS);
            let _ = self.call::<i64>("count_client_tokens", inv).await;
        }
    }
}

impl ClientWindows for RedisState {
    async fn admit(&self, client: ClientAdmit, now_ms: u64) -> Result<(), u64> {
        let key = client_window(client.workspace, client.key);
        let minute = now_ms / MINUTE_MS;
        let mut inv = self.scripts.admit.key(&key);
        inv.arg(minute)
            .arg(client.limits.rpm.unwrap_or(0))
            .arg(client.limits.tpm.unwrap_or(0))
            .arg(WINDOW_TTL_MS);
        match self.call::<i64>("admit", inv).await {
            Some(1) => {
                // Counted here too, so a fallback keeps most of the minute's count.
                let counted = ClientAdmit {
                    limits: Limits::default(),
                    ..client
                };
                let _ = self.fallback.clients().admit_now(counted, now_ms);
                Ok(())
            }
            Some(_) => Err((minute + 1).saturating_mul(MINUTE_MS)),
            None => self.fallback.clients().admit_now(client, now_ms),
        }
    }

    async fn count_client_tokens(&self, workspace: Uuid, client: Uuid, tokens: u64, now_ms: u64) {
        self.fallback.clients().count_now(client, tokens, now_ms);
        let minute = now_ms / MINUTE_MS;
        let mut pending = self
            .client_tokens
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *pending.entry((workspace, client, minute)).or_default() += tokens;
    }
}
