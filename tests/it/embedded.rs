//! The real `rotor` binary: the embedded default (private PostgreSQL, generated secrets, data
//! surviving a restart), startup errors that name the variable, and graceful shutdown.

use crate::helpers::*;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn serve(data_dir: &Path, port: u16) -> Child {
    Command::new(binary("rotor"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ROTOR_DATA_DIR", data_dir)
        .env("ROTOR_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rotor")
}

async fn wait_healthy(client: &reqwest::Client, port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "rotor exited during startup"
        );
        assert!(Instant::now() < deadline, "rotor did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "rotor did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn serial_embedded_default_keeps_data_across_restarts() {
    let dir =
        std::env::temp_dir().join(format!("rotor-embedded-{}", uuid::Uuid::new_v4().simple()));
    let client = reqwest::Client::new();
    let port = free_port();

    let mut first = serve(&dir, port);
    wait_healthy(&client, port, &mut first).await;
    let base = format!("http://127.0.0.1:{port}");
    let r = client
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": "owner@example.com", "password": PASSWORD, "name": "Owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Swagger UI and the document are served from the binary.
    let docs = client.get(format!("{base}/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger-ui"));
    let spec: serde_json::Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/api/v1/auth/signup"].is_object());
    assert!(terminate(&mut first).success(), "SIGTERM is a clean exit");

    let secrets = std::fs::read_to_string(dir.join("secrets.json")).unwrap();
    assert!(secrets.contains("master_key") && secrets.contains("jwt_secret"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("secrets.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "secrets.json is readable by others");

    let mut second = serve(&dir, port);
    wait_healthy(&client, port, &mut second).await;
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "owner@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the user survived the restart");
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me: serde_json::Value = client
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["is_admin"], true);
    assert!(terminate(&mut second).success());
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
    let out = Command::new(binary("rotor"))
        .args(["migrate", "--database-url", &url])
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users', 'workspaces', 'memberships', 'api_keys')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 4);

    let port = free_port();
    let log =
        std::env::temp_dir().join(format!("rotor-log-{}.jsonl", uuid::Uuid::new_v4().simple()));
    let mut child = Command::new(binary("rotor"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", &url)
        .env(
            "ROTOR_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env("ROTOR_JWT_SECRET", JWT_SECRET)
        .env("ROTOR_LISTEN", format!("127.0.0.1:{port}"))
        .env("ROTOR_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    wait_healthy(&client, port, &mut child).await;
    let r = client
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/signup"))
        .header("x-request-id", "trace-me-123")
        .json(&json!({"email": "log@example.com", "password": "hunter2-hunter2", "name": "Log"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(terminate(&mut child).success());

    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
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
    assert!(!text.contains(&token), "a session token reached the log");
}
