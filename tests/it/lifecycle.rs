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

/// The `status` of `credential`'s entry in a load-balancing body.
fn entry(lb: &serde_json::Value, credential: uuid::Uuid) -> serde_json::Value {
    lb["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["credential_id"] == credential.to_string())
        .unwrap_or_else(|| panic!("no entry for {credential} in {lb}"))["status"]
        .clone()
}

/// The credential's `health`.
async fn health(w: &World, credential: uuid::Uuid) -> serde_json::Value {
    let r = w
        .app
        .get(&w.w(&format!("/credentials/{credential}")), &w.user.token)
        .await;
    r.assert(200);
    r.body["health"].clone()
}

/// The workspace's audit events with `action` about `credential`, newest first.
async fn events(w: &World, action: &str, credential: uuid::Uuid) -> Vec<serde_json::Value> {
    // A state change is audited just after it takes effect: wait (up to 3 s) for the first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let r = w.app.get(&w.w("/audit-events"), &w.user.token).await;
        r.assert(200);
        let found: Vec<_> = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action && e["target_id"] == credential.to_string())
            .cloned()
            .collect();
        if !found.is_empty() || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Polls `check` every 100 ms until it holds or `within` passes; whether it held.
async fn eventually<F, Fut>(within: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Two models whose pools are (`a`, `b`), weights 1 each; returns their ids.
async fn two_models(w: &World, a: uuid::Uuid, b: uuid::Uuid) -> (String, String) {
    let m1 = w.model("one", "gpt-one", a).await;
    let m2 = w.model("two", "gpt-two", a).await;
    for m in [&m1, &m2] {
        w.pool(m, &[(Some(a), 1), (Some(b), 1)], 60).await;
    }
    (m1, m2)
}

#[tokio::test]
async fn a_revoked_key_leaves_every_pool_until_it_is_changed_or_validated() {
    let w = World::licensed().await;
    let (bad, good) = (w.cred("bad", "sk_rev").await, w.cred("good", "sk_ok").await);
    let (m1, m2) = two_models(&w, bad, good).await;
    w.mock.refuse("sk_rev");
    let r = w.chat("one").await;
    r.assert(200);
    assert_eq!(
        (r.attempts(), r.credential()),
        (2, Some(good)),
        "the 401 is hidden"
    );
    // Out of both models' pools, though only one of them saw the 401.
    for m in [&m1, &m2] {
        let s = entry(&w.lb(m).await, bad);
        assert_eq!(s["state"], "rejected", "{s}");
        assert_eq!(s["last_error"]["status"], 401, "{s}");
    }
    let h = health(&w, bad).await;
    assert_eq!(h["state"], "rejected", "{h}");
    assert_eq!(h["last_error"]["status"], 401, "{h}");
    assert_eq!(health(&w, good).await["state"], "available");
    let rejected = events(&w, "credential.rejected", bad).await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0]["actor_user_id"].is_null(),
        "dispatch did it: {rejected:?}"
    );
    for model in ["one", "two", "one", "two"] {
        let r = w.chat(model).await;
        r.assert(200);
        assert_eq!((r.attempts(), r.credential()), (1, Some(good)));
    }
    assert_eq!(w.counts()["sk_rev"], 1, "never tried again");

    // Resetting cooldowns is not a fix: still rejected.
    w.app
        .delete(&format!("{}/cooldowns", w.lb_path(&m1)), &w.user.token)
        .await
        .assert(204);
    assert_eq!(entry(&w.lb(&m1).await, bad)["state"], "rejected");
    w.chat("one").await.assert(200);
    assert_eq!(w.counts()["sk_rev"], 1);

    // A failed validation changes nothing; a successful one brings it back everywhere.
    let validate = w.w(&format!("/credentials/{bad}/validate"));
    let v = w.app.post(&validate, &w.user.token, json!({})).await;
    assert_eq!(v.body["valid"], false, "{}", v.body);
    assert_eq!(health(&w, bad).await["state"], "rejected");
    w.mock.accept("sk_rev");
    let v = w.app.post(&validate, &w.user.token, json!({})).await;
    assert_eq!(v.body["valid"], true, "{}", v.body);
    for m in [&m1, &m2] {
        assert_eq!(entry(&w.lb(m).await, bad)["state"], "available");
    }
    let h = health(&w, bad).await;
    assert_eq!(h["state"], "available", "{h}");
    assert_eq!(h["last_error"]["status"], 401, "the last error stays: {h}");
    let recovered = events(&w, "credential.recovered", bad).await;
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(recovered[0]["actor_user_id"], w.user.id.to_string());
    assert_eq!(recovered[0]["details"]["by"], "validation");
    let mut served = std::collections::HashSet::new();
    for _ in 0..4 {
        served.insert(w.chat("two").await.credential());
    }
    assert!(
        served.contains(&Some(bad)),
        "back in the rotation: {served:?}"
    );

    // Revoked again, then fixed by a PATCH with a new key.
    w.mock.refuse("sk_rev");
    for _ in 0..2 {
        w.chat("one").await.assert(200);
    }
    assert_eq!(health(&w, bad).await["state"], "rejected");
    let patched = w
        .app
        .patch(
            &w.w(&format!("/credentials/{bad}")),
            &w.user.token,
            json!({"config": {"api_key": "sk_new"}}),
        )
        .await;
    patched.assert(200);
    assert_eq!(
        patched.body["health"]["state"], "available",
        "{}",
        patched.body
    );
    let mut served = std::collections::HashSet::new();
    for _ in 0..4 {
        let r = w.chat("one").await;
        r.assert(200);
        served.insert(r.credential());
    }
    assert!(served.contains(&Some(bad)), "{served:?}");
    assert!(w.counts().contains_key("sk_new"));
    let recovered = events(&w, "credential.recovered", bad).await;
    assert_eq!(recovered[0]["details"]["by"], "change", "{recovered:?}");
}

