//! API-key limits and budgets (DESIGN §15): a key's requests and tokens per UTC minute and its
//! monthly budgets refuse its requests (429, in the family's shape) once reached, without
//! touching the provider; PATCH changes them, audited, for the next request.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// Waits for the next UTC minute when fewer than `needed` seconds are left in this one, so
/// a test's requests fall in one minute window.
pub async fn room_in_minute(needed: u64) {
    let into = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        % 60_000;
    if into + needed * 1000 > 60_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - into + 200)).await;
    }
}

/// A key of the world's workspace with `limits` (merged into its create body): (id, key).
async fn key_with(w: &World, name: &str, limits: Value) -> (Uuid, String) {
    let mut body = json!({ "name": name });
    body.as_object_mut()
        .unwrap()
        .extend(limits.as_object().unwrap().clone());
    w.app.api_key_with(&w.user, w.ws(), body).await
}

/// How many requests the mock provider has seen.
fn upstream_calls(w: &World) -> usize {
    w.mock.requests().len()
}

/// Polls the key until its `usage_this_month` satisfies `done` (written every 5 s).
async fn month_usage_until(w: &World, id: Uuid, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = w
            .app
            .get(&w.w(&format!("/api-keys/{id}")), &w.user.token)
            .await;
        r.assert(200);
        let used = r.body["usage_this_month"].clone();
        if done(&used) || Instant::now() > deadline {
            return used;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_key_rpm_of_3_refuses_the_4th_request_of_the_minute_with_retry_after() {
    let w = World::new(&[]).await;
    let c = w.cred("c", "sk_a").await;
    w.model("gpt", "gpt", c).await;
    let (_, limited) = key_with(&w, "limited", json!({"rpm": 3})).await;
    room_in_minute(15).await;
    for i in 0..3 {
        w.app.chat(&limited, "gpt").await.assert(200);
        assert_eq!(upstream_calls(&w), i + 1);
    }
    let r = w.app.chat(&limited, "gpt").await;
    r.assert_openai_error(429, "api_key_rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "until the minute ends: {retry}");
    assert_eq!(upstream_calls(&w), 3, "the provider never saw the 4th");
    assert_eq!(
        r.header("x-should-retry"),
        None,
        "a rate clears within the minute"
    );
    // Another key of the workspace is not held back by this one's limit.
    w.chat("gpt").await.assert(200);
    // The refusal is in the ledger: a request and an error that no credential served.
    let body =
        json!({"model": "gpt", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let a = w
        .app
        .req(Method::POST, "/v1/chat/completions")
        .bearer(&limited)
        .json(body)
        .send()
        .await;
    a.assert(429);
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let r = w
            .app
            .get(&w.w("/usage?group_by=api_key,credential"), &w.user.token)
            .await;
        r.assert(200);
        let row = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["credential_id"].is_null())
            .cloned();
        if row.as_ref().is_some_and(|r| r["requests"] == 2) || Instant::now() > deadline {
            break row.unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(refused["requests"], 2, "{refused}");
    assert_eq!(refused["errors"], 2, "{refused}");
    assert_eq!(refused["api_key_name"], "limited");
}

#[tokio::test]
async fn a_key_tpm_counts_the_tokens_providers_report_including_streams() {
    // A pool: the key is admitted in the pick itself.
    let w = World::licensed().await;
    let creds = w.creds(["sk_a", "sk_b"]).await;
    w.pooled_model("gpt", &creds, 60).await;
    // The mock reports 5 input and 7 output tokens per chat completion, streamed or not.
    let (_, limited) = key_with(&w, "tpm", json!({"tpm": 30})).await;
    room_in_minute(15).await;
    w.app.chat(&limited, "gpt").await.assert(200);
    let body = json!({"model": "gpt", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = w
        .app
        .req(Method::POST, "/v1/chat/completions")
        .bearer(&limited)
        .json(body)
        .send()
        .await;
    r.assert(200);
    assert!(r.text.contains("\"usage\""), "{}", r.text);
    // 24 tokens used: under 30, so one more is admitted; then the minute is full.
    w.app.chat(&limited, "gpt").await.assert(200);
    let r = w.app.chat(&limited, "gpt").await;
    r.assert_openai_error(429, "api_key_rate_limited");
    assert!(r.header("retry-after").is_some());
    assert_eq!(upstream_calls(&w), 3);
}

#[tokio::test]
async fn monthly_budgets_stop_the_key_once_spent_and_a_patch_lifts_them() {
    let w = World::new(&[]).await;
    let c = w.cred("c", "sk_a").await;
    w.model("gpt", "gpt", c).await;
    let (id, budgeted) = key_with(&w, "budget", json!({"monthly_token_budget": 30})).await;
    // 12 tokens each: 0, 12 and 24 are under 30; the fourth request finds 36 spent.
    for _ in 0..3 {
        w.app.chat(&budgeted, "gpt").await.assert(200);
    }
    let r = w.app.chat(&budgeted, "gpt").await;
    r.assert_openai_error(429, "api_key_budget_exceeded");
    assert_eq!(
        r.header("x-should-retry"),
        Some("false"),
        "the SDKs must not retry"
    );
    assert_eq!(r.header("retry-after"), None);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("resets at"));
    assert_eq!(upstream_calls(&w), 3);
    // Still spent once the ledger is written (the spend is then read back from Postgres).
    let used = month_usage_until(&w, id, |u| u["output_tokens"] == 21).await;
    assert_eq!(
        used,
        json!({"requests": 4, "input_tokens": 15, "output_tokens": 21, "cost_usd": null})
    );
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    w.app
        .chat(&budgeted, "gpt")
        .await
        .assert_openai_error(429, "api_key_budget_exceeded");

    // A raised budget applies to the next request.
    let path = w.w(&format!("/api-keys/{id}"));
    let r = w
        .app
        .patch(&path, &w.user.token, json!({"monthly_token_budget": 40}))
        .await;
    r.assert(200);
    assert_eq!(r.body["monthly_token_budget"], 40);
    w.app.chat(&budgeted, "gpt").await.assert(200);
    w.app
        .chat(&budgeted, "gpt")
        .await
        .assert_openai_error(429, "api_key_budget_exceeded");
    let r = w
        .app
        .patch(&path, &w.user.token, json!({"monthly_token_budget": null}))
        .await;
    r.assert(200);
    assert!(r.body["monthly_token_budget"].is_null());
    w.app.chat(&budgeted, "gpt").await.assert(200);

    // A dollar budget, at the model's prices: 5 × $100 + 7 × $100 per million = $0.0012.
    let priced = w.cred("p", "sk_p").await;
    let m = w.model("priced", "priced", priced).await;
    w.app
        .patch(
            &w.w(&format!("/models/{m}")),
            &w.user.token,
            json!({"input_usd_per_mtok": 100, "output_usd_per_mtok": 100}),
        )
        .await
        .assert(200);
    let (_, dollars) = key_with(&w, "dollars", json!({"monthly_budget_usd": 0.02})).await;
    let mut served = 0;
    while w.app.chat(&dollars, "priced").await.status == 200 {
        served += 1;
        assert!(served < 100, "the dollar budget never stopped the key");
    }
    assert_eq!(
        served, 17,
        "$0.0012 each: 16 leave $0.0192 spent, the 17th reaches $0.0204"
    );
    w.app
        .chat(&dollars, "priced")
        .await
        .assert_openai_error(429, "api_key_budget_exceeded");
}

#[tokio::test]
async fn a_refused_key_answers_in_its_family_shape() {
    let w = World::new(&[]).await;
    let c = w
        .app
        .credential(
            &w.user,
            w.ws(),
            "anthropic",
            "claude-key",
            json!({"api_key": "sk-ant-0123456789abcdef", "base_url": w.mock.url("")}),
        )
        .await;
    let cid = id_of(&c);
    w.model_of("anthropic", "claude", "claude-x", "llm", cid)
        .await;
    let (_, limited) = key_with(&w, "one", json!({"rpm": 1})).await;
    room_in_minute(10).await;
    let body = json!({"model": "claude", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let send = || {
        w.app
            .req(Method::POST, "/v1/messages")
            .header("x-api-key", &limited)
            .json(body.clone())
            .send()
    };
    send().await.assert(200);
    let r = send().await;
    r.assert(429);
    assert_eq!(r.body["type"], "error", "{}", r.body);
    assert_eq!(r.body["error"]["type"], "rate_limit_error", "{}", r.body);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("api_key_rate_limited"));
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn patch_checks_audits_and_scopes_and_get_shows_the_month() {
    let w = World::new(&[]).await;
    let c = w.cred("c", "sk_a").await;
    w.model("gpt", "gpt", c).await;
    let (id, key) = key_with(&w, "app-2", json!({"rpm": 100, "tpm": 100000})).await;
    let path = w.w(&format!("/api-keys/{id}"));
    let before = w.app.get(&path, &w.user.token).await;
    before.assert(200);
    assert_eq!(before.body["rpm"], 100);
    assert_eq!(before.body["tpm"], 100000);
    assert!(before.body["monthly_budget_usd"].is_null());
    assert_eq!(before.body["usage_this_month"]["requests"], 0);
    assert!(
        before.body.get("key").is_none(),
        "the secret is never shown again"
    );

    let bad = [
        (json!({"rpm": 0}), "rpm"),
        (json!({"tpm": 2_000_000_000_u64}), "tpm"),
        (json!({"monthly_token_budget": 0}), "monthly_token_budget"),
        (json!({"monthly_budget_usd": 0.001}), "monthly_budget_usd"),
        (json!({"expires_at": "2020-01-01T00:00:00Z"}), "expires_at"),
        (json!({"name": " "}), "name"),
        (json!({"allowed_models": [""]}), "allowed_models[0]"),
    ];
    for (body, field) in bad {
        let r = w.app.patch(&path, &w.user.token, body.clone()).await;
        r.assert_field("validation_failed", field, &body);
    }
    let r = w
        .app
        .patch(&path, &w.user.token, json!({"rpm": "many"}))
        .await;
    r.assert(422);
    let r = w
        .app
        .patch(&path, &w.user.token, json!({"secret": 1}))
        .await;
    r.assert(422);
    let r = w
        .app
        .post(
            &w.w("/api-keys"),
            &w.user.token,
            json!({"name": "x", "rpm": -1}),
        )
        .await;
    r.assert_field("validation_failed", "rpm", "create");
    let unchanged = w.app.get(&path, &w.user.token).await;
    assert_eq!(
        unchanged.body, before.body,
        "a refused change changes nothing"
    );

    let r = w
        .app
        .patch(&path, &w.user.token,
               json!({"name": "renamed", "allowed_models": ["gpt"], "expires_at": null, "rpm": null, "monthly_budget_usd": 12.5}))
        .await;
    r.assert(200);
    assert_eq!(r.body["name"], "renamed");
    assert_eq!(r.body["allowed_models"], json!(["gpt"]));
    assert!(r.body["rpm"].is_null());
    assert_eq!(r.body["tpm"], 100000, "absent fields are kept");
    assert_eq!(r.body["monthly_budget_usd"], 12.5);
    // The allowed models apply to the next request.
    w.app.chat(&key, "gpt").await.assert(200);
    let body = json!({"model": "other", "messages": [{"role": "user", "content": "hi"}]});
    let refused = w
        .app
        .req(Method::POST, "/v1/chat/completions")
        .bearer(&key)
        .json(body)
        .send()
        .await;
    refused.assert_openai_error(403, "model_not_allowed");

    let audit = w.app.get(&w.w("/audit-events"), &w.user.token).await;
    let event = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "api_key.updated")
        .cloned()
        .unwrap();
    assert_eq!(event["target_id"], id.to_string());
    assert_eq!(
        event["details"]["changes"]["rpm"],
        json!({"from": 100, "to": null})
    );
    assert_eq!(
        event["details"]["changes"]["name"],
        json!({"from": "app-2", "to": "renamed"})
    );
    assert!(
        event["details"]["changes"].get("tpm").is_none(),
        "only what changed"
    );
    assert!(!audit.text.contains(&key));

    // The month's usage, on the key and in the list.
    let used = month_usage_until(&w, id, |u| u["requests"] == 1).await;
    assert_eq!(used["input_tokens"], 5);
    let list = w.app.get(&w.w("/api-keys"), &w.user.token).await;
    let row = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.to_string())
        .cloned()
        .unwrap();
    assert_eq!(row["usage_this_month"]["requests"], 1, "{row}");

    // Lower roles may read but not change; another tenant sees nothing.
    let member = w.app.user("member").await;
    w.app.add_member(&w.user, w.ws(), &member, "normal").await;
    w.app.get(&path, &member.token).await.assert(200);
    w.app
        .patch(&path, &member.token, json!({"rpm": 5}))
        .await
        .assert(403);
    let stranger = w.app.user("stranger").await;
    w.app
        .get(&path, &stranger.token)
        .await
        .assert_error(404, "not_found");
    w.app
        .patch(&path, &stranger.token, json!({"rpm": 5}))
        .await
        .assert_error(404, "not_found");
    let theirs = format!("/api/v1/workspaces/{}/api-keys/{id}", stranger.workspace);
    w.app
        .patch(&theirs, &stranger.token, json!({"rpm": 5}))
        .await
        .assert_error(404, "not_found");
    let r = w.app.get(&path, &w.user.token).await;
    assert!(r.body["rpm"].is_null(), "nobody else changed it");
}
