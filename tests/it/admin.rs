//! Instance administration: listing every workspace, plans per deployment mode, features.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn admins_list_every_workspace_and_others_cannot() {
    let app = spawn_app().await;
    let admin = app.user("admin").await;
    let other = app.user("other").await;
    app.post(
        "/api/v1/workspaces",
        &other.token,
        json!({"name": "side project"}),
    )
    .await
    .assert(201);
    let r = app.get("/api/v1/admin/workspaces", &admin.token).await;
    r.assert(200);
    let names: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["admin's workspace", "other's workspace", "side project"]
    );
    assert_eq!(r.body["data"][0]["member_count"], 1);
    app.get("/api/v1/admin/workspaces", &other.token)
        .await
        .assert_error(403, "forbidden");
    app.call(reqwest::Method::GET, "/api/v1/admin/workspaces", None, None)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn self_hosted_instances_have_no_plans() {
    let app = spawn_app().await;
    let admin = app.user("admin").await;
    let path = format!("/api/v1/admin/workspaces/{}/plan", admin.workspace);
    app.put(&path, &admin.token, json!({"plan": "team"}))
        .await
        .assert_error(409, "plans_not_available");
    // Answered before the body is validated.
    app.put(&path, &admin.token, json!({"plan": "gold"}))
        .await
        .assert_error(409, "plans_not_available");
    let ws = app.workspace(&admin).await;
    assert_eq!(ws.body["plan"], "sandbox");
    assert_eq!(ws.body["features"]["load_balancing"], false);
}

#[tokio::test]
async fn saas_plans_grant_load_balancing_and_are_audited() {
    let app = spawn_app_with(&[("ROTOR_DEPLOYMENT", "saas")]).await;
    let admin = app.user("admin").await;
    let customer = app.user("customer").await;
    let path = format!("/api/v1/admin/workspaces/{}/plan", customer.workspace);
    let ws_path = format!("/api/v1/workspaces/{}", customer.workspace);
    // The console learns from here that plans can be set.
    let license = app.get("/api/v1/admin/license", &admin.token).await;
    assert_eq!(license.body["deployment"], "saas", "{}", license.body);

    assert_eq!(
        app.get(&ws_path, &customer.token).await.body["features"]["load_balancing"],
        false
    );
    app.put(&path, &customer.token, json!({"plan": "team"}))
        .await
        .assert_error(403, "forbidden");

    for (plan, lb) in [
        ("professional", true),
        ("team", true),
        ("enterprise", true),
        ("sandbox", false),
    ] {
        let r = app.put(&path, &admin.token, json!({"plan": plan})).await;
        r.assert(200);
        assert_eq!(r.body["plan"], plan);
        let ws = app.get(&ws_path, &customer.token).await;
        assert_eq!(ws.body["plan"], plan);
        assert_eq!(ws.body["features"]["load_balancing"], lb, "{plan}");
    }
    app.put(&path, &admin.token, json!({"plan": "gold"}))
        .await
        .assert_error(422, "validation_failed");
    app.put(
        &format!("/api/v1/admin/workspaces/{}/plan", uuid::Uuid::new_v4()),
        &admin.token,
        json!({"plan": "team"}),
    )
    .await
    .assert_error(404, "not_found");

    let audit = app
        .get(
            &format!("/api/v1/workspaces/{}/audit-events", customer.workspace),
            &customer.token,
        )
        .await;
    let changes: Vec<_> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "workspace.plan_changed")
        .collect();
    assert_eq!(changes.len(), 4);
    assert_eq!(
        changes[0]["details"],
        json!({"from": "enterprise", "to": "sandbox"})
    );
    assert_eq!(changes[0]["actor_user_id"], admin.id.to_string());
}
