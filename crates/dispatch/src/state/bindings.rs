//! Response-id bindings: which credential created a stored response (OpenAI's Responses API
//! keeps responses per organisation, so only that credential can read, delete, cancel or
//! continue it). Kept 30 days; in-process here, bounded, and in Redis when shared.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// How long a binding is kept (OpenAI keeps stored responses 30 days).
pub const BINDING_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most bindings held in process, so the store cannot grow without bound (oldest go first).
pub const BINDING_CAP: usize = 1_000_000;
/// Longest response id used as a key (ids come from the provider: never trusted blindly).
pub const MAX_RESPONSE_ID: usize = 256;

/// [`BINDING_TTL`] in milliseconds.
pub(crate) const BINDING_TTL_MS: u64 = BINDING_TTL.as_secs() * 1000;

/// Who created a stored response: the credential every later request about it must use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The credential that created the response.
    pub credential: Uuid,
    /// The Rotor model whose pool served it.
    pub model: Uuid,
}

/// Whether `response_id` may be a key: 1 to [`MAX_RESPONSE_ID`] bytes, no control characters.
pub fn bindable(response_id: &str) -> bool {
    !response_id.is_empty()
        && response_id.len() <= MAX_RESPONSE_ID
        && !response_id.chars().any(char::is_control)
}

/// Where response-id bindings live; ids that are not [`bindable`] are never stored or found.
pub trait BindingStore: Send + Sync + 'static {
    /// Binds `response_id` of `workspace` to `binding` for [`BINDING_TTL`] from `now_ms`.
    fn bind(
        &self,
        workspace: Uuid,
        response_id: &str,
        binding: Binding,
        now_ms: u64,
    ) -> impl Future<Output = ()> + Send;

    /// The binding of `response_id` of `workspace`, unless it expired by `now_ms`.
    fn binding(
        &self,
        workspace: Uuid,
        response_id: &str,
        now_ms: u64,
    ) -> impl Future<Output = Option<Binding>> + Send;

    /// Forgets the binding (the response was deleted).
    fn unbind(&self, workspace: Uuid, response_id: &str) -> impl Future<Output = ()> + Send;
}

struct Entry {
    binding: Binding,
    expires_ms: u64,
    /// Which insertion this is (a queue item of an older one is stale).
    seq: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Arc<str>, Entry>,
    /// Insertion order, oldest first: (key, seq, expiry). Never longer than the cap, and every
    /// live entry has its item here, so the map is bounded by the cap too.
    order: VecDeque<(Arc<str>, u64, u64)>,
    seq: u64,
}

impl Inner {
    /// Drops the oldest queue item and its entry, unless the entry was bound again since.
    fn pop_oldest(&mut self) {
        if let Some((key, seq, _)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                self.map.remove(&key);
            }
        }
    }
}

/// Bindings held in this process: a map capped at a number of entries, expired ones and then
/// the oldest evicted first; expiry is also checked on read.
pub struct MemoryBindings {
    cap: usize,
    inner: Mutex<Inner>,
}

impl Default for MemoryBindings {
    fn default() -> Self {
        Self::with_cap(BINDING_CAP)
    }
}

fn key(workspace: Uuid, response_id: &str) -> String {
    format!("{}:{response_id}", workspace.simple())
}

impl MemoryBindings {
    /// A store holding at most `cap` bindings (at least one).
    pub fn with_cap(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            inner: Mutex::default(),
        }
    }

    /// Bindings held now (expired ones not yet evicted included).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.map.len()).unwrap_or(0)
    }

    /// Whether no binding is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`BindingStore::bind`], synchronously.
    pub fn bind_now(&self, workspace: Uuid, response_id: &str, binding: Binding, now_ms: u64) {
        if !bindable(response_id) {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        while inner
            .order
            .front()
            .is_some_and(|(_, _, expires)| *expires <= now_ms)
            || inner.order.len() >= self.cap
        {
            inner.pop_oldest();
        }
        inner.seq += 1;
        let seq = inner.seq;
        let expires_ms = now_ms.saturating_add(BINDING_TTL_MS);
        let key: Arc<str> = key(workspace, response_id).into();
        inner.order.push_back((key.clone(), seq, expires_ms));
        inner.map.insert(
            key,
            Entry {
                binding,
                expires_ms,
                seq,
            },
        );
    }

    /// [`BindingStore::binding`], synchronously.
    pub fn binding_now(&self, workspace: Uuid, response_id: &str, now_ms: u64) -> Option<Binding> {
        if !bindable(response_id) {
            return None;
        }
        let mut inner = self.inner.lock().ok()?;
        let key = key(workspace, response_id);
        let entry = inner.map.get(key.as_str())?;
        if entry.expires_ms > now_ms {
            return Some(entry.binding);
        }
        inner.map.remove(key.as_str());
        None
    }

    /// [`BindingStore::unbind`], synchronously.
    pub fn unbind_now(&self, workspace: Uuid, response_id: &str) {
        if !bindable(response_id) {
            return;
        }
        if let Ok(mut inner) = self.inner.lock() {
            inner.map.remove(key(workspace, response_id).as_str());
        }
    }
}

