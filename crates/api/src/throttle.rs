//! Login throttling: failed attempts counted per email and per client address over a sliding
//! 15-minute window; past the limit, logins answer 429 with `Retry-After`.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per email in the window.
pub const PER_EMAIL: usize = 10;
/// Failures allowed per client address in the window.
pub const PER_ADDRESS: usize = 100;
/// The sliding window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept before old ones are swept, bounding memory under a spray of emails.
const SWEEP_AT: usize = 50_000;

struct Counter<K> {
    limit: usize,
    failures: HashMap<K, VecDeque<Instant>>,
}

impl<K: Hash + Eq + Clone> Counter<K> {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            failures: HashMap::new(),
        }
    }

    /// Seconds until `key` may try again, if it is over its limit.
    fn blocked(&mut self, key: &K, now: Instant) -> Option<u64> {
        let q = self.failures.get_mut(key)?;
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

    fn fail(&mut self, key: K, now: Instant) {
        if self.failures.len() >= SWEEP_AT {
            self.failures
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let q = self.failures.entry(key).or_default();
        q.push_back(now);
        while q.len() > self.limit {
            q.pop_front();
        }
    }

    fn clear(&mut self, key: &K) {
        self.failures.remove(key);
    }
}

/// Per-process failure counters (each replica counts its own).
pub struct LoginThrottle {
    by_email: Mutex<Counter<String>>,
    by_address: Mutex<Counter<IpAddr>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            by_email: Mutex::new(Counter::new(PER_EMAIL)),
            by_address: Mutex::new(Counter::new(PER_ADDRESS)),
        }
    }
}

impl LoginThrottle {
    /// Seconds to wait when either the email or the address is over its limit.
    pub fn check(&self, email: &str, address: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let email = email.to_lowercase();
        let by_email = self
            .by_email
            .lock()
            .ok()
            .and_then(|mut c| c.blocked(&email, now));
        let by_address = self
            .by_address
            .lock()
            .ok()
            .and_then(|mut c| c.blocked(&address, now));
        by_email.max(by_address)
    }

    /// Counts a failed login.
    pub fn fail(&self, email: &str, address: IpAddr) {
        let now = Instant::now();
        if let Ok(mut c) = self.by_email.lock() {
            c.fail(email.to_lowercase(), now);
        }
        if let Ok(mut c) = self.by_address.lock() {
            c.fail(address, now);
        }
    }

    /// Forgets an email's failures after a successful login.
    pub fn succeed(&self, email: &str) {
        if let Ok(mut c) = self.by_email.lock() {
            c.clear(&email.to_lowercase());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenth_failure_blocks_until_the_window_passes() {
        let mut c = Counter::new(3);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(c.blocked(&"a", t0), None);
            c.fail("a", t0 + Duration::from_secs(i));
        }
        let wait = c.blocked(&"a", t0 + Duration::from_secs(10)).unwrap();
        assert!(wait > 800 && wait <= 900, "{wait}");
        assert_eq!(c.blocked(&"b", t0), None);
        assert_eq!(c.blocked(&"a", t0 + WINDOW + Duration::from_secs(1)), None);
    }
}
