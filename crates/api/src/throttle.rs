//! Login throttling: attempts counted per email, per client address and per user (password
//! changes) over a sliding 15-minute window. A slot is taken *before* the password is verified,
//! in one step with the check, so a burst of concurrent guesses cannot all pass the check before
//! any failure is counted (see SECURITY.md). A successful attempt gives its slot back.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Attempts allowed per email in the window.
pub const PER_EMAIL: usize = 10;
/// Attempts allowed per client address in the window.
pub const PER_ADDRESS: usize = 100;
/// `current_password` attempts allowed per user in the window.
pub const PER_USER: usize = 10;
/// The sliding window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Most keys one table holds: past it, expired keys are swept and then the stalest evicted,
/// bounding memory under a spray of emails.
pub const MAX_KEYS: usize = 100_000;
/// Longest email that may become a throttle key (and the longest an address can be).
pub const MAX_EMAIL: usize = 254;

struct Counter<K> {
    limit: usize,
    max_keys: usize,
    attempts: HashMap<K, VecDeque<Instant>>,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(limit: usize, max_keys: usize) -> Self {
        Self {
            limit,
            max_keys,
            attempts: HashMap::new(),
        }
    }

    /// Seconds until `key` may try again, if it is at its limit.
    fn blocked(&mut self, key: &K, now: Instant) -> Option<u64> {
        let q = self.attempts.get_mut(key)?;
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.len() < self.limit {
            return None;
        }
        let oldest = *q.front()?;
        let wait = WINDOW.saturating_sub(now.duration_since(oldest));
        Some(wait.as_secs() + 1)
    }

    fn record(&mut self, key: K, now: Instant) {
        if !self.attempts.contains_key(&key) && self.attempts.len() >= self.max_keys {
            self.make_room(now);
        }
        let q = self.attempts.entry(key).or_default();
        q.push_back(now);
        while q.len() > self.limit {
            q.pop_front();
        }
    }

    /// Drops expired keys; if that is not enough, the tenth of keys whose last attempt is oldest.
    fn make_room(&mut self, now: Instant) {
        self.attempts
            .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        if self.attempts.len() < self.max_keys {
            return;
        }
        let mut last: Vec<Instant> = self
            .attempts
            .values()
            .filter_map(|q| q.back().copied())
            .collect();
        if last.is_empty() {
            return;
        }
        let n = (self.max_keys / 10)
            .max(1)
            .min(last.len().saturating_sub(1));
        let (_, cutoff, _) = last.select_nth_unstable(n);
        let cutoff = *cutoff;
        self.attempts
            .retain(|_, q| q.back().is_some_and(|t| *t > cutoff));
    }

    /// Gives back the slot taken at `at` (the attempt succeeded).
    fn release(&mut self, key: &K, at: Instant) {
        if let Some(q) = self.attempts.get_mut(key) {
            if let Some(i) = q.iter().rposition(|t| *t == at) {
                q.remove(i);
            }
            if q.is_empty() {
                self.attempts.remove(key);
            }
        }
    }

    fn clear(&mut self, key: &K) {
        self.attempts.remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.attempts.len()
    }
}

/// A slot taken for one attempt; give it back with [`LoginThrottle::succeeded`].
#[derive(Debug, Clone)]
pub struct Slot {
    email: String,
    address: IpAddr,
    at: Instant,
}

/// A slot taken for one `current_password` check.
#[derive(Debug, Clone, Copy)]
pub struct UserSlot {
    user: Uuid,
    at: Instant,
}

/// Per-process counters (each replica counts its own).
pub struct LoginThrottle {
    by_email: Mutex<Counter<String>>,
    by_address: Mutex<Counter<IpAddr>>,
    by_user: Mutex<Counter<Uuid>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::with_capacity(MAX_KEYS)
    }
}

/// The throttle key of an email: trimmed and lower-cased.
pub fn normalise(email: &str) -> String {
    email.trim().to_lowercase()
}

