//! The credential-lifecycle settings of DESIGN §14, stored, validated and shown (dispatch does
//! not enforce them yet): a credential's `quota_cooldown_seconds`; a pool's `max_wait_ms`,
//! `affinity` and `affinity_ttl_seconds`; its entries' `rpm` and `tpm`. Test names carry
//! `credentials` or `load_balancing` so those suites' filters pick them up.

use crate::helpers::*;
use serde_json::{json, Value};
use std::borrow::Cow;
use uuid::Uuid;

/// A credential key that is never called, and where it points.
const KEY: &str = "sk-0123456789abcdef";
const UPSTREAM: &str = "https://x.example/v1";
/// The migration that added the settings.
const LIFECYCLE_SETTINGS: i64 = 20261202000002;

fn creds(u: &TestUser) -> String {
    format!("/api/v1/workspaces/{}/credentials", u.workspace)
}

/// An `openai_compatible` credential body named `name`, with the fields of `extra` added.
fn new_cred(name: &str, extra: Value) -> Value {
    let mut body = json!({"provider": "openai_compatible", "name": name,
                          "config": {"api_key": KEY, "base_url": UPSTREAM}});
    merge(&mut body, extra);
    body
}

/// Adds the fields of `extra` (an object) to `body`.
fn merge(body: &mut Value, extra: Value) {
    if let (Value::Object(b), Value::Object(e)) = (body, extra) {
        b.extend(e);
    }
}

/// The newest audit event of `u`'s workspace with this action.
async fn last_event(app: &TestApp, u: &TestUser, action: &str) -> Value {
    let r = app
        .get(
            &format!("/api/v1/workspaces/{}/audit-events", u.workspace),
            &u.token,
        )
        .await;
    r.assert(200);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == action)
        .cloned()
        .unwrap_or_else(|| panic!("no {action} in {}", r.body))
}

/// `max_wait_ms`, `affinity` and `affinity_ttl_seconds` of a load-balancing body.
fn pool_settings(lb: &Value) -> (Value, Value, Value) {
    (
        lb["max_wait_ms"].clone(),
        lb["affinity"].clone(),
        lb["affinity_ttl_seconds"].clone(),
    )
}

/// (`rpm`, `tpm`) of each entry of a load-balancing body.
fn limits(lb: &Value) -> Vec<(Value, Value)> {
    lb["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["rpm"].clone(), e["tpm"].clone()))
        .collect()
}

/// A body with its version bumped by one: what a write that changes nothing else answers.
fn bumped(body: &Value) -> Value {
    let mut out = body.clone();
    out["version"] = json!(body["version"].as_i64().unwrap() + 1);
    out
}

#[tokio::test]
async fn credentials_store_show_and_patch_quota_cooldown_seconds() {
    let app = spawn_app().await;
    let u = app.user("u").await;
    let plain = app
        .post(&creds(&u), &u.token, new_cred("plain", json!({})))
        .await;
    plain.assert(201);
    assert_eq!(plain.body["quota_cooldown_seconds"], 3600, "the default");
    let created = last_event(&app, &u, "credential.created").await;
    assert_eq!(created["details"]["quota_cooldown_seconds"], 3600);
    for (name, seconds) in [
        ("short", json!(60)),
        ("long", json!(604_800)),
        ("null", json!(null)),
    ] {
        let body = new_cred(name, json!({"quota_cooldown_seconds": seconds}));
        let r = app.post(&creds(&u), &u.token, body.clone()).await;
        r.assert(201);
        let expected = if seconds.is_null() {
            json!(3600)
        } else {
            seconds
        };
        assert_eq!(r.body["quota_cooldown_seconds"], expected, "{body}");
    }
    let id = id_of(&plain.body);
    let path = format!("{}/{id}", creds(&u));
    assert_eq!(app.get(&path, &u.token).await.body, plain.body);
    let list = app.get(&creds(&u), &u.token).await;
    let shown: Vec<(Value, Value)> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].clone(), c["quota_cooldown_seconds"].clone()))
        .collect();
    assert_eq!(
        shown,
        [
            (json!("plain"), json!(3600)),
            (json!("short"), json!(60)),
            (json!("long"), json!(604_800)),
            (json!("null"), json!(3600)),
        ]
    );

    // PATCH of the field alone keeps name and config, and the audit log says from what to what.
    let r = app
        .patch(&path, &u.token, json!({"quota_cooldown_seconds": 900}))
        .await;
    r.assert(200);
    assert_eq!(r.body["quota_cooldown_seconds"], 900);
    assert_eq!(
        (&r.body["name"], &r.body["config"], &r.body["created_at"]),
        (
            &plain.body["name"],
            &plain.body["config"],
            &plain.body["created_at"]
        )
    );
    assert_eq!(app.get(&path, &u.token).await.body, r.body);
    let updated = last_event(&app, &u, "credential.updated").await;
    assert_eq!(updated["target_id"], id.to_string());
    assert_eq!(
        updated["details"]["quota_cooldown_seconds"],
        json!({"from": 3600, "to": 900})
    );
    assert!(updated["details"].get("name").is_none(), "{updated}");

    // PATCH of anything else keeps it; both bounds are accepted.
    for patch in [
        json!({"name": "renamed"}),
        json!({"config": {"api_key": "sk-another-key-4567"}}),
        json!({"quota_cooldown_seconds": null}),
    ] {
        let r = app.patch(&path, &u.token, patch.clone()).await;
        r.assert(200);
        assert_eq!(r.body["quota_cooldown_seconds"], 900, "{patch}");
        let e = last_event(&app, &u, "credential.updated").await;
        assert!(e["details"].get("quota_cooldown_seconds").is_none(), "{e}");
    }
    for seconds in [60, 604_800] {
        let r = app
            .patch(&path, &u.token, json!({"quota_cooldown_seconds": seconds}))
            .await;
        r.assert(200);
        assert_eq!(r.body["quota_cooldown_seconds"], seconds);
        assert_eq!(
            app.get(&path, &u.token).await.body["quota_cooldown_seconds"],
            seconds
        );
    }
}

