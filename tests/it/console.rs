//! The web console as served by `rotor serve`: the page and its assets come from the binary,
//! under a Content-Security-Policy that lets the page load and call nothing but its own origin.
//! (The console's behaviour in a browser is tested by the Playwright suite.)

use crate::helpers::*;
use reqwest::Method;

/// The directives a console answer must carry, whatever else it has.
const REQUIRED: &[&str] = &[
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
];

fn assert_locked_down(resp: &Resp, what: &str) {
    let csp = resp
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    for directive in REQUIRED {
        assert!(
            csp.contains(directive),
            "{what}: CSP {csp:?} lacks {directive:?}"
        );
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert!(
        !csp.contains("http:") && !csp.contains("https:") && !csp.contains('*'),
        "{what}: {csp}"
    );
    assert_eq!(
        resp.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(resp.header("x-frame-options"), Some("DENY"), "{what}");
}

#[tokio::test]
async fn the_console_page_and_its_assets_are_served_from_the_binary_under_a_strict_csp() {
    let app = spawn_app().await;
    let page = app.req(Method::GET, "/").send().await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    assert_locked_down(&page, "/");
    // The page loads exactly its own script and stylesheet, by path, and nothing inline.
    assert!(
        page.text.contains(r#"src="/assets/app.js""#),
        "{}",
        page.text
    );
    assert!(
        page.text.contains(r#"href="/assets/app.css""#),
        "{}",
        page.text
    );
    assert!(
        !page.text.contains("<script>"),
        "an inline script would be refused by the CSP"
    );

    for (path, kind) in [
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
    ] {
        let asset = app.req(Method::GET, path).send().await;
        assert_eq!(asset.status, 200, "{path}");
        assert!(
            asset.header("content-type").unwrap_or("").starts_with(kind),
            "{path}"
        );
        assert!(asset.text.len() > 100, "{path} is empty");
        assert_locked_down(&asset, path);
        // No address of another host to load from (XML namespace names are not requests).
        let foreign = asset
            .text
            .match_indices("http")
            .filter(|(at, _)| !asset.text[*at..].starts_with("http://www.w3.org/"))
            .count();
        assert_eq!(foreign, 0, "{path} names another origin");
    }
    // Anything else under the console is the API's JSON 404, not the page.
    app.req(Method::GET, "/assets/other.js")
        .send()
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn in_a_browser_one_signs_up_out_and_in_again_and_the_password_never_shows() {
    let app = spawn_app().await;
    let password = "a browser-typed password";
    let summary = run_browser(
        "account",
        serde_json::json!({
            "url": app.url(""),
            "email": "ada@example.com",
            "password": password,
            "name": "Ada",
        }),
    )
    .await;
    // Signing out leaves nothing in the tab's storage; the wrong password is refused as text.
    assert_eq!(summary["storage_after_sign_out"], 0, "{summary}");
    let refusal = summary["refusal"].as_str().unwrap_or("");
    assert!(
        !refusal.is_empty() && !refusal.contains(password),
        "{summary}"
    );
    // The account exists through the API, and the page's session token is a working one.
    let token = summary["token"].as_str().expect("signed in at the end");
    let me = app.get("/api/v1/me", token).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["email"], "ada@example.com");
    assert_eq!(
        me.body["is_admin"], true,
        "the first user is the instance admin"
    );
    assert_eq!(app.login("ada@example.com", password).await.status, 200);
}

#[tokio::test]
async fn the_model_list_marks_exactly_the_models_whose_pool_is_in_effect() {
    let app = spawn_app_with(&[("ROTOR_LICENSE", &lb_license())]).await;
    let user = app.user("ada").await;
    let email = user.email.clone();
    let w = World::of(&app, user).await;
    let key = "sk-console-never-shown-0123456789";
    let creds = w.creds_at([key; 2], "https://x.example/v1").await;
    let pooled = w.model("pooled", "gpt", creds[0]).await;
    let off = w.model("switched-off", "gpt", creds[0]).await;
    w.model("single", "gpt", creds[0]).await;
    let entries = serde_json::json!([
        {"credential_id": null, "enabled": true},
        {"credential_id": creds[1], "enabled": true, "weight": 2},
    ]);
    for (model, enabled) in [(&pooled, true), (&off, false)] {
        app.put(
            &w.lb_path(model),
            &w.user.token,
            serde_json::json!({"enabled": enabled, "entries": entries}),
        )
        .await
        .assert(200);
    }
    let summary = run_browser(
        "models",
        serde_json::json!({
            "url": app.url(""), "email": email, "password": PASSWORD, "secrets": [key],
        }),
    )
    .await;
    assert_eq!(
        summary["icons"],
        serde_json::json!({"pooled": true, "switched-off": false, "single": false}),
        "the icon follows the API's `effective`"
    );
    // The API agrees, and the switched-off pool kept its entries.
    let models = app.get(&w.w("/models"), &w.user.token).await;
    for m in models.body["data"].as_array().expect("a list") {
        let icon = summary["icons"][m["name"].as_str().unwrap_or("")].clone();
        assert_eq!(m["load_balancing"]["effective"], icon, "{m}");
    }
    let kept = app.get(&w.lb_path(&off), &w.user.token).await;
    assert_eq!(kept.body["entries"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_model_added_in_the_page_serves_with_its_credential_and_one_removed_is_gone() {
    let app = spawn_app().await;
    let user = app.user("ada").await;
    let email = user.email.clone();
    let w = World::of(&app, user).await;
    let creds = w
        .creds(["sk-model-form-000001", "sk-model-form-000002"])
        .await;
    let old = w.model("old", "gpt", creds[0]).await;
    let summary = run_browser(
        "models_add",
        serde_json::json!({
            "url": app.url(""), "email": email, "password": PASSWORD,
            "name": "chat", "upstream": "gpt-up", "credential": "key-1", "remove": "old",
        }),
    )
    .await;
    assert_eq!(summary["price_error"], "must be a number", "{summary}");
    assert_eq!(summary["names"], serde_json::json!(["chat"]));
    let models = app.get(&w.w("/models"), &w.user.token).await;
    let list = models.body["data"].as_array().expect("a list");
    assert_eq!(list.len(), 1, "{}", models.body);
    assert_eq!(list[0]["upstream_model"], "gpt-up");
    assert_eq!(list[0]["credential_id"], creds[1].to_string());
    assert_eq!(list[0]["input_usd_per_mtok"], 2.5);
    app.get(&w.w(&format!("/models/{old}")), &w.user.token)
        .await
        .assert_error(404, "not_found");
    // The gateway serves it with the credential chosen in the page.
    w.chat("chat").await.assert(200);
    assert_eq!(w.counts().get("sk-model-form-000002"), Some(&1));
}

#[tokio::test]
async fn a_tab_whose_session_ended_returns_to_sign_in_and_says_why() {
    let app = spawn_app().await;
    let user = app.user("ada").await;
    let stale = user.token.clone();
    app.post(
        "/api/v1/me/password",
        &user.token,
        serde_json::json!({"current_password": PASSWORD, "new_password": "another password 42"}),
    )
    .await
    .assert(204);
    assert_eq!(app.get("/api/v1/me", &stale).await.status, 401);
    let summary = run_browser(
        "session_ended",
        serde_json::json!({"url": app.url(""), "token": stale}),
    )
    .await;
    assert!(
        summary["notice"]
            .as_str()
            .is_some_and(|n| n.contains("session has ended")),
        "{summary}"
    );
    assert_eq!(summary["storage"], 0, "the stale token is dropped");
}

#[tokio::test]
async fn a_workspace_created_from_the_bar_is_owned_by_its_creator_and_shown_at_once() {
    let app = spawn_app().await;
    let user = app.user("ada").await;
    let summary = run_browser(
        "new_workspace",
        serde_json::json!({"url": app.url(""), "email": user.email, "password": PASSWORD,
                           "name": "Research"}),
    )
    .await;
    assert!(
        !summary["refusal"].as_str().unwrap_or("").is_empty(),
        "{summary}"
    );
    let list = app.get("/api/v1/workspaces", &user.token).await;
    let research = list.body["data"]
        .as_array()
        .and_then(|l| l.iter().find(|w| w["name"] == "Research").cloned())
        .expect("the new workspace");
    assert_eq!(research["role"], "owner");
    assert_eq!(summary["selected"], research["id"], "{summary}");
    assert_eq!(list.body["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(summary["options"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_model_list_shows_every_model_past_the_first_page() {
    let app = spawn_app().await;
    let user = app.user("ada").await;
    let email = user.email.clone();
    let w = World::of(&app, user).await;
    let cred = w.cred("c", "sk-many-models-00001").await;
    // One more than a page of the API's list (200).
    for i in 0..203 {
        w.model(&format!("m-{i:03}"), "gpt", cred).await;
    }
    let summary = run_browser(
        "models",
        serde_json::json!({"url": app.url(""), "email": email, "password": PASSWORD}),
    )
    .await;
    let shown = summary["icons"].as_object().map(|m| m.len());
    assert_eq!(shown, Some(203), "every page is read");
    assert!(summary["icons"].get("m-202").is_some());
}
