//! The console's Credentials and API keys screens in a real browser (scenarios in
//! `console/tests/scenarios/{credentials,api_keys}.mjs`), each checked afterwards through the API.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

/// The credential named `name` of the world's workspace, as the API lists it.
async fn credential_named(w: &World, name: &str) -> Option<Value> {
    let list = w.app.get(&w.w("/credentials"), &w.user.token).await;
    list.assert(200);
    list.body["data"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
}

/// The API key named `name` of the world's workspace, as the API lists it.
async fn key_named(w: &World, name: &str) -> Option<Value> {
    let list = w.app.get(&w.w("/api-keys"), &w.user.token).await;
    list.assert(200);
    list.body["data"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|k| k["name"] == name)
        .cloned()
}

/// `GET /v1/models` with `key`: the gateway's answer status.
async fn gateway_status(app: &TestApp, key: &str) -> u16 {
    app.req(Method::GET, "/v1/models")
        .bearer(key)
        .send()
        .await
        .status
        .as_u16()
}

#[tokio::test]
async fn a_credential_added_from_its_schema_keeps_its_secret_through_a_rename_and_out_of_the_page()
{
    let app = spawn_app().await;
    let user = app.user("ada").await;
    let email = user.email.clone();
    let w = World::of(&app, user).await;
    let secret = "sk-console-typed-in-page-7f3a";
    let base_url = w.mock.url("/v1");
    w.cred("taken", "sk-console-taken-0000001").await;
    let spare = w.cred("spare", "sk-console-spare-0000001").await;
    // A credential the provider refuses, used by a model: rejected after one call.
    let refused = "sk-console-refused-00001";
    let rejected = w.cred("rejected", refused).await;
    w.model("uses-rejected", "gpt", rejected).await;
    w.mock.refuse(refused);
    w.chat("uses-rejected").await;
    let r = app
        .get(&w.w(&format!("/credentials/{rejected}")), &w.user.token)
        .await;
    assert_eq!(r.body["health"]["state"], "rejected", "{}", r.body);

    let summary = run_browser(
        "credentials_manage",
        json!({
            "url": app.url(""), "email": email, "password": PASSWORD,
            "provider": "openai_compatible", "name": "added", "taken": "taken",
            "renamed": "renamed", "rejected": "rejected", "spare": "spare",
            "api_key": secret, "base_url": base_url, "secrets": [secret, refused],
        }),
    )
    .await;
    // The form follows the provider's schema: a password field for the secret, help text.
    let schema = summary["schema"].as_array().expect("inputs");
    let labels: Vec<&str> = schema.iter().filter_map(|i| i["label"].as_str()).collect();
    assert_eq!(
        labels,
        ["Name", "api_key", "base_url", "Quota cooldown (seconds)"],
        "{summary}"
    );
    assert_eq!(schema[1]["type"], "password", "{summary}");
    assert_eq!(schema[1]["autocomplete"], "new-password", "{summary}");
    assert_eq!(schema[2]["type"], "text", "{summary}");
    assert!(
        schema[2]["help"]
            .as_str()
            .unwrap_or("")
            .contains("API base URL"),
        "{summary}"
    );
    // The server's refusals sit next to their fields.
    assert_eq!(summary["refused"]["invalid"], "true", "{summary}");
    assert!(
        summary["refused"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("http:// or https:// URL"),
        "{summary}"
    );
    assert!(
        summary["duplicate"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("already has this name"),
        "{summary}"
    );
    assert_eq!(summary["group"], "OpenAI-compatible API", "{summary}");
    // Listed and edited masked, never in clear.
    let masked = "sk-\u{2026}7f3a";
    let listed = summary["listed"].as_str().unwrap_or("");
    assert!(
        listed.contains(masked) && listed.contains(&base_url),
        "{summary}"
    );
    assert_eq!(summary["masked"], masked, "{summary}");
    assert!(
        summary["edit_help"].as_str().unwrap_or("").contains(masked),
        "{summary}"
    );
    assert_eq!(
        summary["secret_required"]["error"], "required in clear when base_url or endpoint changes",
        "{summary}"
    );
    assert!(
        summary["validation"]
            .as_str()
            .unwrap_or("")
            .starts_with("Valid:"),
        "{summary}"
    );
    let health = summary["health"].as_str().unwrap_or("");
    assert!(
        health.contains("Rejected") && health.contains("HTTP 401"),
        "{summary}"
    );
    assert!(
        summary["in_use"]
            .as_str()
            .unwrap_or("")
            .contains("uses-rejected"),
        "{summary}"
    );
    assert_eq!(summary["kept"], 1, "Keep keeps it: {summary}");
    let mut names: Vec<&str> = summary["names"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["rejected", "renamed", "taken"], "{summary}");

    // Through the API: the right provider and config, renamed, with the typed secret intact.
    assert!(credential_named(&w, "added").await.is_none());
    let c = credential_named(&w, "renamed").await.expect("renamed");
    assert_eq!(c["provider"], "openai_compatible");
    assert_eq!(c["quota_cooldown_seconds"], 120);
    assert_eq!(
        c["config"],
        json!({"api_key": masked, "base_url": base_url})
    );
    let id = id_of(&c);
    w.mock.reset();
    let v = app
        .post(
            &w.w(&format!("/credentials/{id}/validate")),
            &w.user.token,
            json!({}),
        )
        .await;
    assert_eq!(v.body, json!({"valid": true}), "{}", v.text);
    assert_eq!(w.mock.keys(), [secret], "validate sent the stored secret");
    w.model("uses-renamed", "gpt", id).await;
    w.chat("uses-renamed").await.assert(200);
    assert_eq!(w.counts().get(secret), Some(&2), "{:?}", w.counts());
    app.get(&w.w(&format!("/credentials/{spare}")), &w.user.token)
        .await
        .assert_error(404, "not_found");
    assert!(credential_named(&w, "rejected").await.is_some());
}

#[tokio::test]
async fn a_member_who_only_reads_sees_credentials_and_keys_and_no_control() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let w = World::of(&app, owner.clone()).await;
    let keys = ["sk-console-read-only-000001", "sk-console-read-only-000002"];
    w.creds(keys).await;
    let reader = app.user("reader").await;
    app.add_member(&owner, w.ws(), &reader, "normal").await;
    let summary = run_browser(
        "credentials_read_only",
        json!({"url": app.url(""), "email": reader.email, "password": PASSWORD,
               "workspace": owner.workspace, "secrets": keys}),
    )
    .await;
    assert_eq!(summary["rows"], 2, "{summary}");
    assert!(
        summary["health"]
            .as_str()
            .unwrap_or("")
            .starts_with("Available"),
        "{summary}"
    );
    assert_eq!(summary["key_rows"], 1, "the world's key: {summary}");
    for control in [
        "add",
        "edit",
        "validate",
        "delete",
        "create_key",
        "edit_limits",
        "revoke",
    ] {
        assert_eq!(summary[control], 0, "{control}: {summary}");
    }
}

#[tokio::test]
async fn an_api_key_created_in_the_page_is_shown_once_works_and_stops_when_revoked() {
    let app = spawn_app().await;
    let user = app.user("ada").await;
    let email = user.email.clone();
    let w = World::of(&app, user).await;
    let config =
        json!({"url": app.url(""), "email": email, "password": PASSWORD, "name": "from-page"});
    let summary = run_browser("api_key_once", config.clone()).await;
    let key = summary["key"].as_str().expect("the key was shown");
    assert!(key.starts_with("rk-") && key.len() > 20, "{summary}");
    assert_eq!(
        summary["clipboard"], key,
        "Copy puts the key in the clipboard"
    );
    assert_eq!(summary["copied"], "Copied to the clipboard.");
    assert!(
        summary["note"]
            .as_str()
            .unwrap_or("")
            .contains("will not be shown again"),
        "{summary}"
    );
    assert_eq!(summary["key_in_storage_while_shown"], false, "{summary}");
    assert_eq!(summary["shown_after"], 0, "{summary}");
    let listed = key_named(&w, "from-page").await.expect("created");
    let prefix = listed["prefix"].as_str().expect("a prefix");
    assert!(key.starts_with(prefix), "{listed}");
    assert_eq!(summary["listed"], format!("{prefix}\u{2026}"), "{summary}");
    assert_eq!(gateway_status(&app, key).await, 200);

    let revoked = run_browser("api_key_revoke", config).await;
    assert_eq!(revoked["status"], "Revoked", "{revoked}");
    assert_eq!(revoked["buttons"], 0, "{revoked}");
    assert_eq!(revoked["keep_focused"], true, "{revoked}");
    assert_eq!(revoked["focus_back"], true, "{revoked}");
    assert_eq!(gateway_status(&app, key).await, 401);
    assert!(key_named(&w, "from-page").await.is_none());
    // The world's own key is untouched.
    assert_eq!(gateway_status(&app, &w.key).await, 200);
}

#[tokio::test]
async fn limits_set_and_changed_in_the_page_are_the_keys_limits() {
    let app = spawn_app().await;
    let user = app.user("ada").await;
    let email = user.email.clone();
    let w = World::of(&app, user).await;
    let summary = run_browser(
        "api_key_limits",
        json!({"url": app.url(""), "email": email, "password": PASSWORD, "name": "limited"}),
    )
    .await;
    assert_eq!(summary["refused"]["invalid"], "true", "{summary}");
    assert_eq!(
        summary["refused"]["error"], "must be from 1 to 1000000",
        "{summary}"
    );
    assert_eq!(
        summary["refused"]["rows"], 0,
        "a refused key is not created"
    );
    assert_eq!(
        summary["created"],
        "30 requests/min · 5,000 tokens/min · 1,000,000 tokens/month · $12.50/month"
    );
    assert_eq!(summary["before"], "30");
    assert_eq!(
        summary["after"],
        "45 requests/min · 5,000 tokens/min · $12.50/month"
    );
    let k = key_named(&w, "limited").await.expect("created");
    assert_eq!(k["rpm"], 45, "{k}");
    assert_eq!(k["tpm"], 5000, "{k}");
    assert_eq!(k["monthly_token_budget"], Value::Null, "{k}");
    assert_eq!(k["monthly_budget_usd"], 12.5, "{k}");
}

#[tokio::test]
async fn a_key_scoped_in_the_page_reaches_only_its_models_and_carries_its_expiry() {
    let app = spawn_app().await;
    let user = app.user("ada").await;
    let w = World::of(&app, user.clone()).await;
    let cred = w.cred("c", "sk-scope-0000000001").await;
    w.model("alpha", "gpt", cred).await;
    w.model("beta", "gpt", cred).await;
    let summary = run_browser(
        "api_key_scope",
        json!({"url": app.url(""), "email": user.email, "password": PASSWORD,
               "name": "scoped", "models": "alpha, ", "expires": "2099-06-30"}),
    )
    .await;
    let key = summary["key"].as_str().expect("the key shown once");
    let keys = app.get(&w.w("/api-keys"), &w.user.token).await;
    let scoped = keys.body["data"]
        .as_array()
        .and_then(|l| l.iter().find(|k| k["name"] == "scoped").cloned())
        .expect("the key created in the page");
    assert_eq!(scoped["allowed_models"], json!(["alpha"]), "{scoped}");
    assert!(
        scoped["expires_at"]
            .as_str()
            .is_some_and(|e| e.starts_with("2099-06-30T23:59:59")),
        "{scoped}"
    );
    app.chat(key, "alpha").await.assert(200);
    let refused = app.chat(key, "beta").await;
    assert!(
        refused.status == 403 || refused.status == 404,
        "{}",
        refused.text
    );
}
