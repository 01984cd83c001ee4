//! Encryption at rest, end to end: no secret in any table, log line or
//! answer; a tampered ciphertext, or one moved to another row or tenant, is a clean 500
//! `credential_unreadable` that spares every other credential; master-key rotation with
//! `ROTOR_MASTER_KEY_PREVIOUS` and `rotor keys rewrap`; and a server without the master key
//! its data needs refuses to start, naming the key id.

use crate::helpers::*;
use base64::Engine;
use reqwest::Method;
use rotor_storage::crypto::key_id;
use rotor_tests::mock::{MockKey, MockUpstream};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE;

/// AES-GCM nonce and tag lengths (96-bit nonce; 128-bit tag).
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

// --- secrets and where they must not be ---------------------------------------------------

/// A distinctive secret: `<prefix>-PLAINTEXT-CANARY-<label>-<32 random hex digits>`.
fn canary(prefix: &str, label: &str) -> String {
    format!(
        "{prefix}-PLAINTEXT-CANARY-{label}-{}",
        Uuid::new_v4().simple()
    )
}

/// The masked form: first 3 + `…` + last 4 characters when longer
/// than 12, else `****`.
fn masked(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() > 12 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}\u{2026}{tail}")
    } else {
        "****".to_owned()
    }
}

/// Every form in which `secret` could leak, as (form, needle): in clear, hex-encoded
/// (bytea renders as `\x…`), and base64/base64url-encoded at each of the three byte
/// alignments it could have inside a larger encoded blob. Each for the whole secret and for
/// its random tail alone.
fn leak_forms(secret: &str) -> Vec<(String, String)> {
    let mut parts = vec![secret.to_owned()];
    if let Some((_, tail)) = secret.rsplit_once('-') {
        if tail.len() >= 16 {
            parts.push(tail.to_owned());
        }
    }
    let mut forms = Vec::new();
    for part in parts {
        forms.push(("in clear".to_owned(), part.clone()));
        let hex: String = part.bytes().map(|b| format!("{b:02x}")).collect();
        forms.push(("hex-encoded".to_owned(), hex));
        for (name, engine) in [("base64", B64), ("base64url", B64URL)] {
            for shift in 0..3 {
                let mut bytes = vec![0u8; shift];
                bytes.extend_from_slice(part.as_bytes());
                let encoded = engine.encode(&bytes);
                // Drop the groups that mix in the prefix or the padding.
                let start = if shift == 0 { 0 } else { 4 };
                let stable = &encoded[start..encoded.len() - 4];
                forms.push((
                    format!("{name}-encoded (offset {shift})"),
                    stable.to_owned(),
                ));
            }
        }
    }
    forms
}

/// Fails naming the secret, the form and the offending line when any secret leaks.
#[track_caller]
fn assert_no_secret(haystack: &str, secrets: &[&str], place: &str) {
    for secret in secrets {
        for (form, needle) in leak_forms(secret) {
            if let Some(line) = haystack.lines().find(|l| l.contains(&needle)) {
                let shown: String = line.chars().take(600).collect();
                panic!("secret {secret:?} found {form} in {place}: {shown}");
            }
        }
    }
}

/// Every row of every table of the public schema, as text (`SELECT t::text FROM table t`:
/// text, jsonb and bytea columns alike).
async fn dump_database(db: &PgPool) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY table_name",
    )
    .fetch_all(db)
    .await
    .unwrap();
    for expected in ["credentials", "workspace_keys", "audit_events", "models"] {
        assert!(
            tables.iter().any(|t| t == expected),
            "no table {expected} in {tables:?}"
        );
    }
    let mut dump = String::new();
    for table in &tables {
        let rows: Vec<Option<String>> = sqlx::query_scalar(&format!(
            "SELECT t::text FROM \"{}\" t",
            table.replace('"', "\"\"")
        ))
        .fetch_all(db)
        .await
        .unwrap();
        for row in rows.into_iter().flatten() {
            dump.push_str(table);
            dump.push_str(": ");
            dump.push_str(&row);
            dump.push('\n');
        }
    }
    dump
}

// --- HTTP (`credential_unreadable` is a 500, which management calls refuse) ----------------

/// `method path` with `token`, whatever the answer.
async fn raw(app: &TestApp, method: Method, path: &str, token: &str) -> Resp {
    app.req(method, path).bearer(token).send().await
}

/// A client that keeps every answer's text, to check none carries a secret.
struct Session {
    app: TestApp,
    answers: String,
}

