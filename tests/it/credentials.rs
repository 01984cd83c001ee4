//! Credentials, the provider catalogue, models, validation against the provider and the
//! upstream address policy.

use crate::helpers::*;
use rotor_tests::mock::{MockKey, MockUpstream, BODY_CANARY};
use serde_json::{json, Value};
use uuid::Uuid;

const KEY: &str = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";

fn creds(ws: Uuid) -> String {
    format!("/api/v1/workspaces/{ws}/credentials")
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn provider_catalogue_lists_schemas() {
    let app = spawn_app().await;
    let u = app.user("u").await;
    let r = app.get("/api/v1/providers", &u.token).await;
    r.assert(200);
    assert!(r.body["next_cursor"].is_null());
    let ids: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "openai",
            "openai_compatible",
            "azure_openai",
            "anthropic",
            "gemini",
            "mistral",
            "groq",
            "deepseek",
            "openrouter",
            "together",
            "fireworks",
            "xai"
        ]
    );
    let by_id = |id: &str| {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap()
            .clone()
    };
    // Each provider names the API family its models serve; presets are compatible servers
    // with their address filled in.
    for (id, family) in [
        ("openai", "openai"),
        ("azure_openai", "openai"),
        ("groq", "openai"),
        ("anthropic", "anthropic"),
        ("gemini", "gemini"),
    ] {
        assert_eq!(by_id(id)["family"], family, "{id}");
    }
    assert_eq!(
        by_id("anthropic")["credential_schema"][1]["default"],
        "https://api.anthropic.com"
    );
    assert_eq!(
        by_id("gemini")["credential_schema"][1]["default"],
        "https://generativelanguage.googleapis.com"
    );
    assert_eq!(
        by_id("groq")["credential_schema"][1]["default"],
        "https://api.groq.com/openai/v1"
    );
    let openai = &r.body["data"][0]["credential_schema"];
    assert_eq!(
        openai[0],
        json!({"name": "api_key", "type": "secret", "required": true, "description": "API key (sk-…)"})
    );
    assert_eq!(openai[1]["default"], "https://api.openai.com/v1");
    app.call(reqwest::Method::GET, "/api/v1/providers", None, None)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn secrets_are_masked_in_every_answer() {
    let app = spawn_app().await;
    let u = app.user("u").await;
    let c = app
        .credential(
            &u,
            u.workspace,
            "openai",
            "main",
            json!({"api_key": KEY, "organization": "org-1"}),
        )
        .await;
    assert_eq!(c["config"]["api_key"], "sk-\u{2026}6789");
    assert_eq!(
        c["config"]["base_url"], "https://api.openai.com/v1",
        "the schema default is filled in"
    );
    assert_eq!(c["config"]["organization"], "org-1");
    assert_eq!(c["provider"], "openai");
    let id = c["id"].as_str().unwrap();

    let short = app
        .credential(
            &u,
            u.workspace,
            "openai_compatible",
            "local",
            json!({"api_key": "short-key", "base_url": "http://127.0.0.1:9/v1/"}),
        )
        .await;
    assert_eq!(short["config"]["api_key"], "****");
    assert_eq!(
        short["config"]["base_url"], "http://127.0.0.1:9/v1",
        "trailing slash removed"
    );

    let got = app
        .get(&format!("{}/{id}", creds(u.workspace)), &u.token)
        .await;
    got.assert(200);
    assert_eq!(got.body["config"]["api_key"], "sk-\u{2026}6789");
    let list = app.get(&creds(u.workspace), &u.token).await;
    list.assert(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    for r in [&c, &short, &got.body, &list.body] {
        let text = r.to_string();
        assert!(
            !text.contains(KEY) && !text.contains("short-key"),
            "a secret leaked: {text}"
        );
    }
}

#[tokio::test]
async fn config_is_validated_against_the_provider_schema() {
    let app = spawn_app().await;
    let u = app.user("u").await;
    let path = creds(u.workspace);
    for (body, field) in [
        (
            json!({"provider": "cohere", "name": "x", "config": {"api_key": KEY}}),
            "provider",
        ),
        (
            json!({"provider": "openai", "name": "x", "config": {}}),
            "config.api_key",
        ),
        (
            json!({"provider": "openai", "name": "x", "config": {"api_key": KEY, "extra": "y"}}),
            "config.extra",
        ),
        (
            json!({"provider": "openai", "name": "x", "config": {"api_key": 42}}),
            "config.api_key",
        ),
        (
            json!({"provider": "openai_compatible", "name": "x", "config": {"api_key": KEY}}),
            "config.base_url",
        ),
        (
            json!({"provider": "openai_compatible", "name": "x", "config": {"api_key": KEY, "base_url": "ftp://x"}}),
            "config.base_url",
        ),
        (
            json!({"provider": "openai_compatible", "name": "x", "config": {"api_key": KEY, "base_url": "http://u:p@h/v1"}}),
            "config.base_url",
        ),
        (
            json!({"provider": "azure_openai", "name": "x", "config": {"api_key": KEY}}),
            "config.endpoint",
        ),
        (
            json!({"provider": "openai", "name": "", "config": {"api_key": KEY}}),
            "name",
        ),
        (
            json!({"provider": "openai", "name": "x", "config": {"api_key": "sk-\u{2026}6789"}}),
            "config.api_key",
        ),
        (
            json!({"provider": "openai", "name": "x", "config": "sk"}),
            "config",
        ),
    ] {
        let r = app.post(&path, &u.token, body.clone()).await;
        r.assert_field("validation_failed", field, &body);
        assert!(!r.body.to_string().contains(KEY));
    }
    assert_eq!(
        count(&app, "credentials").await,
        0,
        "rejected writes store nothing"
    );

    let azure = app
        .credential(
            &u,
            u.workspace,
            "azure_openai",
            "az",
            json!({"api_key": KEY, "endpoint": "https://x.openai.azure.com"}),
        )
        .await;
    assert_eq!(azure["config"]["api_version"], "2024-10-21");
    app.credential(&u, u.workspace, "openai", "dup", json!({"api_key": KEY}))
        .await;
    app.post(
        &path,
        &u.token,
        json!({"provider": "openai", "name": "dup", "config": {"api_key": KEY}}),
    )
    .await
    .assert_error(409, "credential_exists");
    // The same name under another provider is fine.
    app.credential(
        &u,
        u.workspace,
        "openai_compatible",
        "dup",
        json!({"api_key": KEY, "base_url": "https://x.example/v1"}),
    )
    .await;
}

#[tokio::test]
async fn patch_merges_keeps_masked_secrets_and_guards_url_changes() {
    let app = spawn_app().await;
    let mock = MockUpstream::start().await.unwrap();
    let u = app.user("u").await;
    let id = app
        .compatible_credential(
            &u,
            u.workspace,
            "c",
            "sk-original-key-0001",
            &mock.url("/v1"),
        )
        .await;
    let path = format!("{}/{id}", creds(u.workspace));
    let masked = "sk-\u{2026}0001";

    // Masked secret and a rename keep the stored key.
    let r = app
        .patch(
            &path,
            &u.token,
            json!({"name": "renamed", "config": {"api_key": masked}}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["name"], "renamed");
    assert_eq!(r.body["config"]["api_key"], masked);
    app.post(&format!("{path}/validate"), &u.token, json!({}))
        .await
        .assert(200);
    assert_eq!(
        mock.requests().last().unwrap().key.as_deref(),
        Some("sk-original-key-0001")
    );

    // Changing base_url without the secret in clear is refused and changes nothing.
    for config in [
        json!({"base_url": "https://evil.example/v1"}),
        json!({"base_url": "https://evil.example/v1", "api_key": masked}),
    ] {
        let r = app
            .patch(&path, &u.token, json!({ "config": config }))
            .await;
        r.assert_error(422, "secret_required");
        assert!(r.body["error"]["details"]["fields"]["config.api_key"].is_string());
    }
    let r = app.get(&path, &u.token).await;
    assert_eq!(r.body["config"]["base_url"], mock.url("/v1"));

    // With the secret in clear it is accepted, and the new key is the one used.
    let other = MockUpstream::start().await.unwrap();
    let r = app
        .patch(
            &path,
            &u.token,
            json!({"config": {"base_url": other.url("/v2"), "api_key": "sk-rotated-key-0002"}}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["config"]["api_key"], "sk-\u{2026}0002");
    app.post(&format!("{path}/validate"), &u.token, json!({}))
        .await
        .assert(200);
    let last = other.requests().pop().unwrap();
    assert_eq!(
        (last.uri.as_str(), last.key.as_deref()),
        ("/v2/models", Some("sk-rotated-key-0002"))
    );

    // null clears optional fields and is refused for required ones; unknown fields are named.
    let oa = app
        .credential(
            &u,
            u.workspace,
            "openai",
            "oa",
            json!({"api_key": KEY, "organization": "org-9"}),
        )
        .await;
    let oa_path = format!("{}/{}", creds(u.workspace), oa["id"].as_str().unwrap());
    let r = app
        .patch(
            &oa_path,
            &u.token,
            json!({"config": {"organization": null}}),
        )
        .await;
    r.assert(200);
    assert!(r.body["config"].get("organization").is_none());
    app.patch(&oa_path, &u.token, json!({"config": {"api_key": null}}))
        .await
        .assert_error(422, "validation_failed");
    app.patch(&oa_path, &u.token, json!({"config": {"nope": "x"}}))
        .await
        .assert_error(422, "validation_failed");
    app.patch(&oa_path, &u.token, json!({"name": "c", "config": {}}))
        .await
        .assert(200);
    let dup = app.patch(&oa_path, &u.token, json!({"name": "oa2"})).await;
    dup.assert(200);
    app.credential(&u, u.workspace, "openai", "taken", json!({"api_key": KEY}))
        .await;
    app.patch(&oa_path, &u.token, json!({"name": "taken"}))
        .await
        .assert_error(409, "credential_exists");
}

#[tokio::test]
async fn credentials_in_use_cannot_be_deleted() {
    let app = spawn_app().await;
    let u = app.user("u").await;
    let used = app
        .compatible_credential(&u, u.workspace, "used", KEY, "https://x.example/v1")
        .await;
    let free = app
        .compatible_credential(&u, u.workspace, "free", KEY, "https://x.example/v1")
        .await;
    let m1 = app
        .model(&u, u.workspace, "openai_compatible", "m1", used)
        .await;
    app.model(&u, u.workspace, "openai_compatible", "m0", used)
        .await;

    let r = app
        .delete(&format!("{}/{used}", creds(u.workspace)), &u.token)
        .await;
    r.assert_error(409, "credential_in_use");
    assert_eq!(r.body["error"]["details"]["models"], json!(["m0", "m1"]));
    app.get(&format!("{}/{used}", creds(u.workspace)), &u.token)
        .await
        .assert(200);

    app.delete(&format!("{}/{free}", creds(u.workspace)), &u.token)
        .await
        .assert(204);
    app.get(&format!("{}/{free}", creds(u.workspace)), &u.token)
        .await
        .assert_error(404, "not_found");
    app.delete(&format!("{}/{free}", creds(u.workspace)), &u.token)
        .await
        .assert_error(404, "not_found");

    // Moving the models away frees the credential.
    app.delete(
        &format!(
            "/api/v1/workspaces/{}/models/{}",
            u.workspace,
            m1["id"].as_str().unwrap()
        ),
        &u.token,
    )
    .await
    .assert(204);
    let m0 = app
        .get(
            &format!("/api/v1/workspaces/{}/models", u.workspace),
            &u.token,
        )
        .await
        .body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch(
        &format!("/api/v1/workspaces/{}/models/{m0}", u.workspace),
        &u.token,
        json!({"credential_id": free}),
    )
    .await
    .assert_error(422, "validation_failed");
    let other = app
        .compatible_credential(&u, u.workspace, "other", KEY, "https://x.example/v1")
        .await;
    app.patch(
        &format!("/api/v1/workspaces/{}/models/{m0}", u.workspace),
        &u.token,
        json!({"credential_id": other}),
    )
    .await
    .assert(200);
    app.delete(&format!("{}/{used}", creds(u.workspace)), &u.token)
        .await
        .assert(204);
}

#[tokio::test]
async fn models_reference_credentials_of_their_workspace_and_provider() {
    let app = spawn_app().await;
    let u = app.user("u").await;
    let stranger = app.user("stranger").await;
    let compat = app
        .compatible_credential(&u, u.workspace, "compat", KEY, "https://x.example/v1")
        .await;
    let openai: Uuid = app
        .credential(&u, u.workspace, "openai", "oa", json!({"api_key": KEY}))
        .await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let foreign = app
        .compatible_credential(
            &stranger,
            stranger.workspace,
            "theirs",
            KEY,
            "https://x.example/v1",
        )
        .await;
    let path = format!("/api/v1/workspaces/{}/models", u.workspace);

    let m = app
        .model(&u, u.workspace, "openai_compatible", "llama-3", compat)
        .await;
    assert_eq!(
        m["upstream_model"], "llama-3",
        "upstream_model defaults to name"
    );
    assert_eq!(m["model_type"], "llm");
    assert_eq!(m["credential_id"], compat.to_string());
    assert_eq!(
        m["load_balancing"],
        json!({"enabled": false, "effective": false})
    );

    for (body, field) in [
        (
            json!({"provider": "openai_compatible", "name": "x", "model_type": "llm", "credential_id": foreign}),
            "credential_id",
        ),
        (
            json!({"provider": "openai_compatible", "name": "x", "model_type": "llm", "credential_id": openai}),
            "credential_id",
        ),
        (
            json!({"provider": "openai_compatible", "name": "x", "model_type": "llm", "credential_id": Uuid::new_v4()}),
            "credential_id",
        ),
        (
            json!({"provider": "nope", "name": "x", "model_type": "llm", "credential_id": compat}),
            "provider",
        ),
        (
            json!({"provider": "openai_compatible", "name": "x", "model_type": "video", "credential_id": compat}),
            "model_type",
        ),
        (
            json!({"provider": "openai_compatible", "name": "has space", "model_type": "llm", "credential_id": compat}),
            "name",
        ),
        (
            json!({"provider": "openai_compatible", "name": "x", "model_type": "llm", "credential_id": "abc"}),
            "credential_id",
        ),
    ] {
        let r = app.post(&path, &u.token, body.clone()).await;
        r.assert_field("validation_failed", field, &body);
    }
    assert_eq!(count(&app, "models").await, 1);
    app.post(&path, &u.token, json!({"provider": "openai_compatible", "name": "llama-3", "model_type": "llm", "credential_id": compat}))
        .await
        .assert_error(409, "model_exists");

    let e = app
        .post(
            &path,
            &u.token,
            json!({"provider": "openai", "name": "embed", "upstream_model": "text-embedding-3-small", "model_type": "text-embedding", "credential_id": openai}),
        )
        .await;
    e.assert(201);
    assert_eq!(e.body["upstream_model"], "text-embedding-3-small");
    assert_eq!(e.body["model_type"], "text-embedding");

    let id = m["id"].as_str().unwrap();
    let r = app
        .patch(
            &format!("{path}/{id}"),
            &u.token,
            json!({"upstream_model": "meta-llama-3-70b"}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["upstream_model"], "meta-llama-3-70b");
    assert_eq!(
        app.get(&format!("{path}/{id}"), &u.token).await.body["upstream_model"],
        "meta-llama-3-70b"
    );
    let list = app.get(&path, &u.token).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    app.delete(&format!("{path}/{id}"), &u.token)
        .await
        .assert(204);
    app.get(&format!("{path}/{id}"), &u.token)
        .await
        .assert_error(404, "not_found");
}

async fn validate(app: &TestApp, u: &TestUser, id: Uuid) -> Value {
    let r = app
        .post(
            &format!("{}/{id}/validate", creds(u.workspace)),
            &u.token,
            json!({}),
        )
        .await;
    r.assert(200);
    assert!(
        !r.body.to_string().contains(BODY_CANARY),
        "the provider's body was echoed: {}",
        r.body
    );
    r.body
}

#[tokio::test]
async fn validate_reports_what_the_provider_said_without_echoing_it() {
    let app = spawn_app().await;
    let mock = MockUpstream::start().await.unwrap();
    let u = app.user("u").await;
    let refused = |error: &str| json!({"valid": false, "error": error});
    for (key, expected) in [
        (MockKey::new("sk-good-key-123456"), json!({"valid": true})),
        (
            MockKey::new("sk-unauthorized-1234").status(401),
            refused("unauthorized"),
        ),
        (
            MockKey::new("sk-forbidden-123456").status(403),
            refused("forbidden"),
        ),
        (
            MockKey::new("sk-ratelimited-1234")
                .status(429)
                .retry_after(7),
            refused("rate_limited"),
        ),
        (
            MockKey::new("sk-broken-12345678").status(500),
            refused("upstream_error"),
        ),
    ] {
        let key = key.to_string();
        let key = key.as_str();
        let id = app
            .compatible_credential(&u, u.workspace, key, key, &mock.url("/v1"))
            .await;
        assert_eq!(validate(&app, &u, id).await, expected, "{key}");
        let last = mock.requests().pop().unwrap();
        assert_eq!(
            (last.method.as_str(), last.uri.as_str(), last.key.as_deref()),
            ("GET", "/v1/models", Some(key))
        );
    }
    // A closed port is unreachable, never a 5xx.
    let closed = format!("http://127.0.0.1:{}/v1", free_port());
    let id = app
        .compatible_credential(&u, u.workspace, "closed", KEY, &closed)
        .await;
    assert_eq!(
        validate(&app, &u, id).await,
        json!({"valid": false, "error": "unreachable"})
    );
    // Redirects are never followed.
    let moved = MockKey::new("sk-redirect-12345").redirect().to_string();
    let id = app
        .compatible_credential(&u, u.workspace, "redirect", &moved, &mock.url("/v1"))
        .await;
    assert_eq!(
        validate(&app, &u, id).await,
        json!({"valid": false, "error": "upstream_error"})
    );
    assert!(
        mock.requests().iter().all(|r| r.uri != "/redirected"),
        "the redirect was followed"
    );
}

#[tokio::test]
async fn azure_credentials_use_the_azure_url_shape_and_header() {
    let app = spawn_app().await;
    let mock = MockUpstream::start().await.unwrap();
    let u = app.user("u").await;
    let c = app
        .credential(&u, u.workspace, "azure_openai", "az", json!({"api_key": "azure-key-0123456789", "endpoint": mock.url(""), "api_version": "2024-06-01"}))
        .await;
    let id: Uuid = c["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(validate(&app, &u, id).await, json!({"valid": true}));
    let last = mock.requests().pop().unwrap();
    assert_eq!(last.uri, "/openai/models?api-version=2024-06-01");
    assert_eq!(last.key.as_deref(), Some("azure-key-0123456789"));
}

#[tokio::test]
async fn upstream_address_policy_is_enforced_at_connect_time() {
    let mock = MockUpstream::start().await.unwrap();
    let port = mock.addr.port();

    // With DATABASE_URL set and no allow list, loopback is refused and nothing is sent.
    let strict = spawn_app_with(&[("ROTOR_UPSTREAM_ALLOW", "")]).await;
    let u = strict.user("u").await;
    for base in [
        format!("http://127.0.0.1:{port}/v1"),
        format!("http://localhost:{port}/v1"),
        format!("http://[::1]:{port}/v1"),
    ] {
        let id = strict
            .compatible_credential(&u, u.workspace, &base, "sk-good-key-123456", &base)
            .await;
        assert_eq!(
            validate(&strict, &u, id).await,
            json!({"valid": false, "error": "blocked_address"}),
            "{base}"
        );
    }
    // Metadata and link-local addresses, refused whatever the lists say, are tested where a
    // wrong policy could not reach them: the policy function and a private network namespace
    // (crates/dispatch/tests/it/netns.rs).
    assert!(
        mock.requests().is_empty(),
        "a refused address was contacted"
    );

    // The allow list lifts the refusal (host names are checked after resolution, too).
    let allowing = spawn_app_with(&[("ROTOR_UPSTREAM_ALLOW", "127.0.0.0/8,169.254.0.0/16")]).await;
    let u = allowing.user("u").await;
    for base in [
        format!("http://127.0.0.1:{port}/v1"),
        format!("http://localhost:{port}/v1"),
    ] {
        let id = allowing
            .compatible_credential(&u, u.workspace, &base, "sk-good-key-123456", &base)
            .await;
        assert_eq!(
            validate(&allowing, &u, id).await,
            json!({"valid": true}),
            "{base}"
        );
    }

    // DENY wins over ALLOW, for addresses and for host names.
    let denying = spawn_app_with(&[
        ("ROTOR_UPSTREAM_ALLOW", "127.0.0.0/8"),
        ("ROTOR_UPSTREAM_DENY", "127.0.0.1/32,localhost"),
    ])
    .await;
    let u = denying.user("u").await;
    let before = mock.requests().len();
    for base in [
        format!("http://127.0.0.1:{port}/v1"),
        format!("http://localhost:{port}/v1"),
    ] {
        let id = denying
            .compatible_credential(&u, u.workspace, &base, "sk-good-key-123456", &base)
            .await;
        assert_eq!(
            validate(&denying, &u, id).await,
            json!({"valid": false, "error": "blocked_address"}),
            "{base}"
        );
    }
    assert_eq!(mock.requests().len(), before);
}

#[tokio::test]
async fn every_credential_and_model_write_is_audited_without_secrets() {
    let app = spawn_app().await;
    let u = app.user("u").await;
    let id = app
        .compatible_credential(&u, u.workspace, "c", KEY, "https://a.example/v1")
        .await;
    let path = format!("{}/{id}", creds(u.workspace));
    app.patch(
        &path,
        &u.token,
        json!({"config": {"base_url": "https://b.example/v1", "api_key": "sk-second-secret-999"}}),
    )
    .await
    .assert(200);
    let m = app
        .model(&u, u.workspace, "openai_compatible", "m", id)
        .await;
    let mpath = format!(
        "/api/v1/workspaces/{}/models/{}",
        u.workspace,
        m["id"].as_str().unwrap()
    );
    app.patch(&mpath, &u.token, json!({"upstream_model": "m-v2"}))
        .await
        .assert(200);
    app.delete(&mpath, &u.token).await.assert(204);
    app.delete(&path, &u.token).await.assert(204);

    let audit = app
        .get(
            &format!("/api/v1/workspaces/{}/audit-events", u.workspace),
            &u.token,
        )
        .await;
    let events = audit.body["data"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..6],
        [
            "credential.deleted",
            "model.deleted",
            "model.updated",
            "model.created",
            "credential.updated",
            "credential.created"
        ]
    );
    let updated = &events[4];
    assert_eq!(updated["target_id"], id.to_string());
    assert_eq!(updated["details"]["fields"], json!(["api_key", "base_url"]));
    assert_eq!(
        updated["details"]["base_url"],
        json!({"from": "https://a.example/v1", "to": "https://b.example/v1"})
    );
    let text = audit.body.to_string();
    assert!(
        !text.contains(KEY) && !text.contains("sk-second-secret-999"),
        "a secret reached the audit log"
    );
}

#[tokio::test]
async fn credential_and_model_routes_are_tenant_scoped_and_role_checked() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let stranger = app.user("stranger").await;
    let editor = app.user("editor").await;
    app.add_member(&owner, owner.workspace, &editor, "editor")
        .await;
    let cred = app
        .compatible_credential(&owner, owner.workspace, "c", KEY, "https://a.example/v1")
        .await;
    let model = app
        .model(&owner, owner.workspace, "openai_compatible", "m", cred)
        .await;
    let model = model["id"].as_str().unwrap();
    let ws = owner.workspace;
    let new_cred = json!({"provider": "openai", "name": "n", "config": {"api_key": KEY}});
    let new_model = json!({"provider": "openai_compatible", "name": "m2", "model_type": "llm", "credential_id": cred});
    // Reads (GET) are for every member; the rest is for admins and owners.
    let routes = [
        ("GET", "/credentials", None),
        ("POST", "/credentials", Some(new_cred)),
        ("GET", "/credentials/{cred}", None),
        ("PATCH", "/credentials/{cred}", Some(json!({"name": "x"}))),
        ("POST", "/credentials/{cred}/validate", None),
        ("DELETE", "/credentials/{cred}", None),
        ("GET", "/models", None),
        ("POST", "/models", Some(new_model)),
        ("GET", "/models/{model}", None),
        (
            "PATCH",
            "/models/{model}",
            Some(json!({"upstream_model": "x"})),
        ),
        ("DELETE", "/models/{model}", None),
    ];
    for (method, route, body) in &routes {
        let path = format!("/api/v1/workspaces/{ws}{route}")
            .replace("{cred}", &cred.to_string())
            .replace("{model}", model);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        app.call(method.clone(), &path, Some(&stranger.token), body.clone())
            .await
            .assert_error(404, "not_found");
        let r = app
            .call(method.clone(), &path, Some(&editor.token), body.clone())
            .await;
        if method == reqwest::Method::GET {
            r.assert(200);
            assert!(!r.body.to_string().contains(KEY));
        } else {
            r.assert_error(403, "forbidden");
        }
    }
    // A stranger's own workspace path with the owner's ids: still 404.
    let sws = stranger.workspace;
    for path in [
        format!("/api/v1/workspaces/{sws}/credentials/{cred}"),
        format!("/api/v1/workspaces/{sws}/models/{model}"),
    ] {
        app.get(&path, &stranger.token)
            .await
            .assert_error(404, "not_found");
        app.delete(&path, &stranger.token)
            .await
            .assert_error(404, "not_found");
    }
    // Nothing changed.
    let c = app
        .get(
            &format!("/api/v1/workspaces/{ws}/credentials/{cred}"),
            &owner.token,
        )
        .await;
    assert_eq!(c.body["name"], "c");
    let m = app
        .get(
            &format!("/api/v1/workspaces/{ws}/models/{model}"),
            &owner.token,
        )
        .await;
    assert_eq!(m.body["upstream_model"], "m");
    assert_eq!(count(&app, "credentials").await, 1);
    assert_eq!(count(&app, "models").await, 1);
}

#[tokio::test]
async fn validate_calls_each_familys_model_list_in_its_own_wire_format() {
    let app = spawn_app().await;
    let mock = MockUpstream::start().await.unwrap();
    let u = app.user("u").await;
    let refused = |error: &str| json!({"valid": false, "error": error});
    for (provider, key, expected, path, key_header) in [
        (
            "anthropic",
            MockKey::new("sk-ant-good-123456"),
            json!({"valid": true}),
            "/v1/models",
            "x-api-key",
        ),
        (
            "anthropic",
            MockKey::new("sk-ant-revoked-1234").status(401),
            refused("unauthorized"),
            "/v1/models",
            "x-api-key",
        ),
        (
            "gemini",
            MockKey::new("gm-good-key-123456"),
            json!({"valid": true}),
            "/v1beta/models",
            "x-goog-api-key",
        ),
        // Google answers an invalid key 400 INVALID_ARGUMENT with reason API_KEY_INVALID.
        (
            "gemini",
            MockKey::new("gm-invalid-key-1234").api_key_invalid(),
            refused("unauthorized"),
            "/v1beta/models",
            "x-goog-api-key",
        ),
        (
            "gemini",
            MockKey::new("gm-other-400-12345").status(400),
            refused("upstream_error"),
            "/v1beta/models",
            "x-goog-api-key",
        ),
    ] {
        let key = key.to_string();
        let c = app
            .credential(
                &u,
                u.workspace,
                provider,
                &key,
                json!({"api_key": key, "base_url": mock.url("")}),
            )
            .await;
        assert_eq!(validate(&app, &u, id_of(&c)).await, expected, "{key}");
        let last = mock.requests().pop().unwrap();
        assert_eq!(
            (last.method.as_str(), last.path.as_str()),
            ("GET", path),
            "{key}"
        );
        assert_eq!(last.header(key_header), Some(key.as_str()), "{key}");
        assert_eq!(last.header("authorization"), None, "{key}");
        if provider == "anthropic" {
            assert_eq!(last.header("anthropic-version"), Some("2023-06-01"));
        }
    }
}
