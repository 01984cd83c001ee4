//! Request ids for `x-request-id`: a random per-process prefix and a counter, unique without
//! a system call per request (a v4 UUID reads the OS's random source each time).

use axum::http::{HeaderValue, Request};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tower_http::request_id::{MakeRequestId, RequestId};

/// Makes `<16 hex digits of this process>-<counter>` ids.
#[derive(Clone)]
pub struct MakeRequestCounter {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl Default for MakeRequestCounter {
    fn default() -> Self {
        Self {
            prefix: format!("{:016x}", rand::random::<u64>()).into(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for MakeRequestCounter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_share_the_process_prefix() {
        let mut make = MakeRequestCounter::default();
        let req = Request::new(());
        let a = make.make_request_id(&req).unwrap();
        let b = make.make_request_id(&req).unwrap();
        let (a, b) = (
            a.header_value().to_str().unwrap(),
            b.header_value().to_str().unwrap(),
        );
        assert_ne!(a, b);
        assert_eq!(a.split('-').next(), b.split('-').next());
        assert_ne!(
            MakeRequestCounter::default().prefix,
            make.prefix,
            "another process (or app) has another prefix"
        );
    }
}
