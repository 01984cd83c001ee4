//! Licenses: installation and status, rejection of expired, forged, tampered and
//! other-algorithm tokens, feature grants, `max_workspaces`, `ROTOR_LICENSE` at startup and the
//! vendor CLI round trip.

use crate::helpers::*;
use base64::Engine;
use serde_json::json;
use std::process::Command;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_valid_license_is_installed_reported_and_audited() {
    let app = spawn_app().await;
    let admin = app.user("admin").await;
    let other = app.user("other").await;
    let none = app.get("/api/v1/admin/license", &admin.token).await;
    none.assert(200);
    assert_eq!(none.body["status"], "none");
    assert_eq!(none.body["deployment"], "self-hosted");
    let key_id = none.body["trusted_key_id"].as_str().unwrap().to_owned();
    assert!(key_id.starts_with("lk_"), "{key_id}");
    app.get("/api/v1/admin/license", &other.token)
        .await
        .assert_error(403, "forbidden");
    app.put(
        "/api/v1/admin/license",
        &other.token,
        json!({"license": lb_license()}),
    )
    .await
    .assert_error(403, "forbidden");

    let token = license_token(&["load_balancing"], 30 * 24 * 3600, Some(50));
    let r = app
        .put(
            "/api/v1/admin/license",
            &admin.token,
            json!({"license": token}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["status"], "valid");
    assert_eq!(r.body["licensee"], "ACME Corp");
    assert_eq!(r.body["edition"], "enterprise");
    assert_eq!(r.body["features"], json!(["load_balancing"]));
    assert_eq!(r.body["max_workspaces"], 50);
    assert_eq!(r.body["trusted_key_id"], key_id.as_str());
    assert!(r.body["expires_at"].as_str().unwrap().starts_with(
        &(chrono::Utc::now() + chrono::Duration::days(30))
            .format("%Y-%m-%d")
            .to_string()
    ));
    assert_eq!(
        app.get("/api/v1/admin/license", &admin.token).await.body,
        r.body
    );
    let ws = app.workspace(&other).await;
    assert_eq!(
        ws.body["features"]["load_balancing"], true,
        "the license grants every workspace"
    );

    let events = app.get("/api/v1/admin/audit-events", &admin.token).await;
    events.assert(200);
    let installed = &events.body["data"][0];
    assert_eq!(installed["action"], "license.installed");
    assert_eq!(installed["actor_user_id"], admin.id.to_string());
    assert_eq!(installed["details"]["licensee"], "ACME Corp");
    assert!(
        !events.body.to_string().contains(&token),
        "the token itself is not in the log"
    );
    app.get("/api/v1/admin/audit-events", &other.token)
        .await
        .assert_error(403, "forbidden");

    // Persisted: a restart on the same database still has it.
    let again = spawn_app_on(&app.database_url, &[]).await;
    assert_eq!(
        again.get("/api/v1/admin/license", &admin.token).await.body["status"],
        "valid"
    );
}

#[tokio::test]
async fn bad_licenses_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.user("admin").await;
    let good = lb_license();
    app.put(
        "/api/v1/admin/license",
        &admin.token,
        json!({"license": good}),
    )
    .await
    .assert(200);
    let before = app.get("/api/v1/admin/license", &admin.token).await.body;

    let expired = license_token(&["load_balancing"], -60, None);
    // Signed by another key.
    let (other_pem, _) = rotor_api::license::keygen().unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = rotor_api::license::Claims {
        sub: "Mallory".into(),
        edition: None,
        features: vec!["load_balancing".into()],
        max_workspaces: None,
        iat: now,
        exp: now + 3600,
        jti: None,
    };
    let forged = rotor_api::license::issue(other_pem.as_bytes(), &claims).unwrap();
    // A valid token whose payload was edited.
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    payload["max_workspaces"] = json!(100_000);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    // Same claims under HS256 and under alg none.
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"anything"),
    )
    .unwrap();
    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), parts[1]);

    app.put(
        "/api/v1/admin/license",
        &admin.token,
        json!({"license": expired}),
    )
    .await
    .assert_error(422, "license_expired");
    for bad in [
        forged,
        tampered,
        hs256,
        none,
        "garbage".to_owned(),
        String::new(),
    ] {
        app.put(
            "/api/v1/admin/license",
            &admin.token,
            json!({"license": bad}),
        )
        .await
        .assert_error(422, "license_invalid");
    }
    app.put("/api/v1/admin/license", &admin.token, json!({"token": "x"}))
        .await
        .assert_error(422, "validation_failed");
    assert_eq!(
        app.get("/api/v1/admin/license", &admin.token).await.body,
        before
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM licenses")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn a_license_without_the_feature_grants_nothing() {
    let app = spawn_app_with(&[("ROTOR_LICENSE", &license_token(&["sso"], 3600, None))]).await;
    let admin = app.user("admin").await;
    assert_eq!(
        app.get("/api/v1/admin/license", &admin.token).await.body["status"],
        "valid"
    );
    let ws = app.workspace(&admin).await;
    assert_eq!(ws.body["features"]["load_balancing"], false);
}

