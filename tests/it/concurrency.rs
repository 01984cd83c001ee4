//! Parallel writes to the same load-balancing config, credential and membership keep the
//! invariants: a workspace keeps an owner, a version increments once per write, no update is lost.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use std::collections::HashSet;

/// A credential key that is never called.
const KEY: &str = "sk-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_pool_writes_each_get_their_own_version() {
    let w = World::licensed().await;
    let (a, b) = (
        w.cred_at("a", KEY, "https://x.example/v1").await,
        w.cred_at("b", KEY, "https://x.example/v1").await,
    );
    let path = w.lb_path(&w.model("m", "m", a).await);
    w.app
        .put(
            &path,
            &w.user.token,
            json!({"enabled": false, "entries": [{"credential_id": a}, {"credential_id": b}]}),
        )
        .await
        .assert(200);

    let n = 20;
    let writes = (0..n).map(|i| {
        let body = if i % 2 == 0 {
            json!({"cooldown_seconds": 10 + i})
        } else {
            json!({"max_attempts": 1 + i % 10})
        };
        w.app
            .req(Method::PATCH, &path)
            .bearer(&w.user.token)
            .json(body)
    });
    let mut versions = HashSet::new();
    for r in in_parallel(writes).await {
        r.assert(200);
        versions.insert(r.body["version"].as_i64().unwrap());
    }
    assert_eq!(
        versions,
        (3..3 + n).collect::<HashSet<i64>>(),
        "every write got exactly one new version"
    );
    let r = w.app.get(&path, &w.user.token).await;
    assert_eq!(r.body["version"], 2 + n);
    assert_eq!(
        r.body["entries"].as_array().unwrap().len(),
        2,
        "no write lost the entries"
    );
    assert_eq!(audited(&w.app, "load_balancing.updated").await, 1 + n);
}

async fn audited(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = $1")
        .bind(action)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_credential_patches_lose_no_field() {
    let w = World::new(&[]).await;
    let c = w
        .app
        .credential(&w.user, w.ws(), "openai", "c", json!({"api_key": KEY}))
        .await;
    let path = w.w(&format!("/credentials/{}", id_of(&c)));
    let patches = (0..10).flat_map(|i| {
        [
            json!({"name": format!("name-{i}")}),
            json!({"config": {"organization": format!("org-{i}")}}),
        ]
    });
    let patches = patches.map(|body| {
        w.app
            .req(Method::PATCH, &path)
            .bearer(&w.user.token)
            .json(body)
    });
    for r in in_parallel(patches).await {
        r.assert(200);
    }
    let r = w.app.get(&path, &w.user.token).await;
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
    assert_eq!(audited(&w.app, "credential.updated").await, 20);
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
    let member = |o: &TestUser, method: Method| {
        let path = format!("/api/v1/workspaces/{}/members/{}", first.workspace, o.id);
        app.req(method, &path).bearer(&o.token)
    };
    let demotions = owners
        .iter()
        .map(|o| member(o, Method::PATCH).json(json!({"role": "normal"})));
    let mut statuses: Vec<u16> = in_parallel(demotions)
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 409],
        "exactly one demotion is refused as last_owner"
    );
    let owners_left = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'",
        )
        .bind(first.workspace)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    assert_eq!(owners_left().await, 1);

    // And removing every member at once still leaves the owner.
    in_parallel(owners.iter().map(|o| member(o, Method::DELETE))).await;
    assert_eq!(
        owners_left().await,
        1,
        "a workspace keeps at least one owner"
    );
}