#[tokio::test]
async fn a_background_probe_brings_a_revoked_key_back() {
    let w = World::new(&[
        ("ROTOR_LICENSE", &lb_license()),
        ("ROTOR_PROBE_INTERVAL", "1"),
    ])
    .await;
    let (bad, good) = (w.cred("bad", "sk_rev").await, w.cred("good", "sk_ok").await);
    let (m1, _) = two_models(&w, bad, good).await;
    w.mock.refuse("sk_rev");
    w.chat("one").await.assert(200);
    assert_eq!(entry(&w.lb(&m1).await, bad)["state"], "rejected");
    // Probes keep failing while the provider refuses the key: it stays out.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(entry(&w.lb(&m1).await, bad)["state"], "rejected");
    let probes = w
        .mock
        .requests()
        .iter()
        .filter(|r| r.key.as_deref() == Some("sk_rev") && r.path.ends_with("/models"))
        .count();
    assert!(probes >= 1, "the model list probed it: {probes}");
    w.mock.accept("sk_rev");
    let back = eventually(std::time::Duration::from_secs(5), || async {
        entry(&w.lb(&m1).await, bad)["state"] == "available"
    })
    .await;
    assert!(back, "a probe brought it back");
    let recovered = events(&w, "credential.recovered", bad).await;
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert!(recovered[0]["actor_user_id"].is_null(), "{recovered:?}");
    assert_eq!(recovered[0]["details"]["by"], "probe");
}

#[tokio::test]
async fn a_spent_quota_or_a_402_rests_the_key_everywhere_for_its_quota_cooldown() {
    let w = World::licensed().await;
    let mut creds = Vec::new();
    for (name, key) in [
        (
            "quota",
            MockKey::new("sk_quota").insufficient_quota().to_string(),
        ),
        ("unpaid", MockKey::new("sk_unpaid").status(402).to_string()),
        ("good", "sk_ok".to_owned()),
    ] {
        let body = json!({"provider": "openai_compatible", "name": name, "quota_cooldown_seconds": 120,
                          "config": {"api_key": key, "base_url": w.mock.url("/v1")}});
        let r = w.app.post(&w.w("/credentials"), &w.user.token, body).await;
        r.assert(201);
        creds.push(id_of(&r.body));
    }
    let m1 = w.model("one", "gpt-one", creds[0]).await;
    let m2 = w.model("two", "gpt-two", creds[0]).await;
    let entries: Vec<_> = creds.iter().map(|c| (Some(*c), 1)).collect();
    for m in [&m1, &m2] {
        w.pool(m, &entries, 5).await;
    }
    // Whatever the rotation's order, two requests meet both spent keys; no client sees it.
    for _ in 0..2 {
        let r = w.chat("one").await;
        r.assert(200);
        assert_eq!(r.credential(), Some(creds[2]));
    }
    for m in [&m1, &m2] {
        let lb = w.lb(m).await;
        // The upstream's code when its body has one (the mock's 402 says `mock_error`).
        for (c, code) in [(creds[0], "insufficient_quota"), (creds[1], "mock_error")] {
            let s = entry(&lb, c);
            assert_eq!(s["state"], "quota_exhausted", "{s}");
            let left = s["cooldown_remaining_s"].as_u64().unwrap();
            assert!((115..=120).contains(&left), "the credential's 120 s: {s}");
            assert_eq!(s["last_error"]["code"], code, "{s}");
        }
    }
    let h = health(&w, creds[0]).await;
    assert_eq!(h["state"], "quota_exhausted", "{h}");
    assert_eq!(h["last_error"]["code"], "insufficient_quota", "{h}");
    assert_eq!(
        events(&w, "credential.quota_exhausted", creds[1])
            .await
            .len(),
        1
    );
    let before = w.mock.requests().len();
    for _ in 0..4 {
        let r = w.chat("two").await;
        assert_eq!((r.status.as_u16(), r.attempts()), (200, 1));
    }
    assert_eq!(
        w.mock.requests().len(),
        before + 4,
        "the spent keys were not tried"
    );
    // An admin who topped up the credit resets the cooldowns: back at once.
    w.app
        .delete(&format!("{}/cooldowns", w.lb_path(&m2)), &w.user.token)
        .await
        .assert(204);
    assert_eq!(health(&w, creds[0]).await["state"], "available");
    assert_eq!(entry(&w.lb(&m1).await, creds[1])["state"], "available");
}