impl Session {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.app.req(method, path);
        if let Some(t) = token {
            req = req.bearer(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let a = req.send().await;
        self.answers.push_str(&a.text);
        self.answers.push('\n');
        a
    }
}

fn cred_path(ws: Uuid, id: Uuid) -> String {
    format!("/api/v1/workspaces/{ws}/credentials/{id}")
}

/// GET of the credential answers 200 with its secret masked.
async fn assert_readable(app: &TestApp, user: &TestUser, ws: Uuid, id: Uuid, secret: &str) {
    let r = raw(app, Method::GET, &cred_path(ws, id), &user.token).await;
    r.assert(200);
    assert_eq!(r.body["config"]["api_key"], masked(secret), "{}", r.text);
}

/// GET and POST …/validate of the credential answer 500 `credential_unreadable`, a clean
/// JSON error naming no secret and no ciphertext.
async fn assert_unreadable(
    app: &TestApp,
    user: &TestUser,
    ws: Uuid,
    id: Uuid,
    secrets: &[&str],
    stored: &str,
) {
    for (method, path) in [
        (Method::GET, cred_path(ws, id)),
        (Method::POST, format!("{}/validate", cred_path(ws, id))),
    ] {
        let r = raw(app, method.clone(), &path, &user.token).await;
        r.assert_error(500, "credential_unreadable");
        assert_no_secret(&r.text, secrets, &format!("the answer to {method} {path}"));
        assert!(
            !r.text.contains(stored),
            "{method} {path} echoed the ciphertext: {}",
            r.text
        );
    }
}

/// The credential list of `ws` (it must answer 200): the api_key it shows for each id, and
/// its text.
async fn shown_api_keys(
    app: &TestApp,
    user: &TestUser,
    ws: Uuid,
) -> (HashMap<String, Value>, String) {
    let list = raw(
        app,
        Method::GET,
        &format!("/api/v1/workspaces/{ws}/credentials"),
        &user.token,
    )
    .await;
    list.assert(200);
    let shown = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["config"]["api_key"].clone(),
            )
        })
        .collect();
    (shown, list.text)
}

// --- stored ciphertexts ----------------------------------------------------------------------

