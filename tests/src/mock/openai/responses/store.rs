//! The responses the mock keeps, each visible only to the API key that created it (OpenAI
//! keeps them per organization: another organization's id is "not found"). Bounded: past
//! [`CAPACITY`] the oldest are forgotten, so a long benchmark does not grow without end.

use super::object::Stored;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// How many responses the mock keeps at most.
pub(crate) const CAPACITY: usize = 10_000;

/// The stored responses, shared by every request (cheap to clone).
#[derive(Clone, Default)]
pub(crate) struct Store {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Stored>,
    /// Ids in the order they were stored (some may have been deleted since).
    order: VecDeque<String>,
}

impl Store {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the map whole: keep serving it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `response` under its id and key.
    pub(crate) fn insert(&self, response: Stored) {
        let mut inner = self.lock();
        while inner.by_id.len() >= CAPACITY {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.by_id.remove(&old);
                }
                None => break,
            }
        }
        if inner.order.len() > 2 * CAPACITY {
            let Inner { by_id, order } = &mut *inner;
            order.retain(|id| by_id.contains_key(id));
        }
        inner.order.push_back(response.id.clone());
        inner.by_id.insert(response.id.clone(), response);
    }

    /// Response `id`, if `key` created it.
    pub(crate) fn get(&self, key: &str, id: &str) -> Option<Stored> {
        self.lock().by_id.get(id).filter(|r| r.key == key).cloned()
    }

    /// `change` applied to response `id`, if `key` created it.
    pub(crate) fn update<T>(
        &self,
        key: &str,
        id: &str,
        change: impl FnOnce(&mut Stored) -> T,
    ) -> Option<T> {
        self.lock()
            .by_id
            .get_mut(id)
            .filter(|r| r.key == key)
            .map(change)
    }

    /// Forgets response `id`, if `key` created it; whether it did.
    pub(crate) fn remove(&self, key: &str, id: &str) -> bool {
        let mut inner = self.lock();
        if inner.by_id.get(id).is_some_and(|r| r.key == key) {
            inner.by_id.remove(id);
            true
        } else {
            false
        }
    }

    /// The key that created response `id`.
    pub(crate) fn key_of(&self, id: &str) -> Option<String> {
        self.lock().by_id.get(id).map(|r| r.key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::object::{new_id, Status};
    use super::*;

    fn response(key: &str) -> Stored {
        Stored {
            key: key.to_owned(),
            id: new_id("resp"),
            created_at: 1,
            completed_at: Some(2),
            status: Status::Completed,
            model: "m".to_owned(),
            background: false,
            store: true,
            previous_response_id: None,
            instructions: None,
            metadata: None,
            message_id: new_id("msg"),
            deltas: vec!["hi".to_owned()],
            input: Vec::new(),
        }
    }

    #[test]
    fn a_response_is_seen_only_by_its_key_until_deleted() {
        let store = Store::default();
        let r = response("sk_a");
        let id = r.id.clone();
        store.insert(r);
        assert_eq!(store.get("sk_a", &id).map(|r| r.id), Some(id.clone()));
        assert!(store.get("sk_b", &id).is_none());
        assert_eq!(store.update("sk_b", &id, |_| ()), None);
        assert!(!store.remove("sk_b", &id), "another key cannot delete it");
        assert_eq!(store.key_of(&id).as_deref(), Some("sk_a"));
        assert!(store.remove("sk_a", &id));
        assert!(store.get("sk_a", &id).is_none());
        assert!(!store.remove("sk_a", &id));
        assert_eq!(store.key_of(&id), None);
    }

    #[test]
    fn the_oldest_are_forgotten_past_the_capacity() {
        let store = Store::default();
        let first = response("k");
        let first_id = first.id.clone();
        store.insert(first);
        for _ in 0..CAPACITY {
            store.insert(response("k"));
        }
        assert!(store.get("k", &first_id).is_none());
        assert_eq!(store.lock().by_id.len(), CAPACITY);
    }
}
