//! Tenancy: another tenant's ids are indistinguishable from ids that do not exist (404
//! `not_found`), whatever the route, and a refused request changes and records nothing.
//!
//! The routes come from the OpenAPI document: [`attempts`] holds, for every documented
//! operation under `/api/v1/workspaces/{ws}`, the requests made against it, and a route of the
//! document without any (or an attempt at a route the document lacks) fails every test here.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use uuid::Uuid;

/// An upstream address the credentials point at; never called by these tests.
const UPSTREAM: &str = "http://127.0.0.1:9/v1";

/// Where the workspace-scoped routes start.
const SCOPE: &str = "/api/v1/workspaces/{ws}";

/// Tenant A (owner of WA, with a `normal` member M, API key KA, credential CA and model MA)
/// and tenant B (owner of WB, with KB, CB and MB).
struct Tenants {
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

async fn tenants() -> Tenants {
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
    let model = |user: &TestUser, name: &'static str, credential: Uuid| {
        let (app, user) = (&app, user.clone());
        async move {
            id_of(
                &app.model(&user, user.workspace, "openai_compatible", name, credential)
                    .await,
            )
        }
    };
    let ma = model(&a, "alice-model", ca).await;
    let mb = model(&b, "bob-model", cb).await;
    Tenants {
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

impl Tenants {
    /// A's key, credential and model, a `member` to change and an `email` to add.
    fn in_a<'a>(&self, member: Uuid, email: &'a str) -> Targets<'a> {
        Targets {
            member,
            key: self.ka,
            credential: self.ca,
            model: self.ma,
            email,
        }
    }
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

/// The requests made against each workspace-scoped route: (method, route template with an
/// optional query, a body that would change something were it accepted).
fn attempts(t: &Targets) -> Vec<(&'static str, &'static str, Option<Value>)> {
    let new_credential = json!({
        "provider": "openai_compatible",
        "name": "stolen",
        "config": {"api_key": "sk-stolen-000000000", "base_url": UPSTREAM},
    });
    let new_model = json!({
        "provider": "openai_compatible",
        "name": "stolen",
        "model_type": "llm",
        "credential_id": t.credential,
    });
    let pool = json!({"enabled": false, "entries": [
        {"credential_id": null, "enabled": true},
        {"credential_id": t.credential, "enabled": true, "weight": 5},
    ]});
    let rekey =
        json!({"config": {"base_url": "http://127.0.0.1:10/v1", "api_key": "sk-attacker-00000"}});
    let role = |r: &str| Some(json!({"role": r}));
    vec![
        ("GET", "", None),
        ("PATCH", "", Some(json!({"name": "taken over"}))),
        ("GET", "/members", None),
        ("GET", "/members?limit=1", None),
        (
            "POST",
            "/members",
            Some(json!({"email": t.email, "role": "owner"})),
        ),
        (
            "POST",
            "/members",
            Some(json!({"email": t.email, "role": "normal"})),
        ),
        ("PATCH", "/members/{user_id}", role("owner")),
        ("PATCH", "/members/{user_id}", role("admin")),
        ("PATCH", "/members/{user_id}", role("normal")),
        ("DELETE", "/members/{user_id}", None),
        ("GET", "/api-keys", None),
        ("POST", "/api-keys", Some(json!({"name": "stolen"}))),
        ("GET", "/api-keys/{id}", None),
        (
            "PATCH",
            "/api-keys/{id}",
            Some(json!({"name": "taken over", "rpm": null, "monthly_token_budget": null})),
        ),
        ("DELETE", "/api-keys/{id}", None),
        ("GET", "/usage", None),
        ("GET", "/usage?group_by=api_key,credential&format=csv", None),
        ("GET", "/audit-events", None),
        ("GET", "/audit-events?limit=1", None),
        ("GET", "/credentials", None),
        ("POST", "/credentials", Some(new_credential)),
        ("GET", "/credentials/{id}", None),
        (
            "PATCH",
            "/credentials/{id}",
            Some(json!({"name": "taken over"})),
        ),
        ("PATCH", "/credentials/{id}", Some(rekey)),
        ("DELETE", "/credentials/{id}", None),
        ("POST", "/credentials/{id}/validate", None),
        ("GET", "/models", None),
        ("POST", "/models", Some(new_model)),
        ("GET", "/models/{id}", None),
        (
            "PATCH",
            "/models/{id}",
            Some(json!({"upstream_model": "taken-over"})),
        ),
        ("DELETE", "/models/{id}", None),
        ("GET", "/models/{id}/load-balancing", None),
        ("PUT", "/models/{id}/load-balancing", Some(pool)),
        (
            "PATCH",
            "/models/{id}/load-balancing",
            Some(json!({"enabled": false, "cooldown_seconds": 3600})),
        ),
        ("DELETE", "/models/{id}/load-balancing/cooldowns", None),
    ]
}

/// The workspace-scoped operations of the OpenAPI document, as (METHOD, template after
/// [`SCOPE`]).
fn documented_routes() -> BTreeSet<(String, String)> {
    openapi::operations()
        .into_iter()
        .filter_map(|(method, path, _)| {
            let rest = path.strip_prefix(SCOPE)?;
            (rest.is_empty() || rest.starts_with('/')).then(|| (method, rest.to_owned()))
        })
        .collect()
}

/// What the table and the document disagree on, each way.
fn coverage_problems() -> Vec<String> {
    let targets = Targets {
        member: Uuid::nil(),
        key: Uuid::nil(),
        credential: Uuid::nil(),
        model: Uuid::nil(),
        email: "nobody@example.com",
    };
    let covered: BTreeSet<(String, String)> = attempts(&targets)
        .into_iter()
        .map(|(method, route, _)| {
            let template = route.split('?').next().unwrap_or(route);
            (method.to_owned(), template.to_owned())
        })
        .collect();
    let documented = documented_routes();
    let missing = documented
        .difference(&covered)
        .map(|(m, r)| format!("{m} {SCOPE}{r} is documented but has no tenancy attempt"));
    let extra = covered
        .difference(&documented)
        .map(|(m, r)| format!("{m} {SCOPE}{r} has tenancy attempts but is not documented"));
    missing.chain(extra).collect()
}

#[test]
fn every_documented_workspace_route_has_tenancy_attempts() {
    assert!(
        documented_routes().len() >= 25,
        "the document lost its workspace routes"
    );
    let problems = coverage_problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every attempt of [`attempts`] against workspace `ws`, with the ids of `t` filled in.
/// `only_ids` keeps the routes that name an id inside the workspace.
fn workspace_routes(ws: Uuid, t: &Targets, only_ids: bool) -> Vec<(Method, String, Option<Value>)> {
    let problems = coverage_problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    attempts(t)
        .into_iter()
        .filter(|(_, route, _)| !only_ids || route.contains('{'))
        .map(|(method, route, body)| {
            let id = if route.starts_with("/api-keys") {
                t.key
            } else if route.starts_with("/credentials") {
                t.credential
            } else {
                t.model
            };
            let path = format!("/api/v1/workspaces/{ws}{route}")
                .replace("{user_id}", &t.member.to_string())
                .replace("{id}", &id.to_string());
            (Method::from_bytes(method.as_bytes()).unwrap(), path, body)
        })
        .collect()
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

/// Sends every request with `token` and asserts each answers 404 `not_found`.
async fn expect_all_not_found(
    app: &TestApp,
    token: &str,
    requests: Vec<(Method, String, Option<Value>)>,
) {
    for (method, path, body) in requests {
        let r = app.call(method.clone(), &path, Some(token), body).await;
        r.assert_code(404, "not_found", format_args!("{method} {path}"));
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
    let t = tenants().await;
    let Tenants { app, a, m, b, .. } = &t;
    let before_a = view(app, a, a.workspace).await;
    let before_m = view(app, m, a.workspace).await;
    let before_b = view(app, b, b.workspace).await;
    let counts = app.row_counts().await;

    // B aims at M, at A (the owner) and at itself (not a member of WA either).
    let mut requests = Vec::new();
    for target in [m.id, a.id, b.id] {
        let targets = t.in_a(target, &b.email);
        requests.extend(workspace_routes(a.workspace, &targets, false));
    }
    expect_all_not_found(app, &b.token, requests).await;

    // A's workspace, as A and as M see it, is exactly as it was: no rename, no new member,
    // no role change, the key still listed, and no audit event from B's attempts.
    assert_eq!(view(app, a, a.workspace).await, before_a);
    assert_eq!(view(app, m, a.workspace).await, before_m);
    assert!(ids(&before_a["api_keys"], "id").contains(&t.ka.to_string()));
    assert_eq!(
        ids(&before_a["members"], "user_id"),
        vec![a.id.to_string(), m.id.to_string()]
    );
    assert_eq!(view(app, b, b.workspace).await, before_b);
    assert_eq!(
        app.row_counts().await,
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
    let t = tenants().await;
    let Tenants { app, a, m, b, .. } = &t;
    let pat = app
        .post("/api/v1/me/tokens", &b.token, json!({"name": "automation"}))
        .await;
    pat.assert(201);
    let pat = pat.body["token"].as_str().unwrap().to_owned();
    let before = view(app, a, a.workspace).await;
    let counts = app.row_counts().await;
    expect_all_not_found(
        app,
        &pat,
        workspace_routes(a.workspace, &t.in_a(m.id, &b.email), false),
    )
    .await;
    assert_eq!(view(app, a, a.workspace).await, before);
    assert_eq!(app.row_counts().await, counts);
}

#[tokio::test]
async fn ids_of_another_tenant_inside_ones_own_workspace_are_not_found() {
    let t = tenants().await;
    let Tenants {
        app, a, m, b, mb, ..
    } = &t;
    let before_a = view(app, a, a.workspace).await;
    let before_b = view(app, b, b.workspace).await;
    let counts = app.row_counts().await;
    let wb = format!("/api/v1/workspaces/{}", b.workspace);

    // B, owner of WB, names A's key, credential, model and members under WB.
    let mut requests = Vec::new();
    for target in [a.id, m.id] {
        let targets = t.in_a(target, &a.email);
        requests.extend(workspace_routes(b.workspace, &targets, true));
    }
    expect_all_not_found(app, &b.token, requests).await;

    // And the other way round: A names B's ids under WA.
    let targets = Targets {
        member: b.id,
        key: t.kb,
        credential: t.cb,
        model: t.mb,
        email: &b.email,
    };
    expect_all_not_found(app, &a.token, workspace_routes(a.workspace, &targets, true)).await;

    // KA is still listed for A, KB for B; A and M keep their roles; nothing was written.
    let after_a = view(app, a, a.workspace).await;
    assert_eq!(after_a, before_a);
    assert!(ids(&after_a["api_keys"], "id").contains(&t.ka.to_string()));
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
    // that does not exist (422), so its existence is not revealed.
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
            .call(method.clone(), &path, Some(&b.token), Some(body_with(t.ca)))
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

    let after_b = view(app, b, b.workspace).await;
    assert_eq!(after_b, before_b);
    assert!(ids(&after_b["api_keys"], "id").contains(&t.kb.to_string()));
    assert_eq!(app.row_counts().await, counts);
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
    let t = tenants().await;
    let Tenants { app, a, m, .. } = &t;
    let counts = app.row_counts().await;
    let ghost = Uuid::new_v4();
    let targets = t.in_a(m.id, &m.email);
    expect_all_not_found(app, &a.token, workspace_routes(ghost, &targets, false)).await;
    assert_eq!(app.row_counts().await, counts);
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
    let Tenants { app, a, m, b, .. } = tenants().await;
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
    let t = tenants().await;
    let Tenants { app, a, m, .. } = &t;
    app.delete(
        &format!("/api/v1/workspaces/{}/members/{}", a.workspace, m.id),
        &a.token,
    )
    .await
    .assert(204);
    let before = view(app, a, a.workspace).await;
    let counts = app.row_counts().await;
    expect_all_not_found(
        app,
        &m.token,
        workspace_routes(a.workspace, &t.in_a(a.id, &m.email), false),
    )
    .await;
    assert_eq!(view(app, a, a.workspace).await, before);
    assert_eq!(app.row_counts().await, counts);
    let list = app.get("/api/v1/workspaces", &m.token).await;
    assert_eq!(ids(&list.body, "id"), vec![m.workspace.to_string()]);
}
