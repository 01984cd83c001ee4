//! The console's Members, Usage, Audit log, License and Workspaces screens in a real browser
//! (scenarios in `console/tests/scenarios/admin.mjs`): what a user sees there, checked against
//! what the API says afterwards.

use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The config every scenario gets: the console's address and who signs in.
fn config(app: &TestApp, user: &TestUser, extra: Value) -> Value {
    let mut c = json!({"url": app.url(""), "email": user.email, "password": PASSWORD});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

/// `{email: role}` of the workspace's members through the API.
async fn roles(app: &TestApp, user: &TestUser) -> BTreeMap<String, String> {
    let r = app
        .get(
            &format!("/api/v1/workspaces/{}/members", user.workspace),
            &user.token,
        )
        .await;
    r.assert(200);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The text of `summary[field]`, or "".
fn text<'a>(summary: &'a Value, field: &str) -> &'a str {
    summary[field].as_str().unwrap_or("")
}

#[tokio::test]
async fn members_added_and_changed_in_the_page_have_those_roles_and_the_last_owner_is_refused_as_text(
) {
    let app = spawn_app().await;
    let owner = app.user("ada").await;
    let grace = app.user("grace").await;
    let linus = app.user("linus").await;
    let before = roles(&app, &owner).await;
    let summary = run_browser(
        "members_screen",
        config(
            &app,
            &owner,
            json!({"add": grace.email, "promote_to": "admin", "remove": linus.email}),
        ),
    )
    .await;
    // Refusals read as text: an unknown email, a malformed one next to its field.
    assert!(
        text(&summary, "unknown").to_lowercase().contains("user"),
        "{summary}"
    );
    assert!(!text(&summary, "field_error").is_empty(), "{summary}");
    assert_eq!(summary["aria_invalid"], "true", "{summary}");
    // Added as editor, then made admin, as the page said.
    assert_eq!(summary["added_as"], "editor", "{summary}");
    assert!(text(&summary, "changed").contains("admin"), "{summary}");
    // The last owner's demotion and removal are refused as text, and the page still shows owner.
    for refusal in ["demote_refusal", "remove_refusal"] {
        assert!(
            text(&summary, refusal).to_lowercase().contains("owner"),
            "{refusal}: {summary}"
        );
    }
    assert_eq!(summary["owner_shown_after"], "owner", "{summary}");
    // Remove asks in the page first (focus on the confirmation); Cancel keeps the member.
    assert_eq!(summary["focused_on_confirm"], "Yes, remove", "{summary}");
    assert_eq!(summary["kept_after_cancel"], 1, "{summary}");

    // The API agrees with the page: grace is admin, ada is still the owner, linus is gone.
    let after = roles(&app, &owner).await;
    let expected: BTreeMap<String, String> = [
        (owner.email.clone(), "owner".to_owned()),
        (grace.email.clone(), "admin".to_owned()),
    ]
    .into();
    assert_eq!(after, expected);
    assert_eq!(before.len(), 1);
    let shown: BTreeMap<String, String> = serde_json::from_value(summary["roles"].clone()).unwrap();
    assert_eq!(shown, after, "the page's table is the API's list");
    // And grace can now manage: she sees the workspace with the admin role.
    let ws = app
        .get(
            &format!("/api/v1/workspaces/{}", owner.workspace),
            &grace.token,
        )
        .await;
    assert_eq!(ws.body["role"], "admin");
}

