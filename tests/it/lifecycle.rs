//! The credential lifecycle of DESIGN §14, end to end through the real server and the mock:
//! what a provider's answers do to a credential's place in its pools.

use crate::helpers::*;
use rotor_tests::mock::{AnthropicLimit, MockKey};
use serde_json::json;

#[tokio::test]
async fn a_success_that_spends_a_limit_cools_the_key_until_the_limit_refills() {
    // Anthropic reports its limits on every answer: this key's requests limit is spent (0
    // left, refilling in 30 s) by the answer that succeeds.
    let w = World::licensed().await;
    let spent = MockKey::new("sk-ant-spent-0001").anthropic_limit(AnthropicLimit::Requests, 0, 30);
    let fresh = MockKey::new("sk-ant-fresh-0001");
    let cred = |name: &'static str, key: &MockKey| {
        let (w, key) = (&w, key.to_string());
        async move {
            let config = json!({"api_key": key, "base_url": w.mock.url("")});
            id_of(
                &w.app
                    .credential(&w.user, w.ws(), "anthropic", name, config)
                    .await,
            )
        }
    };
    let (a, b) = (cred("spent", &spent).await, cred("fresh", &fresh).await);
    let model = w
        .model_of("anthropic", "claude", "claude-up", "llm", a)
        .await;
    // A short pool cooldown: the provider's reset decides.
    w.pool(&model, &[(Some(a), 3), (Some(b), 1)], 5).await;
    let send = || {
        w.app
            .req(reqwest::Method::POST, "/v1/messages")
            .header("x-api-key", &w.key)
            .json(json!({"model": "claude", "max_tokens": 8,
                         "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let first = send().await;
    first.assert(200);
    assert_eq!(first.credential(), Some(a), "the heavier key serves first");
    let lb = w.lb(&model).await;
    let status = &lb["entries"][0]["status"];
    assert_eq!(status["state"], "cooling_down", "{lb}");
    let remaining = status["cooldown_remaining_s"].as_u64().unwrap();
    assert!(
        (25..=30).contains(&remaining),
        "until the limit refills: {remaining}"
    );
    assert_eq!(lb["entries"][1]["status"]["state"], "available", "{lb}");
    // No 429 was needed to learn it: the next requests go to the other key directly.
    for _ in 0..3 {
        let r = send().await;
        r.assert(200);
        assert_eq!((r.credential(), r.attempts()), (Some(b), 1));
    }
    assert_eq!(
        w.mock.requests().len(),
        4,
        "one request per answer, no 429 in between"
    );
}

#[tokio::test]
async fn max_wait_ms_turns_an_all_cooling_429_into_a_200_a_moment_later() {
    // Each key's answer spends its requests limit, refilling 2 s later: after one request
    // each, both are cooling.
    let w = World::licensed().await;
    let mut creds = Vec::new();
    for name in ["wait-a", "wait-b"] {
        let key = MockKey::new(format!("sk-ant-{name}-0001")).anthropic_limit(
            AnthropicLimit::Requests,
            0,
            2,
        );
        let config = json!({"api_key": key.to_string(), "base_url": w.mock.url("")});
        creds.push(id_of(
            &w.app
                .credential(&w.user, w.ws(), "anthropic", name, config)
                .await,
        ));
    }
    let model = w
        .model_of("anthropic", "claude", "claude-up", "llm", creds[0])
        .await;
    w.pool(&model, &[(Some(creds[0]), 1), (Some(creds[1]), 1)], 1)
        .await;
    let send = || {
        w.app
            .req(reqwest::Method::POST, "/v1/messages")
            .header("x-api-key", &w.key)
            .json(json!({"model": "claude", "max_tokens": 8,
                         "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    send().await.assert(200);
    send().await.assert(200);
    // Without waiting: Anthropic's 429 in Anthropic's shape, with Retry-After.
    let refused = send().await;
    refused.assert(429);
    assert_eq!(
        refused.code(),
        "all_credentials_cooling_down",
        "{}",
        refused.text
    );
    assert!(refused.header("retry-after").is_some());

    let patched = w
        .app
        .patch(
            &w.lb_path(&model),
            &w.user.token,
            json!({"max_wait_ms": 5000}),
        )
        .await;
    patched.assert(200);
    let started = std::time::Instant::now();
    let waited = send().await;
    waited.assert(200);
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(300)
            && took < std::time::Duration::from_millis(4500),
        "waited for the first key to come back: {took:?}"
    );
    assert_eq!(w.mock.requests().len(), 3, "no upstream call while waiting");
    let overhead: f64 = waited
        .header("x-rotor-overhead-ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        overhead < 250.0,
        "the wait is not Rotor's overhead: {overhead} ms"
    );
}
