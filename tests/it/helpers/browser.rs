//! The console in a real browser: `console/tests/browser.mjs` drives Debian's Chromium with
//! playwright-core (both installed by scripts/test) and prints a JSON summary.

use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Runs scenario `scenario` of `console/tests/browser.mjs` with `config` (which must hold the
/// console's `url`), fails with its output if it fails, and returns its summary. With
/// `ROTOR_TEST_SCREENSHOTS=<dir>` set, the scenarios save their screenshots there (the README's
/// come from `ROTOR_TEST_SCREENSHOTS=$PWD/docs/screenshots scripts/test -E 'test(/^console/)'`).
pub async fn run_browser(scenario: &str, mut config: Value) -> Value {
    if let (Ok(dir), Some(c)) = (
        std::env::var("ROTOR_TEST_SCREENSHOTS"),
        config.as_object_mut(),
    ) {
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        c.insert("screenshots".to_owned(), Value::String(dir));
    }
    let console = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../console");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(console.join("tests/browser.mjs"))
        .arg(scenario)
        .arg(config.to_string())
        .current_dir(&console)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the browser run ends within 2 minutes")
        .expect("node runs (scripts/test installs Node.js, Chromium and playwright-core)");
    super::sdk::summary(&format!("browser scenario {scenario}"), &out)
}