impl BindingStore for MemoryBindings {
    async fn bind(&self, workspace: Uuid, response_id: &str, binding: Binding, now_ms: u64) {
        self.bind_now(workspace, response_id, binding, now_ms);
    }

    async fn binding(&self, workspace: Uuid, response_id: &str, now_ms: u64) -> Option<Binding> {
        self.binding_now(workspace, response_id, now_ms)
    }

    async fn unbind(&self, workspace: Uuid, response_id: &str) {
        self.unbind_now(workspace, response_id);
    }
}

#[cfg(test)]
mod tests {
    //! Pure: the in-process store with a hand-moved time.
    use super::*;

    fn b() -> Binding {
        Binding {
            credential: Uuid::new_v4(),
            model: Uuid::new_v4(),
        }
    }

    #[test]
    fn a_binding_reads_back_in_its_workspace_only() {
        let s = MemoryBindings::default();
        let (ws, other) = (Uuid::new_v4(), Uuid::new_v4());
        let one = b();
        s.bind_now(ws, "resp_1", one, 0);
        assert_eq!(s.binding_now(ws, "resp_1", 1), Some(one));
        assert_eq!(s.binding_now(other, "resp_1", 1), None);
        assert_eq!(s.binding_now(ws, "resp_2", 1), None);
        // Bound again: the new credential wins.
        let two = b();
        s.bind_now(ws, "resp_1", two, 2);
        assert_eq!(s.binding_now(ws, "resp_1", 3), Some(two));
        s.unbind_now(ws, "resp_1");
        assert_eq!(s.binding_now(ws, "resp_1", 4), None);
    }

    #[test]
    fn bindings_expire_after_thirty_days() {
        let s = MemoryBindings::default();
        let ws = Uuid::new_v4();
        let one = b();
        s.bind_now(ws, "resp_1", one, 1_000);
        assert_eq!(
            s.binding_now(ws, "resp_1", 1_000 + BINDING_TTL_MS - 1),
            Some(one)
        );
        assert_eq!(s.binding_now(ws, "resp_1", 1_000 + BINDING_TTL_MS), None);
        assert!(s.is_empty(), "an expired binding read is dropped");
        // Expired ones go on the next bind even if never read.
        s.bind_now(ws, "resp_2", one, 2_000);
        s.bind_now(ws, "resp_3", one, 2_000 + BINDING_TTL_MS);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn the_cap_evicts_the_oldest_first() {
        let s = MemoryBindings::with_cap(3);
        let ws = Uuid::new_v4();
        let one = b();
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            s.bind_now(ws, id, one, i as u64);
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.binding_now(ws, "a", 10), None);
        for id in ["b", "c", "d"] {
            assert_eq!(s.binding_now(ws, id, 10), Some(one), "{id}");
        }
        // Binding "b" again makes "c" the oldest; unbinds and rebinds never grow it past the cap.
        s.bind_now(ws, "b", one, 11);
        s.bind_now(ws, "e", one, 12);
        assert_eq!(s.binding_now(ws, "c", 13), None);
        assert_eq!(s.binding_now(ws, "b", 13), Some(one));
        for i in 0..100 {
            s.bind_now(ws, "x", one, 20 + i);
            s.unbind_now(ws, "x");
            s.bind_now(ws, &format!("y{i}"), one, 20 + i);
        }
        assert!(s.len() <= 3);
        let order = s.inner.lock().map(|i| i.order.len()).unwrap_or(0);
        assert!(order <= 3, "{order}");
    }

    #[test]
    fn unfit_ids_are_neither_stored_nor_found() {
        let s = MemoryBindings::default();
        let ws = Uuid::new_v4();
        let long = "r".repeat(MAX_RESPONSE_ID + 1);
        let longest = "r".repeat(MAX_RESPONSE_ID);
        for id in [
            "",
            "resp\n1",
            "resp\u{0}",
            "a\u{7f}b",
            "x\u{85}y",
            long.as_str(),
        ] {
            assert!(!bindable(id), "{id:?}");
            s.bind_now(ws, id, b(), 0);
            assert_eq!(s.binding_now(ws, id, 0), None);
        }
        assert!(s.is_empty());
        assert!(bindable(&longest) && bindable("resp_67cb71b351908190a308f3859487620d"));
        s.bind_now(ws, &longest, b(), 0);
        assert_eq!(s.len(), 1);
    }
}
