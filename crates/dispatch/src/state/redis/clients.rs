//! Client windows in Redis: one hash per API key under its own hash tag, admitted by one
//! script call (check and count in one round trip) and counted by the tokens script.

use super::keys::{client_window, CLIENT_FIELD};
use super::{RedisState, WINDOW_TTL_MS};
use crate::lifecycle::{Limits, MINUTE_MS};
use crate::state::clients::ClientWindows;
use uuid::Uuid;

impl ClientWindows for RedisState {
    async fn admit(&self, client: Uuid, limits: Limits, now_ms: u64) -> Result<(), u64> {
        let key = client_window(client);
        let minute = now_ms / MINUTE_MS;
        let mut inv = self.scripts.admit.key(&key);
        inv.arg(CLIENT_FIELD)
            .arg(minute)
            .arg(limits.rpm.unwrap_or(0))
            .arg(limits.tpm.unwrap_or(0))
            .arg(WINDOW_TTL_MS);
        match self.call::<i64>("admit", inv).await {
            Some(1) => {
                // Counted here too, so a fallback keeps most of the minute's count.
                let _ = self
                    .fallback
                    .clients()
                    .admit(client, Limits::default(), now_ms)
                    .await;
                Ok(())
            }
            Some(_) => Err((minute + 1).saturating_mul(MINUTE_MS)),
            None => self.fallback.clients().admit(client, limits, now_ms).await,
        }
    }

    async fn count_client_tokens(&self, client: Uuid, tokens: u64, now_ms: u64) {
        self.fallback
            .clients()
            .count_client_tokens(client, tokens, now_ms)
            .await;
        let key = client_window(client);
        let mut inv = self.scripts.tokens.key(&key);
        inv.arg(CLIENT_FIELD)
            .arg(now_ms / MINUTE_MS)
            .arg(tokens)
            .arg(WINDOW_TTL_MS);
        let _ = self.call::<i64>("count_client_tokens", inv).await;
    }
}
