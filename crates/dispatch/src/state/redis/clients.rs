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

/// Most requests of a client one lease holds.
pub const MAX_LEASE: u32 = 100;
/// How long a lease is used before the client's window is read again: another replica's tokens
/// (and a lowered limit) are seen within it.
pub const LEASE_FOR_MS: u64 = 1_000;

/// Requests of a client's minute reserved in Redis for this replica, admitted without a call.
#[derive(Debug, Clone, Copy)]
struct Lease {
    minute: u64,
    left: u32,
    limits: Limits,
    until_ms: u64,
}

/// This replica's leases, by API key.
#[derive(Default)]
pub struct Leases(Mutex<HashMap<Uuid, Lease>>);

/// What to do with a request of a client: admitted on its lease, or ask Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Admitted on this replica's lease.
    Local,
    /// Ask Redis, giving back what is left of the lease in this minute.
    Ask {
        /// Unused requests of the last lease, this minute.
        back: u32,
    },
}

impl Leases {
    /// Uses one request of `client`'s lease when `local` allows, the lease is of this minute
    /// and of the client's current limits and still fresh; otherwise ends it.
    pub fn take(&self, client: ClientAdmit, now_ms: u64, local: bool) -> Take {
        let minute = now_ms / MINUTE_MS;
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(l) = map.get_mut(&client.key) else {
            return Take::Ask { back: 0 };
        };
        let usable = l.minute == minute && l.limits == client.limits && now_ms < l.until_ms;
        if usable && local && l.left > 0 {
            l.left -= 1;
            return Take::Local;
        }
        let back = if l.minute == minute { l.left } else { 0 };
        map.remove(&client.key);
        Take::Ask { back }
    }

    /// Redis leased `granted` requests (this one included) to `client` at `now_ms`. Requests
    /// that asked at the same time each got a share: they add up, so none is lost.
    pub fn granted(&self, client: ClientAdmit, granted: u32, now_ms: u64) {
        if granted <= 1 {
            return;
        }
        let minute = now_ms / MINUTE_MS;
        let lease = Lease {
            minute,
            left: granted - 1,
            limits: client.limits,
            until_ms: now_ms + LEASE_FOR_MS,
        };
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get_mut(&client.key) {
            Some(l) if l.minute == minute && l.limits == client.limits => {
                l.left = l.left.saturating_add(lease.left);
                l.until_ms = l.until_ms.max(lease.until_ms);
            }
            _ => {
                map.insert(client.key, lease);
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn client(rpm: u32) -> ClientAdmit {
        ClientAdmit {
            workspace: Uuid::nil(),
            key: Uuid::from_u128(7),
            limits: Limits {
                rpm: Some(rpm),
                tpm: None,
            },
        }
    }

    #[test]
    fn a_lease_admits_locally_until_spent_stale_or_changed() {
        let leases = Leases::default();
        let c = client(1000);
        assert_eq!(leases.take(c, NOW, true), Take::Ask { back: 0 });
        leases.granted(c, 3, NOW);
        assert_eq!(leases.take(c, NOW + 1, true), Take::Local);
        assert_eq!(leases.take(c, NOW + 2, true), Take::Local);
        assert_eq!(
            leases.take(c, NOW + 3, true),
            Take::Ask { back: 0 },
            "spent"
        );
        // Stale after LEASE_FOR_MS: what is left goes back.
        leases.granted(c, 5, NOW);
        assert_eq!(
            leases.take(c, NOW + LEASE_FOR_MS, true),
            Take::Ask { back: 4 }
        );
        // Other limits (a PATCH): back too.
        leases.granted(c, 5, NOW);
        assert_eq!(
            leases.take(client(10), NOW + 1, true),
            Take::Ask { back: 4 }
        );
        // Not allowed locally (the tokens are full here): back.
        leases.granted(c, 5, NOW);
        assert_eq!(leases.take(c, NOW + 1, false), Take::Ask { back: 4 });
        // A lease of a past minute has nothing to give back.
        let start = NOW / MINUTE_MS * MINUTE_MS;
        leases.granted(c, 5, start + 59_999);
        assert_eq!(leases.take(c, start + 60_000, true), Take::Ask { back: 0 });
        // A grant of one is the request itself: no lease.
        leases.granted(c, 1, NOW);
        assert_eq!(leases.take(c, NOW, true), Take::Ask { back: 0 });
        // Requests that asked at once each got a share: the shares add up.
        leases.granted(c, 3, NOW);
        leases.granted(c, 4, NOW);
        for _ in 0..5 {
            assert_eq!(leases.take(c, NOW + 1, true), Take::Local);
        }
        assert_eq!(leases.take(c, NOW + 1, true), Take::Ask { back: 0 });
    }
}
