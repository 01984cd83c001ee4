//! Per-client (gateway API key) request and token windows per UTC minute: a key's `rpm` and
//! `tpm` hold across the whole pool and, through Redis, across replicas. In-process here.

use super::ClientAdmit;
use crate::lifecycle::Window;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use uuid::Uuid;

/// Where the clients' minute windows live.
pub trait ClientWindows: Send + Sync + 'static {
    /// Admits a request of `client` under its limits at `now_ms` and counts it in its minute;
    /// `Err(until_ms)` (nothing counted) while the minute is full, `until_ms` the next one's start.
    fn admit(
        &self,
        client: ClientAdmit,
        now_ms: u64,
    ) -> impl Future<Output = Result<(), u64>> + Send;

    /// Counts the tokens a finished request of `client` (of `workspace`) reported (for its `tpm`).
    fn count_client_tokens(
        &self,
        workspace: Uuid,
        client: Uuid,
        tokens: u64,
        now_ms: u64,
    ) -> impl Future<Output = ()> + Send;
}

/// The windows of this process. Only keys with a limit have one; a window of an earlier minute
/// is worth nothing, so the map is swept of them when it grows past the keys that use it.
#[derive(Default)]
pub struct MemoryClients {
    windows: Mutex<HashMap<Uuid, Window>>,
}

/// Windows kept before a sweep of past minutes' (one per limited key is the steady state).
const SWEEP_AT: usize = 10_000;

impl MemoryClients {
    fn with<T>(&self, client: Uuid, now_ms: u64, f: impl FnOnce(&mut Window) -> T) -> T {
        let mut map = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= SWEEP_AT && !map.contains_key(&client) {
            map.retain(|_, w| w.at(now_ms) == *w);
        }
        f(map.entry(client).or_default())
    }

    /// [`ClientWindows::admit`], synchronously (the in-process pick calls it under no lock).
    pub fn admit_now(&self, client: ClientAdmit, now_ms: u64) -> Result<(), u64> {
        self.with(client.key, now_ms, |w| {
            match w.full_until(client.limits, now_ms) {
                Some(until) => Err(until),
                None => {
                    w.count_request(now_ms);
                    Ok(())
                }
            }
        })
    }

    /// Whether the tokens this process counted for `client` this minute reach its `tpm`.
    pub fn tokens_full(&self, client: ClientAdmit, now_ms: u64) -> bool {
        let Some(tpm) = client.limits.tpm else {
            return false;
        };
        self.with(client.key, now_ms, |w| w.at(now_ms).tokens >= tpm)
    }

    /// [`ClientWindows::count_client_tokens`], synchronously.
    pub fn count_now(&self, client: Uuid, tokens: u64, now_ms: u64) {
        self.with(client, now_ms, |w| w.count_tokens(tokens, now_ms));
    }
}

impl ClientWindows for MemoryClients {
    async fn admit(&self, client: ClientAdmit, now_ms: u64) -> Result<(), u64> {
        self.admit_now(client, now_ms)
    }

    async fn count_client_tokens(&self, _: Uuid, client: Uuid, tokens: u64, now_ms: u64) {
        self.count_now(client, tokens, now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{Limits, MINUTE_MS};

    fn admit(key: Uuid, limits: Limits) -> ClientAdmit {
        ClientAdmit {
            workspace: Uuid::nil(),
            key,
            limits,
        }
    }

    #[tokio::test]
    async fn a_full_minute_refuses_until_the_next() {
        let c = MemoryClients::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let rpm = Limits {
            rpm: Some(2),
            tpm: None,
        };
        let t0 = 10 * MINUTE_MS + 5;
        assert_eq!(c.admit(admit(a, rpm), t0).await, Ok(()));
        assert_eq!(c.admit(admit(a, rpm), t0 + 1).await, Ok(()));
        assert_eq!(c.admit(admit(a, rpm), t0 + 2).await, Err(11 * MINUTE_MS));
        // Another key has its own window; the next minute is empty again.
        assert_eq!(c.admit(admit(b, rpm), t0 + 3).await, Ok(()));
        assert_eq!(c.admit(admit(a, rpm), 11 * MINUTE_MS).await, Ok(()));
    }

    #[tokio::test]
    async fn tokens_fill_the_minute_once_reached() {
        let c = MemoryClients::default();
        let a = Uuid::new_v4();
        let tpm = Limits {
            rpm: None,
            tpm: Some(100),
        };
        let t0 = 3 * MINUTE_MS;
        assert_eq!(c.admit(admit(a, tpm), t0).await, Ok(()));
        c.count_client_tokens(Uuid::nil(), a, 99, t0 + 1).await;
        assert_eq!(
            c.admit(admit(a, tpm), t0 + 2).await,
            Ok(()),
            "under the limit"
        );
        c.count_client_tokens(Uuid::nil(), a, 1, t0 + 3).await;
        assert_eq!(c.admit(admit(a, tpm), t0 + 4).await, Err(4 * MINUTE_MS));
        // Tokens of an earlier minute do not count.
        c.count_client_tokens(Uuid::nil(), a, 1_000, t0 - MINUTE_MS)
            .await;
        assert_eq!(c.admit(admit(a, tpm), 4 * MINUTE_MS).await, Ok(()));
    }
}
