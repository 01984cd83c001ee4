//! Tenancy: another tenant's ids are indistinguishable from ids that do not exist (404
//! `not_found`), whatever the route, and a refused request changes and records nothing.
//!
//! The route tables below list every route that takes a workspace-scoped id; add new routes
//! there and every test here covers them.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// An upstream address the credentials point at; never called by these tests.
const UPSTREAM: &str = "http://127.0.0.1:9/v1";

/// Tenant A (owner of WA, with a `normal` member M, API key KA, credential CA and model MA)
/// and tenant B (owner of WB, with KB, CB and MB).
struct World {
    app: TestApp,
    a: TestUser,
    m: TestUser,
    b: TestUser,
    ka: Uuid,
    kb: Uuid,
    ca: Uuid,
    cb: Uuid,
    ma: Uuid,
    mb: Uuid,
}

async fn world() -> World {
    let app = spawn_app().await;
    let a = app.user("alice").await;
    let m = app.user("mallory-member").await;
    let b = app.user("bob").await;
    app.add_member(&a, a.workspace, &m, "normal").await;
    let (ka, _) = app.api_key(&a, a.workspace, "alice-key").await;
    let (kb, _) = app.api_key(&b, b.workspace, "bob-key").await;
    let ca = app
        .compatible_credential(
            &a,
            a.workspace,
            "alice-cred",
            "sk-alice-secret-0001",
            UPSTREAM,
        )
        .await;
    let cb = app
        .compatible_credential(&b, b.workspace, "bob-cred", "sk-bob-secret-00002", UPSTREAM)
        .await;
    let ma = model_id(
        &app.model(&a, a.workspace, "openai_compatible", "alice-model", ca)
            .await,
    );
    let mb = model_id(
        &app.model(&b, b.workspace, "openai_compatible", "bob-model", cb)
            .await,
    );
    World {
        app,
        a,
        m,
        b,
        ka,
        kb,
        ca,
        cb,
        ma,
        mb,
    }
}

fn model_id(model: &Value) -> Uuid {
    model["id"].as_str().unwrap().parse().unwrap()
}

/// The ids a route table aims at.
struct Targets<'a> {
    /// A member's user id.
    member: Uuid,
    /// An API key id.
    key: Uuid,
    /// A credential id.
    credential: Uuid,
    /// A model id.
    model: Uuid,
    /// An email to add as a member.
    email: &'a str,
}

