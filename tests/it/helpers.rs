//! Test harness: a real Rotor server on a free port with its own fresh database, and typed
//! helpers that keep the tests short.

use base64::Engine;
use reqwest::{Method, StatusCode};
use rotor_api::{Application, Config};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashMap;
use std::net::SocketAddr;
use uuid::Uuid;

/// The JWT secret every test server uses, so tests can forge tokens with it.
pub const JWT_SECRET: &str = "test-jwt-secret-that-is-at-least-32-bytes-long";
pub const PASSWORD: &str = "correct horse battery";

/// The admin URL of the throwaway PostgreSQL started by `scripts/test`.
pub fn admin_database_url() -> String {
    std::env::var("ROTOR_TEST_DATABASE_URL")
        .expect("ROTOR_TEST_DATABASE_URL is not set: run the tests with scripts/test")
}

/// Creates an empty database and returns its URL.
pub async fn fresh_database() -> String {
    let admin_url = admin_database_url();
    let admin = PgPool::connect(&admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    let name = format!("rotor_test_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub db: PgPool,
    pub database_url: String,
    pub client: reqwest::Client,
}

/// A signed-up user with their personal workspace.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub token: String,
    pub workspace: Uuid,
}

/// A response's status, headers and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    #[track_caller]
    pub fn assert(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected answer: {:?}",
            self.body
        );
        self
    }
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        self.assert(status);
        assert_eq!(self.code(), code, "unexpected error body: {}", self.body);
        assert!(
            self.body["error"]["message"].is_string(),
            "error without message: {}",
            self.body
        );
        self
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts a server with the test defaults overridden by `vars`.
pub async fn spawn_app_with(vars: &[(&str, &str)]) -> TestApp {
    let database_url = fresh_database().await;
    spawn_app_on(&database_url, vars).await
}

/// Starts a server on an existing database.
pub async fn spawn_app_on(database_url: &str, vars: &[(&str, &str)]) -> TestApp {
    let mut map: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), database_url.to_owned()),
        ("ROTOR_LISTEN".into(), "127.0.0.1:0".into()),
        (
            "ROTOR_MASTER_KEY".into(),
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        ),
        ("ROTOR_JWT_SECRET".into(), JWT_SECRET.into()),
        ("ROTOR_SIGNUP".into(), "open".into()),
        ("ROTOR_UPSTREAM_ALLOW".into(), "127.0.0.0/8,::1/128".into()),
    ]);
    for (k, v) in vars {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    // SaaS mode needs a license that grants `saas` (see SECURITY.md): tests that do not bring
    // their own get one that grants nothing else.
    let saas = map.get("ROTOR_DEPLOYMENT").is_some_and(|d| d == "saas");
    if saas && map.get("ROTOR_LICENSE").is_none_or(|l| l.is_empty()) {
        map.insert("ROTOR_LICENSE".into(), saas_license());
    }
    let config = Config::from_vars(&map).expect("test config");
    let app = Application::build(config).await.expect("build app");
    let addr = app.local_addr().unwrap();
    let db = app.state().db().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        addr,
        db,
        database_url: database_url.to_owned(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request; `body` is JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::read(req.send().await.expect("request")).await
    }

    /// Reads any answer, 5xx included (gateway errors such as 502/504 are documented).
    pub async fn read_any(resp: reqwest::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(
            status.as_u16() < 500 || status.as_u16() == 503,
            "server error {status}: {body}"
        );
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    pub async fn signup_raw(&self, email: &str, password: &str, name: &str) -> Resp {
        self.call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({"email": email, "password": password, "name": name})),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// Signs up a new user with a unique email and the default password.
    pub async fn user(&self, name: &str) -> TestUser {
        let email = format!("{name}-{}@example.com", Uuid::new_v4().simple());
        let r = self.signup_raw(&email, PASSWORD, name).await;
        r.assert(201);
        TestUser {
            id: r.body["user"]["id"].as_str().unwrap().parse().unwrap(),
            email,
            token: r.body["access_token"].as_str().unwrap().to_owned(),
            workspace: r.body["workspace"]["id"].as_str().unwrap().parse().unwrap(),
        }
    }

    /// Adds `user` to `workspace` with `role`, acting as `owner`.
    pub async fn add_member(&self, owner: &TestUser, workspace: Uuid, user: &TestUser, role: &str) {
        self.post(
            &format!("/api/v1/workspaces/{workspace}/members"),
            &owner.token,
            json!({"email": user.email, "role": role}),
        )
        .await
        .assert(201);
    }

    /// Creates an API key in `workspace` and returns (id, key).
    pub async fn api_key(&self, user: &TestUser, workspace: Uuid, name: &str) -> (Uuid, String) {
        let r = self
            .post(
                &format!("/api/v1/workspaces/{workspace}/api-keys"),
                &user.token,
                json!({"name": name}),
            )
            .await;
        r.assert(201);
        (
            r.body["id"].as_str().unwrap().parse().unwrap(),
            r.body["key"].as_str().unwrap().to_owned(),
        )
    }
}

/// A free TCP port on 127.0.0.1 for a child process to bind. Taken outside the kernel's
/// ephemeral range, so servers that bind port 0 in parallel tests cannot grab it meanwhile.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() % 1000) as u16 * 20;
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + (seed + n) % 20_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 10000..30000");
}

