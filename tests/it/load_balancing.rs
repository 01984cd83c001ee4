//! Load-balancing pools: persistence across toggles, downgrades and license expiry; the gate
//! matrix; validation; optimistic concurrency; credential deletion.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// A credential key that is never called, and where it points.
const KEY: &str = "sk-0123456789abcdef";
const UPSTREAM: &str = "https://x.example/v1";

/// A workspace with three credentials of one provider and a model whose default is the first.
struct Pool {
    w: World,
    creds: Vec<Uuid>,
    model: String,
    path: String,
}

async fn pool(app: &TestApp, user: TestUser) -> Pool {
    let w = World::of(app, user).await;
    let creds = w.creds_at([KEY; 3], UPSTREAM).await;
    let model = w.model("gpt", "gpt", creds[0]).await;
    Pool {
        path: w.lb_path(&model),
        w,
        creds,
        model,
    }
}

impl Pool {
    /// The pool's load-balancing GET.
    async fn get(&self) -> Resp {
        self.w.app.get(&self.path, &self.w.user.token).await
    }
    async fn put(&self, body: Value) -> Resp {
        self.w.app.put(&self.path, &self.w.user.token, body).await
    }
    async fn patch(&self, body: Value) -> Resp {
        self.w.app.patch(&self.path, &self.w.user.token, body).await
    }
}

/// `enabled`, `effective` and `reason` of a load-balancing body.
fn state(lb: &Value) -> (Value, Value, Value) {
    (
        lb["enabled"].clone(),
        lb["effective"].clone(),
        lb["reason"].clone(),
    )
}

/// The `load_balancing` summary of the pool's model, in the model list and the model GET.
async fn summaries(app: &TestApp, p: &Pool) -> [Value; 2] {
    let models = app.get(&p.w.w("/models"), &p.w.user.token).await;
    let model = app
        .get(&p.w.w(&format!("/models/{}", p.model)), &p.w.user.token)
        .await;
    [
        models.body["data"][0]["load_balancing"].clone(),
        model.body["load_balancing"].clone(),
    ]
}

fn entries(p: &Pool) -> Value {
    json!([
        {"credential_id": null, "enabled": true, "weight": 1},
        {"credential_id": p.creds[1], "enabled": true, "weight": 2},
        {"credential_id": p.creds[2], "enabled": false, "weight": 5},
        {"credential_id": p.creds[1], "enabled": true},
    ])
}

async fn licensed() -> TestApp {
    spawn_app_with(&[("ROTOR_LICENSE", &lb_license())]).await
}

#[tokio::test]
async fn a_new_model_has_an_empty_disabled_pool_at_version_1() {
    let app = spawn_app().await;
    let p = pool(&app, app.user("u").await).await;
    let r = p.get().await;
    r.assert(200);
    assert_eq!(r.headers["etag"], "\"1\"");
    assert_eq!(
        r.body,
        json!({"enabled": false, "effective": false, "reason": "disabled", "cooldown_seconds": 60, "max_attempts": 3,
               "max_wait_ms": 0, "affinity": "none", "affinity_ttl_seconds": 300, "version": 1, "entries": []})
    );
}

