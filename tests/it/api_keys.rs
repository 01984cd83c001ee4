//! Workspace API keys: shown once, stored hashed, listed without the secret, revocable, audited.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn api_key_is_shown_once_stored_hashed_and_revocable() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let path = format!("/api/v1/workspaces/{}/api-keys", owner.workspace);
    let created = app
        .post(&path, &owner.token, json!({"name": "chatbot", "allowed_models": ["gpt-4o", "gpt-4o-mini"], "expires_at": "2099-01-01T00:00:00Z"}))
        .await;
    created.assert(201);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("rk-") && key.len() == 46, "{key}");
    assert_eq!(created.body["prefix"].as_str().unwrap(), &key[..11]);
    assert_eq!(
        created.body["allowed_models"],
        json!(["gpt-4o", "gpt-4o-mini"])
    );
    assert_eq!(created.body["expires_at"], "2099-01-01T00:00:00Z");
    assert!(created.body["last_used_at"].is_null());

    // Listed without the secret.
    let list = app.get(&path, &owner.token).await;
    list.assert(200);
    let items = list.body["data"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["name"], "chatbot");
    assert!(items[0].get("key").is_none());
    assert!(!list.body.to_string().contains(&key));

    // Stored as its SHA-256 only: no column holds the key, and the hash matches.
    let dump: String = sqlx::query_scalar("SELECT string_agg(t::text, ' ') FROM api_keys t")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!dump.contains(&key[11..]), "the key is stored in clear");
    let matches: bool = sqlx::query_scalar("SELECT key_hash = sha256($1::bytea) FROM api_keys")
        .bind(key.as_bytes())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(matches, "the stored hash is the key's SHA-256");

    // The audit log records creation and revocation, never the key.
    app.delete(&format!("{path}/{id}"), &owner.token)
        .await
        .assert(204);
    let list = app.get(&path, &owner.token).await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        0,
        "a revoked key leaves the list"
    );
    app.delete(&format!("{path}/{id}"), &owner.token)
        .await
        .assert_error(404, "not_found");
    let audit = app
        .get(
            &format!("/api/v1/workspaces/{}/audit-events", owner.workspace),
            &owner.token,
        )
        .await;
    audit.assert(200);
    let actions: Vec<&str> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..2],
        ["api_key.revoked", "api_key.created"],
        "newest first: {actions:?}"
    );
    assert_eq!(audit.body["data"][0]["actor_user_id"], owner.id.to_string());
    assert_eq!(audit.body["data"][0]["target_id"], id.as_str());
    assert!(!audit.body.to_string().contains(&key[11..]));
}

#[tokio::test]
async fn api_key_input_is_validated() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let path = format!("/api/v1/workspaces/{}/api-keys", owner.workspace);
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (
            json!({"name": "k", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (json!({"name": "k", "expires_at": "tomorrow"}), "expires_at"),
        (
            json!({"name": "k", "allowed_models": [""]}),
            "allowed_models[0]",
        ),
        (
            json!({"name": "k", "allowed_models": "gpt-4o"}),
            "allowed_models",
        ),
    ] {
        let r = app.post(&path, &owner.token, body.clone()).await;
        r.assert_field("validation_failed", field, &body);
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn workspaces_can_be_created_listed_renamed_and_paged() {
    let app = spawn_app().await;
    let u = app.user("ws").await;
    for i in 0..4 {
        let r = app
            .post(
                "/api/v1/workspaces",
                &u.token,
                json!({"name": format!("team {i}")}),
            )
            .await;
        r.assert(201);
        assert_eq!(r.body["role"], "owner");
        assert_eq!(r.body["plan"], "sandbox");
    }
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/workspaces?limit=2&cursor={c}"),
            None => "/api/v1/workspaces?limit=2".to_owned(),
        };
        let page = app.get(&path, &u.token).await;
        page.assert(200);
        let data = page.body["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        names.extend(data.iter().map(|w| w["name"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        names,
        ["ws's workspace", "team 0", "team 1", "team 2", "team 3"]
    );

    let path = format!("/api/v1/workspaces/{}", u.workspace);
    let r = app
        .patch(&path, &u.token, json!({"name": "  Renamed  "}))
        .await;
    r.assert(200);
    assert_eq!(r.body["name"], "Renamed");
    assert_eq!(r.body["features"]["load_balancing"], false);
    let r = app.get(&path, &u.token).await;
    assert_eq!(r.body["name"], "Renamed");
    assert_eq!(r.body["role"], "owner");
    app.patch(&path, &u.token, json!({"name": ""}))
        .await
        .assert_error(422, "validation_failed");
    assert_eq!(app.get(&path, &u.token).await.body["name"], "Renamed");
}

#[tokio::test]
async fn last_used_at_is_recorded_after_gateway_use_at_most_once_a_minute() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let (id, key) = app.api_key(&owner, owner.workspace, "app").await;
    let path = format!("/api/v1/workspaces/{}/api-keys", owner.workspace);
    let used = |body: &serde_json::Value| {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id.to_string())
            .unwrap()["last_used_at"]
            .clone()
    };
    let use_key = || async {
        let r = app.req(Method::GET, "/v1/models").bearer(&key).send().await;
        r.assert(200);
    };
    assert!(used(&app.get(&path, &owner.token).await.body).is_null());
    // Any authenticated gateway call counts as a use.
    use_key().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let first = loop {
        let v = used(&app.get(&path, &owner.token).await.body);
        if !v.is_null() {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "last_used_at was never written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // A second use within the minute does not write again.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    use_key().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(used(&app.get(&path, &owner.token).await.body), first);
}