/// Every route that addresses something inside workspace `ws`, with a body that would change
/// something if it were accepted. Add new workspace routes here.
fn workspace_routes(ws: Uuid, t: &Targets) -> Vec<(Method, String, Option<Value>)> {
    let w = format!("/api/v1/workspaces/{ws}");
    let Targets {
        member,
        key,
        credential,
        model,
        email,
    } = *t;
    let new_credential = json!({
        "provider": "openai_compatible",
        "name": "stolen",
        "config": {"api_key": "sk-stolen-000000000", "base_url": UPSTREAM},
    });
    let new_model = json!({
        "provider": "openai_compatible",
        "name": "stolen",
        "model_type": "llm",
        "credential_id": credential,
    });
    vec![
        (Method::GET, w.clone(), None),
        (
            Method::PATCH,
            w.clone(),
            Some(json!({"name": "taken over"})),
        ),
        // Members.
        (Method::GET, format!("{w}/members"), None),
        (Method::GET, format!("{w}/members?limit=1"), None),
        (
            Method::POST,
            format!("{w}/members"),
            Some(json!({"email": email, "role": "owner"})),
        ),
        (
            Method::POST,
            format!("{w}/members"),
            Some(json!({"email": email, "role": "normal"})),
        ),
        (
            Method::PATCH,
            format!("{w}/members/{member}"),
            Some(json!({"role": "owner"})),
        ),
        (
            Method::PATCH,
            format!("{w}/members/{member}"),
            Some(json!({"role": "normal"})),
        ),
        (Method::DELETE, format!("{w}/members/{member}"), None),
        // API keys.
        (Method::GET, format!("{w}/api-keys"), None),
        (
            Method::POST,
            format!("{w}/api-keys"),
            Some(json!({"name": "stolen"})),
        ),
        (Method::DELETE, format!("{w}/api-keys/{key}"), None),
        // Audit log.
        (Method::GET, format!("{w}/audit-events"), None),
        (Method::GET, format!("{w}/audit-events?limit=1"), None),
        // Credentials.
        (Method::GET, format!("{w}/credentials"), None),
        (
            Method::POST,
            format!("{w}/credentials"),
            Some(new_credential),
        ),
        (Method::GET, format!("{w}/credentials/{credential}"), None),
        (
            Method::PATCH,
            format!("{w}/credentials/{credential}"),
            Some(json!({"name": "taken over"})),
        ),
        (
            Method::PATCH,
            format!("{w}/credentials/{credential}"),
            Some(
                json!({"config": {"base_url": "http://127.0.0.1:10/v1", "api_key": "sk-attacker-00000"}}),
            ),
        ),
        (
            Method::DELETE,
            format!("{w}/credentials/{credential}"),
            None,
        ),
        (
            Method::POST,
            format!("{w}/credentials/{credential}/validate"),
            None,
        ),
        // Models.
        (Method::GET, format!("{w}/models"), None),
        (Method::POST, format!("{w}/models"), Some(new_model)),
        (Method::GET, format!("{w}/models/{model}"), None),
        (
            Method::PATCH,
            format!("{w}/models/{model}"),
            Some(json!({"upstream_model": "taken-over"})),
        ),
        (Method::DELETE, format!("{w}/models/{model}"), None),
        // Load balancing.
        (
            Method::GET,
            format!("{w}/models/{model}/load-balancing"),
            None,
        ),
        (
            Method::PUT,
            format!("{w}/models/{model}/load-balancing"),
            Some(json!({"enabled": false, "entries": [
                {"credential_id": null, "enabled": true},
                {"credential_id": credential, "enabled": true, "weight": 5},
            ]})),
        ),
        (
            Method::PATCH,
            format!("{w}/models/{model}/load-balancing"),
            Some(json!({"enabled": false, "cooldown_seconds": 3600})),
        ),
        (
            Method::DELETE,
            format!("{w}/models/{model}/load-balancing/cooldowns"),
            None,
        ),
    ]
}

/// Everything `user` can see of workspace `ws` (each read must succeed).
async fn view(app: &TestApp, user: &TestUser, ws: Uuid) -> Value {
    let mut out = serde_json::Map::new();
    for (name, path) in [
        ("workspace", format!("/api/v1/workspaces/{ws}")),
        ("members", format!("/api/v1/workspaces/{ws}/members")),
        ("api_keys", format!("/api/v1/workspaces/{ws}/api-keys")),
        ("audit", format!("/api/v1/workspaces/{ws}/audit-events")),
        (
            "credentials",
            format!("/api/v1/workspaces/{ws}/credentials"),
        ),
        ("models", format!("/api/v1/workspaces/{ws}/models")),
    ] {
        let r = app.get(&path, &user.token).await;
        r.assert(200);
        out.insert(name.to_owned(), r.body);
    }
    // Each model's load-balancing config, with its version.
    for id in ids(&out["models"], "id") {
        let r = app
            .get(
                &format!("/api/v1/workspaces/{ws}/models/{id}/load-balancing"),
                &user.token,
            )
            .await;
        r.assert(200);
        out.insert(format!("load_balancing {id}"), r.body);
    }
    Value::Object(out)
}

/// Row counts of every table a management request can write.
async fn row_counts(app: &TestApp) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for table in [
        "users",
        "workspaces",
        "memberships",
        "api_keys",
        "personal_tokens",
        "audit_events",
        "credentials",
        "models",
        "lb_configs",
        "lb_entries",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&app.db)
            .await
            .unwrap();
        out.push((table, n));
    }
    out
}

