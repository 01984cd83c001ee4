//! `/metrics` follows deletions (see SECURITY.md): the series of a deleted model or credential
//! leave within seconds when the deletion goes through this server (every replica sweeps
//! within a minute), while the series of live ones keep their values — through cache
//! invalidations too. Only the test's own workspace is looked at.

use crate::helpers::*;
use reqwest::Method;
use rotor_tests::mock::MockUpstream;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A server, a signed-up owner, a workspace API key and the mock provider.
struct Fx {
    app: TestApp,
    user: TestUser,
    key: String,
    mock: MockUpstream,
}

impl Fx {
    async fn new(vars: &[(&str, &str)]) -> Fx {
        let app = spawn_app_with(vars).await;
        let user = app.user("metrics").await;
        let (_, key) = app.api_key(&user, user.workspace, "app").await;
        let mock = MockUpstream::start().await.unwrap();
        Fx {
            app,
            user,
            key,
            mock,
        }
    }

    fn ws(&self) -> Uuid {
        self.user.workspace
    }

    async fn cred(&self, name: &str, key: &str) -> Uuid {
        self.app
            .compatible_credential(&self.user, self.ws(), name, key, &self.mock.url("/v1"))
            .await
    }

    /// A chat model; returns its id.
    async fn model(&self, name: &str, credential: Uuid) -> String {
        let r = self
            .app
            .post(
                &format!("/api/v1/workspaces/{}/models", self.ws()),
                &self.user.token,
                json!({"provider": "openai_compatible", "name": name, "upstream_model": "up",
                       "model_type": "llm", "credential_id": credential}),
            )
            .await;
        r.assert(201);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// A successful chat completion; returns the credential that answered.
    async fn chat(&self, model: &str) -> Uuid {
        let r = self
            .app
            .call(
                Method::POST,
                "/v1/chat/completions",
                Some(&self.key),
                Some(json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]})),
            )
            .await;
        r.assert(200);
        r.headers["x-rotor-credential-id"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The lines of `/metrics` about this test's workspace.
    async fn metrics(&self) -> Vec<String> {
        let r = self.app.client.get(self.app.url("/metrics")).send().await;
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(text.contains("rotor_build_info{version=\""), "{text}");
        let ws = format!("workspace_id=\"{}\"", self.ws());
        text.lines()
            .filter(|l| l.contains(&ws))
            .map(str::to_owned)
            .collect()
    }

    /// Polls `/metrics` until `done` holds for this workspace's lines (at most 5 s).
    async fn metrics_when(&self, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.metrics().await;
            if done(&lines) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{what} within 5 s; /metrics still shows:\n{}",
                lines.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The value of the one sample of `name` carrying every label of `labels` (escaped as in the
/// exposition format).
fn sample(lines: &[String], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = lines
        .iter()
        .filter_map(|l| {
            let (head, value) = l.rsplit_once(' ')?;
            let (n, rest) = head.split_once('{')?;
            (n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().unwrap())
        })
        .collect();
    assert!(found.len() <= 1, "several samples match: {found:?}");
    found.first().copied()
}

/// `rotor_requests_total{outcome="ok"}` of a model (escaped name) and credential.
fn ok_requests(lines: &[String], model: &str, credential: Uuid) -> Option<f64> {
    let credential = credential.to_string();
    sample(
        lines,
        "rotor_requests_total",
        &[
            ("model", model),
            ("credential_id", &credential),
            ("outcome", "ok"),
        ],
    )
}

fn mentions(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_models_series_leave_while_the_others_keep_their_values() {
    let fx = Fx::new(&[]).await;
    let cred = fx.cred("main", "sk_ok_one").await;
    let kept = fx.model("kept", cred).await;
    // Model names are user input: the label value is escaped.
    let gone_name = r#"old"model\v1"#;
    let gone_label = r#"model="old\"model\\v1""#;
    let gone = fx.model(gone_name, cred).await;
    fx.chat("kept").await;
    fx.chat("kept").await;
    fx.chat(gone_name).await;

    let lines = fx.metrics().await;
    assert_eq!(ok_requests(&lines, "kept", cred), Some(2.0), "{lines:#?}");
    assert_eq!(
        ok_requests(&lines, r#"old\"model\\v1"#, cred),
        Some(1.0),
        "{lines:#?}"
    );
    assert!(mentions(&lines, "rotor_upstream_latency_seconds_count{"));

    // A PATCH drops the cached route: the series keep their values and count on.
    fx.app
        .patch(
            &format!("/api/v1/workspaces/{}/models/{kept}", fx.ws()),
            &fx.user.token,
            json!({"upstream_model": "up-v2"}),
        )
        .await
        .assert(200);
    let lines = fx.metrics().await;
    assert_eq!(ok_requests(&lines, "kept", cred), Some(2.0), "{lines:#?}");
    fx.chat("kept").await;
    assert_eq!(
        fx.mock.requests().last().unwrap().model.as_deref(),
        Some("up-v2")
    );
    let lines = fx.metrics().await;
    assert_eq!(ok_requests(&lines, "kept", cred), Some(3.0), "{lines:#?}");

    fx.app
        .delete(
            &format!("/api/v1/workspaces/{}/models/{gone}", fx.ws()),
            &fx.user.token,
        )
        .await
        .assert(204);
    let lines = fx
        .metrics_when("the deleted model's series leave", |l| {
            !mentions(l, gone_label)
        })
        .await;
    // Nothing of the deleted model in any family; the other model untouched.
    assert!(!mentions(&lines, "model=\"old"), "{lines:#?}");
    assert_eq!(ok_requests(&lines, "kept", cred), Some(3.0), "{lines:#?}");
    let model = format!("workspace_id=\"{}\",model=\"kept\"", fx.ws());
    assert!(
        lines.contains(&format!("rotor_overhead_seconds_count{{{model}}} 3")),
        "{lines:#?}"
    );
    let tokens = sample(
        &lines,
        "rotor_tokens_total",
        &[("model", "kept"), ("kind", "prompt")],
    );
    assert!(tokens.is_some_and(|t| t > 0.0), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pool_credentials_series_leave_while_the_models_stay() {
    let fx = Fx::new(&[("ROTOR_LICENSE", &lb_license())]).await;
    let main = fx.cred("main", "sk_ok_one").await;
    let extra = fx.cred("extra", "sk_ok_two").await;
    let pooled = fx.model("pooled", main).await;
    let entries: Vec<Value> = [main, extra]
        .iter()
        .map(|c| json!({"credential_id": c, "enabled": true, "weight": 1}))
        .collect();
    let r = fx
        .app
        .put(
            &TestApp::lb_path(fx.ws(), &pooled),
            &fx.user.token,
            json!({"enabled": true, "cooldown_seconds": 1, "entries": entries}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["effective"], true, "{}", r.body);

    let mut answered = Vec::new();
    for _ in 0..4 {
        answered.push(fx.chat("pooled").await);
    }
    let by = |c: Uuid| answered.iter().filter(|a| **a == c).count() as f64;
    assert!(by(main) > 0.0 && by(extra) > 0.0, "{answered:?}");
    let lines = fx.metrics().await;
    assert_eq!(
        ok_requests(&lines, "pooled", main),
        Some(by(main)),
        "{lines:#?}"
    );
    assert_eq!(
        ok_requests(&lines, "pooled", extra),
        Some(by(extra)),
        "{lines:#?}"
    );

    // Only the pool used `extra`: it can be deleted, and its entry goes with it.
    fx.app
        .delete(
            &format!("/api/v1/workspaces/{}/credentials/{extra}", fx.ws()),
            &fx.user.token,
        )
        .await
        .assert(204);
    let extra_label = format!("credential_id=\"{extra}\"");
    let lines = fx
        .metrics_when("the deleted credential's series leave", |l| {
            !mentions(l, &extra_label)
        })
        .await;
    assert_eq!(
        ok_requests(&lines, "pooled", main),
        Some(by(main)),
        "{lines:#?}"
    );
    let model = format!("workspace_id=\"{}\",model=\"pooled\"", fx.ws());
    assert!(
        lines.contains(&format!("rotor_overhead_seconds_count{{{model}}} 4")),
        "{lines:#?}"
    );

    // The model keeps serving from the credential that is left, counting on.
    assert_eq!(fx.chat("pooled").await, main);
    let lines = fx.metrics().await;
    assert_eq!(
        ok_requests(&lines, "pooled", main),
        Some(by(main) + 1.0),
        "{lines:#?}"
    );
    assert!(!mentions(&lines, &extra_label), "{lines:#?}");
}
