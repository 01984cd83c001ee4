//! The OpenAI-compatible gateway end to end: a real Rotor server in front of the
//! scripted mock provider, called over HTTP with a workspace API key. Round-robin and weights as
//! the provider sees them, cooldowns and failover as the load-balancing GET shows them, streams
//! timed chunk by chunk, key checks, timeouts, address policy, Azure's request shape, metrics.

use crate::helpers::*;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::HeaderMap;
use reqwest::Method;
use rotor_tests::mock::{MockKey, BODY_CANARY};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The first entry of a load-balancing body whose credential is `credential`: its status.
fn status_of(lb: &Value, credential: Uuid) -> Value {
    lb["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["credential_id"] == credential.to_string())
        .unwrap_or_else(|| panic!("no entry for {credential} in {lb}"))["status"]
        .clone()
}

#[track_caller]
fn assert_cooling(status: &Value, range: std::ops::RangeInclusive<u64>, http: Option<u16>) {
    assert_eq!(status["state"], "cooling_down", "{status}");
    let left = status["cooldown_remaining_s"].as_u64().unwrap();
    assert!(
        range.contains(&left),
        "cooldown_remaining_s {left} not in {range:?}: {status}"
    );
    match http {
        Some(code) => assert_eq!(status["last_error"]["status"], code, "{status}"),
        None => assert!(status["last_error"]["status"].is_null(), "{status}"),
    }
    assert!(status["last_error"]["at"].is_string(), "{status}");
}

#[track_caller]
fn assert_available(status: &Value) {
    assert_eq!(status["state"], "available", "{status}");
    assert_eq!(status["cooldown_remaining_s"], 0, "{status}");
}

/// A streamed answer, with when each chunk arrived (measured from the request's start).
struct Streamed {
    status: u16,
    headers: HeaderMap,
    chunks: Vec<(Duration, Bytes)>,
    ended: Duration,
}

impl Streamed {
    fn text(&self) -> String {
        let all: Vec<u8> = self.chunks.iter().flat_map(|(_, b)| b.to_vec()).collect();
        String::from_utf8(all).unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// When the chunk completing `needle` arrived.
    fn arrival_of(&self, needle: &str) -> Duration {
        let mut seen = Vec::new();
        for (at, chunk) in &self.chunks {
            seen.extend_from_slice(chunk);
            if String::from_utf8_lossy(&seen).contains(needle) {
                return *at;
            }
        }
        panic!("`{needle}` never arrived: {}", self.text());
    }
}

async fn stream_chat(fx: &World, model: &str, extra: Value) -> Streamed {
    let mut body = chat_body(model);
    body["stream"] = json!(true);
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let start = Instant::now();
    let resp = fx
        .app
        .client
        .post(fx.app.url("/v1/chat/completions"))
        .bearer_auth(&fx.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut chunks = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => chunks.push((start.elapsed(), b)),
            Err(e) => panic!("the relayed stream broke instead of ending cleanly: {e}"),
        }
    }
    Streamed {
        status,
        headers,
        chunks,
        ended: start.elapsed(),
    }
}

/// Every window of `window` consecutive picks serves each credential `share[c]` times.
#[track_caller]
fn assert_windows(served: &[Uuid], window: usize, share: &HashMap<Uuid, usize>) {
    for (i, w) in served.windows(window).enumerate() {
        for (c, n) in share {
            assert_eq!(
                w.iter().filter(|x| *x == c).count(),
                *n,
                "window starting at pick {i} is unfair: {served:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Selection: round-robin, weights, duplicates, Default Config, config changes.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn equal_entries_share_requests_round_robin_with_the_model_rewritten() {
    let fx = World::licensed().await;
    let keys = ["sk_k1", "sk_k2", "sk_k3"];
    let creds = fx.creds(keys).await;
    let key_of: HashMap<Uuid, &str> = creds.iter().copied().zip(keys).collect();
    let model = fx.model("chat", "provider-chat-v2", creds[0]).await;
    let entries: Vec<(Option<Uuid>, u32)> = creds.iter().map(|c| (Some(*c), 1)).collect();
    fx.pool(&model, &entries, 60).await;

    let mut served = Vec::new();
    for _ in 0..30 {
        let a = fx.chat("chat").await;
        a.assert(200);
        assert_eq!(a.body["object"], "chat.completion", "{}", a.text);
        assert_eq!(a.attempts(), 1);
        let overhead = a
            .header("x-rotor-overhead-ms")
            .expect("x-rotor-overhead-ms");
        let (whole, frac) = overhead.split_once('.').expect("a decimal");
        assert!(
            whole.chars().all(|c| c.is_ascii_digit()) && frac.chars().all(|c| c.is_ascii_digit()),
            "x-rotor-overhead-ms is not a decimal: {overhead}"
        );
        let ms: f64 = overhead.parse().unwrap();
        assert!(
            (0.0..1000.0).contains(&ms),
            "x-rotor-overhead-ms is not small: {overhead}"
        );
        served.push(a.credential().expect("x-rotor-credential-id"));
    }

    let seen = fx.mock.requests();
    assert_eq!(seen.len(), 30, "one upstream call per request");
    for (i, r) in seen.iter().enumerate() {
        assert_eq!(
            r.model.as_deref(),
            Some("provider-chat-v2"),
            "model rewritten"
        );
        assert_eq!(r.uri, "/v1/chat/completions");
        assert_eq!(
            r.key.as_deref(),
            Some(key_of[&served[i]]),
            "x-rotor-credential-id names the credential whose key answered"
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body["messages"],
            chat_body("x")["messages"],
            "the rest is as sent"
        );
    }
    let counts = fx.counts();
    for c in &creds {
        assert_eq!(counts[key_of[c]], 10, "{counts:?}");
    }
    let share: HashMap<Uuid, usize> = creds.iter().map(|c| (*c, 1)).collect();
    assert_windows(&served, 3, &share);
}

#[tokio::test]
async fn weights_share_traffic_in_proportion_and_interleave() {
    let fx = World::licensed().await;
    let light = fx.cred("light", "sk_light").await;
    let mid = fx.cred("mid", "sk_mid").await;
    let heavy = fx.cred("heavy", "sk_heavy").await;
    let model = fx.model("chat", "chat", light).await;
    fx.pool(
        &model,
        &[(Some(light), 1), (Some(mid), 2), (Some(heavy), 3)],
        60,
    )
    .await;

    let mut served = Vec::new();
    for _ in 0..60 {
        let a = fx.chat("chat").await;
        a.assert(200);
        served.push(a.credential().unwrap());
    }
    let counts = fx.counts();
    assert_eq!(
        (counts["sk_light"], counts["sk_mid"], counts["sk_heavy"]),
        (10, 20, 30),
        "{counts:?}"
    );
    // Interleaved: the heaviest never serves more than two in a row.
    let longest = served
        .chunk_by(|a, b| a == b)
        .filter(|run| run[0] == heavy)
        .map(<[Uuid]>::len)
        .max()
        .unwrap();
    assert!(longest <= 2, "heavy served {longest} in a row: {served:?}");
    assert_windows(
        &served,
        6,
        &HashMap::from([(light, 1), (mid, 2), (heavy, 3)]),
    );
}

#[tokio::test]
async fn a_credential_listed_twice_gets_twice_the_share() {
    let fx = World::licensed().await;
    let k1 = fx.cred("k1", "sk_k1").await;
    let k2 = fx.cred("k2", "sk_k2").await;
    let model = fx.model("chat", "chat", k1).await;
    fx.pool(&model, &[(Some(k1), 1), (Some(k1), 1), (Some(k2), 1)], 60)
        .await;
    let mut served = Vec::new();
    for _ in 0..30 {
        let a = fx.chat("chat").await;
        a.assert(200);
        served.push(a.credential().unwrap());
    }
    let counts = fx.counts();
    assert_eq!((counts["sk_k1"], counts["sk_k2"]), (20, 10), "{counts:?}");
    assert_windows(&served, 3, &HashMap::from([(k1, 2), (k2, 1)]));
}

#[tokio::test]
async fn the_default_config_entry_follows_the_models_current_default() {
    let fx = World::licensed().await;
    let first = fx.cred("first", "sk_first").await;
    let second = fx.cred("second", "sk_second").await;
    let other = fx.cred("other", "sk_other").await;
    let model = fx.model("chat", "chat", first).await;
    fx.pool(&model, &[(None, 1), (Some(other), 1)], 60).await;

    // One full turn of the rotation: the Default Config entry is served by `first`.
    let mut served = Vec::new();
    for _ in 0..2 {
        let a = fx.chat("chat").await;
        a.assert(200);
        served.push(a.credential().unwrap());
    }
    served.sort();
    let mut expected = vec![first, other];
    expected.sort();
    assert_eq!(served, expected);

    let r = fx
        .app
        .patch(
            &format!("/api/v1/workspaces/{}/models/{model}", fx.ws()),
            &fx.user.token,
            json!({"credential_id": second}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["credential_id"], second.to_string());

    // The rotation is at the start of a turn: the very next request is the Default Config's.
    fx.mock.reset();
    let a = fx.chat("chat").await;
    a.assert(200);
    assert_eq!(
        a.credential(),
        Some(second),
        "the next request uses the new default"
    );
    for _ in 0..3 {
        fx.chat("chat").await.assert(200);
    }
    let counts = fx.counts();
    assert_eq!(
        counts.get("sk_first"),
        None,
        "the old default is gone: {counts:?}"
    );
    assert_eq!(
        (counts["sk_second"], counts["sk_other"]),
        (2, 2),
        "{counts:?}"
    );
}

#[tokio::test]
async fn a_replaced_pool_is_used_from_the_next_request() {
    let fx = World::licensed().await;
    let c = fx.creds(["sk_c1", "sk_c2", "sk_c3", "sk_c4"]).await;
    let model = fx.model("chat", "chat", c[0]).await;
    fx.pool(&model, &[(Some(c[0]), 1), (Some(c[1]), 1)], 60)
        .await;
    for _ in 0..4 {
        fx.chat("chat").await.assert(200);
    }
    let counts = fx.counts();
    assert_eq!((counts["sk_c1"], counts["sk_c2"]), (2, 2), "{counts:?}");

    fx.pool(&model, &[(Some(c[2]), 1), (Some(c[3]), 1)], 60)
        .await;
    fx.mock.reset();
    for _ in 0..4 {
        let a = fx.chat("chat").await;
        a.assert(200);
        assert!(
            [c[2], c[3]].contains(&a.credential().unwrap()),
            "an old entry served after the PUT"
        );
    }
    let counts = fx.counts();
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert_eq!((counts["sk_c3"], counts["sk_c4"]), (2, 2), "{counts:?}");

    // Switching the pool off: the model's default credential alone, from the next request.
    switch_off(&fx, &model).await;
    fx.mock.reset();
    for _ in 0..3 {
        let a = fx.chat("chat").await;
        a.assert(200);
        assert_eq!(a.credential(), Some(c[0]));
    }
    assert_eq!(fx.mock.keys(), ["sk_c1", "sk_c1", "sk_c1"]);
}

// ---------------------------------------------------------------------------------------------
// Cooldowns and failover.
// ---------------------------------------------------------------------------------------------

/// A 429 with `Retry-After: secs`.
fn limited(label: &str, secs: u64) -> String {
    MockKey::new(label)
        .status(429)
        .retry_after(secs)
        .to_string()
}

/// A chat model `chat` pooled over credentials keyed `first` and `second` (weight 1 each, the
/// first its default): (first, second, model id).
async fn pair(
    fx: &World,
    first: impl std::fmt::Display,
    second: impl std::fmt::Display,
    cooldown_s: u32,
) -> (Uuid, Uuid, String) {
    let c = fx.creds([first.to_string(), second.to_string()]).await;
    let model = fx.pooled_model("chat", &c, cooldown_s).await;
    (c[0], c[1], model)
}

/// Two more requests of a pair of weight 1 each: the credential keyed `key`, which served once
/// before it cooled, serves one of them.
async fn assert_back_in_rotation(fx: &World, key: &str, what: &str) {
    for _ in 0..2 {
        fx.chat("chat").await.assert(200);
    }
    assert_eq!(fx.counts()[key], 2, "{what}");
}

/// Switches the model's pool off (the entries stay).
async fn switch_off(fx: &World, model: &str) {
    let off = json!({"enabled": false});
    fx.app
        .patch(&fx.lb_path(model), &fx.user.token, off)
        .await
        .assert(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_credential_fails_over_and_sits_out_its_cooldown() {
    let fx = World::licensed().await;
    // 429 with Retry-After: 2 → a 2 s cooldown (cooldown_seconds is 1).
    let lim = limited("sk_lim", 2);
    let (limited, ok, model) = pair(&fx, &lim, "sk_ok", 1).await;

    // A fresh rotation starts with entry 0: the 429 is hidden from the client.
    let a = fx.chat("chat").await;
    a.assert(200);
    assert_eq!(a.credential(), Some(ok));
    assert_eq!(a.attempts(), 2);
    assert!(!a.text.contains(BODY_CANARY));
    assert_eq!(fx.mock.keys(), [lim.as_str(), "sk_ok"]);

    let lb = fx.lb(&model).await;
    let cooling = status_of(&lb, limited);
    assert_cooling(&cooling, 1..=2, Some(429));
    assert_eq!(cooling["reason"], "rate_limited");
    assert_eq!(cooling["last_error"]["code"], "rate_limit_exceeded");
    assert_available(&status_of(&lb, ok));

    // While it cools, every request goes to the other credential in one attempt.
    for _ in 0..4 {
        let a = fx.chat("chat").await;
        a.assert(200);
        assert_eq!(a.credential(), Some(ok));
        assert_eq!(a.attempts(), 1);
    }
    assert_eq!(fx.counts()[&lim], 1, "a cooling credential got a request");
    assert_eq!(
        status_of(&fx.lb(&model).await, limited)["state"],
        "cooling_down",
        "the requests above were made during the cooldown"
    );

    // When the cooldown ends it is back in the rotation (and says what cooled it last).
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let s = status_of(&fx.lb(&model).await, limited);
        if s["state"] == "available" || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_available(&status);
    assert_eq!(status["last_error"]["status"], 429, "{status}");
    assert_back_in_rotation(&fx, &lim, "the credential is used again after its cooldown").await;
}

#[tokio::test]
async fn clearing_cooldowns_puts_a_cooled_credential_back_at_once() {
    let fx = World::licensed().await;
    let lim = limited("sk_lim", 60);
    let (limited, _, model) = pair(&fx, &lim, "sk_ok", 1).await;
    let a = fx.chat("chat").await;
    a.assert(200);
    assert_eq!(a.attempts(), 2);
    assert_cooling(
        &status_of(&fx.lb(&model).await, limited),
        59..=60,
        Some(429),
    );
    fx.chat("chat").await.assert(200);
    assert_eq!(fx.counts()[&lim], 1);

    fx.app
        .delete(&format!("{}/cooldowns", fx.lb_path(&model)), &fx.user.token)
        .await
        .assert(204);
    assert_available(&status_of(&fx.lb(&model).await, limited));
    assert_back_in_rotation(&fx, &lim, "the cleared credential is back in the rotation").await;
}

#[tokio::test]
async fn every_reset_header_form_sets_the_cooldown() {
    let fx = World::licensed().await;
    let ok = fx.cred("ok", "sk_ok").await;
    // (header, how the mock sends it, expected cooldown_remaining_s with cooldown_seconds = 1)
    type Form = (
        &'static str,
        fn(MockKey) -> MockKey,
        std::ops::RangeInclusive<u64>,
    );
    let forms: [Form; 5] = [
        ("Retry-After: seconds", |k| k.retry_after(30), 29..=30),
        // Second resolution.
        (
            "Retry-After: HTTP date",
            |k| k.retry_after_date(20),
            18..=20,
        ),
        ("retry-after-ms", |k| k.retry_after_ms(5000), 4..=5),
        (
            "x-ratelimit-reset-requests",
            |k| k.reset_requests("6m0s"),
            359..=360,
        ),
        // Below cooldown_seconds.
        (
            "x-ratelimit-reset-tokens",
            |k| k.reset_tokens("20ms"),
            1..=1,
        ),
    ];
    for (i, (form, script, expected)) in forms.into_iter().enumerate() {
        let key = script(MockKey::new(format!("sk_f{i}")).status(429));
        let limited = fx.cred(&format!("f{i}"), key).await;
        let name = format!("reset-{i}");
        let model = fx.model(&name, "chat", limited).await;
        fx.pool(&model, &[(Some(limited), 1), (Some(ok), 1)], 1)
            .await;
        let a = fx.chat(&name).await;
        a.assert(200);
        assert_eq!(a.attempts(), 2, "{form}");
        let status = status_of(&fx.lb(&model).await, limited);
        assert_cooling(&status, expected, Some(429));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shorter_cooldown_never_shortens_a_running_longer_one() {
    let fx = World::licensed().await;
    // The slow request's 429 (Retry-After: 2) lands after a fast 429 (Retry-After: 30) for the
    // same credential: the credential's key is changed while the slow one is in flight.
    let slow_key = MockKey::new("sk_fl")
        .status(429)
        .retry_after(2)
        .delay_ms(1500);
    let fast_key = limited("sk_fl", 30);
    let (flaky, ok, model) = pair(&fx, slow_key, "sk_ok", 1).await;

    let app = fx.app.clone();
    let key = fx.key.clone();
    let slow = tokio::spawn(async move { app.chat(&key, "chat").await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while fx.mock.keys().is_empty() {
        assert!(Instant::now() < deadline, "the slow request never left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fx.app
        .patch(
            &fx.w(&format!("/credentials/{flaky}")),
            &fx.user.token,
            json!({"config": {"api_key": &fast_key}}),
        )
        .await
        .assert(200);
    for _ in 0..4 {
        fx.chat("chat").await.assert(200);
        if fx.mock.keys().contains(&fast_key) {
            break;
        }
    }
    assert!(
        fx.mock.keys().contains(&fast_key),
        "the credential was not picked again while the slow request was in flight: {:?}",
        fx.mock.keys()
    );
    assert_cooling(&status_of(&fx.lb(&model).await, flaky), 29..=30, Some(429));

    let a = slow.await.unwrap();
    a.assert(200);
    assert_eq!(a.attempts(), 2);
    assert_eq!(a.credential(), Some(ok));
    assert_cooling(&status_of(&fx.lb(&model).await, flaky), 27..=30, Some(429));
}

#[tokio::test]
async fn rejected_and_failing_credentials_fail_over_and_cool() {
    let fx = World::licensed().await;
    let ok = fx.cred("ok", "sk_ok").await;
    let rev = MockKey::new("sk_rev").status(401).to_string();
    let fail = MockKey::new("sk_fail").status(503).to_string();
    let revoked = fx.cred("revoked", &rev).await;
    let failing = fx.cred("failing", &fail).await;
    let m401 = fx.model("m401", "chat", revoked).await;
    fx.pool(&m401, &[(Some(revoked), 1), (Some(ok), 1)], 45)
        .await;
    let m503 = fx.model("m503", "chat", failing).await;
    fx.pool(&m503, &[(Some(failing), 1), (Some(ok), 1)], 45)
        .await;

    let a = fx.chat("m401").await;
    a.assert(200);
    assert_eq!((a.attempts(), a.credential()), (2, Some(ok)));
    assert!(!a.text.contains(BODY_CANARY));
    // A refused key is not cooling: it is out of every pool until someone fixes it.
    let s = status_of(&fx.lb(&m401).await, revoked);
    assert_eq!(s["state"], "rejected", "{s}");
    assert_eq!(s["cooldown_remaining_s"], 0, "{s}");
    assert_eq!(s["last_error"]["status"], 401, "{s}");
    let a = fx.chat("m401").await;
    assert_eq!(
        (a.status.as_u16(), a.attempts(), a.credential()),
        (200, 1, Some(ok))
    );

    let a = fx.chat("m503").await;
    a.assert(200);
    assert_eq!((a.attempts(), a.credential()), (2, Some(ok)));
    let s = status_of(&fx.lb(&m503).await, failing);
    assert_cooling(&s, 9..=10, Some(503));
    assert_eq!(s["reason"], "transient");
    assert_eq!(fx.counts()[&rev], 1);
    assert_eq!(fx.counts()[&fail], 1);
}

#[tokio::test]
async fn a_client_error_is_passed_through_without_failover() {
    let fx = World::licensed().await;
    let key = MockKey::new("sk_picky").status(400).to_string();
    let (picky, ok, model) = pair(&fx, &key, "sk_ok", 60).await;
    let a = fx.chat("chat").await;
    a.assert(400);
    assert_eq!(
        a.text,
        format!(
            r#"{{"error": {{"message": "{BODY_CANARY} mock_error", "type": "mock_error", "param": null, "code": "mock_error"}}}}"#
        ),
        "the provider's 400 body is relayed unchanged"
    );
    assert!(a
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    assert_eq!((a.attempts(), a.credential()), (1, Some(picky)));
    assert_eq!(fx.mock.keys(), [key], "no failover");
    let lb = fx.lb(&model).await;
    for c in [picky, ok] {
        let s = status_of(&lb, c);
        assert_available(&s);
        assert!(s.get("last_error").is_none(), "{s}");
    }
}

#[tokio::test]
async fn when_every_credential_cools_the_gateway_answers_429_without_calling_upstream() {
    let fx = World::licensed().await;
    let keys = [limited("sk_a", 60), limited("sk_b", 60)];
    let (a_id, b_id, model) = pair(&fx, &keys[0], &keys[1], 1).await;

    // Both tried: the last upstream 429 is relayed as it came.
    let first = fx.chat("chat").await;
    first.assert(429);
    assert_eq!(first.attempts(), 2);
    assert_eq!(first.header("retry-after"), Some("60"));
    assert_eq!(first.credential(), Some(b_id));
    assert_eq!(first.body["error"]["code"], "rate_limit_exceeded");
    assert!(first.text.contains(BODY_CANARY));
    assert_eq!(fx.mock.keys(), keys);
    let lb = fx.lb(&model).await;
    assert_cooling(&status_of(&lb, a_id), 59..=60, Some(429));
    assert_cooling(&status_of(&lb, b_id), 59..=60, Some(429));

    // Now nothing can serve: Rotor's own 429, no upstream call.
    let next = fx.chat("chat").await;
    next.assert_openai_error(429, "all_credentials_cooling_down");
    assert_eq!(next.body["error"]["type"], "rate_limit_error");
    let retry: u64 = next.header("retry-after").unwrap().parse().unwrap();
    assert!((58..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(next.attempts(), 0);
    assert_eq!(next.credential(), None);
    assert!(next.header("x-rotor-overhead-ms").is_some());
    assert_eq!(fx.mock.requests().len(), 2, "no new upstream request");
}

#[tokio::test]
async fn a_cooldown_takes_every_entry_of_the_credential_out_and_failover_tries_distinct_ones() {
    let fx = World::licensed().await;
    let lim = limited("sk_lim", 60);
    let limited = fx.cred("limited", &lim).await;
    let ok = fx.cred("ok", "sk_ok").await;
    let model = fx.model("chat", "chat", limited).await;
    fx.pool(
        &model,
        &[(Some(limited), 1), (Some(limited), 1), (Some(ok), 1)],
        1,
    )
    .await;
    let a = fx.chat("chat").await;
    a.assert(200);
    assert_eq!((a.attempts(), a.credential()), (2, Some(ok)));
    for _ in 0..4 {
        let a = fx.chat("chat").await;
        assert_eq!(
            (a.status.as_u16(), a.attempts(), a.credential()),
            (200, 1, Some(ok))
        );
    }
    assert_eq!(
        fx.counts()[&lim],
        1,
        "the credential's second entry was still served"
    );
    let lb = fx.lb(&model).await;
    for e in 0..2 {
        assert_cooling(&lb["entries"][e]["status"], 59..=60, Some(429));
    }
}

#[tokio::test]
async fn failover_stops_after_max_attempts_distinct_credentials() {
    let fx = World::licensed().await;
    let keys = ["sk_a", "sk_b", "sk_c"].map(|l| limited(l, 60));
    let creds = fx.creds(&keys).await;
    let model = fx.model("chat", "chat", creds[0]).await;
    let entries: Vec<Value> = creds
        .iter()
        .map(|c| json!({"credential_id": c, "enabled": true}))
        .collect();
    fx.app
        .put(
            &fx.lb_path(&model),
            &fx.user.token,
            json!({"enabled": true, "cooldown_seconds": 1, "max_attempts": 2, "entries": entries}),
        )
        .await
        .assert(200);

    let first = fx.chat("chat").await;
    first.assert(429);
    assert_eq!(first.attempts(), 2);
    assert_eq!(first.credential(), Some(creds[1]));
    assert_eq!(fx.mock.keys(), &keys[..2]);
    let second = fx.chat("chat").await;
    second.assert(429);
    assert_eq!(
        (second.attempts(), second.credential()),
        (1, Some(creds[2]))
    );
    assert_eq!(first.header("retry-after"), Some("60"));
    fx.chat("chat")
        .await
        .assert_openai_error(429, "all_credentials_cooling_down");
    assert_eq!(fx.mock.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_deadline_bounds_every_attempt_together() {
    let fx = World::new(&[
        ("ROTOR_LICENSE", &lb_license()),
        ("ROTOR_UPSTREAM_TIMEOUT", "0.6"),
        ("ROTOR_REQUEST_DEADLINE", "1"),
    ])
    .await;
    let slow = ["sk_a", "sk_b", "sk_c"].map(|l| MockKey::new(l).delay_ms(2000));
    let creds = fx.creds(slow).await;
    fx.pooled_model("chat", &creds, 60).await;
    let start = Instant::now();
    let a = fx.chat("chat").await;
    let took = start.elapsed();
    a.assert_openai_error(504, "upstream_timeout");
    assert!(
        took < Duration::from_millis(1500),
        "three attempts of 0.6 s ran past the 1 s deadline: {took:?}"
    );
    assert!(fx.mock.requests().len() <= 2, "{:?}", fx.mock.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_silent_for_longer_than_the_idle_timeout_ends_with_an_error_event() {
    let fx = World::new(&[("ROTOR_STREAM_IDLE_TIMEOUT", "0.3")]).await;
    let silent = MockKey::new("sk_slow").gap_ms(1500).chunks(3);
    let c = fx.cred("slow", silent).await;
    fx.model("chat", "chat", c).await;
    let s = stream_chat(&fx, "chat", json!({})).await;
    assert_eq!(s.status, 200);
    let text = s.text();
    assert!(text.contains("tok0 ") && !text.contains("tok1 "), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert!(text.contains("data: {\"error\""), "{text}");
    assert!(
        s.ended < Duration::from_millis(1400),
        "the stream waited for the provider past the idle timeout: {:?}",
        s.ended
    );
}

/// The default credential of the model `chat`, which answers 429 with `Retry-After: 9`, and
/// another: (default key, default, other, model id).
async fn default_and_other(fx: &World) -> (String, Uuid, Uuid, String) {
    let key = limited("sk_dflt", 9);
    let default = fx.cred("dflt", &key).await;
    let other = fx.cred("other", "sk_other").await;
    let model = fx.model("chat", "chat", default).await;
    (key, default, other, model)
}

/// With a stored but not effective pool, dispatch uses the default credential alone and relays
/// its 429 with Retry-After: the state is recorded and shown (§14), but never stops the default
/// credential from being tried (there is nothing to fail over to).
async fn assert_unbalanced(fx: &World, key: &str, model: &str, default: Uuid, other: Uuid) {
    for round in 1..=3 {
        let a = fx.chat("chat").await;
        a.assert(429);
        assert_eq!(a.header("retry-after"), Some("9"));
        assert_eq!(a.body["error"]["code"], "rate_limit_exceeded", "{}", a.text);
        assert!(a.text.contains(BODY_CANARY), "the upstream 429 is relayed");
        assert_eq!((a.attempts(), a.credential()), (1, Some(default)));
        assert_eq!(
            fx.mock.keys(),
            vec![key; round],
            "each request reaches the default credential, and only it"
        );
        let lb = fx.lb(model).await;
        assert_eq!(lb["effective"], false);
        assert_cooling(&lb["entries"][0]["status"], 8..=9, Some(429));
        assert_available(&status_of(&lb, other));
    }
}

#[tokio::test]
async fn without_a_license_only_the_default_credential_is_used_and_429_is_relayed() {
    let fx = World::new(&[]).await;
    let (key, default, other, model) = default_and_other(&fx).await;
    let entries = json!([{"credential_id": null, "enabled": true}, {"credential_id": other, "enabled": true}]);
    fx.app
        .put(
            &fx.lb_path(&model),
            &fx.user.token,
            json!({"enabled": true, "entries": entries}),
        )
        .await
        .assert_error(403, "feature_not_available");
    fx.app
        .put(
            &fx.lb_path(&model),
            &fx.user.token,
            json!({"enabled": false, "cooldown_seconds": 1, "entries": entries}),
        )
        .await
        .assert(200);
    assert_unbalanced(&fx, &key, &model, default, other).await;
}

#[tokio::test]
async fn a_disabled_pool_uses_only_the_default_credential_and_relays_429() {
    let fx = World::licensed().await;
    let (key, default, other, model) = default_and_other(&fx).await;
    fx.pool(&model, &[(None, 1), (Some(other), 1)], 1).await;
    switch_off(&fx, &model).await;
    assert_unbalanced(&fx, &key, &model, default, other).await;
}

#[tokio::test]
async fn an_upstream_401_without_balancing_is_a_502_naming_the_credential() {
    let fx = World::new(&[]).await;
    let rev = MockKey::new("sk_rev").status(401).to_string();
    let revoked = fx.cred("revoked", &rev).await;
    fx.model("chat", "chat", revoked).await;
    let a = fx.chat("chat").await;
    a.assert_openai_error(502, "upstream_credential_rejected");
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&revoked.to_string()),
        "the message names the credential: {message}"
    );
    assert_eq!(a.attempts(), 1);
    assert_eq!(fx.mock.keys(), [rev]);
    // The caller's Rotor key is fine: a second request is tried upstream again.
    fx.chat("chat")
        .await
        .assert_openai_error(502, "upstream_credential_rejected");
    assert_eq!(fx.mock.keys().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Streaming.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_is_relayed_chunk_by_chunk() {
    let fx = World::licensed().await;
    let slow = fx
        .cred("slow", MockKey::new("sk_slow").gap_ms(300).chunks(4))
        .await;
    fx.model("chat", "provider-chat", slow).await;
    let s = stream_chat(&fx, "chat", json!({})).await;
    assert_eq!(s.status, 200, "{}", s.text());
    assert!(
        s.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{:?}",
        s.headers
    );
    assert_eq!(s.header("x-rotor-attempts"), Some("1"));
    assert_eq!(s.header("x-rotor-credential-id"), Some(&*slow.to_string()));
    let first = s.arrival_of("tok0");
    assert!(
        s.ended >= first + Duration::from_millis(600),
        "the first content chunk arrived at {first:?}, the stream ended at {:?}: buffered",
        s.ended
    );
    assert!(
        s.arrival_of("tok2") >= first + Duration::from_millis(300),
        "chunks arrive as the provider sends them"
    );
    let text = s.text();
    for i in 0..4 {
        assert!(text.contains(&format!("tok{i} ")), "{text}");
    }
    assert!(text.contains("\"model\":\"provider-chat\""));
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "no [DONE] at the end: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_fails_over_before_its_first_chunk() {
    let fx = World::licensed().await;
    let keys = [
        MockKey::new("sk_lim").status(429).to_string(),
        MockKey::new("sk_good").gap_ms(50).to_string(),
    ];
    let (limited, good, model) = pair(&fx, &keys[0], &keys[1], 1).await;
    let s = stream_chat(&fx, "chat", json!({})).await;
    assert_eq!(s.status, 200, "{}", s.text());
    assert_eq!(s.header("x-rotor-attempts"), Some("2"));
    assert_eq!(s.header("x-rotor-credential-id"), Some(&*good.to_string()));
    let text = s.text();
    assert!(
        !text.contains(BODY_CANARY) && !text.contains("\"error\""),
        "{text}"
    );
    assert!(text.contains("tok0 "), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(fx.mock.keys(), keys);
    assert_cooling(&status_of(&fx.lb(&model).await, limited), 1..=1, Some(429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_breaking_midway_ends_with_an_error_event_and_cools_its_credential() {
    let fx = World::licensed().await;
    let breaks = MockKey::new("sk_brk").chunks(5).drop_after(2).gap_ms(100);
    let (breaking, ok, model) = pair(&fx, breaks, "sk_ok", 60).await;
    let s = stream_chat(&fx, "chat", json!({})).await;
    assert_eq!(s.status, 200);
    assert_eq!(
        s.header("x-rotor-credential-id"),
        Some(&*breaking.to_string())
    );
    let text = s.text();
    assert!(
        text.contains("tok0 ") && text.contains("tok1 "),
        "the first chunks are relayed: {text}"
    );
    assert!(!text.contains("tok2 "), "{text}");
    assert!(
        !text.contains("[DONE]"),
        "a broken stream has no [DONE]: {text}"
    );
    let last = text
        .split("\n\n")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .last()
        .unwrap();
    let event: Value = serde_json::from_str(
        last.strip_prefix("data:")
            .unwrap_or_else(|| panic!("last event {last}"))
            .trim(),
    )
    .unwrap();
    assert!(
        event["error"]["message"].is_string(),
        "the stream ends with an error event: {last}"
    );
    let status = status_of(&fx.lb(&model).await, breaking);
    assert_cooling(&status, 9..=10, None);
    assert_eq!(status["reason"], "transient");
    // The next request goes to the other credential.
    let a = fx.chat("chat").await;
    assert_eq!((a.status.as_u16(), a.credential()), (200, Some(ok)));
}

// ---------------------------------------------------------------------------------------------
// API keys and request checks.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_revoked_key_is_refused_on_the_very_next_request() {
    let fx = World::new(&[]).await;
    let c = fx.cred("ok", "sk_ok").await;
    fx.model("chat", "chat", c).await;
    fx.chat("chat").await.assert(200);
    fx.app
        .delete(
            &format!("/api/v1/workspaces/{}/api-keys/{}", fx.ws(), fx.key_id),
            &fx.user.token,
        )
        .await
        .assert(204);
    let a = fx.chat("chat").await;
    a.assert_openai_error(401, "invalid_api_key");
    assert_eq!(a.attempts(), 0);
    assert_eq!(fx.mock.requests().len(), 1);
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let fx = World::new(&[]).await;
    let c = fx.cred("ok", "sk_ok").await;
    fx.model("chat", "chat", c).await;
    fx.chat("chat").await.assert(200);
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(fx.key_id)
        .execute(&fx.app.db)
        .await
        .unwrap();
    // Any management write in the workspace reloads its keys.
    fx.app
        .patch(
            &format!("/api/v1/workspaces/{}", fx.ws()),
            &fx.user.token,
            json!({"name": "renamed"}),
        )
        .await
        .assert(200);
    fx.chat("chat")
        .await
        .assert_openai_error(401, "invalid_api_key");
    let listed = fx.gw(Method::GET, "/v1/models").send().await;
    listed.assert_openai_error(401, "invalid_api_key");
    assert_eq!(fx.mock.requests().len(), 1);
}

#[tokio::test]
async fn a_key_restricted_to_some_models_cannot_use_others() {
    let fx = World::new(&[]).await;
    let c = fx.cred("ok", "sk_ok").await;
    fx.model("allowed", "allowed-up", c).await;
    fx.model("other", "other-up", c).await;
    let (_, narrow) = fx
        .app
        .api_key_with(
            &fx.user,
            fx.ws(),
            json!({"name": "narrow", "allowed_models": ["allowed"]}),
        )
        .await;
    let a = fx.app.chat(&narrow, "other").await;
    a.assert_openai_error(403, "model_not_allowed");
    assert_eq!(a.attempts(), 0);
    assert_eq!(fx.mock.requests().len(), 0);
    fx.app.chat(&narrow, "allowed").await.assert(200);
    // The unrestricted key may use both.
    fx.chat("other").await.assert(200);
    let models: Vec<_> = fx
        .mock
        .requests()
        .into_iter()
        .map(|r| r.model.unwrap())
        .collect();
    assert_eq!(models, ["allowed-up", "other-up"]);
}

#[tokio::test]
async fn requests_without_a_valid_key_model_or_body_are_refused() {
    let fx = World::new(&[]).await;
    let c = fx.cred("ok", "sk_ok").await;
    fx.model("chat", "chat", c).await;
    let path = "/v1/chat/completions";

    for auth in [
        None,
        Some("Bearer"),
        Some("Bearer garbage"),
        Some("Bearer rk-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        Some(&*format!("Basic {}", fx.key)),
        Some(&*fx.key),
    ] {
        let mut req = fx.app.req(Method::POST, path).json(chat_body("chat"));
        if let Some(auth) = auth {
            req = req.authorization(auth);
        }
        let a = req.send().await;
        a.assert_openai_error(401, "invalid_api_key");
        assert_eq!(a.attempts(), 0, "{auth:?}");
    }
    fx.app
        .req(Method::GET, "/v1/models")
        .send()
        .await
        .assert_openai_error(401, "invalid_api_key");

    let a = fx.chat("no-such-model").await;
    a.assert_openai_error(404, "model_not_found");
    assert_eq!(a.attempts(), 0);

    for body in [
        "not json",
        "[1, 2]",
        r#"{"messages": []}"#,
        r#"{"model": 7}"#,
    ] {
        let a = fx
            .gw(Method::POST, path)
            .bytes(Some(JSON), body)
            .send()
            .await;
        assert_eq!(a.status, 400, "{body}: {}", a.text);
        assert_eq!(
            a.body["error"]["type"], "invalid_request_error",
            "{}",
            a.text
        );
        assert!(a.body["error"]["message"].is_string());
        assert_eq!(a.attempts(), 0);
    }
    assert!(
        fx.mock.requests().is_empty(),
        "nothing reached the provider"
    );
}

#[tokio::test]
async fn a_body_over_the_gateway_limit_is_refused() {
    let fx = World::new(&[("ROTOR_GATEWAY_MAX_BODY", "1KiB")]).await;
    let c = fx.cred("ok", "sk_ok").await;
    fx.model("chat", "chat", c).await;
    fx.chat("chat").await.assert(200);
    let mut big = chat_body("chat");
    big["messages"][0]["content"] = json!("x".repeat(2048));
    let a = fx
        .gw(Method::POST, "/v1/chat/completions")
        .json(big)
        .send()
        .await;
    a.assert(413);
    assert!(a.body["error"]["message"].is_string(), "{}", a.text);
    assert_eq!(fx.mock.requests().len(), 1);
}

#[tokio::test]
async fn the_model_list_shows_the_workspaces_models_in_openais_shape() {
    let fx = World::new(&[]).await;
    let c = fx.cred("ok", "sk_ok").await;
    fx.model("alpha", "alpha-up", c).await;
    fx.model("beta", "beta-up", c).await;
    // Another workspace's model is never listed.
    let stranger = fx.app.user("stranger").await;
    let sc = fx
        .app
        .compatible_credential(
            &stranger,
            stranger.workspace,
            "theirs",
            "sk_theirs",
            &fx.mock.url("/v1"),
        )
        .await;
    fx.app
        .model(
            &stranger,
            stranger.workspace,
            "openai_compatible",
            "gamma",
            sc,
        )
        .await;

    let list = fx.gw(Method::GET, "/v1/models").send().await;
    list.assert(200);
    assert_eq!(list.body["object"], "list");
    let data = list.body["data"].as_array().unwrap();
    let mut ids: Vec<&str> = data.iter().map(|m| m["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["alpha", "beta"]);
    for m in data {
        assert_eq!(m["object"], "model");
        assert!(m["created"].is_i64(), "{m}");
        assert!(m["owned_by"].is_string(), "{m}");
    }

    let (_, narrow) = fx
        .app
        .api_key_with(
            &fx.user,
            fx.ws(),
            json!({"name": "narrow", "allowed_models": ["beta"]}),
        )
        .await;
    let list = fx
        .app
        .req(Method::GET, "/v1/models")
        .bearer(&narrow)
        .send()
        .await;
    list.assert(200);
    let ids: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["beta"]);

    let one = fx.gw(Method::GET, "/v1/models/alpha").send().await;
    one.assert(200);
    assert_eq!(
        (&one.body["id"], &one.body["object"]),
        (&json!("alpha"), &json!("model"))
    );
    for missing in ["/v1/models/gamma", "/v1/models/nope"] {
        fx.gw(Method::GET, missing)
            .send()
            .await
            .assert_openai_error(404, "model_not_found");
    }
    assert!(fx.mock.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Timeouts, address policy, embeddings, Azure.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_body_stalls_after_its_headers_is_cut_at_the_request_deadline() {
    let fx = World::new(&[
        ("ROTOR_UPSTREAM_TIMEOUT", "0.4"),
        ("ROTOR_REQUEST_DEADLINE", "1.5"),
    ])
    .await;
    let pausing = fx
        .cred("pausing", &MockKey::new("sk_pause").gap_ms(700).to_string())
        .await;
    let stalling = fx
        .cred(
            "stalling",
            &MockKey::new("sk_stall").gap_ms(3000).to_string(),
        )
        .await;
    fx.model("pausing", "pausing", pausing).await;
    fx.model("stalling", "stalling", stalling).await;

    // The head within the upstream timeout, then a pause inside the body longer than that
    // timeout but within the request's deadline: the whole answer, usage and all.
    let a = fx.chat("pausing").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.body["choices"][0]["message"]["content"],
        "Hello from the mock."
    );
    assert_eq!(a.body["usage"]["total_tokens"], 12);

    let start = Instant::now();
    let a = fx.chat("stalling").await;
    let took = start.elapsed();
    a.assert_openai_error(504, "upstream_timeout");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(2900),
        "the body's read was not bounded by the 1.5 s deadline: {took:?}"
    );
    assert!(
        !a.text.contains("chatcmpl-mock"),
        "half a provider answer reached the client: {}",
        a.text
    );
}

#[tokio::test]
async fn a_provider_slower_than_the_upstream_timeout_is_a_504() {
    let fx = World::new(&[("ROTOR_UPSTREAM_TIMEOUT", "0.5")]).await;
    let key = MockKey::new("sk_slow").delay_ms(2000).to_string();
    let slow = fx.cred("slow", &key).await;
    fx.model("chat", "chat", slow).await;
    let start = Instant::now();
    let a = fx.chat("chat").await;
    a.assert_openai_error(504, "upstream_timeout");
    assert!(
        start.elapsed() < Duration::from_millis(1900),
        "the timeout did not cut the wait: {:?}",
        start.elapsed()
    );
    assert_eq!(a.attempts(), 1);
    assert_eq!(fx.mock.keys(), [key]);
}

/// Runs `f` on a runtime of its own that is leaked afterwards, so that a server task that never
/// yields (it would block the runtime's shutdown) fails the test instead of hanging it.
fn run_guarded<T>(f: impl std::future::Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(f);
    std::mem::forget(rt);
    out
}

/// A chat completion sent from a thread and runtime of its own, waiting at most `wait` for the
/// answer: a server task that never yields can starve the server runtime's timers.
fn chat_within(app: &TestApp, key: &str, model: &str, wait: Duration) -> Option<Resp> {
    let (tx, rx) = std::sync::mpsc::channel();
    let req = app
        .req(Method::POST, "/v1/chat/completions")
        .bearer(key)
        .json(chat_body(model));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = rt.block_on(req.send());
        let _ = tx.send(answer);
    });
    rx.recv_timeout(wait).ok()
}

#[test]
fn a_refused_upstream_address_is_a_502_and_nothing_is_sent() {
    let license = lb_license();
    let (by_name, pooled, pool_status, by_literal, received) = run_guarded(async {
        let fx = World::new(&[("ROTOR_UPSTREAM_ALLOW", ""), ("ROTOR_LICENSE", &license)]).await;
        let wait = Duration::from_secs(5);

        // A host name resolving to loopback: refused at connect time.
        let named = fx
            .cred_at(
                "named",
                "sk_named",
                &format!("http://localhost:{}/v1", fx.mock.addr.port()),
            )
            .await;
        fx.model("named", "chat", named).await;
        let by_name = chat_within(&fx.app, &fx.key, "named", wait);

        // A pool whose every credential is refused: nothing is cooled.
        let p1 = fx.cred("p1", "sk_p1").await;
        let p2 = fx.cred("p2", "sk_p2").await;
        let pool = fx.model("pooled", "chat", p1).await;
        fx.pool(&pool, &[(Some(p1), 1), (Some(p2), 1)], 60).await;
        let pooled = chat_within(&fx.app, &fx.key, "pooled", wait);
        let lb = fx.lb(&pool).await;
        let pool_status = [status_of(&lb, p1), status_of(&lb, p2)];

        // An IP-literal base URL (refused before connecting), the model's default credential
        // alone. Last, so that a server stuck on it cannot hide how the cases above went.
        let literal = fx.cred("literal", "sk_literal").await;
        fx.model("literal", "chat", literal).await;
        let by_literal = chat_within(&fx.app, &fx.key, "literal", wait);

        std::thread::sleep(Duration::from_millis(100));
        (
            by_name,
            pooled,
            pool_status,
            by_literal,
            fx.mock.requests().len(),
        )
    });
    assert_eq!(received, 0, "the provider got a request");
    let by_name = by_name.expect("no answer within 5 s (host name)");
    by_name.assert_openai_error(502, "upstream_address_blocked");
    assert_eq!(by_name.credential(), None);
    let pooled = pooled.expect("no answer within 5 s (pool)");
    pooled.assert_openai_error(502, "upstream_address_blocked");
    assert_eq!(pooled.credential(), None);
    for s in &pool_status {
        assert_available(s);
    }
    let by_literal = by_literal.expect(
        "no answer within 5 s for a default credential whose IP-literal address is refused",
    );
    by_literal.assert_openai_error(502, "upstream_address_blocked");
    assert_eq!(by_literal.credential(), None);
}

#[tokio::test]
async fn embeddings_go_upstream_with_the_model_rewritten() {
    let fx = World::new(&[]).await;
    let c = fx.cred("ok", "sk_ok").await;
    fx.model_of(
        "openai_compatible",
        "embed",
        "text-embedding-up",
        "text-embedding",
        c,
    )
    .await;
    let a = fx
        .gw(Method::POST, "/v1/embeddings")
        .json(json!({"model": "embed", "input": ["hello", "world"]}))
        .send()
        .await;
    a.assert(200);
    assert_eq!(a.body["object"], "list");
    assert_eq!(a.body["data"][0]["embedding"], json!([0.1, 0.2, 0.3]));
    assert_eq!((a.attempts(), a.credential()), (1, Some(c)));
    let seen = fx.mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "/v1/embeddings");
    assert_eq!(seen[0].model.as_deref(), Some("text-embedding-up"));
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body["input"], json!(["hello", "world"]));
}

/// What a header-recording provider saw: URI, `api-key`, `authorization`, JSON body.
type HeaderLog = Arc<Mutex<Vec<(String, Option<String>, Option<String>, Value)>>>;

/// A provider that records each request's headers (the mock does not keep them) and answers
/// like OpenAI; returns its base URL.
async fn header_recorder() -> (String, HeaderLog) {
    use axum::http::{HeaderMap as AxHeaders, Uri};
    let log: HeaderLog = Arc::default();
    let seen = log.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: AxHeaders, body: Bytes| {
        let seen = seen.clone();
        async move {
            let h = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            seen.lock().unwrap().push((
                uri.to_string(),
                h("api-key"),
                h("authorization"),
                json.clone(),
            ));
            let answer = if uri.path().ends_with("/embeddings") {
                json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
                       "model": json["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}})
            } else {
                json!({"id": "chatcmpl-az", "object": "chat.completion", "created": 1,
                       "model": "az", "choices": [{"index": 0, "message": {"role": "assistant",
                       "content": "hi"}, "finish_reason": "stop"}]})
            };
            axum::Json(answer)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), log)
}

#[tokio::test]
async fn azure_credentials_are_called_at_their_deployment_with_the_api_key_header() {
    let fx = World::new(&[]).await;
    let (endpoint, log) = header_recorder().await;
    let az = fx
        .app
        .credential(
            &fx.user,
            fx.ws(),
            "azure_openai",
            "azure",
            json!({"api_key": "az-secret-key-0123456789", "endpoint": endpoint, "api_version": "2024-06-01"}),
        )
        .await;
    let az = id_of(&az);
    fx.model_of("azure_openai", "az-chat", "gpt-4o-deploy", "llm", az)
        .await;
    fx.model_of(
        "azure_openai",
        "az-embed",
        "embed-deploy",
        "text-embedding",
        az,
    )
    .await;

    let a = fx.chat("az-chat").await;
    a.assert(200);
    assert_eq!((a.attempts(), a.credential()), (1, Some(az)));
    let e = fx
        .gw(Method::POST, "/v1/embeddings")
        .json(json!({"model": "az-embed", "input": "hello"}))
        .send()
        .await;
    e.assert(200);

    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].0,
        "/openai/deployments/gpt-4o-deploy/chat/completions?api-version=2024-06-01"
    );
    assert_eq!(
        seen[1].0,
        "/openai/deployments/embed-deploy/embeddings?api-version=2024-06-01"
    );
    for (_, api_key, authorization, _) in &seen {
        assert_eq!(api_key.as_deref(), Some("az-secret-key-0123456789"));
        assert_eq!(
            authorization.as_deref(),
            None,
            "Azure takes the key in api-key, not as a bearer"
        );
    }
    assert_eq!(seen[0].3["model"], "gpt-4o-deploy");
    assert_eq!(seen[0].3["messages"], chat_body("x")["messages"]);
}

// ---------------------------------------------------------------------------------------------
// Metrics.
// ---------------------------------------------------------------------------------------------

/// The sum of the samples of `name` carrying every label of `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let values = samples(text.lines(), name, labels);
    (!values.is_empty()).then(|| values.iter().sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_attempts_cooldowns_and_tokens_without_secrets() {
    let fx = World::licensed().await;
    let ws = fx.ws().to_string();
    let ok = fx.cred("ok", "sk_ok_metrics").await;
    let lim = limited("sk_lim", 60);
    let limited = fx.cred("limited", &lim).await;
    fx.model("plain", "plain-up", ok).await;
    let pooled = fx.model("pooled", "pooled-up", limited).await;
    fx.pool(&pooled, &[(Some(limited), 1), (Some(ok), 1)], 1)
        .await;

    let (status, before) = metrics_text(&fx.app, None).await;
    assert_eq!(status, 200, "loopback clients may read /metrics: {before}");
    assert!(before.contains("rotor_build_info{version=\""), "{before}");

    // A 429 that fails over, a plain answer, and a stream with usage.
    fx.chat("pooled").await.assert(200);
    fx.chat("plain").await.assert(200);
    let s = stream_chat(
        &fx,
        "plain",
        json!({"stream_options": {"include_usage": true}}),
    )
    .await;
    assert_eq!(s.status, 200);
    assert!(s.text().contains("\"usage\""));

    let ok_s = ok.to_string();
    let lim_s = limited.to_string();
    let tokens = |text: &str, kind: &str| {
        metric(
            text,
            "rotor_tokens_total",
            &[
                ("workspace_id", &ws),
                ("model", "plain"),
                ("credential_id", &ok_s),
                ("kind", kind),
            ],
        )
    };
    // Stream usage is counted when the stream ends: poll.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let (_, text) = metrics_text(&fx.app, None).await;
        if tokens(&text, "completion") == Some(10.0) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Non-streamed: 5 prompt + 7 completion; streamed (3 chunks): 5 prompt + 3 completion.
    assert_eq!(tokens(&text, "prompt"), Some(10.0), "{text}");
    assert_eq!(tokens(&text, "completion"), Some(10.0), "{text}");

    assert!(text.contains("rotor_build_info{version=\""));
    let requests = |model: &str, outcome: &str| {
        metric(
            &text,
            "rotor_requests_total",
            &[
                ("workspace_id", &ws),
                ("model", model),
                ("credential_id", &ok_s),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(requests("plain", "ok"), Some(2.0), "{text}");
    assert_eq!(requests("pooled", "ok"), Some(1.0), "{text}");
    assert_eq!(
        metric(
            &text,
            "rotor_upstream_attempts_total",
            &[
                ("model", "pooled"),
                ("credential_id", &lim_s),
                ("outcome", "rate_limited")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "rotor_upstream_attempts_total",
            &[
                ("model", "pooled"),
                ("credential_id", &ok_s),
                ("outcome", "ok")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "rotor_cooldowns_started_total",
            &[
                ("workspace_id", &ws),
                ("model", "pooled"),
                ("credential_id", &lim_s),
                ("reason", "rate_limited")
            ]
        ),
        Some(1.0),
        "{text}"
    );

    for secret in [
        fx.key.as_str(),
        &fx.key[3..],
        "sk_ok_metrics",
        &lim,
        BODY_CANARY,
    ] {
        assert!(!text.contains(secret), "/metrics shows `{secret}`");
    }
}

#[tokio::test]
async fn metrics_need_the_token_when_one_is_set() {
    let token = "t0ken-for-the-metrics-scraper";
    let app = spawn_app_with(&[("ROTOR_METRICS_TOKEN", token)]).await;
    let (status, body) = metrics_text(&app, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("rotor_build_info"));
    let (status, _) = metrics_text(&app, Some("t0ken-wrong")).await;
    assert_eq!(status, 401);
    let (status, body) = metrics_text(&app, Some(token)).await;
    assert_eq!(status, 200);
    assert!(body.contains("rotor_build_info{version=\""), "{body}");
}

#[tokio::test]
async fn a_model_of_another_family_is_an_unsupported_endpoint() {
    // An Anthropic model asked through OpenAI's chat endpoint: refused in OpenAI's shape,
    // before anything reaches a provider.
    let fx = World::new(&[]).await;
    let c = fx
        .app
        .credential(
            &fx.user,
            fx.ws(),
            "anthropic",
            "claude",
            json!({"api_key": "sk-ant-0123456789abcdef", "base_url": fx.mock.url("")}),
        )
        .await;
    fx.model_of("anthropic", "claude", "claude-sonnet-4-5", "llm", id_of(&c))
        .await;
    let r = fx.chat("claude").await;
    r.assert_error(400, "unsupported_endpoint");
    assert_eq!(r.body["error"]["param"], "model");
    assert!(fx.mock.requests().is_empty());
}

#[tokio::test]
async fn provider_headers_that_matter_pass_both_ways_and_no_others() {
    // Without a pool the provider's 429 is the client's answer: its Retry-After and
    // rate-limit headers come with it. The client's beta and idempotency headers reach the
    // provider; its own key and cookies never do.
    let fx = World::new(&[]).await;
    let limited = MockKey::new("sk_lim")
        .status(429)
        .retry_after(7)
        .reset_requests("6m0s");
    let c = fx.cred("limited", &limited).await;
    fx.model("hdr", "gpt-4o", c).await;
    let r = fx
        .gw(Method::POST, "/v1/chat/completions")
        .header("openai-beta", "assistants=v2")
        .header("idempotency-key", "idem-1")
        .header("cookie", "session=secret")
        .json(json!({"model": "hdr", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await;
    r.assert(429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("x-ratelimit-reset-requests"), Some("6m0s"));
    let seen = fx.mock.requests().pop().unwrap();
    assert_eq!(seen.header("openai-beta"), Some("assistants=v2"));
    assert_eq!(seen.header("idempotency-key"), Some("idem-1"));
    assert_eq!(seen.header("cookie"), None);
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {limited}").as_str())
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
}