#[tokio::test]
async fn credentials_refuse_an_out_of_range_quota_cooldown_and_change_nothing() {
    let app = spawn_app().await;
    let u = app.user("u").await;
    let c = app
        .post(
            &creds(&u),
            &u.token,
            new_cred("c", json!({"quota_cooldown_seconds": 120})),
        )
        .await;
    c.assert(201);
    let path = format!("{}/{}", creds(&u), id_of(&c.body));
    let before = app.get(&path, &u.token).await.body;
    let counts = app.row_counts().await;
    for bad in [
        json!(59),
        json!(604_801),
        json!(0),
        json!(-3600),
        json!(10_000_000_000i64),
        json!(3600.5),
        json!("3600"),
    ] {
        let body = new_cred("new", json!({"quota_cooldown_seconds": bad}));
        app.post(&creds(&u), &u.token, body.clone())
            .await
            .assert_field("validation_failed", "quota_cooldown_seconds", &body);
        let patch = json!({"name": "renamed", "quota_cooldown_seconds": bad});
        app.patch(&path, &u.token, patch.clone())
            .await
            .assert_field("validation_failed", "quota_cooldown_seconds", &patch);
        assert_eq!(app.get(&path, &u.token).await.body, before, "{patch}");
    }
    // One answer names every bad field.
    let body = json!({"provider": "openai_compatible", "name": " ", "quota_cooldown_seconds": 1,
                      "config": {"api_key": KEY, "base_url": UPSTREAM}});
    let r = app.post(&creds(&u), &u.token, body.clone()).await;
    r.assert_field("validation_failed", "quota_cooldown_seconds", &body)
        .assert_field("validation_failed", "name", &body);
    assert_eq!(app.row_counts().await, counts, "nothing stored or audited");
    assert_eq!(app.get(&path, &u.token).await.body, before);
}