#[tokio::test]
async fn a_failing_key_gets_one_trial_after_ten_seconds_and_twenty_more_when_it_fails() {
    let w = World::licensed().await;
    let (flaky, good) = (
        w.cred("flaky", "sk_flaky").await,
        w.cred("good", "sk_ok").await,
    );
    let model = w.pooled_model("chat", &[flaky, good], 60).await;
    w.mock.force("sk_flaky", 500);
    for _ in 0..2 {
        w.chat("chat").await.assert(200);
    }
    assert_eq!(w.counts()["sk_flaky"], 1);
    let s = entry(&w.lb(&model).await, flaky);
    assert_eq!(
        (s["state"].as_str(), s["reason"].as_str()),
        (Some("cooling_down"), Some("transient")),
        "{s}"
    );
    let left = s["cooldown_remaining_s"].as_u64().unwrap();
    assert!((9..=10).contains(&left), "{s}");
    tokio::time::sleep(std::time::Duration::from_millis(10_300)).await;
    // Half-open: the next requests let exactly one through to it.
    for _ in 0..3 {
        w.chat("chat").await.assert(200);
    }
    assert_eq!(w.counts()["sk_flaky"], 2, "one trial");
    let s = entry(&w.lb(&model).await, flaky);
    let left = s["cooldown_remaining_s"].as_u64().unwrap();
    assert!(
        (19..=20).contains(&left),
        "twice as long after the failed trial: {s}"
    );
    assert_eq!(s["last_error"]["status"], 500, "{s}");
}

/// Waits, when the current UTC minute has less than 15 s left, for the next one (limits
/// count per UTC minute).
async fn fresh_minute() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let into = now % 60_000;
    if into > 45_000 {
        tokio::time::sleep(std::time::Duration::from_millis(60_000 - into + 200)).await;
    }
}

#[tokio::test]
async fn rpm_and_tpm_steer_around_a_full_entry_and_answer_429_when_all_are_full() {
    let w = World::licensed().await;
    let (a, b, c) = (
        w.cred("a", "sk_a").await,
        w.cred("b", "sk_b").await,
        w.cred("c", "sk_c").await,
    );
    let model = w.model("chat", "gpt", a).await;
    let put = |entries: serde_json::Value| {
        let (w, model) = (&w, &model);
        async move {
            let body = json!({"enabled": true, "cooldown_seconds": 60, "entries": entries});
            let r = w.app.put(&w.lb_path(model), &w.user.token, body).await;
            r.assert(200);
        }
    };
    // `a` is far heavier but takes 3 requests a minute; `c` 20 tokens (a chat uses 12).
    put(json!([
        {"credential_id": a, "enabled": true, "weight": 50, "rpm": 3},
        {"credential_id": b, "enabled": true, "weight": 1},
        {"credential_id": c, "enabled": false, "weight": 1},
    ]))
    .await;
    fresh_minute().await;
    for _ in 0..6 {
        let r = w.chat("chat").await;
        r.assert(200);
        assert_eq!(r.attempts(), 1, "no client error, no failed attempt");
    }
    assert_eq!((w.counts()["sk_a"], w.counts()["sk_b"]), (3, 3));
    let s = entry(&w.lb(&model).await, a);
    assert_eq!(s["state"], "at_capacity", "{s}");
    assert_eq!(s["rpm_used"], 3, "{s}");
    assert!(s["cooldown_remaining_s"].as_u64().unwrap() <= 60, "{s}");

    // Tokens from real usage: `c` takes 20 a minute; two answers of 12 fill it.
    put(json!([
        {"credential_id": a, "enabled": false, "weight": 1},
        {"credential_id": b, "enabled": true, "weight": 1, "rpm": 1},
        {"credential_id": c, "enabled": true, "weight": 50, "tpm": 20},
    ]))
    .await;
    w.mock.reset();
    fresh_minute().await;
    let mut served = Vec::new();
    for _ in 0..4 {
        served.push(w.chat("chat").await);
    }
    let statuses: Vec<u16> = served.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(&statuses[..3], [200, 200, 200], "{statuses:?}");
    assert_eq!(served[2].credential(), Some(b), "c is full after 24 tokens");
    let s = entry(&w.lb(&model).await, c);
    assert_eq!(
        (s["state"].as_str(), s["tpm_used"].as_u64()),
        (Some("at_capacity"), Some(24)),
        "{s}"
    );
    // Everything full: Rotor's 429, no upstream call.
    let full = &served[3];
    full.assert_openai_error(429, "all_credentials_at_capacity");
    let retry: u64 = full.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(full.attempts(), 0);
    assert_eq!(w.mock.requests().len(), 3);
}