async fn stored_secrets(db: &PgPool, id: Uuid) -> Value {
    sqlx::query_scalar("SELECT secrets FROM credentials WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

async fn set_secrets(db: &PgPool, id: Uuid, secrets: &Value) {
    let done = sqlx::query("UPDATE credentials SET secrets = $2 WHERE id = $1")
        .bind(id)
        .bind(secrets)
        .execute(db)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

/// The stored `api_key` ciphertext, decoded: nonce || ciphertext || tag.
fn sealed_api_key(secrets: &Value) -> Vec<u8> {
    let encoded = secrets["api_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no api_key ciphertext in {secrets}"));
    B64.decode(encoded).expect("the ciphertext is base64")
}

/// `secrets` with byte `at` of the api_key ciphertext flipped.
fn flipped(secrets: &Value, at: usize) -> Value {
    let mut sealed = sealed_api_key(secrets);
    sealed[at] ^= 0x01;
    let mut out = secrets.clone();
    out["api_key"] = Value::String(B64.encode(&sealed));
    out
}

// --- servers ----------------------------------------------------------------------------------

/// The variables `spawn_app_on` uses, with the master keys replaced.
fn app_vars(database_url: &str, current: u8, previous: Option<u8>) -> HashMap<String, String> {
    let mut vars = HashMap::from([
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("ROTOR_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("ROTOR_MASTER_KEY".to_owned(), master_key(current)),
        ("ROTOR_JWT_SECRET".to_owned(), JWT_SECRET.to_owned()),
        ("ROTOR_SIGNUP".to_owned(), "open".to_owned()),
    ]);
    if let Some(p) = previous {
        vars.insert("ROTOR_MASTER_KEY_PREVIOUS".to_owned(), master_key(p));
    }
    vars
}

/// `Application::build` must refuse; returns its error message.
async fn build_error(database_url: &str, current: u8, previous: Option<u8>) -> String {
    let config = rotor_api::Config::from_vars(&app_vars(database_url, current, previous))
        .expect("test config");
    match rotor_api::Application::build(config).await {
        Ok(_) => panic!(
            "the server started with master key {current} (previous {previous:?}) although \
             stored data needs another key"
        ),
        Err(e) => format!("{e:#}"),
    }
}

/// Removes ANSI escape sequences (pretty logs colour field names).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// --- 1. no plaintext at rest -------------------------------------------------------------------

#[tokio::test]
async fn no_secret_is_stored_in_clear_in_any_table() {
    let app = spawn_app().await;
    let u = app.user("owner").await;
    let ws = u.workspace;
    let ws2 = app.create_workspace(&u, "second").await;

    let openai_key = canary("sk-live", "openai");
    let compat_key = canary("sk-live", "compat");
    let azure_key = canary("az", "azure");
    let other_key = canary("sk-live", "other-workspace");
    let rotated_key = canary("sk-live", "rotated");
    let secrets = [
        openai_key.as_str(),
        compat_key.as_str(),
        azure_key.as_str(),
        other_key.as_str(),
        rotated_key.as_str(),
    ];

    let mut created = Vec::new();
    for (workspace, provider, name, config) in [
        (
            ws,
            "openai",
            "canary-openai",
            json!({"api_key": openai_key, "organization": "org-canary-clear"}),
        ),
        (
            ws,
            "openai_compatible",
            "canary-compat",
            json!({"api_key": compat_key, "base_url": "https://llm.canary.example/v1"}),
        ),
        (
            ws,
            "azure_openai",
            "canary-azure",
            json!({"api_key": azure_key, "endpoint": "https://canary.openai.azure.com", "deployment": "gpt-canary"}),
        ),
        (ws2, "openai", "canary-other", json!({"api_key": other_key})),
    ] {
        created.push(app.credential(&u, workspace, provider, name, config).await);
    }
    let [openai, compat, azure, other]: [Value; 4] = created.try_into().unwrap();
    for (c, key) in [
        (&openai, &openai_key),
        (&compat, &compat_key),
        (&azure, &azure_key),
        (&other, &other_key),
    ] {
        assert_eq!(c["config"]["api_key"], masked(key), "{c}");
    }

    // A new secret by PATCH: the old one and the new one must both be gone from the tables.
    let r = app
        .patch(
            &cred_path(ws, id_of(&compat)),
            &u.token,
            json!({"config": {"api_key": rotated_key}}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["config"]["api_key"], masked(&rotated_key));
    app.model(&u, ws, "openai", "canary-model", id_of(&openai))
        .await;

    // Each secret is stored as base64(nonce || ciphertext || tag), nothing else.
    for (c, key) in [
        (&openai, &openai_key),
        (&compat, &rotated_key),
        (&azure, &azure_key),
        (&other, &other_key),
    ] {
        let stored = stored_secrets(&app.db, id_of(c)).await;
        assert_eq!(
            stored.as_object().map(|o| o.len()),
            Some(1),
            "secrets column: {stored}"
        );
        assert_eq!(
            sealed_api_key(&stored).len(),
            NONCE_LEN + key.len() + TAG_LEN,
            "not an AES-GCM sealed value: {stored}"
        );
    }

    let dump = dump_database(&app.db).await;
    let default_key_id = key_id(&[7; 32]);
    // The dump really covers the rows: clear fields and the wrapped keys' ids are there.
    for present in [
        "canary-openai",
        "org-canary-clear",
        "https://llm.canary.example/v1",
        "https://canary.openai.azure.com",
        "canary-model",
        "credential.updated",
        default_key_id.as_str(),
    ] {
        assert!(dump.contains(present), "the dump lacks {present:?}");
    }
    assert_no_secret(&dump, &secrets, "the database dump");

    // The audit log records the writes, without their secrets.
    for w in [ws, ws2] {
        let r = app
            .get(
                &format!("/api/v1/workspaces/{w}/audit-events?limit=200"),
                &u.token,
            )
            .await;
        r.assert(200);
        let actions: Vec<&str> = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert!(actions.contains(&"credential.created"), "{actions:?}");
        assert_no_secret(&r.body.to_string(), &secrets, "the audit events API");
    }
    let r = app
        .get(&format!("/api/v1/workspaces/{ws}/audit-events"), &u.token)
        .await;
    let updated = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "credential.updated")
        .unwrap_or_else(|| panic!("no credential.updated event: {}", r.body));
    assert_eq!(updated["target_id"], compat["id"]);

    // And no answer carries them either.
    let list = app
        .get(&format!("/api/v1/workspaces/{ws}/credentials"), &u.token)
        .await;
    list.assert(200);
    assert_no_secret(&list.body.to_string(), &secrets, "the credential list");
}

// --- 2. no plaintext in logs -------------------------------------------------------------------

#[tokio::test]
async fn a_whole_scenario_at_debug_level_logs_no_secret() {
    let mock = MockUpstream::start().await.unwrap();
    let database_url = fresh_database().await;
    let master = master_key(3);
    let mut server = RotorProcess::start_logged(&[
        ("DATABASE_URL", database_url.clone()),
        ("ROTOR_MASTER_KEY", master.clone()),
        ("ROTOR_JWT_SECRET", JWT_SECRET.to_owned()),
        ("RUST_LOG", "debug".to_owned()),
        ("ROTOR_UPSTREAM_ALLOW", "127.0.0.0/8".to_owned()),
        ("ROTOR_SIGNUP", "open".to_owned()),
    ])
    .await;

    let password = canary("pw", "password");
    let wrong_password = canary("pw", "wrong-password");
    let good_key = canary("sk-live", "good");
    // The provider refuses it (401).
    let bad_key = MockKey::new(canary("sk-live", "bad"))
        .status(401)
        .to_string();
    let azure_key = canary("az", "azure");
    let rotated_key = canary("sk-live", "rotated");
    let mistyped_key = canary("sk-live", "mistyped");
    let api_secrets = [
        good_key.as_str(),
        bad_key.as_str(),
        azure_key.as_str(),
        rotated_key.as_str(),
        mistyped_key.as_str(),
        password.as_str(),
        wrong_password.as_str(),
    ];
    let mut session = Session {
        app: server.app(&database_url).await,
        answers: String::new(),
    };

    let email = format!("logs-{}@example.com", Uuid::new_v4().simple());
    let r = session
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({"email": email, "password": password, "name": "Logs"})),
        )
        .await;
    r.assert(201);
    let ws = id_of(&r.body["workspace"]);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let t = Some(token.as_str());
    session
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": wrong_password})),
        )
        .await
        .assert_error(401, "invalid_credentials");
    let r = session
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await;
    r.assert(200);
    let second_token = r.body["access_token"].as_str().unwrap().to_owned();
    let creds = format!("/api/v1/workspaces/{ws}/credentials");
    let new_cred = |provider: &str, name: &str, config: Value| {
        Some(json!({"provider": provider, "name": name, "config": config}))
    };

    // Credentials: one that works, one the provider rejects, an Azure one, and refused bodies.
    let compatible = |key: &str| json!({"api_key": key, "base_url": mock.url("/v1")});
    let mut ids = Vec::new();
    for body in [
        new_cred("openai_compatible", "good", compatible(&good_key)),
        new_cred("openai_compatible", "bad", compatible(&bad_key)),
        new_cred(
            "azure_openai",
            "azure",
            json!({"api_key": azure_key, "endpoint": mock.url("")}),
        ),
    ] {
        let r = session.call(Method::POST, &creds, t, body).await;
        r.assert(201);
        ids.push(id_of(&r.body));
    }
    let (good, bad, azure) = (ids[0], ids[1], ids[2]);
    for body in [
        new_cred(
            "openai_compatible",
            "refused",
            json!({"api_key": mistyped_key, "base_url": 42, "extra": mistyped_key}),
        ),
        Some(json!({"provider": "openai", "name": "mistyped", "config": mistyped_key})),
    ] {
        session
            .call(Method::POST, &creds, t, body)
            .await
            .assert_error(422, "validation_failed");
    }

    // Validation: one success, one provider refusal, one Azure call.
    let r = session
        .call(Method::POST, &format!("{creds}/{good}/validate"), t, None)
        .await;
    r.assert(200);
    assert_eq!(r.body, json!({"valid": true}));
    let r = session
        .call(Method::POST, &format!("{creds}/{bad}/validate"), t, None)
        .await;
    r.assert(200);
    assert_eq!(r.body, json!({"valid": false, "error": "unauthorized"}));
    let r = session
        .call(Method::POST, &format!("{creds}/{azure}/validate"), t, None)
        .await;
    r.assert(200);
    assert_eq!(r.body["valid"], true, "{}", r.text);
    let seen: Vec<Option<String>> = mock.requests().into_iter().map(|r| r.key).collect();
    for key in [&good_key, &bad_key, &azure_key] {
        assert!(
            seen.contains(&Some(key.clone())),
            "the provider never received {key}: {seen:?}"
        );
    }

    // PATCH: a new secret; the masked one (keeps it); a new base_url without the secret.
    let r = session
        .call(
            Method::PATCH,
            &format!("{creds}/{good}"),
            t,
            Some(json!({"config": {"api_key": rotated_key}})),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["config"]["api_key"], masked(&rotated_key));
    let r = session
        .call(
            Method::PATCH,
            &format!("{creds}/{good}"),
            t,
            Some(json!({"name": "good-renamed", "config": {"api_key": masked(&rotated_key)}})),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["config"]["api_key"], masked(&rotated_key));
    session
        .call(
            Method::PATCH,
            &format!("{creds}/{good}"),
            t,
            Some(json!({"config": {"base_url": mock.url("/v2")}})),
        )
        .await
        .assert_error(422, "secret_required");
    session
        .call(
            Method::PATCH,
            &format!("{creds}/{good}"),
            t,
            Some(json!({"config": {"base_url": mock.url("/v2"), "api_key": masked(&rotated_key)}})),
        )
        .await
        .assert_error(422, "secret_required");
    let r = session
        .call(Method::POST, &format!("{creds}/{good}/validate"), t, None)
        .await;
    assert_eq!(r.body, json!({"valid": true}), "{}", r.text);
    assert_eq!(
        mock.requests().last().and_then(|r| r.key.clone()),
        Some(rotated_key.clone()),
        "validation after the PATCH used the new secret"
    );

    // Reads, a model, deletes.
    let r = session
        .call(Method::GET, &format!("{creds}/{good}"), t, None)
        .await;
    r.assert(200);
    assert_eq!(r.body["name"], "good-renamed");
    session
        .call(Method::GET, &creds, Some(&second_token), None)
        .await
        .assert(200);
    let r = session.call(
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/models"),
        t,
        Some(json!({"provider": "openai_compatible", "name": "m", "model_type": "llm", "credential_id": good})),
    )
    .await;
    r.assert(201);
    let model = id_of(&r.body);
    session
        .call(Method::DELETE, &format!("{creds}/{good}"), t, None)
        .await
        .assert_error(409, "credential_in_use");
    session
        .call(
            Method::DELETE,
            &format!("/api/v1/workspaces/{ws}/models/{model}"),
            t,
            None,
        )
        .await
        .assert(204);
    for id in [good, bad, azure] {
        session
            .call(Method::DELETE, &format!("{creds}/{id}"), t, None)
            .await
            .assert(204);
    }
    session
        .call(
            Method::GET,
            &format!("/api/v1/workspaces/{ws}/audit-events"),
            t,
            None,
        )
        .await
        .assert(200);
    let answers = session.answers;

    let status = server.terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
    let log = strip_ansi(&server.output());

    // The log is real: it has debug lines and the validations.
    assert!(!log.trim().is_empty(), "nothing was logged");
    assert!(log.contains("DEBUG"), "no debug line was logged:\n{log}");
    for id in [good, bad, azure] {
        assert!(
            log.contains(&id.to_string()),
            "the log never names credential {id}:\n{log}"
        );
    }
    let signature = token.rsplit('.').next().unwrap().to_owned();
    let mut everything = api_secrets.to_vec();
    everything.extend([
        token.as_str(),
        second_token.as_str(),
        signature.as_str(),
        master.as_str(),
    ]);
    assert_no_secret(&log, &everything, "the server's output");
    assert_no_secret(&answers, &api_secrets, "an HTTP answer");
}

