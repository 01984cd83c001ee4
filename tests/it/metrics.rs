//! `/metrics` follows deletions (see SECURITY.md): the series of a deleted model or credential
//! leave within seconds when the deletion goes through this server (every replica sweeps
//! within a minute), while the series of live ones keep their values — through cache
//! invalidations too. Only the test's own workspace is looked at.

use crate::helpers::*;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A successful chat completion; returns the credential that answered.
async fn chat(w: &World, model: &str) -> Uuid {
    let r = w.chat(model).await;
    r.assert(200);
    r.credential().expect("x-rotor-credential-id")
}

/// The lines of `/metrics` about this test's workspace.
async fn series(w: &World) -> Vec<String> {
    let (status, text) = metrics_text(&w.app, None).await;
    assert_eq!(status, 200);
    assert!(text.contains("rotor_build_info{version=\""), "{text}");
    let ws = format!("workspace_id=\"{}\"", w.ws());
    text.lines()
        .filter(|l| l.contains(&ws))
        .map(str::to_owned)
        .collect()
}

/// Polls `/metrics` until `done` holds for this workspace's lines (at most 5 s).
async fn series_when(w: &World, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = series(w).await;
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

/// The value of the one sample of `name` carrying every label of `labels`.
fn sample(lines: &[String], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found = samples(lines.iter().map(String::as_str), name, labels);
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
    let fx = World::new(&[]).await;
    let cred = fx.cred("main", "sk_ok_one").await;
    let kept = fx.model("kept", "up", cred).await;
    // Model names are user input: the label value is escaped.
    let gone_name = r#"old"model\v1"#;
    let gone_label = r#"model="old\"model\\v1""#;
    let gone = fx.model(gone_name, "up", cred).await;
    chat(&fx, "kept").await;
    chat(&fx, "kept").await;
    chat(&fx, gone_name).await;

    let lines = series(&fx).await;
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
    let lines = series(&fx).await;
    assert_eq!(ok_requests(&lines, "kept", cred), Some(2.0), "{lines:#?}");
    chat(&fx, "kept").await;
    assert_eq!(
        fx.mock.requests().last().unwrap().model.as_deref(),
        Some("up-v2")
    );
    let lines = series(&fx).await;
    assert_eq!(ok_requests(&lines, "kept", cred), Some(3.0), "{lines:#?}");

    fx.app
        .delete(
            &format!("/api/v1/workspaces/{}/models/{gone}", fx.ws()),
            &fx.user.token,
        )
        .await
        .assert(204);
    let lines = series_when(&fx, "the deleted model's series leave", |l| {
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
    let fx = World::licensed().await;
    let main = fx.cred("main", "sk_ok_one").await;
    let extra = fx.cred("extra", "sk_ok_two").await;
    let pooled = fx.model("pooled", "up", main).await;
    fx.pool(&pooled, &[(Some(main), 1), (Some(extra), 1)], 1)
        .await;

    let mut answered = Vec::new();
    for _ in 0..4 {
        answered.push(chat(&fx, "pooled").await);
    }
    let by = |c: Uuid| answered.iter().filter(|a| **a == c).count() as f64;
    assert!(by(main) > 0.0 && by(extra) > 0.0, "{answered:?}");
    let lines = series(&fx).await;
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
    let lines = series_when(&fx, "the deleted credential's series leave", |l| {
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
    assert_eq!(chat(&fx, "pooled").await, main);
    let lines = series(&fx).await;
    assert_eq!(
        ok_requests(&lines, "pooled", main),
        Some(by(main) + 1.0),
        "{lines:#?}"
    );
    assert!(!mentions(&lines, &extra_label), "{lines:#?}");
}