#[tokio::test]
async fn an_openai_success_with_no_requests_left_cools_the_key_until_its_reset() {
    let w = World::licensed().await;
    let spent = MockKey::new("sk_limited").spent_requests("30s").to_string();
    let (a, b) = (
        w.cred("spent", &spent).await,
        w.cred("fresh", "sk_ok").await,
    );
    let model = w.model("chat", "gpt", a).await;
    w.pool(&model, &[(Some(a), 5), (Some(b), 1)], 1).await;
    let r = w.chat("chat").await;
    r.assert(200);
    assert_eq!(r.credential(), Some(a));
    let s = entry(&w.lb(&model).await, a);
    assert_eq!(
        (s["state"].as_str(), s["reason"].as_str()),
        (Some("cooling_down"), Some("rate_limited")),
        "{s}"
    );
    let left = s["cooldown_remaining_s"].as_u64().unwrap();
    assert!(
        (28..=30).contains(&left),
        "until the reset, not the pool's 1 s: {s}"
    );
    for _ in 0..3 {
        let r = w.chat("chat").await;
        assert_eq!(
            (r.status.as_u16(), r.credential(), r.attempts()),
            (200, Some(b), 1)
        );
    }
}

#[tokio::test]
async fn an_affinity_key_keeps_a_conversation_on_one_key_and_moves_it_on_a_429() {
    let w = World::licensed().await;
    let keys = ["sk_s1", "sk_s2", "sk_s3"];
    let creds = w.creds(keys).await;
    let model = w.pooled_model("chat", &creds, 60).await;
    let r = w
        .app
        .patch(
            &w.lb_path(&model),
            &w.user.token,
            json!({"affinity": "session", "affinity_ttl_seconds": 300}),
        )
        .await;
    r.assert(200);
    let send = |body: serde_json::Value, header: Option<&'static str>| {
        let mut req = w
            .gw(reqwest::Method::POST, "/v1/chat/completions")
            .json(body);
        if let Some(h) = header {
            req = req.header("x-rotor-affinity", h);
        }
        req.send()
    };
    let chat = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    let mut hits = Vec::new();
    let mut served = std::collections::HashSet::new();
    for _ in 0..12 {
        let r = send(chat.clone(), Some("conversation-1")).await;
        r.assert(200);
        served.insert(r.credential());
        hits.push(r.header("x-rotor-affinity-hit").unwrap().to_owned());
    }
    assert_eq!(
        served.len(),
        1,
        "one credential for the conversation: {served:?}"
    );
    assert_eq!(hits[0], "false");
    assert!(hits[1..].iter().all(|h| h == "true"), "{hits:?}");
    // Different keys (here OpenAI's prompt_cache_key) follow the rotation: they spread.
    let mut spread = std::collections::HashSet::new();
    for i in 0..6 {
        let mut body = chat.clone();
        body["prompt_cache_key"] = json!(format!("tenant-{i}"));
        spread.insert(send(body, None).await.credential());
    }
    assert!(spread.len() >= 2, "{spread:?}");
    // The sticky key hits a rate limit: the conversation moves, the client sees a 200.
    let sticky = served.into_iter().next().flatten().unwrap();
    let label = keys[creds.iter().position(|c| *c == sticky).unwrap()];
    w.mock.force(label, 429);
    let r = send(chat.clone(), Some("conversation-1")).await;
    r.assert(200);
    assert_ne!(r.credential(), Some(sticky));
    assert_eq!(r.attempts(), 2);
    let moved = r.credential();
    let again = send(chat.clone(), Some("conversation-1")).await;
    assert_eq!(again.credential(), moved, "it stays where it moved");
    assert_eq!(again.header("x-rotor-affinity-hit"), Some("true"));
    // The `user` field names a key too.
    let mut by_user = chat.clone();
    by_user["user"] = json!("end-user-7");
    let first = send(by_user.clone(), None).await.credential();
    for _ in 0..3 {
        assert_eq!(send(by_user.clone(), None).await.credential(), first);
    }
}