#[tokio::test]
async fn max_workspaces_counts_every_workspace_and_creates_nothing_over_it() {
    let app = spawn_app_with(&[(
        "ROTOR_LICENSE",
        &license_token(&["load_balancing"], 3600, Some(2)),
    )])
    .await;
    let admin = app.user("admin").await; // workspace 1
    app.post(
        "/api/v1/workspaces",
        &admin.token,
        json!({"name": "second"}),
    )
    .await
    .assert(201); // 2
    app.post("/api/v1/workspaces", &admin.token, json!({"name": "third"}))
        .await
        .assert_error(403, "license_limit_reached");
    let r = app.signup_raw("late@example.com", PASSWORD, "Late").await;
    r.assert_error(403, "license_limit_reached");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let workspaces: i64 = sqlx::query_scalar("SELECT count(*) FROM workspaces")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((users, workspaces), (1, 2), "nothing was created");
    // A bigger license lifts the cap.
    let bigger = license_token(&["load_balancing"], 3600, Some(3));
    app.put(
        "/api/v1/admin/license",
        &admin.token,
        json!({"license": bigger}),
    )
    .await
    .assert(200);
    app.post("/api/v1/workspaces", &admin.token, json!({"name": "third"}))
        .await
        .assert(201);
}

#[tokio::test]
async fn rotor_license_at_startup_is_installed_or_reported() {
    // A valid token is installed and persisted.
    let url = fresh_database().await;
    let token = license_token(&["load_balancing"], 3600, None);
    let app = spawn_app_on(&url, &[("ROTOR_LICENSE", &token)]).await;
    let admin = app.user("admin").await;
    assert_eq!(
        app.get("/api/v1/admin/license", &admin.token).await.body["status"],
        "valid"
    );
    let again = spawn_app_on(&url, &[("ROTOR_LICENSE", &token)]).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM licenses")
        .fetch_one(&again.db)
        .await
        .unwrap();
    assert_eq!(stored, 1, "the same token is not stored twice");
    let without = spawn_app_on(&url, &[]).await;
    assert_eq!(
        without
            .get("/api/v1/admin/license", &admin.token)
            .await
            .body["status"],
        "valid"
    );

    // A path to a file holding the token works too.
    let file = std::env::temp_dir().join(format!(
        "rotor-license-{}.jwt",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(
        &file,
        format!("{}\n", license_token(&["load_balancing"], 3600, None)),
    )
    .unwrap();
    let from_file = spawn_app_with(&[("ROTOR_LICENSE", file.to_str().unwrap())]).await;
    let a = from_file.user("admin").await;
    assert_eq!(
        from_file.get("/api/v1/admin/license", &a.token).await.body["status"],
        "valid"
    );
    let _ = std::fs::remove_file(&file);

    // Expired or invalid: the server runs on and says so.
    for (token, status) in [
        (license_token(&["load_balancing"], -5, None), "expired"),
        ("not-a-license".to_owned(), "invalid"),
    ] {
        let app = spawn_app_with(&[("ROTOR_LICENSE", &token)]).await;
        let a = app.user("admin").await;
        let s = app.get("/api/v1/admin/license", &a.token).await;
        assert_eq!(s.body["status"], status);
        assert_eq!(
            app.workspace(&a).await.body["features"]["load_balancing"],
            false
        );
    }
}

#[test]
fn vendor_cli_round_trip_keygen_issue_verify() {
    let rotor = binary("rotor");
    let dir = std::env::temp_dir().join(format!("rotor-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("vendor.pem");

    let out = Command::new(&rotor)
        .args(["license", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let public = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(public.len(), 43, "{public}");
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("BEGIN PRIVATE KEY"));
    assert!(
        !Command::new(&rotor)
            .args(["license", "keygen", "--out"])
            .arg(&key)
            .status()
            .unwrap()
            .success(),
        "never overwrites a key"
    );

    let issue = |key: &std::path::Path, expires: &str| {
        let out = run_ok(
            Command::new(&rotor)
                .args(["license", "issue", "--key"])
                .arg(key)
                .args([
                    "--licensee",
                    "ACME",
                    "--features",
                    "load_balancing,sso",
                    "--expires",
                    expires,
                    "--edition",
                    "enterprise",
                    "--max-workspaces",
                    "7",
                ]),
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let verify = |token: &str| {
        let out = Command::new(&rotor)
            .args(["license", "verify", token])
            .output()
            .unwrap();
        (
            out.status.code(),
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        )
    };

    // Signed with the key this build trusts: valid.
    let trusted = std::path::PathBuf::from(std::env::var("ROTOR_TEST_LICENSE_KEY").unwrap());
    let token = issue(&trusted, "2099-12-31");
    let (code, body) = verify(&token);
    assert_eq!(code, Some(0));
    assert_eq!(body["status"], "valid");
    assert_eq!(body["claims"]["sub"], "ACME");
    assert_eq!(body["claims"]["features"], json!(["load_balancing", "sso"]));
    assert_eq!(body["claims"]["max_workspaces"], 7);
    assert_eq!(
        body["claims"]["exp"],
        chrono::DateTime::parse_from_rfc3339("2099-12-31T23:59:59Z")
            .unwrap()
            .timestamp()
    );
    // RFC 3339 in the past: expired.
    let (code, body) = verify(&issue(&trusted, "2001-01-01T00:00:00Z"));
    assert_eq!((code, body["status"].as_str()), (Some(1), Some("expired")));
    // Signed with the freshly generated key, which this build does not trust: invalid.
    let (code, body) = verify(&issue(&key, "2099-12-31"));
    assert_eq!((code, body["status"].as_str()), (Some(1), Some("invalid")));
    let bad = Command::new(&rotor)
        .args(["license", "issue", "--key"])
        .arg(&trusted)
        .args(["--licensee", "x", "--features", "a", "--expires", "someday"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