/// Path of a binary built by `scripts/test` (`cargo build --workspace --bins`).
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/it-<hash> → target/debug/<name>
    let dir = exe.parent().and_then(|p| p.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build with `cargo build --workspace --bins` (scripts/test does)",
        path.display()
    );
    path
}

impl TestApp {
    /// Creates a credential and returns its JSON.
    pub async fn credential(
        &self,
        user: &TestUser,
        workspace: Uuid,
        provider: &str,
        name: &str,
        config: Value,
    ) -> Value {
        let r = self
            .post(
                &format!("/api/v1/workspaces/{workspace}/credentials"),
                &user.token,
                json!({"provider": provider, "name": name, "config": config}),
            )
            .await;
        r.assert(201);
        r.body
    }

    /// Creates an `openai_compatible` credential pointing at `base_url`; returns its id.
    pub async fn compatible_credential(
        &self,
        user: &TestUser,
        workspace: Uuid,
        name: &str,
        key: &str,
        base_url: &str,
    ) -> Uuid {
        let c = self
            .credential(
                user,
                workspace,
                "openai_compatible",
                name,
                json!({"api_key": key, "base_url": base_url}),
            )
            .await;
        c["id"].as_str().unwrap().parse().unwrap()
    }

    /// Creates a model and returns its JSON.
    pub async fn model(
        &self,
        user: &TestUser,
        workspace: Uuid,
        provider: &str,
        name: &str,
        credential: Uuid,
    ) -> Value {
        let r = self
            .post(
                &format!("/api/v1/workspaces/{workspace}/models"),
                &user.token,
                json!({"provider": provider, "name": name, "model_type": "llm", "credential_id": credential}),
            )
            .await;
        r.assert(201);
        r.body
    }
}

/// Base64 of a 32-byte master key made of `byte`.
pub fn master_key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

/// The private key scripts/test generated for this build's trusted license key.
pub fn license_key_pem() -> Vec<u8> {
    let path = std::env::var("ROTOR_TEST_LICENSE_KEY")
        .expect("ROTOR_TEST_LICENSE_KEY is not set: run the tests with scripts/test");
    std::fs::read(path).expect("read the test license key")
}

/// A license signed by the build's trusted key, expiring `ttl_secs` from now.
pub fn license_token(features: &[&str], ttl_secs: i64, max_workspaces: Option<u64>) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = rotor_api::license::Claims {
        sub: "ACME Corp".into(),
        edition: Some("enterprise".into()),
        features: features.iter().map(|f| (*f).to_owned()).collect(),
        max_workspaces,
        iat: now,
        exp: now + ttl_secs,
        jti: Some(Uuid::new_v4().to_string()),
    };
    rotor_api::license::issue(&license_key_pem(), &claims).unwrap()
}

/// A year-long license granting load balancing.
pub fn lb_license() -> String {
    license_token(&["load_balancing"], 365 * 24 * 3600, None)
}

/// A year-long license for saas mode only (it grants no workspace feature).
pub fn saas_license() -> String {
    license_token(&["saas"], 365 * 24 * 3600, None)
}

impl TestApp {
    /// The load-balancing path of a model.
    pub fn lb_path(workspace: Uuid, model: &str) -> String {
        format!("/api/v1/workspaces/{workspace}/models/{model}/load-balancing")
    }
}

/// A `rotor serve` process of the real binary.
pub struct RotorProcess {
    pub child: std::process::Child,
    pub port: u16,
}

impl RotorProcess {
    /// Starts `rotor serve` with exactly `vars` (plus PATH) and waits until it is ready.
    pub async fn start(vars: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut cmd = std::process::Command::new(binary("rotor"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ROTOR_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start rotor");
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Ok(r) = client
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
            {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "rotor exited during startup"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "rotor did not become ready"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Self { child, port }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "rotor did not exit after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for RotorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private `redis-server` on a free port, for tests that stop it.
pub struct RedisProcess {
    pub child: Option<std::process::Child>,
    pub port: u16,
}

impl RedisProcess {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server (scripts/test installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self {
            child: Some(child),
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `redis-cli` against this server.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private PostgreSQL for tests that stop it (run as the `postgres` account when root).
pub struct PgProcess {
    pub dir: std::path::PathBuf,
    pub port: u16,
    bin: std::path::PathBuf,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

impl PgProcess {
    fn command(&self, program: &str) -> std::process::Command {
        let exe = self.bin.join(program);
        let mut c = if is_root() {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
                .arg(exe);
            c
        } else {
            std::process::Command::new(exe)
        };
        c.current_dir(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    }

    /// Creates and starts a cluster on a free port.
    pub fn start() -> Self {
        let bin = std::path::PathBuf::from(
            std::env::var("ROTOR_TEST_PG_BIN").expect("ROTOR_TEST_PG_BIN: run scripts/test"),
        );
        let dir = std::env::temp_dir().join(format!("rotor-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            assert!(std::process::Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success());
        }
        let pg = Self {
            dir,
            port: free_port(),
            bin,
        };
        let data = pg.dir.join("data");
        assert!(pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync"])
            .status()
            .unwrap()
            .success());
        pg.resume();
        pg
    }

    /// `postgres://…` of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (as a crash or an outage would).
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w"])
            .status();
    }

    /// Starts (again) on the same port.
    pub fn resume(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let ok = self
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-t", "30", "-l"])
            .arg(self.dir.join("log"))
            .arg("-o")
            .arg(options)
            .status()
            .unwrap()
            .success();
        assert!(ok, "postgres did not start");
    }
}

impl Drop for PgProcess {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