impl LoginThrottle {
    fn with_capacity(max_keys: usize) -> Self {
        Self {
            by_email: Mutex::new(Counter::new(PER_EMAIL, max_keys)),
            by_address: Mutex::new(Counter::new(PER_ADDRESS, max_keys)),
            by_user: Mutex::new(Counter::new(PER_USER, max_keys)),
        }
    }

    /// Takes a login slot for `email` from `address`, or says how many seconds to wait. The
    /// caller must have refused emails longer than [`MAX_EMAIL`] already.
    pub fn take(&self, email: &str, address: IpAddr) -> Result<Slot, u64> {
        let now = Instant::now();
        let email = normalise(email);
        // Both locks are held together so the check and the count are one step.
        let (Ok(mut by_email), Ok(mut by_address)) = (self.by_email.lock(), self.by_address.lock())
        else {
            return Err(1);
        };
        let wait = by_email
            .blocked(&email, now)
            .max(by_address.blocked(&address, now));
        if let Some(wait) = wait {
            return Err(wait);
        }
        by_email.record(email.clone(), now);
        by_address.record(address, now);
        Ok(Slot {
            email,
            address,
            at: now,
        })
    }

    /// The attempt of `slot` succeeded: it does not count, and the email's failures are forgotten.
    pub fn succeeded(&self, slot: Slot) {
        if let Ok(mut c) = self.by_email.lock() {
            c.clear(&slot.email);
        }
        if let Ok(mut c) = self.by_address.lock() {
            c.release(&slot.address, slot.at);
        }
    }

    /// Takes a `current_password` slot for `user`, or says how many seconds to wait.
    pub fn take_user(&self, user: Uuid) -> Result<UserSlot, u64> {
        let now = Instant::now();
        let Ok(mut c) = self.by_user.lock() else {
            return Err(1);
        };
        if let Some(wait) = c.blocked(&user, now) {
            return Err(wait);
        }
        c.record(user, now);
        Ok(UserSlot { user, at: now })
    }

    /// The `current_password` of `slot` was right.
    pub fn user_succeeded(&self, slot: UserSlot) {
        if let Ok(mut c) = self.by_user.lock() {
            c.release(&slot.user, slot.at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_blocks_until_the_window_passes() {
        let mut c = Counter::new(3, 100);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(c.blocked(&"a", t0), None);
            c.record("a", t0 + Duration::from_secs(i));
        }
        let wait = c.blocked(&"a", t0 + Duration::from_secs(10)).unwrap();
        assert!(wait > 800 && wait <= 900, "{wait}");
        assert_eq!(c.blocked(&"b", t0), None);
        assert_eq!(c.blocked(&"a", t0 + WINDOW + Duration::from_secs(1)), None);
    }

    #[test]
    fn slots_are_taken_before_verification_and_successes_give_them_back() {
        let t = LoginThrottle::default();
        let ip = IpAddr::from([192, 0, 2, 1]);
        let slots: Vec<Slot> = (0..PER_EMAIL)
            .map(|_| t.take("Ada@Example.com ", ip).unwrap())
            .collect();
        // The eleventh concurrent attempt is refused before anything is verified.
        assert!(t.take("ada@example.com", ip).is_err());
        let other = t.take("bob@example.com", ip).unwrap();
        t.succeeded(other);
        drop(slots);
        let u = Uuid::new_v4();
        for _ in 0..PER_USER {
            let s = t.take_user(u).unwrap();
            t.user_succeeded(s);
        }
        let held: Vec<UserSlot> = (0..PER_USER).map(|_| t.take_user(u).unwrap()).collect();
        assert!(t.take_user(u).is_err(), "{held:?}");
    }

    #[test]
    fn the_table_never_holds_more_than_its_capacity() {
        let mut c = Counter::new(10, 1000);
        let t0 = Instant::now();
        for i in 0..5000u32 {
            c.record(i, t0 + Duration::from_millis(u64::from(i)));
            assert!(c.len() <= 1000);
        }
        // The most recent keys survive the eviction.
        assert!(c.blocked(&4999, t0 + Duration::from_secs(5)).is_none());
        assert!(c.attempts.contains_key(&4999));
    }
}