/// Sends every request with `token` and asserts each answers 404 `not_found`.
async fn expect_all_not_found(
    app: &TestApp,
    token: &str,
    requests: Vec<(Method, String, Option<Value>)>,
) {
    for (method, path, body) in requests {
        let r = app.call(method.clone(), &path, Some(token), body).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (404, "not_found"),
            "{method} {path} answered {} {}",
            r.status,
            r.body
        );
        assert!(r.body["error"]["message"].is_string());
    }
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn another_tenant_gets_404_on_every_workspace_route_and_changes_nothing() {
    let World {
        app,
        a,
        m,
        b,
        ka,
        ca,
        ma,
        ..
    } = world().await;
    let before_a = view(&app, &a, a.workspace).await;
    let before_m = view(&app, &m, a.workspace).await;
    let before_b = view(&app, &b, b.workspace).await;
    let counts = row_counts(&app).await;

    // B aims at M, at A (the owner) and at itself (not a member of WA either).
    let mut requests = Vec::new();
    for target in [m.id, a.id, b.id] {
        let targets = Targets {
            member: target,
            key: ka,
            credential: ca,
            model: ma,
            email: &b.email,
        };
        requests.extend(workspace_routes(a.workspace, &targets));
    }
    expect_all_not_found(&app, &b.token, requests).await;

    // A's workspace, as A and as M see it, is exactly as it was: no rename, no new member,
    // no role change, the key still listed, and no audit event from B's attempts.
    assert_eq!(view(&app, &a, a.workspace).await, before_a);
    assert_eq!(view(&app, &m, a.workspace).await, before_m);
    assert!(ids(&before_a["api_keys"], "id").contains(&ka.to_string()));
    assert_eq!(
        ids(&before_a["members"], "user_id"),
        vec![a.id.to_string(), m.id.to_string()]
    );
    assert_eq!(view(&app, &b, b.workspace).await, before_b);
    assert_eq!(
        row_counts(&app).await,
        counts,
        "a refused request wrote something"
    );

    // Nothing in A's audit log names B, as actor or otherwise.
    let audit = app
        .get(
            &format!("/api/v1/workspaces/{}/audit-events", a.workspace),
            &a.token,
        )
        .await;
    audit.assert(200);
    assert!(
        !audit.body.to_string().contains(&b.id.to_string()),
        "B's attempts left a trace in A's audit log: {}",
        audit.body
    );
    let by_b: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE workspace_id = $1 AND (actor_user_id = $2 OR target_id = $2)",
    )
    .bind(a.workspace)
    .bind(b.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(by_b, 0);

    // A still manages its workspace normally afterwards.
    app.get(&format!("/api/v1/workspaces/{}", a.workspace), &a.token)
        .await
        .assert(200);
    let me = app
        .get(&format!("/api/v1/workspaces/{}", a.workspace), &m.token)
        .await;
    me.assert(200);
    assert_eq!(me.body["role"], "normal");
}

#[tokio::test]
async fn a_personal_access_token_of_another_tenant_gets_404_too() {
    let World {
        app,
        a,
        m,
        b,
        ka,
        ca,
        ma,
        ..
    } = world().await;
    let pat = app
        .post("/api/v1/me/tokens", &b.token, json!({"name": "automation"}))
        .await;
    pat.assert(201);
    let pat = pat.body["token"].as_str().unwrap().to_owned();
    let before = view(&app, &a, a.workspace).await;
    let counts = row_counts(&app).await;
    expect_all_not_found(
        &app,
        &pat,
        workspace_routes(
            a.workspace,
            &Targets {
                member: m.id,
                key: ka,
                credential: ca,
                model: ma,
                email: &b.email,
            },
        ),
    )
    .await;
    assert_eq!(view(&app, &a, a.workspace).await, before);
    assert_eq!(row_counts(&app).await, counts);
}

