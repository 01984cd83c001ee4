//! A real Rotor server on a free port with its own fresh database, and typed helpers for the
//! management calls every test makes.

use super::http::{Req, Resp};
use base64::Engine;
use reqwest::Method;
use rotor_api::{Application, Config};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashMap;
use std::net::SocketAddr;
use uuid::Uuid;

/// The JWT secret every test server uses, so tests can forge tokens with it.
pub const JWT_SECRET: &str = "test-jwt-secret-that-is-at-least-32-bytes-long";
/// The password of every user `TestApp::user` signs up.
pub const PASSWORD: &str = "correct horse battery";

/// The admin URL of the throwaway PostgreSQL started by `scripts/test`.
pub fn admin_database_url() -> String {
    std::env::var("ROTOR_TEST_DATABASE_URL")
        .expect("ROTOR_TEST_DATABASE_URL is not set: run the tests with scripts/test")
}

/// The shared Redis started by `scripts/test`.
pub fn shared_redis_url() -> String {
    std::env::var("ROTOR_TEST_REDIS_URL").expect("ROTOR_TEST_REDIS_URL: run scripts/test")
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

/// A server under test (in-process or a `rotor serve` process) and its database.
#[derive(Clone)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: PgPool,
    pub database_url: String,
    /// Follows no redirect.
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

/// Starts a server with the test defaults on a fresh database.
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
    TestApp::attach(addr, database_url, db)
}

impl TestApp {
    /// The server at `addr` whose database is `database_url` (pool `db`).
    pub fn attach(addr: SocketAddr, database_url: &str, db: PgPool) -> TestApp {
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

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A request to this server.
    pub fn req(&self, method: Method, path: &str) -> Req {
        Req::new(&self.client, self.addr, method, path)
    }

    /// A management request (never answered 5xx but 503); `body` is JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.req(method, path);
        if let Some(t) = token {
            req = req.bearer(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.no_server_error()
    }

    /// A management GET as the holder of `token`.
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

    /// Creates a workspace named `name` owned by `user`; returns its id.
    pub async fn create_workspace(&self, user: &TestUser, name: &str) -> Uuid {
        let r = self
            .post("/api/v1/workspaces", &user.token, json!({"name": name}))
            .await;
        r.assert(201);
        id_of(&r.body)
    }

    /// `user`'s own workspace, as they see it.
    pub async fn workspace(&self, user: &TestUser) -> Resp {
        self.get(
            &format!("/api/v1/workspaces/{}", user.workspace),
            &user.token,
        )
        .await
    }

    /// A chat completion with the gateway key `key`, whatever the answer.
    pub async fn chat(&self, key: &str, model: &str) -> Resp {
        self.req(Method::POST, "/v1/chat/completions")
            .bearer(key)
            .json(chat_body(model))
            .send()
            .await
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
        self.api_key_with(user, workspace, json!({"name": name}))
            .await
    }

    /// Creates an API key from `body` (`{"name", "allowed_models", …}`); returns (id, key).
    pub async fn api_key_with(
        &self,
        user: &TestUser,
        workspace: Uuid,
        body: Value,
    ) -> (Uuid, String) {
        let r = self
            .post(
                &format!("/api/v1/workspaces/{workspace}/api-keys"),
                &user.token,
                body,
            )
            .await;
        r.assert(201);
        (id_of(&r.body), r.body["key"].as_str().unwrap().to_owned())
    }

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
        id_of(&c)
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

    /// The load-balancing path of a model.
    pub fn lb_path(workspace: Uuid, model: &str) -> String {
        format!("/api/v1/workspaces/{workspace}/models/{model}/load-balancing")
    }

    /// Row counts of every table a management request can write.
    pub async fn row_counts(&self) -> Vec<(&'static str, i64)> {
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
            out.push((table, self.count(table).await));
        }
        out
    }

    /// `SELECT count(*) FROM table`.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.db)
            .await
            .unwrap()
    }
}

/// The `id` of a created resource.
pub fn id_of(v: &Value) -> Uuid {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .parse()
        .unwrap()
}

/// A one-message chat completion body for `model`.
pub fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
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