// --- 3. tampering ------------------------------------------------------------------------------

#[tokio::test]
async fn a_tampered_ciphertext_is_a_clean_error_and_spares_the_other_credentials() {
    let w = World::new(&[]).await;
    let (app, u, ws, mock) = (&w.app, &w.user, w.ws(), &w.mock);
    let good_key = canary("sk-live", "good");
    let victim_key = canary("sk-live", "victim");
    let azure_key = canary("az", "azure");
    let secrets = [good_key.as_str(), victim_key.as_str(), azure_key.as_str()];
    let good = w.cred("good", &good_key).await;
    let victim = w.cred("victim", &victim_key).await;
    let azure = id_of(
        &app.credential(
            u,
            ws,
            "azure_openai",
            "azure",
            json!({"api_key": azure_key, "endpoint": mock.url("")}),
        )
        .await,
    );

    let original = stored_secrets(&app.db, victim).await;
    let len = sealed_api_key(&original).len();
    let stored = original["api_key"].as_str().unwrap().to_owned();
    // One flipped byte in the nonce, the ciphertext proper, or the tag: an error, never garbage.
    for at in [0, NONCE_LEN + 3, len - 1] {
        let calls = mock.requests().len();
        let tampered = flipped(&original, at);
        set_secrets(&app.db, victim, &tampered).await;
        assert_unreadable(app, u, ws, victim, &secrets, &stored).await;
        assert_eq!(
            mock.requests().len(),
            calls,
            "a credential that cannot be decrypted was sent to the provider"
        );
        // Putting the original back makes it readable: the flip was the cause.
        set_secrets(&app.db, victim, &original).await;
        assert_readable(app, u, ws, victim, &victim_key).await;
    }

    set_secrets(&app.db, victim, &flipped(&original, NONCE_LEN + 3)).await;
    assert_unreadable(app, u, ws, victim, &secrets, &stored).await;

    // The other credentials of the workspace are unaffected.
    assert_readable(app, u, ws, good, &good_key).await;
    assert_readable(app, u, ws, azure, &azure_key).await;
    let r = app
        .post(
            &format!("{}/validate", cred_path(ws, good)),
            &u.token,
            json!({}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body, json!({"valid": true}));
    assert_eq!(
        mock.requests().last().and_then(|r| r.key.clone()),
        Some(good_key.clone())
    );

    // The list still answers, showing the broken one masked as `****`.
    let (shown, text) = shown_api_keys(app, u, ws).await;
    assert_eq!(shown.len(), 3, "{text}");
    assert_eq!(shown[&victim.to_string()], "****");
    assert_eq!(shown[&good.to_string()], masked(&good_key).as_str());
    assert_eq!(shown[&azure.to_string()], masked(&azure_key).as_str());
    assert_no_secret(&text, &secrets, "the credential list");

    // The server keeps serving: reads and writes work, and the broken one stays broken.
    let health = app.req(Method::GET, "/healthz").send().await;
    health.assert(200);
    let fresh_key = canary("sk-live", "fresh");
    let fresh = app
        .compatible_credential(u, ws, "fresh", &fresh_key, &mock.url("/v1"))
        .await;
    assert_readable(app, u, ws, fresh, &fresh_key).await;
    assert_unreadable(app, u, ws, victim, &secrets, &stored).await;
    // …and the broken credential can be deleted.
    app.delete(&cred_path(ws, victim), &u.token)
        .await
        .assert(204);
    app.get(&cred_path(ws, victim), &u.token)
        .await
        .assert_error(404, "not_found");
}

// --- 4. key rotation ---------------------------------------------------------------------------

#[tokio::test]
async fn master_key_rotation_with_previous_key_and_rewrap() {
    let (a, b, c) = (1u8, 2u8, 3u8);
    let (id_a, id_b) = (key_id(&[a; 32]), key_id(&[b; 32]));
    let mock = MockUpstream::start().await.unwrap();

    // Data written under key A, in two workspaces.
    let first = spawn_app_with(&[("ROTOR_MASTER_KEY", &master_key(a))]).await;
    let url = first.database_url.clone();
    let u = first.user("owner").await;
    let ws2 = first.create_workspace(&u, "second").await;
    let k1 = canary("sk-live", "rotation-one");
    let k2 = canary("sk-live", "rotation-two");
    let k3 = canary("az", "rotation-azure");
    let c1 = first
        .compatible_credential(&u, u.workspace, "one", &k1, &mock.url("/v1"))
        .await;
    let c2 = first
        .compatible_credential(&u, ws2, "two", &k2, &mock.url("/v1"))
        .await;
    let c3 = id_of(
        &first
            .credential(
                &u,
                u.workspace,
                "azure_openai",
                "azure",
                json!({"api_key": k3, "endpoint": mock.url("")}),
            )
            .await,
    );
    let mut all = vec![
        (u.workspace, c1, k1.clone()),
        (ws2, c2, k2),
        (u.workspace, c3, k3),
    ];
    let key_ids = |db: PgPool| async move {
        let rows: Vec<(Uuid, String, Vec<u8>)> = sqlx::query_as(
            "SELECT workspace_id, key_id, wrapped_key FROM workspace_keys ORDER BY workspace_id",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        rows
    };
    let under_a = key_ids(first.db.clone()).await;
    assert_eq!(under_a.len(), 2, "one data key per workspace");
    assert!(under_a.iter().all(|(_, id, _)| *id == id_a), "{under_a:?}");

    // Without A, nothing starts: the message names A's id.
    let e = build_error(&url, b, None).await;
    assert!(e.contains(&id_a), "the error does not name {id_a}: {e}");

    // B current, A previous: everything is readable, the sessions still work.
    let second = spawn_app_on(
        &url,
        &[
            ("ROTOR_MASTER_KEY", &master_key(b)),
            ("ROTOR_MASTER_KEY_PREVIOUS", &master_key(a)),
        ],
    )
    .await;
    second.get("/api/v1/me", &u.token).await.assert(200);
    let r = second.login(&u.email, PASSWORD).await;
    r.assert(200);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let relogged = TestUser { token, ..u.clone() };
    for (ws, id, key) in &all {
        assert_readable(&second, &u, *ws, *id, key).await;
        assert_readable(&second, &relogged, *ws, *id, key).await;
    }
    let r = second
        .post(
            &format!("{}/validate", cred_path(u.workspace, c1)),
            &u.token,
            json!({}),
        )
        .await;
    assert_eq!(r.body, json!({"valid": true}), "{:?}", r.body);
    assert_eq!(mock.requests().last().and_then(|r| r.key.clone()), Some(k1));
    // New data is written under B: a new workspace's key.
    let ws3 = second.create_workspace(&u, "third").await;
    let k4 = canary("sk-live", "rotation-new");
    let c4 = second
        .compatible_credential(&u, ws3, "new", &k4, &mock.url("/v1"))
        .await;
    all.push((ws3, c4, k4));
    let mixed = key_ids(second.db.clone()).await;
    assert_eq!(
        mixed.iter().filter(|(_, id, _)| *id == id_a).count(),
        2,
        "{mixed:?}"
    );
    assert_eq!(
        mixed.iter().filter(|(_, id, _)| *id == id_b).count(),
        1,
        "{mixed:?}"
    );

    // `keys rewrap` without A refuses, naming A, and changes nothing.
    let b_key = master_key(b);
    let a_key = master_key(a);
    let (status, _, stderr) = rotor_output(
        &["keys", "rewrap"],
        &[
            ("DATABASE_URL", &url),
            ("ROTOR_MASTER_KEY", &b_key),
            ("ROTOR_JWT_SECRET", JWT_SECRET),
        ],
    )
    .await;
    assert!(
        !status.success(),
        "rewrap without the previous key succeeded"
    );
    assert!(stderr.contains(&id_a), "{stderr}");
    assert_eq!(key_ids(second.db.clone()).await, mixed);

    // `keys rewrap` with B and A: exits 0 and says how many keys it re-wrapped.
    let rewrap_vars = [
        ("DATABASE_URL", url.as_str()),
        ("ROTOR_MASTER_KEY", b_key.as_str()),
        ("ROTOR_MASTER_KEY_PREVIOUS", a_key.as_str()),
        ("ROTOR_JWT_SECRET", JWT_SECRET),
    ];
    let (status, stdout, stderr) = rotor_output(&["keys", "rewrap"], &rewrap_vars).await;
    assert!(status.success(), "rewrap failed ({status}): {stderr}");
    assert!(
        stdout.contains("re-wrapped 2 ") && stdout.contains(&id_b),
        "rewrap should say it re-wrapped 2 keys under {id_b}: {stdout}"
    );
    let rewrapped = key_ids(second.db.clone()).await;
    assert_eq!(rewrapped.len(), 3);
    for (ws, id, wrapped) in &rewrapped {
        assert_eq!(*id, id_b, "workspace {ws} is not under B");
        let before = mixed.iter().find(|(w, _, _)| w == ws).unwrap();
        if before.1 == id_a {
            assert_ne!(
                *wrapped, before.2,
                "workspace {ws}'s key was not re-wrapped"
            );
        } else {
            assert_eq!(*wrapped, before.2, "workspace {ws} was already under B");
        }
    }
    // Running it again has nothing left to do.
    let (status, stdout, stderr) = rotor_output(&["keys", "rewrap"], &rewrap_vars).await;
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("re-wrapped 0 "), "{stdout}");

    // B alone reads everything, and decrypts the exact secrets.
    let third = spawn_app_on(&url, &[("ROTOR_MASTER_KEY", &b_key)]).await;
    for (ws, id, key) in &all {
        assert_readable(&third, &u, *ws, *id, key).await;
        let r = third
            .post(
                &format!("{}/validate", cred_path(*ws, *id)),
                &u.token,
                json!({}),
            )
            .await;
        assert_eq!(r.body["valid"], true, "{:?}", r.body);
        assert_eq!(
            mock.requests().last().and_then(|r| r.key.clone()),
            Some(key.clone())
        );
    }

    // A alone no longer works: the message names B.
    let e = build_error(&url, a, None).await;
    assert!(e.contains(&id_b), "the error does not name {id_b}: {e}");

    // The real binary with neither A nor B refuses to start, with an error naming B.
    let stderr = serve_refused(&url, c).await;
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("rotor: "))
        .collect();
    assert_eq!(errors.len(), 1, "expected one error line: {stderr}");
    assert!(
        errors[0].contains(&id_b),
        "the error does not name {id_b}: {stderr}"
    );
    assert!(!stderr.contains(&id_a), "A's data is gone: {stderr}");
    assert!(
        !stderr.contains(&master_key(c)) && !stderr.contains(&b_key),
        "a master key was printed: {stderr}"
    );
}