#[tokio::test]
async fn toggling_off_and_on_keeps_every_entry() {
    let app = licensed().await;
    let p = pool(&app, app.user("u").await).await;
    let put = p.put(json!({"enabled": true, "cooldown_seconds": 30, "max_attempts": 2, "entries": entries(&p)})).await;
    put.assert(200);
    assert_eq!(put.headers["etag"], "\"2\"");
    assert_eq!(put.body["version"], 2);
    assert_eq!(put.body["effective"], true);
    assert!(put.body["reason"].is_null());
    let stored = put.body["entries"].clone();
    let names: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["credential_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Default Config", "key-1", "key-2", "key-1"]);
    assert_eq!(stored[3]["weight"], 1, "weight defaults to 1");
    assert_eq!(
        stored[0]["status"],
        json!({"state": "available", "cooldown_remaining_s": 0})
    );
    assert_eq!(p.get().await.body, put.body);

    let off = p.patch(json!({"enabled": false})).await;
    off.assert(200);
    assert_eq!(
        state(&off.body),
        (json!(false), json!(false), json!("disabled"))
    );
    assert_eq!(off.body["version"], 3);
    assert_eq!(
        off.body["entries"], stored,
        "disabling keeps ids, order, weights and flags"
    );
    assert_eq!(
        (
            off.body["cooldown_seconds"].clone(),
            off.body["max_attempts"].clone()
        ),
        (json!(30), json!(2))
    );
    let off_summary = json!({"enabled": false, "effective": false});
    assert_eq!(
        summaries(&app, &p).await,
        [off_summary.clone(), off_summary]
    );

    let on = p.patch(json!({"enabled": true})).await;
    on.assert(200);
    assert_eq!(on.body["entries"], stored, "enabling again restores them");
    assert_eq!(on.body["effective"], true);
    assert_eq!(on.body["version"], 4);
    let on_summary = json!({"enabled": true, "effective": true});
    assert_eq!(summaries(&app, &p).await, [on_summary.clone(), on_summary]);

    // Enabling an enabled config is an ordinary write; a GET body can be PUT back unchanged.
    let again = p.patch(json!({"enabled": true})).await;
    again.assert(200);
    assert_eq!(again.body["version"], 5);
    let mut body = again.body.clone();
    body["cooldown_seconds"] = json!(45);
    let round = p.put(body).await;
    round.assert(200);
    assert_eq!(
        round.body["entries"], stored,
        "entry ids sent back are kept"
    );
    assert_eq!(round.body["cooldown_seconds"], 45);

    // The audit log has every change.
    let audit = app
        .get(
            &format!("/api/v1/workspaces/{}/audit-events", p.w.user.workspace),
            &p.w.user.token,
        )
        .await;
    let lb: Vec<&Value> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "load_balancing.updated")
        .collect();
    assert_eq!(lb.len(), 5);
    assert_eq!(lb[0]["target_id"], p.model.as_str());
}

