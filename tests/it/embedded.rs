//! The real `rotor` binary: the embedded default (private PostgreSQL, generated secrets, data
//! surviving a restart), startup errors that name the variable, and graceful shutdown.

use crate::helpers::*;
use reqwest::Method;
use serde_json::json;
use std::process::Command;

#[tokio::test]
async fn serial_embedded_default_keeps_data_across_restarts() {
    let dir = temp_path("embedded");
    let vars = [("ROTOR_DATA_DIR", dir.to_string_lossy().into_owned())];

    let mut first = RotorProcess::start(&vars).await;
    first
        .req(Method::POST, "/api/v1/auth/signup")
        .json(json!({"email": "owner@example.com", "password": PASSWORD, "name": "Owner"}))
        .send()
        .await
        .assert(201);
    // Swagger UI and the document are served from the binary.
    let docs = first.req(Method::GET, "/docs/").send().await;
    docs.assert(200);
    assert!(docs.text.contains("swagger-ui"));
    let spec = first.req(Method::GET, "/openapi.json").send().await.body;
    assert!(spec["paths"]["/api/v1/auth/signup"].is_object());
    assert!(first.terminate().success(), "SIGTERM is a clean exit");

    let secrets = std::fs::read_to_string(dir.join("secrets.json")).unwrap();
    assert!(secrets.contains("master_key") && secrets.contains("jwt_secret"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("secrets.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "secrets.json is readable by others");

    let mut second = RotorProcess::start(&vars).await;
    let r = second
        .req(Method::POST, "/api/v1/auth/login")
        .json(json!({"email": "owner@example.com", "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(r.status, 200, "the user survived the restart: {}", r.text);
    let token = r.body["access_token"].as_str().unwrap();
    let me = second
        .req(Method::GET, "/api/v1/me")
        .bearer(token)
        .send()
        .await;
    assert_eq!(me.body["is_admin"], true);
    assert!(second.terminate().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn startup_errors_name_the_variable_in_one_line() {
    for (vars, name) in [
        (
            vec![("DATABASE_URL", "postgres://127.0.0.1:1/x")],
            "ROTOR_MASTER_KEY",
        ),
        (
            vec![
                ("DATABASE_URL", "postgres://127.0.0.1:1/x"),
                (
                    "ROTOR_MASTER_KEY",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ),
            ],
            "ROTOR_JWT_SECRET",
        ),
        (vec![("ROTOR_LISTEN", "not-an-address")], "ROTOR_LISTEN"),
        (
            vec![("ROTOR_UPSTREAM_TIMEOUT", "soon")],
            "ROTOR_UPSTREAM_TIMEOUT",
        ),
        (vec![("ROTOR_DEPLOYMENT", "cloud")], "ROTOR_DEPLOYMENT"),
    ] {
        let out = Command::new(binary("rotor"))
            .arg("serve")
            .env_clear()
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
    }
}

#[test]
fn openapi_command_prints_the_committed_document() {
    let out = Command::new(binary("rotor"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../openapi/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        printed, committed,
        "openapi/openapi.json is stale: run scripts/openapi"
    );
    // Every management route is documented.
    for path in [
        "/api/v1/auth/login",
        "/api/v1/me/tokens/{id}",
        "/api/v1/workspaces/{ws}/members/{user_id}",
        "/api/v1/admin/workspaces/{ws}/plan",
    ] {
        assert!(
            printed["paths"][path].is_object(),
            "{path} is not documented"
        );
    }
}

#[tokio::test]
async fn migrate_command_prepares_a_database_and_json_logs_carry_request_ids() {
    let url = fresh_database().await;
    run_ok(
        Command::new(binary("rotor"))
            .args(["migrate", "--database-url", &url])
            .env_clear(),
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users', 'workspaces', 'memberships', 'api_keys')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 4);

    let mut rotor = RotorProcess::start_logged(&[
        ("DATABASE_URL", url.clone()),
        (
            "ROTOR_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
        ),
        ("ROTOR_JWT_SECRET", JWT_SECRET.to_owned()),
        ("ROTOR_LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "debug".to_owned()),
    ])
    .await;
    let r = rotor
        .req(Method::POST, "/api/v1/auth/signup")
        .header("x-request-id", "trace-me-123")
        .json(json!({"email": "log@example.com", "password": "hunter2-hunter2", "name": "Log"}))
        .send()
        .await;
    r.assert(201);
    let token = r.body["access_token"].as_str().unwrap();
    assert!(rotor.terminate().success());

    let text = rotor.output();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l.to_string().contains("trace-me-123")
            && l.to_string().contains("/api/v1/auth/signup")),
        "no log line carries the request id"
    );
    assert!(
        !text.contains("hunter2-hunter2"),
        "a password reached the log"
    );
    assert!(!text.contains(token), "a session token reached the log");
}
