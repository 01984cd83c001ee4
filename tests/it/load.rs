//! A bounded load test: 10,000 requests at 64 concurrency over a pool of three credentials, one
//! of which the provider rate-limits with `Retry-After: 60`. Clients see no failure, and once
//! the limited credential has answered 429 it gets no new request (only those already in flight).

use crate::helpers::*;
use rotor_tests::mock::MockKey;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_with_a_rate_limited_credential_all_succeed() {
    let w = World::licensed().await;
    let limited = MockKey::new("sk_load")
        .status(429)
        .retry_after(60)
        .to_string();
    let creds = w
        .creds([limited.as_str(), "sk_load_ok_1", "sk_load_ok_2"])
        .await;
    let model = w.model("gpt", "gpt", creds[1]).await;
    let entries: Vec<(Option<Uuid>, u32)> = creds.iter().map(|c| (Some(*c), 1)).collect();
    w.pool(&model, &entries, 60).await;
    let (app, mock, key) = (&w.app, &w.mock, &w.key);

    let total = 10_000usize;
    let concurrency = 64usize;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = app.url("/v1/chat/completions");
    let body = chat_body("gpt").to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (next, url, body, key, client) = (
            next.clone(),
            url.clone(),
            body.clone(),
            key.clone(),
            client.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let r = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                if r.status() != 200 {
                    failures.push(r.status().as_u16());
                }
                let _ = r.bytes().await;
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} non-200 answers: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(
        elapsed < Duration::from_secs(120),
        "the load test took {elapsed:?}"
    );

    let requests = mock.requests();
    let to_limited: Vec<Instant> = requests
        .iter()
        .filter(|r| r.key.as_deref() == Some(limited.as_str()))
        .map(|r| r.at)
        .collect();
    let ok = requests
        .iter()
        .filter(|r| r.key.as_deref() != Some(limited.as_str()))
        .count();
    assert_eq!(
        ok, total,
        "every client request was served once by a healthy credential"
    );
    assert!(!to_limited.is_empty(), "the limited credential was tried");
    // After its first 429, only requests that were already in flight may reach it: at most one
    // per concurrent client, and none once those have drained.
    assert!(
        to_limited.len() <= concurrency,
        "{} requests reached the cooling credential",
        to_limited.len()
    );
    let first = to_limited[0];
    let last = *to_limited.last().unwrap();
    assert!(
        last.duration_since(first) < Duration::from_millis(500),
        "the cooling credential kept getting requests for {:?}",
        last.duration_since(first)
    );
    eprintln!(
        "10000 requests in {elapsed:?}; {} reached the limited credential",
        to_limited.len()
    );
}