/// `rotor serve` with only master key `current` on `database_url` must exit non-zero;
/// returns its stderr, colours removed.
async fn serve_refused(database_url: &str, current: u8) -> String {
    let key = master_key(current);
    let listen = format!("127.0.0.1:{}", free_port());
    let (status, _, stderr) = rotor_output(
        &["serve"],
        &[
            ("DATABASE_URL", database_url),
            ("ROTOR_MASTER_KEY", &key),
            ("ROTOR_JWT_SECRET", JWT_SECRET),
            ("ROTOR_LISTEN", &listen),
        ],
    )
    .await;
    assert!(
        !status.success(),
        "rotor serve started without the master key its data needs"
    );
    strip_ansi(&stderr)
}

#[tokio::test]
async fn a_server_missing_the_master_key_refuses_to_start_in_one_line() {
    let app = spawn_app_with(&[("ROTOR_MASTER_KEY", &master_key(4))]).await;
    let u = app.user("owner").await;
    app.compatible_credential(
        &u,
        u.workspace,
        "one-line",
        &canary("sk-live", "one-line"),
        "https://llm.example.com/v1",
    )
    .await;
    let stderr = serve_refused(&app.database_url, 5).await;
    assert!(
        stderr.contains(&key_id(&[4; 32])),
        "the error does not name the missing key id: {stderr}"
    );
    // Like every refused start, one line: nothing but the error.
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "expected only the one-line error on stderr, got: {stderr}"
    );
}