#[tokio::test]
async fn ids_of_another_tenant_inside_ones_own_workspace_are_not_found() {
    let World {
        app,
        a,
        m,
        b,
        ka,
        kb,
        ca,
        cb,
        ma,
        mb,
    } = world().await;
    let before_a = view(&app, &a, a.workspace).await;
    let before_b = view(&app, &b, b.workspace).await;
    let counts = row_counts(&app).await;
    let wb = format!("/api/v1/workspaces/{}", b.workspace);

    // B, owner of WB, names A's key, credential, model and members under WB.
    let mut requests = vec![
        (Method::DELETE, format!("{wb}/api-keys/{ka}"), None),
        (Method::GET, format!("{wb}/credentials/{ca}"), None),
        (
            Method::PATCH,
            format!("{wb}/credentials/{ca}"),
            Some(json!({"name": "taken over"})),
        ),
        (Method::DELETE, format!("{wb}/credentials/{ca}"), None),
        (
            Method::POST,
            format!("{wb}/credentials/{ca}/validate"),
            None,
        ),
        (Method::GET, format!("{wb}/models/{ma}"), None),
        (
            Method::PATCH,
            format!("{wb}/models/{ma}"),
            Some(json!({"upstream_model": "taken-over"})),
        ),
        (Method::DELETE, format!("{wb}/models/{ma}"), None),
        (
            Method::GET,
            format!("{wb}/models/{ma}/load-balancing"),
            None,
        ),
        (
            Method::PUT,
            format!("{wb}/models/{ma}/load-balancing"),
            Some(json!({"enabled": false, "entries": []})),
        ),
        (
            Method::PATCH,
            format!("{wb}/models/{ma}/load-balancing"),
            Some(json!({"enabled": false})),
        ),
        (
            Method::DELETE,
            format!("{wb}/models/{ma}/load-balancing/cooldowns"),
            None,
        ),
    ];
    for target in [a.id, m.id] {
        for role in ["owner", "admin", "normal"] {
            requests.push((
                Method::PATCH,
                format!("{wb}/members/{target}"),
                Some(json!({"role": role})),
            ));
        }
        requests.push((Method::DELETE, format!("{wb}/members/{target}"), None));
    }
    expect_all_not_found(&app, &b.token, requests).await;

    // And the other way round: A names B's ids under WA.
    let wa = format!("/api/v1/workspaces/{}", a.workspace);
    expect_all_not_found(
        &app,
        &a.token,
        vec![
            (Method::DELETE, format!("{wa}/api-keys/{kb}"), None),
            (Method::GET, format!("{wa}/credentials/{cb}"), None),
            (Method::DELETE, format!("{wa}/credentials/{cb}"), None),
            (Method::GET, format!("{wa}/models/{mb}"), None),
            (Method::DELETE, format!("{wa}/models/{mb}"), None),
            (
                Method::PATCH,
                format!("{wa}/members/{}", b.id),
                Some(json!({"role": "normal"})),
            ),
            (Method::DELETE, format!("{wa}/members/{}", b.id), None),
        ],
    )
    .await;

    // KA is still listed for A, KB for B; A and M keep their roles; nothing was written.
    let after_a = view(&app, &a, a.workspace).await;
    assert_eq!(after_a, before_a);
    assert!(ids(&after_a["api_keys"], "id").contains(&ka.to_string()));
    let roles: Vec<(String, String)> = after_a["members"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["user_id"].as_str().unwrap().to_owned(),
                x["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            (a.id.to_string(), "owner".to_owned()),
            (m.id.to_string(), "normal".to_owned())
        ]
    );
    // A's credential named in the body of B's model writes is refused exactly like an id
    // that does not exist (DESIGN §3: 422), so its existence is not revealed.
    for (method, path, body_with) in [
        (
            Method::POST,
            format!("{wb}/models"),
            (|c: Uuid| json!({"provider": "openai_compatible", "name": "borrowed", "model_type": "llm", "credential_id": c}))
                as fn(Uuid) -> Value,
        ),
        (
            Method::PATCH,
            format!("{wb}/models/{mb}"),
            (|c: Uuid| json!({"credential_id": c})) as fn(Uuid) -> Value,
        ),
        (
            Method::PUT,
            format!("{wb}/models/{mb}/load-balancing"),
            (|c: Uuid| json!({"enabled": false, "entries": [{"credential_id": c, "enabled": true}]}))
                as fn(Uuid) -> Value,
        ),
    ] {
        let foreign = app
            .call(method.clone(), &path, Some(&b.token), Some(body_with(ca)))
            .await;
        let missing = app
            .call(
                method.clone(),
                &path,
                Some(&b.token),
                Some(body_with(Uuid::new_v4())),
            )
            .await;
        foreign.assert_error(422, "validation_failed");
        assert_eq!(
            (foreign.status, &foreign.body),
            (missing.status, &missing.body),
            "{method} {path}: a foreign credential id is answered differently from a missing one"
        );
    }

    let after_b = view(&app, &b, b.workspace).await;
    assert_eq!(after_b, before_b);
    assert!(ids(&after_b["api_keys"], "id").contains(&kb.to_string()));
    assert_eq!(row_counts(&app).await, counts);
    let in_wb: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM memberships WHERE workspace_id = $1 AND user_id = ANY($2)",
    )
    .bind(b.workspace)
    .bind(vec![a.id, m.id])
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(in_wb, 0, "A or M became members of WB");
}

