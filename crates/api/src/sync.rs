//! Replicas act as one: a change made through one replica is announced with Postgres
//! `NOTIFY`, and every other replica applies it (drops the workspace's routes and reloads its
//! keys, or reloads the license) within a second. A replica whose listen connection drops keeps
//! serving from its cache, reconnects every second, and reloads everything when it is back.

use crate::state::AppState;
use sqlx::postgres::PgListener;
use std::time::Duration;
use uuid::Uuid;

/// The notification channel.
pub const CHANNEL: &str = "rotor_changes";

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Something of one workspace (credentials, models, pools, keys, plan).
    Workspace(Uuid),
    /// The instance's license.
    License,
}

fn encode(instance: Uuid, change: Change) -> String {
    match change {
        Change::Workspace(ws) => format!("{instance}|ws|{ws}"),
        Change::License => format!("{instance}|license"),
    }
}

fn decode(payload: &str) -> Option<(Uuid, Change)> {
    let mut parts = payload.split('|');
    let from = Uuid::parse_str(parts.next()?).ok()?;
    let change = match parts.next()? {
        "ws" => Change::Workspace(Uuid::parse_str(parts.next()?).ok()?),
        "license" => Change::License,
        _ => return None,
    };
    Some((from, change))
}

/// How long a failed NOTIFY is retried before giving up (the others' reconnect reloads too).
const NOTIFY_RETRY_FOR: Duration = Duration::from_secs(300);

/// Applies a committed change here and tells the other replicas. Called by the code that
/// commits a write, after the commit, never inferred from a request's URL (see SECURITY.md).
pub async fn publish(state: &AppState, change: Change) {
    apply(state, change).await;
    let payload = encode(state.instance(), change);
    if notify(state, &payload).await {
        return;
    }
    tracing::warn!("could not notify other replicas of a change; retrying");
    let state = state.clone();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        while started.elapsed() < NOTIFY_RETRY_FOR {
            tokio::time::sleep(pause).await;
            if notify(&state, &payload).await {
                tracing::info!("other replicas notified of a change after a retry");
                return;
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
        tracing::error!(
            "gave up notifying other replicas of a change; they apply it when they next reconnect"
        );
    });
}

async fn notify(state: &AppState, payload: &str) -> bool {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(state.db())
        .await
        .is_ok()
}

async fn apply(state: &AppState, change: Change) {
    match change {
        Change::Workspace(ws) => {
            state.invalidate_workspace(ws).await;
            // Another replica's delete: its dead series leave this replica's /metrics too.
            let state = state.clone();
            tokio::spawn(async move { crate::observe::sweep(&state, Some(ws)).await });
        }
        Change::License => {
            if let Err(e) = crate::license::reload(state.db(), state.license()).await {
                tracing::warn!(error = %e, "could not reload the license");
            }
            state.invalidate_all();
        }
    }
}

/// Everything again (after the listen connection was lost: notifications may have been missed).
async fn reload_all(state: &AppState) {
    state.reload_all_keys().await;
    if let Err(e) = crate::license::reload(state.db(), state.license()).await {
        tracing::warn!(error = %e, "could not reload the license");
    }
    state.invalidate_all();
}

/// Listens for other replicas' changes until the process ends.
pub fn spawn_listener(state: AppState) {
    tokio::spawn(async move {
        let mut connected_before = false;
        loop {
            let mut listener = match PgListener::connect_with(state.db()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::debug!(error = %e, "listen connection unavailable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::debug!(error = %e, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            if connected_before {
                tracing::warn!("listen connection is back: reloading keys, routes and license");
                reload_all(&state).await;
            }
            connected_before = true;
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        if let Some((from, change)) = decode(n.payload()) {
                            if from != state.instance() {
                                apply(&state, change).await;
                            }
                        }
                    }
                    Ok(None) | Err(_) => {
                        tracing::warn!("listen connection lost: serving from cache, reconnecting");
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let (me, ws) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            decode(&encode(me, Change::Workspace(ws))),
            Some((me, Change::Workspace(ws)))
        );
        assert_eq!(
            decode(&encode(me, Change::License)),
            Some((me, Change::License))
        );
        assert_eq!(decode("garbage"), None);
    }
}
