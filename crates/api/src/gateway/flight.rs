//! One resolve of a route at a time: when a workspace's routes are dropped under load (every
//! admin change does that), the requests that miss together wait for one database round
//! instead of each taking a pool connection and running the same five queries.

use crate::gateway::cache::CachedRoute;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// What a resolve found: the route, no such model, or a database failure (logged once, by
/// the request that ran it).
pub type Outcome = Result<Option<Arc<CachedRoute>>, ()>;

/// A model's resolve in flight, by workspace, model name and the workspace's generation when
/// it started (a change starts a new flight, so nobody joins one that may read stale rows).
type Key = (Uuid, Box<str>, u64);

/// The resolves in flight.
#[derive(Default)]
pub struct Flights {
    running: Mutex<HashMap<Key, Arc<OnceCell<Outcome>>>>,
}

impl Flights {
    /// Joins the flight of `(workspace, model, generation)`, or starts it with `resolve`. If
    /// the request running it goes away, a waiting one takes over.
    pub async fn run<F, Fut>(
        &self,
        workspace: Uuid,
        model: &str,
        generation: u64,
        resolve: F,
    ) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let key: Key = (workspace, model.into(), generation);
        let cell = self.lock().entry(key.clone()).or_default().clone();
        let seat = Seat {
            flights: self,
            key,
            cell,
        };
        seat.cell.get_or_init(resolve).await.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<OnceCell<Outcome>>>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many flights are kept (none once every request is answered).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A request's place in a flight; leaving it ends the flight once it has an outcome (later
/// requests read the cache, or start afresh after a failure) or once nobody waits on it.
struct Seat<'a> {
    flights: &'a Flights,
    key: Key,
    cell: Arc<OnceCell<Outcome>>,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        let mut running = self.flights.lock();
        let ours = running
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cell));
        // Seats are taken under the lock, so the count cannot grow meanwhile: the map's
        // and this one's are all that is left when nobody else waits.
        if ours && (self.cell.initialized() || Arc::strong_count(&self.cell) <= 2) {
            running.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn requests_that_miss_together_share_one_resolve() {
        let flights = Flights::default();
        let runs = AtomicUsize::new(0);
        let ws = Uuid::new_v4();
        let resolve = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(None)
        };
        let all =
            futures_util::future::join_all((0..8).map(|_| flights.run(ws, "m", 1, resolve))).await;
        assert!(all.iter().all(|o| matches!(o, Ok(None))));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.len(), 0);
        // Another generation, or a later miss, resolves again.
        flights.run(ws, "m", 2, resolve).await.unwrap();
        flights.run(ws, "m", 2, resolve).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failure_is_not_kept_and_a_cancelled_flight_leaves_nothing() {
        let flights = Flights::default();
        let ws = Uuid::new_v4();
        assert!(flights.run(ws, "m", 1, || async { Err(()) }).await.is_err());
        assert!(flights.run(ws, "m", 1, || async { Ok(None) }).await.is_ok());
        let never = flights.run(ws, "gone", 1, std::future::pending);
        assert!(tokio::time::timeout(Duration::from_millis(10), never)
            .await
            .is_err());
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_waiter_takes_over_when_the_runner_goes_away() {
        let flights = Flights::default();
        let ws = Uuid::new_v4();
        let mut runner = Box::pin(flights.run(ws, "m", 1, std::future::pending));
        let mut waiter = Box::pin(flights.run(ws, "m", 1, || async { Ok(None) }));
        // The runner starts its resolve, then the waiter joins; then the runner is dropped.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(runner.as_mut().poll(&mut cx).is_pending());
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
        drop(runner);
        assert!(matches!(waiter.await, Ok(None)));
        assert_eq!(flights.len(), 0);
    }
}