#[tokio::test]
async fn load_balancing_settings_round_trip_through_put_patch_and_get() {
    let w = World::licensed().await;
    let app = &w.app;
    let token = &w.user.token;
    let creds = w.creds_at([KEY; 3], UPSTREAM).await;
    let model = w.model("gpt", "gpt", creds[0]).await;
    let path = w.lb_path(&model);
    let fresh = w.lb(&model).await;
    assert_eq!(
        pool_settings(&fresh),
        (json!(0), json!("none"), json!(300)),
        "the defaults"
    );

    let put = app
        .put(
            &path,
            token,
            json!({"enabled": true, "max_wait_ms": 2500, "affinity": "session",
                   "affinity_ttl_seconds": 600, "entries": [
                {"credential_id": null, "rpm": 60, "tpm": 100_000},
                {"credential_id": creds[1], "rpm": 1},
                {"credential_id": creds[2], "weight": 2, "tpm": 1_000_000_000}]}),
        )
        .await;
    put.assert(200);
    assert_eq!(
        pool_settings(&put.body),
        (json!(2500), json!("session"), json!(600))
    );
    assert_eq!(
        (&put.body["cooldown_seconds"], &put.body["max_attempts"]),
        (&json!(60), &json!(3))
    );
    assert_eq!(
        limits(&put.body),
        [
            (json!(60), json!(100_000)),
            (json!(1), json!(null)),
            (json!(null), json!(1_000_000_000)),
        ]
    );
    assert_eq!(w.lb(&model).await, put.body);
    let e = last_event(app, &w.user, "load_balancing.updated").await;
    assert_eq!(
        e["details"]["changes"],
        json!({"enabled": {"from": false, "to": true},
               "max_wait_ms": {"from": 0, "to": 2500},
               "affinity": {"from": "none", "to": "session"},
               "affinity_ttl_seconds": {"from": 300, "to": 600}})
    );
    assert_eq!(
        (&e["details"]["max_wait_ms"], &e["details"]["affinity"]),
        (&json!(2500), &json!("session"))
    );
    assert_eq!(
        (
            &e["details"]["entries"][0]["rpm"],
            &e["details"]["entries"][0]["tpm"],
            &e["details"]["entries"][2]["tpm"]
        ),
        (&json!(60), &json!(100_000), &json!(1_000_000_000))
    );

    // A GET body PUT back as is changes nothing but the version.
    let back = app.put(&path, token, put.body.clone()).await;
    back.assert(200);
    assert_eq!(back.body, bumped(&put.body));
    let e = last_event(app, &w.user, "load_balancing.updated").await;
    assert_eq!(e["details"]["changes"], json!({}));

    // A PUT without the pool settings keeps them; an entry without limits has none.
    let r = app
        .put(
            &path,
            token,
            json!({"enabled": true, "entries": [{"credential_id": null}, {"credential_id": creds[1], "rpm": 5}]}),
        )
        .await;
    r.assert(200);
    assert_eq!(
        pool_settings(&r.body),
        (json!(2500), json!("session"), json!(600))
    );
    assert_eq!(
        limits(&r.body),
        [(json!(null), json!(null)), (json!(5), json!(null))]
    );

    // A PATCH of one setting keeps every other, bounds included.
    for (field, value) in [
        ("max_wait_ms", json!(60_000)),
        ("affinity", json!("none")),
        ("affinity_ttl_seconds", json!(86_400)),
        ("max_wait_ms", json!(0)),
        ("affinity_ttl_seconds", json!(30)),
        ("affinity", json!("session")),
        ("cooldown_seconds", json!(30)),
    ] {
        let before = w.lb(&model).await;
        let r = app.patch(&path, token, json!({ field: value })).await;
        r.assert(200);
        let mut expected = bumped(&before);
        expected[field] = value.clone();
        assert_eq!(r.body, expected, "{field}");
        assert_eq!(w.lb(&model).await, r.body);
        let e = last_event(app, &w.user, "load_balancing.updated").await;
        assert_eq!(
            e["details"]["changes"],
            json!({ field: {"from": before[field], "to": value} })
        );
    }
    // `null` keeps the stored value, as an omitted field does.
    let before = w.lb(&model).await;
    let r = app
        .patch(
            &path,
            token,
            json!({"max_wait_ms": null, "affinity": null, "affinity_ttl_seconds": null}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body, bumped(&before));

    // The settings are versioned like the rest: a stale If-Match changes nothing.
    let stale = app
        .req(reqwest::Method::PATCH, &path)
        .bearer(token)
        .header("if-match", "\"1\"")
        .json(json!({"max_wait_ms": 100}))
        .send()
        .await;
    stale.assert_error(412, "version_conflict");
    assert_eq!(w.lb(&model).await, r.body);
    let tag = format!("\"{}\"", r.body["version"]);
    let fresh = app
        .req(reqwest::Method::PATCH, &path)
        .bearer(token)
        .header("if-match", &tag)
        .json(json!({"max_wait_ms": 100}))
        .send()
        .await;
    fresh.assert(200);
    assert_eq!(fresh.body["max_wait_ms"], 100);
}

#[tokio::test]
async fn load_balancing_settings_out_of_range_are_refused_and_change_nothing() {
    let w = World::licensed().await;
    let app = &w.app;
    let token = &w.user.token;
    let creds = w.creds_at([KEY; 2], UPSTREAM).await;
    let model = w.model("gpt", "gpt", creds[0]).await;
    let path = w.lb_path(&model);
    app.put(
        &path,
        token,
        json!({"enabled": false, "max_wait_ms": 100, "affinity": "session", "affinity_ttl_seconds": 120,
               "entries": [{"credential_id": null, "rpm": 10, "tpm": 1000}, {"credential_id": creds[1]}]}),
    )
    .await
    .assert(200);
    let before = w.lb(&model).await;
    let events = app.count("audit_events").await;

    for (settings, field) in [
        (json!({"max_wait_ms": -1}), "max_wait_ms"),
        (json!({"max_wait_ms": 60_001}), "max_wait_ms"),
        (json!({"max_wait_ms": "100"}), "max_wait_ms"),
        (json!({"affinity": "sticky"}), "affinity"),
        (json!({"affinity": "Session"}), "affinity"),
        (json!({"affinity": 1}), "affinity"),
        (json!({"affinity_ttl_seconds": 29}), "affinity_ttl_seconds"),
        (
            json!({"affinity_ttl_seconds": 86_401}),
            "affinity_ttl_seconds",
        ),
        (
            json!({"affinity_ttl_seconds": -300}),
            "affinity_ttl_seconds",
        ),
    ] {
        app.patch(&path, token, settings.clone())
            .await
            .assert_field("validation_failed", field, &settings);
        let mut body = json!({"enabled": false, "entries": [{"credential_id": null}]});
        merge(&mut body, settings.clone());
        app.put(&path, token, body.clone())
            .await
            .assert_field("validation_failed", field, &body);
        assert_eq!(w.lb(&model).await, before, "{settings} changed the pool");
    }
    for (entry_limits, field) in [
        (json!({"rpm": 0}), "entries[1].rpm"),
        (json!({"rpm": 1_000_001}), "entries[1].rpm"),
        (json!({"rpm": -5}), "entries[1].rpm"),
        (json!({"rpm": "60"}), "entries[1].rpm"),
        (json!({"tpm": 0}), "entries[1].tpm"),
        (json!({"tpm": 1_000_000_001i64}), "entries[1].tpm"),
        (json!({"tpm": 1.5}), "entries[1].tpm"),
    ] {
        let mut second = json!({"credential_id": creds[1]});
        merge(&mut second, entry_limits.clone());
        let body = json!({"enabled": false, "entries": [{"credential_id": null}, second]});
        app.put(&path, token, body.clone())
            .await
            .assert_field("validation_failed", field, &body);
        assert_eq!(w.lb(&model).await, before, "{body} changed the pool");
    }
    // Entries' limits are set by PUT only; one answer names every bad field.
    let patch = json!({"rpm": 10});
    app.patch(&path, token, patch.clone())
        .await
        .assert_field("validation_failed", "rpm", &patch);
    let body = json!({"enabled": false, "max_wait_ms": 60_001, "affinity_ttl_seconds": 10,
                      "entries": [{"credential_id": null, "rpm": 0, "tpm": 0}]});
    let r = app.put(&path, token, body.clone()).await;
    for field in [
        "max_wait_ms",
        "affinity_ttl_seconds",
        "entries[0].rpm",
        "entries[0].tpm",
    ] {
        r.assert_field("validation_failed", field, &body);
    }
    assert_eq!(w.lb(&model).await, before);
    assert_eq!(app.count("audit_events").await, events, "nothing audited");
}

#[tokio::test]
async fn credentials_and_load_balancing_rows_from_before_the_migration_get_the_defaults() {
    // A database at the migration before the settings, with a credential and a pool in it.
    let url = fresh_database().await;
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let earlier = sqlx::migrate::Migrator {
        migrations: Cow::Owned(
            rotor_storage::MIGRATOR
                .iter()
                .filter(|m| m.version < LIFECYCLE_SETTINGS)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    assert!(rotor_storage::MIGRATOR
        .iter()
        .any(|m| m.version == LIFECYCLE_SETTINGS));
    earlier.run(&db).await.unwrap();
    let (ws, cred, model) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    sqlx::raw_sql(&format!(
        "INSERT INTO workspaces (id, name) VALUES ('{ws}', 'old');
         INSERT INTO credentials (id, workspace_id, provider, name, config)
             VALUES ('{cred}', '{ws}', 'openai_compatible', 'old-key', '{{\"base_url\": \"{UPSTREAM}\"}}');
         INSERT INTO models (id, workspace_id, provider, name, upstream_model, model_type, credential_id)
             VALUES ('{model}', '{ws}', 'openai_compatible', 'old-model', 'gpt', 'llm', '{cred}');
         INSERT INTO lb_configs (model_id, workspace_id, cooldown_seconds) VALUES ('{model}', '{ws}', 30);
         INSERT INTO lb_entries (id, model_id, workspace_id, position, credential_id)
             VALUES ('{}', '{model}', '{ws}', 0, NULL), ('{}', '{model}', '{ws}', 1, '{cred}');",
        Uuid::new_v4(),
        Uuid::new_v4()
    ))
    .execute(&db)
    .await
    .unwrap();
    db.close().await;

    // The server applies the rest; the old rows read with the defaults.
    let app = spawn_app_on(&url, &[]).await;
    let u = app.user("u").await;
    sqlx::query("INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, 'owner')")
        .bind(ws)
        .bind(u.id)
        .execute(&app.db)
        .await
        .unwrap();
    let old = app
        .get(
            &format!("/api/v1/workspaces/{ws}/credentials/{cred}"),
            &u.token,
        )
        .await;
    old.assert(200);
    assert_eq!(old.body["quota_cooldown_seconds"], 3600);
    let lb = app
        .get(&TestApp::lb_path(ws, &model.to_string()), &u.token)
        .await;
    lb.assert(200);
    assert_eq!(
        pool_settings(&lb.body),
        (json!(0), json!("none"), json!(300))
    );
    assert_eq!(lb.body["cooldown_seconds"], 30, "old settings are kept");
    assert_eq!(
        limits(&lb.body),
        [(json!(null), json!(null)), (json!(null), json!(null))]
    );
    // New rows beside them get the same defaults.
    let new = app
        .post(
            &format!("/api/v1/workspaces/{ws}/credentials"),
            &u.token,
            new_cred("new-key", json!({})),
        )
        .await;
    new.assert(201);
    assert_eq!(new.body["quota_cooldown_seconds"], 3600);

    // The columns' CHECKs hold the API's bounds, whoever writes.
    for (table, column, bad, good) in [
        (
            "credentials",
            "quota_cooldown_seconds",
            ["59", "604801"],
            ["60", "604800"],
        ),
        ("lb_configs", "max_wait_ms", ["-1", "60001"], ["0", "60000"]),
        (
            "lb_configs",
            "affinity",
            ["'sticky'", "''"],
            ["'session'", "'none'"],
        ),
        (
            "lb_configs",
            "affinity_ttl_seconds",
            ["29", "86401"],
            ["30", "86400"],
        ),
        ("lb_entries", "rpm", ["0", "1000001"], ["1", "1000000"]),
        (
            "lb_entries",
            "tpm",
            ["0", "1000000001"],
            ["1", "1000000000"],
        ),
    ] {
        for value in bad {
            let update = format!("UPDATE {table} SET {column} = {value}");
            let Err(e) = sqlx::query(&update).execute(&app.db).await else {
                panic!("{update}: stored");
            };
            let db_error = e.as_database_error().unwrap();
            assert_eq!(db_error.code().as_deref(), Some("23514"), "{e}");
            assert_eq!(
                db_error.constraint(),
                Some(format!("{table}_{column}_check").as_str())
            );
        }
        for value in good {
            sqlx::query(&format!("UPDATE {table} SET {column} = {value}"))
                .execute(&app.db)
                .await
                .unwrap();
        }
    }
}
