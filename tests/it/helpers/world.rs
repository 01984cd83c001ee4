//! A world to dispatch in: a server, a signed-up owner with a gateway API key, and the mock
//! provider; credentials, models and pools are added step by step.

use super::app::{id_of, TestApp, TestUser};
use super::http::{Req, Resp};
use reqwest::Method;
use rotor_tests::mock::MockUpstream;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Display;
use uuid::Uuid;

/// Everything a gateway test dispatches through; built once, extended by the methods below.
pub struct World {
    pub app: TestApp,
    /// Owner of the workspace everything is created in.
    pub user: TestUser,
    /// A gateway API key (`rk-…`) allowed every model.
    pub key: String,
    pub key_id: Uuid,
    pub mock: MockUpstream,
}

impl World {
    /// A fresh server started with `vars`.
    pub async fn new(vars: &[(&str, &str)]) -> World {
        World::on(&super::app::spawn_app_with(vars).await).await
    }

    /// A fresh server whose license grants load balancing, so pools are effective.
    pub async fn licensed() -> World {
        World::new(&[("ROTOR_LICENSE", &super::app::lb_license())]).await
    }

    /// A new owner on the server `app`.
    pub async fn on(app: &TestApp) -> World {
        let user = app.user("owner").await;
        World::of(app, user).await
    }

    /// `user`'s workspace on the server `app`.
    pub async fn of(app: &TestApp, user: TestUser) -> World {
        let (key_id, key) = app.api_key(&user, user.workspace, "app").await;
        World {
            app: app.clone(),
            user,
            key,
            key_id,
            mock: MockUpstream::start().await.unwrap(),
        }
    }

    pub fn ws(&self) -> Uuid {
        self.user.workspace
    }

    /// `/api/v1/workspaces/{ws}` + `rest`.
    pub fn w(&self, rest: &str) -> String {
        format!("/api/v1/workspaces/{}{rest}", self.ws())
    }

    /// An `openai_compatible` credential at the mock whose API key is `key` (a plain string
    /// or a scripted `MockKey`).
    pub async fn cred(&self, name: &str, key: impl Display) -> Uuid {
        self.cred_at(name, key, &self.mock.url("/v1")).await
    }

    /// An `openai_compatible` credential at `base_url`.
    pub async fn cred_at(&self, name: &str, key: impl Display, base_url: &str) -> Uuid {
        self.app
            .compatible_credential(&self.user, self.ws(), name, &key.to_string(), base_url)
            .await
    }

    /// A credential at the mock for each key, named `key-0`, `key-1`, ….
    pub async fn creds<K: Display>(&self, keys: impl IntoIterator<Item = K>) -> Vec<Uuid> {
        self.creds_at(keys, &self.mock.url("/v1")).await
    }

    /// A credential at `base_url` for each key, named `key-0`, `key-1`, ….
    pub async fn creds_at<K: Display>(
        &self,
        keys: impl IntoIterator<Item = K>,
        base_url: &str,
    ) -> Vec<Uuid> {
        let mut out = Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            out.push(self.cred_at(&format!("key-{i}"), key, base_url).await);
        }
        out
    }

    /// A model; returns its id.
    pub async fn model_of(
        &self,
        provider: &str,
        name: &str,
        upstream: &str,
        model_type: &str,
        credential: Uuid,
    ) -> String {
        let r = self
            .app
            .post(
                &self.w("/models"),
                &self.user.token,
                json!({"provider": provider, "name": name, "upstream_model": upstream,
                       "model_type": model_type, "credential_id": credential}),
            )
            .await;
        r.assert(201);
        assert_eq!(r.body["upstream_model"], upstream);
        id_of(&r.body).to_string()
    }

    /// An `openai_compatible` chat model sent upstream as `upstream`; returns its id.
    pub async fn model(&self, name: &str, upstream: &str, credential: Uuid) -> String {
        self.model_of("openai_compatible", name, upstream, "llm", credential)
            .await
    }

    pub fn lb_path(&self, model: &str) -> String {
        TestApp::lb_path(self.ws(), model)
    }

    /// Replaces the model's pool with `entries` (credential or Default Config, weight),
    /// enabled; asserts it is effective and returns the body.
    pub async fn pool(
        &self,
        model: &str,
        entries: &[(Option<Uuid>, u32)],
        cooldown_s: u32,
    ) -> Value {
        let r = self
            .app
            .put(
                &self.lb_path(model),
                &self.user.token,
                json!({"enabled": true, "cooldown_seconds": cooldown_s, "entries": pool_entries(entries)}),
            )
            .await;
        r.assert(200);
        assert_eq!(r.body["effective"], true, "{}", r.body);
        r.body
    }

    /// A pool of `credentials` (weight 1 each) for a new chat model `name` whose default is
    /// the first; returns the model id.
    pub async fn pooled_model(&self, name: &str, credentials: &[Uuid], cooldown_s: u32) -> String {
        let model = self.model(name, name, credentials[0]).await;
        let entries: Vec<(Option<Uuid>, u32)> = credentials.iter().map(|c| (Some(*c), 1)).collect();
        self.pool(&model, &entries, cooldown_s).await;
        model
    }

    /// The load-balancing GET (with live cooldown status).
    pub async fn lb(&self, model: &str) -> Value {
        let r = self.app.get(&self.lb_path(model), &self.user.token).await;
        r.assert(200);
        r.body
    }

    /// A gateway request with the world's key.
    pub fn gw(&self, method: Method, path: &str) -> Req {
        self.app.req(method, path).bearer(&self.key)
    }

    /// A chat completion with the world's key, whatever the answer.
    pub async fn chat(&self, model: &str) -> Resp {
        self.app.chat(&self.key, model).await
    }

    /// How many requests the mock got with each provider key.
    pub fn counts(&self) -> HashMap<String, usize> {
        key_counts(&self.mock)
    }
}

/// How many requests `mock` got with each provider key.
pub fn key_counts(mock: &MockUpstream) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for k in mock.keys() {
        *m.entry(k).or_default() += 1;
    }
    m
}

/// Pool entries in the API's shape: (credential or Default Config, weight), all enabled.
pub fn pool_entries(entries: &[(Option<Uuid>, u32)]) -> Vec<Value> {
    entries
        .iter()
        .map(|(c, w)| json!({"credential_id": c, "enabled": true, "weight": w}))
        .collect()
}