// --- 5. a ciphertext is bound to its row and tenant --------------------------------------------

#[tokio::test]
async fn a_ciphertext_moved_to_another_row_or_workspace_does_not_decrypt() {
    let w = World::new(&[]).await;
    let (app, u, mock) = (&w.app, &w.user, &w.mock);
    let other = app.user("other-tenant").await;
    let (ws, ws2) = (u.workspace, other.workspace);
    let key_a = canary("sk-live", "row-a");
    let key_b = canary("sk-live", "row-b");
    let key_d = canary("sk-live", "row-d");
    let secrets = [key_a.as_str(), key_b.as_str(), key_d.as_str()];
    let a = w.cred("a", &key_a).await;
    let b = w.cred("b", &key_b).await;
    let d = app
        .compatible_credential(&other, ws2, "d", &key_d, &mock.url("/v1"))
        .await;
    let secrets_a = stored_secrets(&app.db, a).await;
    let secrets_b = stored_secrets(&app.db, b).await;
    let secrets_d = stored_secrets(&app.db, d).await;
    let stored_a = secrets_a["api_key"].as_str().unwrap().to_owned();

    // A's ciphertext on B's row, same workspace: B is unreadable, A is not.
    set_secrets(&app.db, b, &secrets_a).await;
    assert_unreadable(app, u, ws, b, &secrets, &stored_a).await;
    assert_readable(app, u, ws, a, &key_a).await;
    let (shown, text) = shown_api_keys(app, u, ws).await;
    assert_eq!(shown.get(&b.to_string()), Some(&json!("****")), "{text}");
    set_secrets(&app.db, b, &secrets_b).await;
    assert_readable(app, u, ws, b, &key_b).await;

    // A's ciphertext in another workspace's credential: unreadable there too.
    set_secrets(&app.db, d, &secrets_a).await;
    assert_unreadable(app, &other, ws2, d, &secrets, &stored_a).await;
    assert_readable(app, u, ws, a, &key_a).await;
    set_secrets(&app.db, d, &secrets_d).await;
    assert_readable(app, &other, ws2, d, &key_d).await;

    // A's whole row moved into the other workspace (same credential id): still unreadable.
    let moved = sqlx::query("UPDATE credentials SET workspace_id = $2 WHERE id = $1")
        .bind(a)
        .bind(ws2)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(moved.rows_affected(), 1);
    assert_unreadable(app, &other, ws2, a, &secrets, &stored_a).await;
    app.get(&cred_path(ws, a), &u.token)
        .await
        .assert_error(404, "not_found");
    sqlx::query("UPDATE credentials SET workspace_id = $2 WHERE id = $1")
        .bind(a)
        .bind(ws)
        .execute(&app.db)
        .await
        .unwrap();
    assert_readable(app, u, ws, a, &key_a).await;

    // A workspace's wrapped data key copied onto another workspace does not unwrap there.
    let (key_id_1, wrapped_1): (String, Vec<u8>) =
        sqlx::query_as("SELECT key_id, wrapped_key FROM workspace_keys WHERE workspace_id = $1")
            .bind(ws)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let (key_id_2, wrapped_2): (String, Vec<u8>) =
        sqlx::query_as("SELECT key_id, wrapped_key FROM workspace_keys WHERE workspace_id = $1")
            .bind(ws2)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let set_key = |workspace: Uuid, id: String, wrapped: Vec<u8>| {
        let db = app.db.clone();
        async move {
            let done = sqlx::query(
                "UPDATE workspace_keys SET key_id = $2, wrapped_key = $3 WHERE workspace_id = $1",
            )
            .bind(workspace)
            .bind(id)
            .bind(wrapped)
            .execute(&db)
            .await
            .unwrap();
            assert_eq!(done.rows_affected(), 1);
        }
    };
    set_key(ws2, key_id_1, wrapped_1).await;
    let stored_d = secrets_d["api_key"].as_str().unwrap().to_owned();
    assert_unreadable(app, &other, ws2, d, &secrets, &stored_d).await;
    assert_readable(app, u, ws, a, &key_a).await;
    set_key(ws2, key_id_2, wrapped_2).await;
    assert_readable(app, &other, ws2, d, &key_d).await;
    assert_eq!(
        mock.requests().len(),
        0,
        "nothing here should have reached the provider"
    );
}