/// Polls the usage API until `done` holds for its body (the ledger is flushed every 5 s).
async fn usage_until(w: &World, query: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = w
            .app
            .get(&w.w(&format!("/usage?{query}")), &w.user.token)
            .await;
        r.assert(200);
        if done(&r.body) || Instant::now() > deadline {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `{group: {requests, errors, input_tokens, output_tokens}}` of a report grouped by `field`.
fn by(body: &Value, field: &str) -> Value {
    let mut out = serde_json::Map::new();
    for r in body["data"].as_array().unwrap() {
        let name = r[field].as_str().unwrap_or_default().to_owned();
        out.insert(
            name,
            json!({"requests": r["requests"], "errors": r["errors"],
                   "input_tokens": r["input_tokens"], "output_tokens": r["output_tokens"]}),
        );
    }
    Value::Object(out)
}

#[tokio::test]
async fn the_usage_screen_shows_per_model_and_per_key_what_the_usage_api_reports() {
    let app = spawn_app().await;
    let user = app.user("ada").await;
    let w = World::of(&app, user).await;
    let (_, second) = app.api_key(&w.user, w.ws(), "batch-jobs").await;
    let secret = "sk-usage-never-shown-0123456789";
    let cred = w.cred("mock", secret).await;
    w.model("alpha", "alpha", cred).await;
    w.model("beta", "beta", cred).await;
    // 3 on alpha with the first key, 2 on beta with the second (5 in, 7 out each at the mock).
    for _ in 0..3 {
        w.chat("alpha").await.assert(200);
    }
    for _ in 0..2 {
        app.chat(&second, "beta").await.assert(200);
    }
    let api = usage_until(&w, "group_by=model", |b| {
        b["data"].as_array().is_some_and(|d| {
            d.iter()
                .map(|r| r["requests"].as_i64().unwrap_or(0))
                .sum::<i64>()
                == 5
        })
    })
    .await;
    let expected = json!({
        "alpha": {"requests": 3, "errors": 0, "input_tokens": 15, "output_tokens": 21},
        "beta": {"requests": 2, "errors": 0, "input_tokens": 10, "output_tokens": 14},
    });
    assert_eq!(by(&api, "model"), expected, "the API's report");

    let summary = run_browser(
        "usage_screen",
        config(&app, &w.user, json!({"secrets": [secret, w.key, second]})),
    )
    .await;
    // The numbers read from the page are the API's, over 30 days and over 7.
    assert_eq!(summary["by_model"], by(&api, "model"), "{summary}");
    assert_eq!(summary["by_model_7"], by(&api, "model"), "{summary}");
    assert_eq!(summary["days_7"], 7, "one table row per day: {summary}");
    // The charts draw the same counts, each bar titled, with a table of the same numbers.
    assert_eq!(
        summary["chart_requests"],
        json!({"alpha": 3, "beta": 2}),
        "{summary}"
    );
    assert_eq!(
        summary["chart_input"],
        json!({"alpha": 15, "beta": 10}),
        "{summary}"
    );
    assert_eq!(
        summary["chart_output"],
        json!({"alpha": 21, "beta": 14}),
        "{summary}"
    );
    assert_eq!(summary["table_requests"], 5, "{summary}");
    assert_eq!(
        summary["chart_names"],
        json!(["Requests", "Input tokens", "Output tokens"])
    );
    assert_eq!(summary["bars"], summary["titled"], "{summary}");
    // By API key, named as the API names them.
    let api_keys = w
        .app
        .get(&w.w("/usage?group_by=api_key"), &w.user.token)
        .await;
    assert_eq!(summary["by_key"], by(&api_keys.body, "api_key_name"));
    assert_eq!(summary["by_key"]["app"]["requests"], 3, "{summary}");
    assert_eq!(summary["by_key"]["batch-jobs"]["requests"], 2, "{summary}");
}

#[tokio::test]
async fn the_audit_log_shows_what_was_just_done_newest_first_a_page_at_a_time() {
    let app = spawn_app().await;
    let owner = app.user("ada").await;
    let grace = app.user("grace").await;
    let ws = owner.workspace;
    // More than a page (50) of events: API keys created and revoked through the API.
    for i in 0..27 {
        let (id, _) = app.api_key(&owner, ws, &format!("key-{i}")).await;
        app.delete(
            &format!("/api/v1/workspaces/{ws}/api-keys/{id}"),
            &owner.token,
        )
        .await
        .assert(204);
    }
    let summary = run_browser(
        "audit_screen",
        config(&app, &owner, json!({"add": grace.email})),
    )
    .await;
    let rows = summary["rows"].as_array().expect("rows");
    // The member added in the page just before is the newest event, with who, whom and the role.
    let top = &rows[0];
    assert_eq!(top["action"], "member.added", "{summary}");
    assert_eq!(top["actor"], owner.email.as_str(), "{top}");
    assert!(
        top["target"].as_str().unwrap_or("").contains(&grace.email),
        "{top}"
    );
    assert_eq!(top["details"], "role: editor", "{top}");
    assert_eq!(rows[1]["action"], "api_key.revoked", "{summary}");
    assert_eq!(rows[2]["action"], "api_key.created", "{summary}");
    // A page, then Load more until all of them: newest first throughout.
    assert_eq!(summary["first_page"], 50, "{summary}");
    assert!(summary["pages"].as_i64().unwrap() >= 2, "{summary}");
    let times: Vec<&str> = rows.iter().map(|r| r["time"].as_str().unwrap()).collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> =
        times.iter().map(|t| t.parse().unwrap()).collect();
    assert!(
        parsed.windows(2).all(|p| p[0] >= p[1]),
        "newest first: {times:?}"
    );
    // The same events in the same order as the API's list.
    let mut api_ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let r = app
            .get(
                &format!("/api/v1/workspaces/{ws}/audit-events?limit=200{q}"),
                &owner.token,
            )
            .await;
        r.assert(200);
        for e in r.body["data"].as_array().unwrap() {
            api_ids.push(e["id"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let page_ids: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(page_ids, api_ids);
    assert!(page_ids.len() > 55, "{}", page_ids.len());
}

#[tokio::test]
async fn license_and_workspaces_are_the_instance_admins_and_refusals_change_nothing() {
    let app = spawn_app().await;
    let admin = app.user("ada").await;
    let other = app.user("grace").await;
    app.add_member(&other, other.workspace, &admin, "normal")
        .await;
    // The tab bar of the instance admin has License and Workspaces; a second user's has not,
    // and a bookmark to #/license shows that user no license form.
    let tabs = run_browser(
        "admin_tabs",
        json!({"url": app.url(""), "users": [
            {"email": admin.email, "password": PASSWORD},
            {"email": other.email, "password": PASSWORD},
        ]}),
    )
    .await;
    let base = [
        "Models",
        "Credentials",
        "API keys",
        "Members",
        "Usage",
        "Audit log",
    ];
    let shown = |email: &str| -> Vec<String> {
        serde_json::from_value(tabs["tabs"][email].clone()).unwrap()
    };
    let admin_tabs = shown(&admin.email);
    let other_tabs = shown(&other.email);
    assert!(
        admin_tabs.ends_with(&["License".to_owned(), "Workspaces".to_owned()]),
        "{tabs}"
    );
    assert!(
        !other_tabs
            .iter()
            .any(|t| t == "License" || t == "Workspaces"),
        "{tabs}"
    );
    // The shared tabs come in the same order for both (whichever of them exist yet).
    let order = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|t| base.contains(&t.as_str()))
            .cloned()
            .collect()
    };
    assert_eq!(order(&admin_tabs), order(&other_tabs));
    assert_eq!(tabs["license_heading"][&admin.email], 1, "{tabs}");
    assert_eq!(tabs["license_heading"][&other.email], 0, "{tabs}");

    // An invalid and an expired license are refused in the page, as text; nothing changes.
    let before = app.get("/api/v1/admin/license", &admin.token).await;
    before.assert(200);
    let expired = license_token(&["load_balancing"], -60, None);
    let summary = run_browser(
        "license_refusals",
        config(
            &app,
            &admin,
            json!({"bad_licenses": ["this-is-not-a-license", expired],
                   "plan_workspace": other.workspace, "plan": "team"}),
        ),
    )
    .await;
    assert_eq!(summary["before"], "none", "{summary}");
    assert_eq!(summary["after"], "none", "{summary}");
    let refusals: Vec<String> = serde_json::from_value(summary["refusals"].clone()).unwrap();
    assert_eq!(refusals.len(), 2, "{summary}");
    assert!(
        refusals.iter().all(|r| !r.is_empty()) && refusals[0] != refusals[1],
        "an invalid and an expired license are told apart: {refusals:?}"
    );
    assert!(
        refusals[1].to_lowercase().contains("expired"),
        "{refusals:?}"
    );
    let after = app.get("/api/v1/admin/license", &admin.token).await;
    assert_eq!(after.body, before.body, "the license is unchanged");
    assert_eq!(after.body["status"], "none");

    // On a self-hosted instance the plan control's refusal is text and the plan stays.
    assert_eq!(
        summary["members"], 2,
        "grace's workspace has two members: {summary}"
    );
    // Self-hosted: the plan is shown, with no control to change it, and the page says why.
    assert_eq!(summary["plan_controls"], 0, "{summary}");
    assert!(text(&summary, "note").contains("self-hosted"), "{summary}");
    assert_eq!(summary["plan_shown"], "sandbox", "{summary}");
    let ws = app.workspace(&other).await;
    assert_eq!(ws.body["plan"], "sandbox");
}

#[tokio::test]
async fn a_license_installed_in_the_page_is_the_instance_license() {
    let app = spawn_app().await;
    let admin = app.user("ada").await;
    assert_eq!(
        app.workspace(&admin).await.body["features"]["load_balancing"],
        false
    );
    let summary = run_browser(
        "license_install",
        config(&app, &admin, json!({"license": lb_license()})),
    )
    .await;
    assert_eq!(summary["status"], "valid", "{summary}");
    assert_eq!(summary["licensee"], "ACME Corp", "{summary}");
    assert_eq!(summary["features"], "load_balancing", "{summary}");
    assert_eq!(summary["box_after"], "", "{summary}");
    assert!(
        text(&summary, "bar_before").contains("not available")
            && text(&summary, "bar_after").contains("Load balancing: available"),
        "the bar follows the license: {summary}"
    );
    assert!(text(&summary, "done").contains("valid"), "{summary}");
    // Through the API: the license is installed and its feature is on for the workspace.
    let status = app.get("/api/v1/admin/license", &admin.token).await;
    assert_eq!(status.body["status"], "valid");
    assert_eq!(status.body["licensee"], "ACME Corp");
    let ws = app.workspace(&admin).await;
    assert_eq!(ws.body["features"]["load_balancing"], true);
}

#[tokio::test]
async fn in_saas_mode_a_plan_set_in_the_page_is_the_workspace_plan() {
    let app = spawn_app_with(&[("ROTOR_DEPLOYMENT", "saas")]).await;
    let admin = app.user("ada").await;
    let customer = app.user("grace").await;
    let before = app.workspace(&customer).await;
    assert_eq!(before.body["plan"], "sandbox");
    assert_eq!(before.body["features"]["load_balancing"], false);
    let summary = run_browser(
        "plan_change",
        config(
            &app,
            &admin,
            json!({"plan_workspace": customer.workspace, "plan": "professional"}),
        ),
    )
    .await;
    assert_eq!(summary["before"], "sandbox", "{summary}");
    assert_eq!(summary["after"], "professional", "{summary}");
    assert!(
        text(&summary, "answer").contains("professional"),
        "{summary}"
    );
    assert_eq!(summary["members"], 1, "{summary}");
    // The customer's workspace is on the plan now, and the plan grants load balancing.
    let after = app.workspace(&customer).await;
    assert_eq!(after.body["plan"], "professional");
    assert_eq!(after.body["features"]["load_balancing"], true);
    // The admin's own workspace was not touched.
    assert_eq!(app.workspace(&admin).await.body["plan"], "sandbox");
}

#[tokio::test]
async fn an_owner_who_steps_down_in_the_page_loses_the_managing_controls_at_once() {
    let app = spawn_app().await;
    let ada = app.user("ada").await;
    let grace = app.user("grace").await;
    app.add_member(&ada, ada.workspace, &grace, "owner").await;
    let summary = run_browser(
        "self_demotion",
        json!({"url": app.url(""), "email": ada.email, "password": PASSWORD, "role": "normal"}),
    )
    .await;
    assert_eq!(summary["before"], 1, "{summary}");
    assert_eq!(summary["after"], 0, "{summary}");
    assert!(
        text(&summary, "bar").contains("Your role: normal"),
        "{summary}"
    );
    let ws = app.workspace(&ada).await;
    assert_eq!(ws.body["role"], "normal");
}
