//! The official Python SDKs (`openai`, `anthropic`, `google-genai`, pinned in
//! scripts/sdk-requirements.txt, installed by scripts/test into a venv under target/) run
//! the scripts of tests/it/python as clients.

use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The venv's interpreter: `ROTOR_TEST_SDK_PYTHON` (scripts/test exports it), else where
/// scripts/lib.sh's `sdk_venv` puts it.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("ROTOR_TEST_SDK_PYTHON") {
        return p.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let p = target.join("sdk-venv/bin/python");
    assert!(
        p.exists(),
        "no SDK venv at {p:?}: run scripts/test, which creates it (or `source scripts/lib.sh && sdk_venv`)"
    );
    p
}

/// Runs `tests/it/python/<script> <scenario> <config>`, fails with its output if it fails,
/// and returns the JSON of its last output line (`Null` when it prints none).
pub async fn run_sdk(script: &str, scenario: &str, config: Value) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("it/python")
        .join(script);
    // A home of its own: no SDK configuration or credentials of this machine's user count.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let home = std::env::temp_dir().join(format!(
        "rotor-sdk-home-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = tokio::process::Command::new(python());
    cmd.arg(&path)
        .arg(scenario)
        .arg(config.to_string())
        .env_clear()
        .env("HOME", &home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the SDK run ends within 2 minutes")
        .expect("the venv's python runs");
    let _ = std::fs::remove_dir_all(&home);
    summary(&format!("{script} {scenario}"), &out)
}

/// A client script's summary: fails with its output unless it succeeded, then the JSON of its
/// last output line (`Null` when it prints none).
pub(super) fn summary(what: &str, out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null)
}