#[tokio::test]
async fn a_workspace_that_does_not_exist_is_not_found() {
    let World {
        app,
        a,
        m,
        ka,
        ca,
        ma,
        ..
    } = world().await;
    let counts = row_counts(&app).await;
    let ghost = Uuid::new_v4();
    let targets = Targets {
        member: m.id,
        key: ka,
        credential: ca,
        model: ma,
        email: &m.email,
    };
    expect_all_not_found(&app, &a.token, workspace_routes(ghost, &targets)).await;
    assert_eq!(row_counts(&app).await, counts);
    // The same answer as for another tenant's workspace: nothing tells them apart.
    let other = app.user("other").await;
    let missing = app
        .get(&format!("/api/v1/workspaces/{ghost}"), &other.token)
        .await;
    let foreign = app
        .get(&format!("/api/v1/workspaces/{}", a.workspace), &other.token)
        .await;
    assert_eq!(missing.status, foreign.status);
    assert_eq!(missing.body, foreign.body);
}

#[tokio::test]
async fn workspace_lists_show_only_ones_own_workspaces() {
    let World { app, a, m, b, .. } = world().await;
    let list = app.get("/api/v1/workspaces", &b.token).await;
    list.assert(200);
    assert_eq!(ids(&list.body, "id"), vec![b.workspace.to_string()]);
    assert!(!list.body.to_string().contains(&a.workspace.to_string()));

    // M sees its own workspace and WA (as a normal member), never WB.
    let list = app.get("/api/v1/workspaces", &m.token).await;
    list.assert(200);
    let seen = ids(&list.body, "id");
    assert_eq!(seen.len(), 2, "{}", list.body);
    assert!(seen.contains(&m.workspace.to_string()) && seen.contains(&a.workspace.to_string()));
    assert!(!seen.contains(&b.workspace.to_string()));
    let wa = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == a.workspace.to_string())
        .unwrap();
    assert_eq!(wa["role"], "normal");

    // A workspace B creates later is still B's alone.
    let created = app
        .post("/api/v1/workspaces", &b.token, json!({"name": "bob 2"}))
        .await;
    created.assert(201);
    let list = app.get("/api/v1/workspaces", &a.token).await;
    assert_eq!(ids(&list.body, "id"), vec![a.workspace.to_string()]);
    app.get(
        &format!(
            "/api/v1/workspaces/{}",
            created.body["id"].as_str().unwrap()
        ),
        &a.token,
    )
    .await
    .assert_error(404, "not_found");
}

#[tokio::test]
async fn a_removed_member_loses_access_like_a_stranger() {
    let World {
        app,
        a,
        m,
        ka,
        ca,
        ma,
        ..
    } = world().await;
    app.delete(
        &format!("/api/v1/workspaces/{}/members/{}", a.workspace, m.id),
        &a.token,
    )
    .await
    .assert(204);
    let before = view(&app, &a, a.workspace).await;
    let counts = row_counts(&app).await;
    expect_all_not_found(
        &app,
        &m.token,
        workspace_routes(
            a.workspace,
            &Targets {
                member: a.id,
                key: ka,
                credential: ca,
                model: ma,
                email: &m.email,
            },
        ),
    )
    .await;
    assert_eq!(view(&app, &a, a.workspace).await, before);
    assert_eq!(row_counts(&app).await, counts);
    let list = app.get("/api/v1/workspaces", &m.token).await;
    assert_eq!(ids(&list.body, "id"), vec![m.workspace.to_string()]);
}