#[tokio::test]
async fn a_downgrade_keeps_the_pool_and_an_upgrade_restores_it() {
    let app = spawn_app_with(&[("ROTOR_DEPLOYMENT", "saas")]).await;
    let admin = app.user("admin").await;
    let p = pool(&app, app.user("customer").await).await;
    let plan = format!("/api/v1/admin/workspaces/{}/plan", p.w.user.workspace);
    let ws = format!("/api/v1/workspaces/{}", p.w.user.workspace);

    p.put(json!({"enabled": true, "entries": entries(&p)}))
        .await
        .assert_error(403, "feature_not_available");
    app.put(&plan, &admin.token, json!({"plan": "team"}))
        .await
        .assert(200);
    assert_eq!(
        app.get(&ws, &p.w.user.token).await.body["features"]["load_balancing"],
        true
    );
    let on = p
        .put(json!({"enabled": true, "entries": entries(&p)}))
        .await;
    on.assert(200);
    let stored = on.body["entries"].clone();

    app.put(&plan, &admin.token, json!({"plan": "sandbox"}))
        .await
        .assert(200);
    let r = p.get().await;
    assert_eq!(
        (r.body["enabled"].clone(), r.body["effective"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(r.body["reason"], "feature_not_available");
    assert_eq!(r.body["entries"], stored, "a downgrade deletes nothing");
    // Writes that leave it enabled are refused; disabling is allowed on every plan.
    p.patch(json!({"cooldown_seconds": 10}))
        .await
        .assert_error(403, "feature_not_available");
    let off = p.patch(json!({"enabled": false})).await;
    off.assert(200);
    assert_eq!(off.body["entries"], stored);
    p.patch(json!({"enabled": true}))
        .await
        .assert_error(403, "feature_not_available");
    app.put(&plan, &admin.token, json!({"plan": "professional"}))
        .await
        .assert(200);
    let back = p.patch(json!({"enabled": true})).await;
    back.assert(200);
    assert_eq!(back.body["effective"], true);
    assert_eq!(
        back.body["entries"], stored,
        "upgrading restores balancing with the same pool"
    );
}

#[tokio::test]
async fn license_expiry_is_noticed_while_running_and_renewal_restores() {
    let app = spawn_app_with(&[(
        "ROTOR_LICENSE",
        &license_token(&["load_balancing"], 3, None),
    )])
    .await;
    let admin = app.user("admin").await;
    let p = pool(&app, admin.clone()).await;
    let on = p
        .put(json!({"enabled": true, "entries": entries(&p)}))
        .await;
    on.assert(200);
    assert_eq!(on.body["effective"], true);
    let stored = on.body["entries"].clone();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let r = p.get().await;
        if r.body["effective"] == false {
            assert_eq!(r.body["reason"], "feature_not_available");
            assert_eq!(r.body["entries"], stored);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the expiry was not noticed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.get("/api/v1/admin/license", &admin.token).await.body["status"],
        "expired"
    );
    let ws = app.workspace(&p.w.user).await;
    assert_eq!(ws.body["features"]["load_balancing"], false);

    app.put(
        "/api/v1/admin/license",
        &admin.token,
        json!({"license": lb_license()}),
    )
    .await
    .assert(200);
    let r = p.get().await;
    assert_eq!(r.body["effective"], true, "renewal restores balancing");
    assert_eq!(r.body["entries"], stored);
}

#[derive(Clone, Copy, Debug)]
enum Lic {
    None,
    Valid,
    WithoutFeature,
    Expired,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    PutEnabled,
    PatchEnable,
    TuneWhileEnabled,
    PutDisabled,
    PatchDisable,
    DeleteCredential,
}

#[tokio::test]
async fn gate_matrix_of_plans_licenses_and_write_kinds() {
    for saas in [false, true] {
        for lic in [Lic::None, Lic::Valid, Lic::WithoutFeature, Lic::Expired] {
            // In saas mode the license must also grant `saas`; with an expired one, the
            // `saas` license installed before is the one in force.
            let with_saas = |f: &[&'static str]| {
                let mut f = f.to_vec();
                if saas {
                    f.push("saas");
                }
                f
            };
            let token = match lic {
                Lic::None => String::new(),
                Lic::Valid => license_token(&with_saas(&["load_balancing"]), 3600, None),
                Lic::WithoutFeature => license_token(&with_saas(&["sso"]), 3600, None),
                Lic::Expired => license_token(&with_saas(&["load_balancing"]), -10, None),
            };
            let mode = if saas { "saas" } else { "self-hosted" };
            let db = fresh_database().await;
            if saas && matches!(lic, Lic::Expired) {
                spawn_app_on(&db, &[("ROTOR_DEPLOYMENT", mode)]).await;
            }
            let app = spawn_app_on(
                &db,
                &[("ROTOR_DEPLOYMENT", mode), ("ROTOR_LICENSE", &token)],
            )
            .await;
            let _admin = app.user("admin").await;
            for plan in ["sandbox", "team"] {
                for kind in [
                    Kind::PutEnabled,
                    Kind::PatchEnable,
                    Kind::TuneWhileEnabled,
                    Kind::PutDisabled,
                    Kind::PatchDisable,
                    Kind::DeleteCredential,
                ] {
                    let p = pool(&app, app.user("u").await).await;
                    // Plans are set directly: in self-hosted mode they must have no effect.
                    sqlx::query("UPDATE workspaces SET plan = $2 WHERE id = $1")
                        .bind(p.w.user.workspace)
                        .bind(plan)
                        .execute(&app.db)
                        .await
                        .unwrap();
                    let feature = matches!(lic, Lic::Valid) || (saas && plan == "team");
                    // Pools that are already enabled (as after a downgrade) are set up directly too.
                    let preset_enabled = matches!(
                        kind,
                        Kind::TuneWhileEnabled | Kind::PatchDisable | Kind::DeleteCredential
                    );
                    if preset_enabled {
                        sqlx::query("UPDATE lb_configs SET enabled = true WHERE model_id = $1")
                            .bind(p.model.parse::<Uuid>().unwrap())
                            .execute(&app.db)
                            .await
                            .unwrap();
                        sqlx::query("INSERT INTO lb_entries (id, model_id, workspace_id, position, credential_id, enabled, weight) VALUES ($1, $2, $3, 0, NULL, true, 1), ($4, $2, $3, 1, $5, true, 1), ($6, $2, $3, 2, $7, true, 1)")
                            .bind(Uuid::new_v4()).bind(p.model.parse::<Uuid>().unwrap()).bind(p.w.user.workspace)
                            .bind(Uuid::new_v4()).bind(p.creds[1]).bind(Uuid::new_v4()).bind(p.creds[2])
                            .execute(&app.db).await.unwrap();
                    }
                    let (method, path, body, needs_feature) = match kind {
                        Kind::PutEnabled => (
                            Method::PUT,
                            p.path.clone(),
                            Some(json!({"enabled": true, "entries": entries(&p)})),
                            true,
                        ),
                        Kind::PatchEnable => {
                            sqlx::query("INSERT INTO lb_entries (id, model_id, workspace_id, position, credential_id, enabled, weight) VALUES ($1, $2, $3, 0, $4, true, 1), ($5, $2, $3, 1, $6, true, 1)")
                                .bind(Uuid::new_v4()).bind(p.model.parse::<Uuid>().unwrap()).bind(p.w.user.workspace).bind(p.creds[1])
                                .bind(Uuid::new_v4()).bind(p.creds[2]).execute(&app.db).await.unwrap();
                            (
                                Method::PATCH,
                                p.path.clone(),
                                Some(json!({"enabled": true})),
                                true,
                            )
                        }
                        Kind::TuneWhileEnabled => (
                            Method::PATCH,
                            p.path.clone(),
                            Some(json!({"cooldown_seconds": 5})),
                            true,
                        ),
                        Kind::PutDisabled => (
                            Method::PUT,
                            p.path.clone(),
                            Some(json!({"enabled": false, "entries": entries(&p)})),
                            false,
                        ),
                        Kind::PatchDisable => (
                            Method::PATCH,
                            p.path.clone(),
                            Some(json!({"enabled": false})),
                            false,
                        ),
                        Kind::DeleteCredential => (
                            Method::DELETE,
                            format!(
                                "/api/v1/workspaces/{}/credentials/{}",
                                p.w.user.workspace, p.creds[2]
                            ),
                            None,
                            false,
                        ),
                    };
                    let before = p.get().await.body;
                    let r = app.call(method, &path, Some(&p.w.user.token), body).await;
                    let case = format!("saas={saas} license={lic:?} plan={plan} write={kind:?}");
                    if needs_feature && !feature {
                        r.assert_error(403, "feature_not_available");
                        assert_eq!(
                            p.get().await.body,
                            before,
                            "{case}: a refused write changed the pool"
                        );
                    } else {
                        assert!(r.status.is_success(), "{case}: {} {}", r.status, r.body);
                    }
                    let ws = app.workspace(&p.w.user).await;
                    assert_eq!(ws.body["features"]["load_balancing"], feature, "{case}");
                    let after = p.get().await.body;
                    if after["enabled"] == true {
                        let expected = if feature {
                            json!(null)
                        } else {
                            json!("feature_not_available")
                        };
                        if after["reason"] != json!("not_enough_entries") {
                            assert_eq!(after["reason"], expected, "{case}");
                        }
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn invalid_pools_are_refused_and_change_nothing() {
    let app = licensed().await;
    let p = pool(&app, app.user("u").await).await;
    let stranger = app.user("stranger").await;
    let foreign = app
        .compatible_credential(&stranger, stranger.workspace, "theirs", KEY, UPSTREAM)
        .await;
    // A credential of another API family cannot serve the model (one of its own family can:
    // see `a_pool_mixes_providers_of_one_family`).
    let anthropic = app
        .credential(
            &p.w.user,
            p.w.ws(),
            "anthropic",
            "an",
            json!({"api_key": KEY}),
        )
        .await;
    let anthropic = id_of(&anthropic);
    let good = p
        .put(json!({"enabled": false, "entries": entries(&p)}))
        .await;
    good.assert(200);
    let before = p.get().await;

    let c = &p.creds;
    const FEW: &str = "not_enough_entries";
    const BAD: &str = "validation_failed";
    let e = |c: Uuid| json!({"credential_id": c});
    let on = |entries: Value| json!({"enabled": true, "entries": entries});
    let off = |entries: Value| json!({"enabled": false, "entries": entries});
    let weight = |w: u32| off(json!([{"credential_id": c[1], "weight": w}]));
    let with = |field: &str, v: Value| json!({"enabled": false, field: v, "entries": []});
    for (body, code, field) in [
        (on(json!([e(c[1])])), FEW, "entries"),
        (
            on(json!([e(c[1]), {"credential_id": c[1], "weight": 3}])),
            FEW,
            "entries",
        ),
        (
            on(json!([{"credential_id": null}, e(c[0])])),
            FEW,
            "entries",
        ),
        (
            on(json!([e(c[1]), {"credential_id": c[2], "enabled": false}])),
            FEW,
            "entries",
        ),
        (off(json!([e(foreign)])), BAD, "entries[0].credential_id"),
        (
            off(json!([e(c[1]), e(anthropic)])),
            BAD,
            "entries[1].credential_id",
        ),
        (
            off(json!([e(Uuid::new_v4())])),
            BAD,
            "entries[0].credential_id",
        ),
        (weight(0), BAD, "entries[0].weight"),
        (weight(101), BAD, "entries[0].weight"),
        (with("cooldown_seconds", json!(0)), BAD, "cooldown_seconds"),
        (
            with("cooldown_seconds", json!(3601)),
            BAD,
            "cooldown_seconds",
        ),
        (with("max_attempts", json!(0)), BAD, "max_attempts"),
        (with("max_attempts", json!(11)), BAD, "max_attempts"),
        (
            off(json!([{"id": Uuid::new_v4(), "credential_id": c[1]}])),
            BAD,
            "entries[0].id",
        ),
        (json!({"enabled": "yes", "entries": []}), BAD, "enabled"),
        (json!({"enabled": true}), BAD, "entries"),
    ] {
        let r = p.put(body.clone()).await;
        r.assert_field(code, field, &body);
        let now = p.get().await;
        assert_eq!(now.body, before.body, "{body} changed the stored pool");
    }
    for body in [
        json!({"cooldown_seconds": 0}),
        json!({"max_attempts": 11}),
        json!({"entries": []}),
    ] {
        p.patch(body).await.assert_error(422, "validation_failed");
    }
    assert_eq!(p.get().await.body, before.body);
}

#[tokio::test]
async fn if_match_guards_against_lost_updates() {
    let app = licensed().await;
    let p = pool(&app, app.user("u").await).await;
    let guarded = |method: Method, tag: &str| {
        app.req(method, &p.path)
            .bearer(&p.w.user.token)
            .header("if-match", tag)
    };
    let body = json!({"enabled": true, "entries": entries(&p)});
    let puts = (0..16).map(|_| guarded(Method::PUT, "\"1\"").json(body.clone()));
    let statuses: Vec<u16> = in_parallel(puts)
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        15,
        "{statuses:?}"
    );
    let r = p.get().await;
    assert_eq!(r.body["version"], 2, "one write, one version");

    let stale = guarded(Method::PATCH, "\"1\"")
        .json(json!({"enabled": false}))
        .send()
        .await;
    stale.assert_error(412, "version_conflict");
    assert_eq!(p.get().await.body, r.body);
    for tag in ["\"2\"", "*", "W/\"2\""] {
        let ok = guarded(Method::PATCH, tag)
            .json(json!({"max_attempts": 4}))
            .send()
            .await;
        ok.assert(200);
        let etag = ok.headers["etag"].to_str().unwrap().to_owned();
        // The next one must name the new version.
        assert_eq!(etag, format!("\"{}\"", ok.body["version"]));
        if tag != "*" {
            break;
        }
    }
}

#[tokio::test]
async fn deleting_a_credential_removes_its_entries_and_bumps_the_version() {
    let app = licensed().await;
    let p = pool(&app, app.user("u").await).await;
    let r = p
        .put(json!({"enabled": true, "entries": entries(&p)}))
        .await;
    r.assert(200);
    app.delete(
        &format!(
            "/api/v1/workspaces/{}/credentials/{}",
            p.w.user.workspace, p.creds[1]
        ),
        &p.w.user.token,
    )
    .await
    .assert(204);
    let after = p.get().await;
    assert_eq!(after.body["version"], 3);
    let remaining: Vec<Value> = after.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["credential_id"].clone())
        .collect();
    assert_eq!(remaining, [json!(null), json!(p.creds[2].to_string())]);
    assert_eq!(after.body["entries"][0]["id"], r.body["entries"][0]["id"]);
    // Still switched on, but only one distinct enabled credential is left.
    assert_eq!(
        state(&after.body),
        (json!(true), json!(false), json!("not_enough_entries"))
    );
    let audit = app
        .get(
            &format!("/api/v1/workspaces/{}/audit-events", p.w.user.workspace),
            &p.w.user.token,
        )
        .await;
    let e = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["action"] == "load_balancing.updated"
                && e["details"]["reason"] == "credential_deleted"
        })
        .cloned()
        .unwrap();
    assert_eq!(e["target_id"], p.model.as_str());
    assert_eq!(e["details"]["entries_removed"], 2);

    // Deleting the model removes its pool.
    app.delete(
        &format!(
            "/api/v1/workspaces/{}/models/{}",
            p.w.user.workspace, p.model
        ),
        &p.w.user.token,
    )
    .await
    .assert(204);
    p.get().await.assert_error(404, "not_found");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM lb_entries")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn pool_routes_are_tenant_scoped_and_role_checked() {
    let app = licensed().await;
    let p = pool(&app, app.user("owner").await).await;
    let stranger = app.user("stranger").await;
    let normal = app.user("normal").await;
    app.add_member(&p.w.user, p.w.user.workspace, &normal, "normal")
        .await;
    let cooldowns = format!("{}/cooldowns", p.path);
    let body = json!({"enabled": false, "entries": entries(&p)});
    for (method, path, body, write) in [
        (Method::GET, p.path.clone(), None, false),
        (Method::PUT, p.path.clone(), Some(body.clone()), true),
        (
            Method::PATCH,
            p.path.clone(),
            Some(json!({"enabled": false})),
            true,
        ),
        (Method::DELETE, cooldowns.clone(), None, true),
    ] {
        app.call(method.clone(), &path, Some(&stranger.token), body.clone())
            .await
            .assert_error(404, "not_found");
        let theirs = path.replace(
            &p.w.user.workspace.to_string(),
            &stranger.workspace.to_string(),
        );
        app.call(method.clone(), &theirs, Some(&stranger.token), body.clone())
            .await
            .assert_error(404, "not_found");
        let r = app
            .call(method.clone(), &path, Some(&normal.token), body.clone())
            .await;
        if write {
            r.assert_error(403, "forbidden");
        } else {
            r.assert(200);
        }
    }
    assert_eq!(p.get().await.body["version"], 1, "nothing changed");
    app.delete(&cooldowns, &p.w.user.token).await.assert(204);
    let audit = app
        .get(
            &format!("/api/v1/workspaces/{}/audit-events", p.w.user.workspace),
            &p.w.user.token,
        )
        .await;
    assert_eq!(
        audit.body["data"][0]["action"],
        "load_balancing.cooldowns_cleared"
    );
    app.get(
        &TestApp::lb_path(p.w.user.workspace, &Uuid::new_v4().to_string()),
        &p.w.user.token,
    )
    .await
    .assert_error(404, "not_found");
    app.get(
        &TestApp::lb_path(p.w.user.workspace, "not-a-uuid"),
        &p.w.user.token,
    )
    .await
    .assert_error(404, "not_found");
}

#[tokio::test]
async fn a_pool_mixes_providers_of_one_family() {
    // An OpenAI key, an Azure deployment, a compatible server and a preset (Groq's shape)
    // serve one model: each is called in its own wire format with its own key.
    let fx = World::licensed().await;
    let compat = fx.cred("sk_compat", "sk_compat").await;
    let base = fx.mock.url("/v1");
    let cred = |provider: &'static str, name: &'static str, config: Value| {
        let fx = &fx;
        async move {
            id_of(
                &fx.app
                    .credential(&fx.user, fx.ws(), provider, name, config)
                    .await,
            )
        }
    };
    let openai = cred(
        "openai",
        "oa",
        json!({"api_key": "sk_openai", "base_url": base}),
    )
    .await;
    let azure = cred(
        "azure_openai",
        "az",
        json!({"api_key": "sk_azure", "endpoint": fx.mock.url(""), "api_version": "2024-06-01"}),
    )
    .await;
    let groq = cred(
        "groq",
        "gq",
        json!({"api_key": "sk_groq", "base_url": base}),
    )
    .await;
    let model = fx.model("mixed", "gpt-4o", compat).await;
    // Groq calls the model otherwise: its entry says so.
    let r = fx
        .app
        .put(
            &fx.lb_path(&model),
            &fx.user.token,
            json!({"enabled": true, "entries": [
                {"credential_id": compat}, {"credential_id": openai}, {"credential_id": azure},
                {"credential_id": groq, "upstream_model": "llama-3.3-70b-versatile"}]}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["effective"], true, "{}", r.body);
    assert_eq!(
        r.body["entries"][3]["upstream_model"],
        "llama-3.3-70b-versatile"
    );
    assert!(r.body["entries"][0]["upstream_model"].is_null());
    for _ in 0..8 {
        fx.chat("mixed").await.assert(200);
    }
    let counts = fx.counts();
    for key in ["sk_compat", "sk_openai", "sk_azure", "sk_groq"] {
        assert_eq!(counts.get(key), Some(&2), "{key}: {counts:?}");
    }
    for r in fx.mock.requests() {
        let want = if r.key.as_deref() == Some("sk_groq") {
            "llama-3.3-70b-versatile"
        } else {
            "gpt-4o"
        };
        assert_eq!(r.model.as_deref(), Some(want), "{:?}", r.key);
    }
    // A name with whitespace is refused and changes nothing.
    let bad = json!({"enabled": true, "entries": [
        {"credential_id": compat}, {"credential_id": groq, "upstream_model": "has space"}]});
    fx.app
        .put(&fx.lb_path(&model), &fx.user.token, bad.clone())
        .await
        .assert_field("validation_failed", "entries[1].upstream_model", &bad);
    assert_eq!(fx.lb(&model).await["entries"].as_array().unwrap().len(), 4);
    let azure_calls: Vec<String> = fx
        .mock
        .requests()
        .into_iter()
        .filter(|r| r.key.as_deref() == Some("sk_azure"))
        .map(|r| r.uri)
        .collect();
    assert_eq!(
        azure_calls,
        ["/openai/deployments/gpt-4o/chat/completions?api-version=2024-06-01"; 2]
    );
}
