//! Dify's load-balancing procedure done with a mouse, in a real browser (Chromium driven by
//! `console/tests/scenarios/load_balancing.mjs`), each result checked through the API and the
//! gateway's traffic.

use crate::helpers::*;
use rotor_tests::mock::MockKey;
use serde_json::{json, Value};

/// The browser config for `user` of `app`, with `extra` fields.
fn config(app: &TestApp, user: &TestUser, extra: Value) -> Value {
    let mut c = json!({"url": app.url(""), "email": user.email, "password": PASSWORD});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

#[tokio::test]
async fn the_dify_procedure_in_a_browser_balances_the_model_and_switching_off_keeps_the_pool() {
    let app = spawn_app_with(&[("ROTOR_LICENSE", &lb_license())]).await;
    let user = app.user("ada").await;
    let w = World::of(&app, user.clone()).await;
    let keys = ["sk-lb-default-000001", "sk-lb-picked-0000002"];
    let creds = w.creds(keys).await;
    let gpt = w.model("gpt", "gpt", creds[0]).await;
    w.model("single", "gpt", creds[0]).await;
    let fresh_key = "sk-lb-typed-in-the-page-03";
    let cfg = config(
        &app,
        &user,
        json!({
            "model": "gpt", "pick": "key-1", "secrets": keys,
            "fresh": {"provider": "openai_compatible", "name": "fresh", "api_key": fresh_key,
                      "base_url": w.mock.url("/v1")},
        }),
    );
    let summary = run_browser("lb_procedure", cfg.clone()).await;
    assert_eq!(summary["before"], json!(["Default Config"]), "{summary}");
    assert_eq!(
        summary["entries"],
        json!(["Default Config", "key-1", "key-1", "fresh"])
    );
    assert_eq!(summary["icons"], json!({"gpt": true, "single": false}));
    // The page shows each entry's share of the traffic before Save.
    let shares: Vec<String> = ["20", "20", "20", "40"]
        .iter()
        .map(|s| format!("{s} % of requests"))
        .collect();
    assert_eq!(summary["shares"], json!(shares));

    // Through the API: on and in effect, with the entries in the page's order.
    let pool = w.lb(&gpt).await;
    assert_eq!(pool["enabled"], true, "{pool}");
    assert_eq!(pool["effective"], true);
    let entries = pool["entries"].as_array().expect("entries");
    let shape: Vec<(Value, Value, Value)> = entries
        .iter()
        .map(|e| {
            (
                e["credential_name"].clone(),
                e["weight"].clone(),
                e["enabled"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (json!("Default Config"), json!(1), json!(true)),
            (json!("key-1"), json!(1), json!(true)),
            (json!("key-1"), json!(1), json!(true)),
            (json!("fresh"), json!(2), json!(true)),
        ]
    );
    assert_eq!(entries[0]["credential_id"], Value::Null);
    // The credential added in place exists, its key stored (masked in every answer).
    let fresh = app.get(&w.w("/credentials"), &w.user.token).await;
    let fresh = fresh.body["data"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["name"] == "fresh").cloned())
        .expect("the credential added in the pane");
    assert_eq!(fresh["provider"], "openai_compatible");
    assert!(!fresh.to_string().contains(fresh_key), "{fresh}");

    // The gateway serves the shares the page set: 1 (default) : 2 (picked twice) : 2 (weight 2).
    for _ in 0..50 {
        w.chat("gpt").await.assert(200);
    }
    let counts = w.counts();
    assert_eq!(counts.get(keys[0]), Some(&10), "{counts:?}");
    assert_eq!(counts.get(keys[1]), Some(&20), "{counts:?}");
    assert_eq!(counts.get(fresh_key), Some(&20), "{counts:?}");

    // Switching back to a single credential keeps the pool for later.
    let off = run_browser("lb_switch_off", cfg).await;
    assert_eq!(off["was_on"], true, "{off}");
    assert_eq!(
        off["focus_back"], true,
        "Escape gives the focus back to Config"
    );
    assert_eq!(off["icons"], json!({"gpt": false, "single": false}));
    let pool = w.lb(&gpt).await;
    assert_eq!(pool["enabled"], false);
    assert_eq!(pool["entries"].as_array().map(Vec::len), Some(4), "{pool}");
    assert_eq!(off["entries"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn the_two_credential_rule_and_a_server_422_are_shown_and_save_nothing() {
    let app = spawn_app_with(&[("ROTOR_LICENSE", &lb_license())]).await;
    let user = app.user("ada").await;
    let w = World::of(&app, user.clone()).await;
    let creds = w
        .creds(["sk-rule-000000000001", "sk-rule-000000000002"])
        .await;
    let gpt = w.model("gpt", "gpt", creds[0]).await;
    let before = w.lb(&gpt).await;
    let summary = run_browser(
        "lb_refusals",
        config(&app, &user, json!({"model": "gpt", "pick": "key-1"})),
    )
    .await;
    let rule = summary["rule"].as_str().unwrap_or("");
    assert!(rule.contains("at least two"), "{summary}");
    // The server's 422 lands next to the fields it names, linked for assistive technology.
    assert_eq!(summary["cooldown"]["invalid"], "true", "{summary}");
    assert!(
        summary["cooldown"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("1") && e.contains("3600")),
        "{summary}"
    );
    assert_eq!(summary["weight"]["invalid"], "true");
    assert!(
        summary["weight"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("100")),
        "{summary}"
    );
    // Neither refusal changed anything.
    assert_eq!(w.lb(&gpt).await, before);
}

#[tokio::test]
async fn a_workspace_without_the_feature_sees_the_upgrade_notice_instead_of_the_switch() {
    let app = spawn_app().await;
    let user = app.user("ada").await;
    let w = World::of(&app, user.clone()).await;
    let creds = w.creds(["sk-sandbox-0000000001"]).await;
    let gpt = w.model("gpt", "gpt", creds[0]).await;
    let ws = app.get(&w.w(""), &w.user.token).await;
    assert_eq!(ws.body["features"]["load_balancing"], false);
    let summary = run_browser("lb_upgrade", config(&app, &user, json!({"model": "gpt"}))).await;
    assert_eq!(summary["switches"], 0, "{summary}");
    let notice = summary["notice"].as_str().unwrap_or("");
    assert!(
        notice.contains("paid feature") && notice.contains("license"),
        "{summary}"
    );
    assert_eq!(w.lb(&gpt).await["enabled"], false);
}

#[tokio::test]
async fn a_cooling_entry_counts_down_in_seconds_and_reset_cooldowns_puts_it_back() {
    let app = spawn_app_with(&[("ROTOR_LICENSE", &lb_license())]).await;
    let user = app.user("ada").await;
    let w = World::of(&app, user.clone()).await;
    let limited = MockKey::new("sk-cooling-00000001")
        .status(429)
        .retry_after(90)
        .to_string();
    let creds = w.creds(["sk-serving-000000001".to_owned(), limited]).await;
    let gpt = w.pooled_model("gpt", &creds, 120).await;
    for _ in 0..3 {
        w.chat("gpt").await.assert(200);
    }
    let pool = w.lb(&gpt).await;
    assert_eq!(
        pool["entries"][1]["status"]["state"], "cooling_down",
        "{pool}"
    );

    let summary = run_browser(
        "lb_countdown",
        config(&app, &user, json!({"model": "gpt", "cooling": "key-1"})),
    )
    .await;
    let first = summary["first"].as_u64().unwrap_or(0);
    let later = summary["later"].as_u64().unwrap_or(0);
    assert!((60..=120).contains(&first), "{summary}");
    assert!(
        later < first && later + 4 >= first,
        "it counts down: {summary}"
    );
    let text = summary["text"].as_str().unwrap_or("");
    assert!(
        text.contains("Cooling down") && text.contains("rate limited") && text.contains("429"),
        "{summary}"
    );
    assert!(
        summary["after"]
            .as_str()
            .unwrap_or("")
            .starts_with("Available"),
        "{summary}"
    );
    assert_eq!(summary["countdowns_after"], 0);
    // Through the API too, on the credential the page reset.
    let pool = w.lb(&gpt).await;
    assert_eq!(pool["entries"][1]["status"]["state"], "available", "{pool}");
}

#[tokio::test]
async fn a_member_who_only_reads_sees_the_pool_and_cannot_change_it() {
    let app = spawn_app_with(&[("ROTOR_LICENSE", &lb_license())]).await;
    let owner = app.user("owner").await;
    let w = World::of(&app, owner.clone()).await;
    let creds = w
        .creds(["sk-read-only-0000001", "sk-read-only-0000002"])
        .await;
    let gpt = w.pooled_model("gpt", &creds, 60).await;
    let reader = app.user("reader").await;
    app.add_member(&owner, w.ws(), &reader, "normal").await;
    let before = w.lb(&gpt).await;
    // The reader's first workspace is their own; the shared one is picked in the bar.
    let summary = run_browser(
        "lb_read_only",
        json!({"url": app.url(""), "email": reader.email, "password": PASSWORD,
               "model": "gpt", "workspace": owner.workspace}),
    )
    .await;
    assert_eq!(summary["entries"], 2, "{summary}");
    assert_eq!(summary["switch_disabled"], true);
    assert_eq!(summary["weight_disabled"], true);
    for control in ["save", "add", "reset"] {
        assert_eq!(summary[control], 0, "{control}: {summary}");
    }
    assert_eq!(w.lb(&gpt).await["version"], before["version"]);
}

#[tokio::test]
async fn a_pool_left_on_after_the_plan_lost_the_feature_can_still_be_switched_off_from_the_pane() {
    let app = spawn_app_with(&[("ROTOR_DEPLOYMENT", "saas")]).await;
    let admin = app.user("admin").await;
    let user = app.user("ada").await;
    let plan = format!("/api/v1/admin/workspaces/{}/plan", user.workspace);
    app.put(&plan, &admin.token, json!({"plan": "team"}))
        .await
        .assert(200);
    let w = World::of(&app, user.clone()).await;
    let creds = w
        .creds(["sk-downgrade-000001", "sk-downgrade-000002"])
        .await;
    let gpt = w.model("gpt", "gpt", creds[0]).await;
    w.pool(&gpt, &[(None, 1), (Some(creds[1]), 1)], 60).await;
    app.put(&plan, &admin.token, json!({"plan": "sandbox"}))
        .await
        .assert(200);
    assert_eq!(w.lb(&gpt).await["reason"], "feature_not_available");

    let summary = run_browser(
        "lb_feature_gone",
        config(&app, &user, json!({"model": "gpt"})),
    )
    .await;
    assert!(
        summary["notice"]
            .as_str()
            .is_some_and(|n| n.contains("paid feature")),
        "{summary}"
    );
    assert_eq!(
        summary["was_on"], true,
        "the switch stays while the pool is on"
    );
    assert_eq!(summary["entries"], json!(["key-1", "Default Config"]));
    assert!(
        summary["offline"]
            .as_str()
            .is_some_and(|m| m.contains("Could not reach Rotor")),
        "{summary}"
    );
    // Once off, only the notice is left: it cannot be turned on again on this plan.
    assert_eq!(summary["switches"], 0, "{summary}");
    // Off, with the entries kept (Default Config added back last).
    let pool = w.lb(&gpt).await;
    assert_eq!(pool["enabled"], false, "{pool}");
    let names: Vec<&str> = pool["entries"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|x| x["credential_name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, ["key-1", "Default Config"]);
}
