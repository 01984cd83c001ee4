//! Parallel writes to the same load-balancing config, credential and membership keep the
//! invariants: a workspace keeps an owner, a version increments once per write, no update is lost.

use crate::helpers::*;
use serde_json::json;
use std::collections::HashSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_pool_writes_each_get_their_own_version() {
    let app = spawn_app_with(&[("ROTOR_LICENSE", &lb_license())]).await;
    let u = app.user("u").await;
    let a = app
        .compatible_credential(
            &u,
            u.workspace,
            "a",
            "sk-0123456789abcdef",
            "https://x.example/v1",
        )
        .await;
    let b = app
        .compatible_credential(
            &u,
            u.workspace,
            "b",
            "sk-0123456789abcdef",
            "https://x.example/v1",
        )
        .await;
    let model = app
        .model(&u, u.workspace, "openai_compatible", "m", a)
        .await;
    let path = TestApp::lb_path(u.workspace, model["id"].as_str().unwrap());
    app.put(
        &path,
        &u.token,
        json!({"enabled": false, "entries": [{"credential_id": a}, {"credential_id": b}]}),
    )
    .await
    .assert(200);

    let n = 20;
    let mut tasks = Vec::new();
    for i in 0..n {
        let (client, url, token) = (app.client.clone(), app.url(&path), u.token.clone());
        tasks.push(tokio::spawn(async move {
            let body = if i % 2 == 0 {
                json!({"cooldown_seconds": 10 + i})
            } else {
                json!({"max_attempts": 1 + i % 10})
            };
            let r = client
                .patch(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()["version"]
                .as_i64()
                .unwrap()
        }));
    }
    let mut versions = HashSet::new();
    for t in tasks {
        versions.insert(t.await.unwrap());
    }
    assert_eq!(
        versions,
        (3..3 + n).collect::<HashSet<i64>>(),
        "every write got exactly one new version"
    );
    let r = app.get(&path, &u.token).await;
    assert_eq!(r.body["version"], 2 + n);
    assert_eq!(
        r.body["entries"].as_array().unwrap().len(),
        2,
        "no write lost the entries"
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'load_balancing.updated'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, 1 + n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_credential_patches_lose_no_field() {
    let app = spawn_app().await;
    let u = app.user("u").await;
    let c = app
        .credential(
            &u,
            u.workspace,
            "openai",
            "c",
            json!({"api_key": "sk-0123456789abcdef"}),
        )
        .await;
    let path = format!(
        "/api/v1/workspaces/{}/credentials/{}",
        u.workspace,
        c["id"].as_str().unwrap()
    );
    let mut tasks = Vec::new();
    for i in 0..10 {
        for body in [
            json!({"name": format!("name-{i}")}),
            json!({"config": {"organization": format!("org-{i}")}}),
        ] {
            let (client, url, token) = (app.client.clone(), app.url(&path), u.token.clone());
            tasks.push(tokio::spawn(async move {
                let r = client
                    .patch(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = app.get(&path, &u.token).await;
    assert!(
        r.body["name"].as_str().unwrap().starts_with("name-"),
        "{}",
        r.body
    );
    assert!(
        r.body["config"]["organization"]
            .as_str()
            .unwrap()
            .starts_with("org-"),
        "a concurrent rename lost the organization: {}",
        r.body
    );
    assert_eq!(
        r.body["config"]["api_key"], "sk-\u{2026}cdef",
        "the secret survived every merge"
    );
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'credential.updated'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(audited, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_demoting_themselves_at_once_leave_one_owner() {
    let app = spawn_app().await;
    let first = app.user("first").await;
    let mut owners = vec![first.clone()];
    for i in 0..4 {
        let o = app.user(&format!("owner{i}")).await;
        app.add_member(&first, first.workspace, &o, "owner").await;
        owners.push(o);
    }
    let mut tasks = Vec::new();
    for o in &owners {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!(
                "/api/v1/workspaces/{}/members/{}",
                first.workspace, o.id
            )),
            o.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .patch(url)
                .bearer_auth(token)
                .json(&json!({"role": "normal"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 409],
        "exactly one demotion is refused as last_owner"
    );
    let remaining: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'",
    )
    .bind(first.workspace)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(remaining, 1);

    // And removing every member at once still leaves the owner.
    let mut tasks = Vec::new();
    for o in &owners {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!(
                "/api/v1/workspaces/{}/members/{}",
                first.workspace, o.id
            )),
            o.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .delete(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let remaining: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'",
    )
    .bind(first.workspace)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(remaining, 1, "a workspace keeps at least one owner");
}
