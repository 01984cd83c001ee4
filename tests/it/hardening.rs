//! Each hole the security review found (SECURITY.md), tried as an attacker would from outside.

use crate::helpers::*;
use futures_util::future::join_all;
use reqwest::Method;
use rotor_tests::mock::{MockKey, MockUpstream};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// `/proc/<pid>/status` fields in MiB: (VmRSS, VmHWM).
fn memory_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb / 1024)
            .unwrap_or_else(|| panic!("{name} not in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A `rotor serve` process of its own (so its memory can be read) and a client for it.
async fn process(extra: &[(&str, &str)]) -> (RotorProcess, TestApp) {
    let database_url = fresh_database().await;
    let mut vars = vec![
        ("DATABASE_URL", database_url.clone()),
        ("ROTOR_MASTER_KEY", master_key(5)),
        ("ROTOR_JWT_SECRET", JWT_SECRET.to_owned()),
        ("ROTOR_SIGNUP", "open".to_owned()),
        ("ROTOR_UPSTREAM_ALLOW", "127.0.0.0/8".to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let rotor = RotorProcess::start(&vars).await;
    let app = rotor.app(&database_url).await;
    (rotor, app)
}

/// Every character of `id` percent-encoded: the same resource under another spelling.
fn encoded(id: Uuid) -> String {
    id.to_string()
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect()
}

/// Whether `check` comes true within `limit` (polled every 20 ms).
async fn within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The statuses of the answers that were not throttled, after asserting there are at most ten.
#[track_caller]
fn at_most_ten_checked(answers: &[Resp]) -> Vec<u16> {
    let passed: Vec<u16> = answers
        .iter()
        .map(|r| r.status.as_u16())
        .filter(|s| *s != 429)
        .collect();
    assert!(
        passed.len() <= 10,
        "{} guesses were checked: {passed:?}",
        passed.len()
    );
    passed
}

#[tokio::test]
async fn concurrent_wrong_logins_cannot_outrun_the_throttle() {
    let app = spawn_app().await;
    let user = app.user("victim").await;
    let wrong: Vec<String> = (0..60).map(|i| format!("guess number {i}")).collect();
    let guesses = wrong.iter().map(|w| app.login(&user.email, w));
    let answers = join_all(guesses).await;
    let passed = at_most_ten_checked(&answers);
    assert!(passed.iter().all(|s| *s == 401), "{passed:?}");
    // The right password waits too: the slots are gone.
    let r = app.login(&user.email, PASSWORD).await;
    r.assert_error(429, "too_many_requests");
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn concurrent_wrong_current_passwords_cannot_outrun_the_throttle() {
    let app = spawn_app().await;
    let user = app.user("victim").await;
    let tries = (0..60).map(|i| {
        app.post(
            "/api/v1/me/password",
            &user.token,
            json!({"current_password": format!("guess {i}"), "new_password": "a brand new password"}),
        )
    });
    let answers = join_all(tries).await;
    at_most_ten_checked(&answers);
    app.post(
        "/api/v1/me/password",
        &user.token,
        json!({"current_password": PASSWORD, "new_password": "a brand new password"}),
    )
    .await
    .assert_error(429, "too_many_requests");
    // The password did not change.
    app.login(&user.email, PASSWORD).await.assert(200);
}

#[tokio::test]
async fn a_flood_of_password_hashes_is_told_to_come_back() {
    let app = spawn_app().await;
    let emails: Vec<String> = (0..240)
        .map(|i| format!("flood{i}-{}@example.com", Uuid::new_v4().simple()))
        .collect();
    let signups = emails
        .iter()
        .map(|e| app.signup_raw(e, "a long enough password", "Flood"));
    let answers = join_all(signups).await;
    let busy: Vec<&Resp> = answers.iter().filter(|r| r.status == 503).collect();
    assert!(
        !busy.is_empty(),
        "no request was refused while hashes queued"
    );
    for r in &busy {
        r.assert_error(503, "busy");
        assert_eq!(r.headers["retry-after"], "1");
    }
    for r in answers.iter().filter(|r| r.status != 503) {
        r.assert(201);
    }
    // Once the queue drains, the service is back.
    app.user("after").await;
}

#[tokio::test]
async fn megabyte_emails_keep_no_state() {
    let (rotor, app) = process(&[]).await;
    let pid = rotor.child.id();
    app.user("someone").await;
    let (before, _) = memory_mib(pid);
    let big = "a".repeat(1_000_000) + "@example.com";
    for batch in 0..30 {
        let emails: Vec<String> = (0..10).map(|i| format!("{batch}{i}{big}")).collect();
        let logins = emails.iter().map(|e| app.login(e, "whatever password"));
        for r in join_all(logins).await {
            r.assert_error(401, "invalid_credentials");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, _) = memory_mib(pid);
    assert!(
        after < before + 100,
        "RSS grew from {before} MiB to {after} MiB after 300 one-megabyte emails"
    );
    // NUL in a login is a wrong login, not a server error.
    app.login("nul\u{0}@example.com", PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
}

#[tokio::test]
async fn nul_in_any_text_field_is_a_422_naming_it() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let other = app.user("other").await;
    let ws = owner.workspace;
    let mock = MockUpstream::start().await.unwrap();
    let cred = app
        .compatible_credential(&owner, ws, "c", "sk_one", &mock.url("/v1"))
        .await;
    let model = app.model(&owner, ws, "openai_compatible", "m", cred).await;
    let model = model["id"].as_str().unwrap().to_owned();
    app.add_member(&owner, ws, &other, "normal").await;
    let n = "x\u{0}y";
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/api/v1/auth/signup".into(),
            json!({"email": format!("a{n}@example.com"), "password": "long enough password", "name": "A"}),
            "email",
        ),
        (
            Method::POST,
            "/api/v1/auth/signup".into(),
            json!({"email": "fine@example.com", "password": format!("long enough {n}"), "name": "A"}),
            "password",
        ),
        (
            Method::POST,
            "/api/v1/auth/signup".into(),
            json!({"email": "fine@example.com", "password": "long enough password", "name": n}),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/me/password".into(),
            json!({"current_password": n, "new_password": "a brand new password"}),
            "current_password",
        ),
        (
            Method::POST,
            "/api/v1/me/tokens".into(),
            json!({"name": n}),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/workspaces".into(),
            json!({"name": n}),
            "name",
        ),
        (
            Method::PATCH,
            format!("/api/v1/workspaces/{ws}"),
            json!({"name": n}),
            "name",
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/members"),
            json!({"email": format!("b{n}@example.com"), "role": "normal"}),
            "email",
        ),
        (
            Method::PATCH,
            format!("/api/v1/workspaces/{ws}/members/{}", other.id),
            json!({"role": n}),
            "role",
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/api-keys"),
            json!({"name": n}),
            "name",
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/api-keys"),
            json!({"name": "k2", "allowed_models": ["m", n]}),
            "allowed_models[1]",
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/credentials"),
            json!({"provider": "openai", "name": n, "config": {"api_key": "sk-1234567890"}}),
            "name",
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/credentials"),
            json!({"provider": "openai", "name": "c2", "config": {"api_key": n}}),
            "config.api_key",
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/credentials"),
            json!({"provider": n, "name": "c2", "config": {}}),
            "provider",
        ),
        (
            Method::PATCH,
            format!("/api/v1/workspaces/{ws}/credentials/{cred}"),
            json!({"config": {"base_url": format!("http://a/{n}"), "api_key": "sk-new-1234567"}}),
            "config.base_url",
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/models"),
            json!({"provider": "openai_compatible", "name": n, "model_type": "llm", "credential_id": cred}),
            "name",
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/models"),
            json!({"provider": "openai_compatible", "name": "m2", "upstream_model": n, "model_type": "llm", "credential_id": cred}),
            "upstream_model",
        ),
        (
            Method::PATCH,
            format!("/api/v1/workspaces/{ws}/models/{model}"),
            json!({"upstream_model": n}),
            "upstream_model",
        ),
        (
            Method::PUT,
            format!("/api/v1/workspaces/{ws}/models/{model}/load-balancing"),
            json!({"enabled": false, "entries": [{"credential_id": format!("{cred}{n}")}]}),
            "entries[0].credential_id",
        ),
        (
            Method::PUT,
            "/api/v1/admin/license".into(),
            json!({"license": n}),
            "license",
        ),
    ];
    let events = || async {
        let audit = format!("/api/v1/workspaces/{ws}/audit-events?limit=200");
        let r = app.get(&audit, &owner.token).await;
        r.body["data"].as_array().unwrap().len()
    };
    let events_before = events().await;
    let mut wrong = Vec::new();
    for (method, path, body, field) in &cases {
        let r = app
            .call(method.clone(), path, Some(&owner.token), Some(body.clone()))
            .await;
        let named = r.body["error"]["details"]["fields"].get(*field).is_some();
        if r.status != 422 || r.code() != "validation_failed" || !named {
            wrong.push(format!(
                "{method} {path} ({field}): {} {}",
                r.status, r.body
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Nothing changed.
    assert_eq!(events_before, events().await);
}

#[tokio::test]
async fn a_gateway_model_with_nul_is_not_found() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let (_, key) = app.api_key(&owner, owner.workspace, "k").await;
    let r = app.chat(&key, "gpt\u{0}4").await;
    r.assert(404);
    assert_eq!(r.code(), "model_not_found");
    let r = app
        .req(Method::GET, "/v1/models/gpt%004")
        .bearer(&key)
        .send()
        .await;
    r.assert(404);
}

#[tokio::test]
async fn huge_upstream_answers_are_refused_with_bounded_memory() {
    let (rotor, app) = process(&[("ROTOR_UPSTREAM_MAX_BODY", "8MiB")]).await;
    let pid = rotor.child.id();
    let mock = MockUpstream::start().await.unwrap();
    let owner = app.user("owner").await;
    let ws = owner.workspace;
    let cred = app
        .compatible_credential(
            &owner,
            ws,
            "huge",
            &MockKey::new("sk").huge_mib(160).to_string(),
            &mock.url("/v1"),
        )
        .await;
    app.model(&owner, ws, "openai_compatible", "big", cred)
        .await;
    let (_, key) = app.api_key(&owner, ws, "k").await;
    let (_, peak_before) = memory_mib(pid);
    let answers = join_all((0..4).map(|_| app.chat(&key, "big"))).await;
    for r in &answers {
        r.assert(502);
        assert_eq!(r.code(), "upstream_response_too_large");
    }
    let (_, peak_after) = memory_mib(pid);
    assert!(
        peak_after < peak_before + 150,
        "peak RSS went from {peak_before} MiB to {peak_after} MiB for four 160 MiB answers"
    );
    // A stream is cut at the limit and ends with an error event.
    let r = app
        .req(Method::POST, "/v1/chat/completions")
        .bearer(&key)
        .json(json!({"model": "big", "stream": true, "messages": []}))
        .send()
        .await;
    r.assert(200);
    let text = r.text;
    assert!(
        text.len() <= 9 * 1024 * 1024,
        "{} bytes relayed",
        text.len()
    );
    assert!(
        text.trim_end()
            .ends_with("\"code\": \"upstream_response_too_large\"}}"),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
}

#[tokio::test]
async fn big_gateway_bodies_cost_about_their_size() {
    let (rotor, app) = process(&[]).await;
    let pid = rotor.child.id();
    let mock = MockUpstream::start().await.unwrap();
    let owner = app.user("owner").await;
    let ws = owner.workspace;
    let cred = app
        .compatible_credential(&owner, ws, "c", "sk_ok", &mock.url("/v1"))
        .await;
    app.model(&owner, ws, "openai_compatible", "embed", cred)
        .await;
    let (_, key) = app.api_key(&owner, ws, "k").await;
    // 24 MiB of small numbers: the worst case for a JSON tree (one node per two bytes).
    let mut body = String::from(r#"{"model": "embed", "input": [1"#);
    while body.len() < 24 * 1024 * 1024 {
        body.push_str(",1");
    }
    body.push_str("]}");
    let (_, peak_before) = memory_mib(pid);
    let sends = (0..6).map(|_| {
        app.req(Method::POST, "/v1/embeddings")
            .bearer(&key)
            .bytes(Some(JSON), body.clone())
            .send()
    });
    for r in join_all(sends).await {
        r.assert(200);
    }
    let (_, peak_after) = memory_mib(pid);
    assert!(
        peak_after < peak_before + 1024,
        "peak RSS went from {peak_before} MiB to {peak_after} MiB for six 24 MiB bodies"
    );
    // The provider got the body with only `model` rewritten.
    let got = mock.requests().pop().unwrap();
    assert_eq!(got.body.len(), body.len() - 3);
    assert!(got.body.starts_with(br#"{"model":"embed","input":[1,1,1"#));
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let app = spawn_app().await;
    let started = Instant::now();
    // Headers that never end.
    let headers = async {
        let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: rotor\r\nX-Slow: 1")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(45), tcp.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the connection was still open after 45 s");
        started.elapsed()
    };
    // A body that never ends, on the unauthenticated login route.
    let body = async {
        let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        tcp.write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: rotor\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(75);
        while !String::from_utf8_lossy(&answer).contains("request_timeout") {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, tcp.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    let (closed_after, answer) = tokio::join!(headers, body);
    assert!(
        closed_after >= Duration::from_secs(20),
        "closed after {closed_after:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

#[tokio::test]
async fn writes_through_encoded_paths_take_effect_on_every_replica() {
    let database_url = fresh_database().await;
    let (a, b) = tokio::join!(
        spawn_app_on(&database_url, &[]),
        spawn_app_on(&database_url, &[])
    );
    let mock = MockUpstream::start().await.unwrap();
    let owner = a.user("owner").await;
    let ws = owner.workspace;
    let cred = a
        .compatible_credential(&owner, ws, "c", "sk_old", &mock.url("/v1"))
        .await;
    a.model(&owner, ws, "openai_compatible", "m", cred).await;
    let (key_id, key) = a.api_key(&owner, ws, "k").await;
    // Both replicas serve and have the route cached.
    for app in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(2);
        while app.chat(&key, "m").await.status != 200 {
            assert!(Instant::now() < deadline, "the new key never worked");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // A credential change through an encoded workspace id.
    a.patch(
        &format!("/api/v1/workspaces/{}/credentials/{cred}", encoded(ws)),
        &owner.token,
        json!({"config": {"api_key": "sk_new"}}),
    )
    .await
    .assert(200);
    for (name, app) in [("a", &a), ("b", &b)] {
        let (key, mock) = (&key, &mock);
        let changed = within(Duration::from_secs(1), || async move {
            mock.reset();
            app.chat(key, "m").await.status == 200 && mock.keys() == ["sk_new"]
        })
        .await;
        assert!(
            changed,
            "replica {name} still used the old secret after 1 s"
        );
    }
    // A revocation through an encoded workspace and key id.
    a.delete(
        &format!(
            "/api/v1/workspaces/{}/api-keys/{}",
            encoded(ws),
            encoded(key_id)
        ),
        &owner.token,
    )
    .await
    .assert(204);
    for (name, app) in [("a", &a), ("b", &b)] {
        let key = &key;
        let revoked = within(Duration::from_secs(1), || async move {
            app.chat(key, "m").await.status == 401
        })
        .await;
        assert!(
            revoked,
            "replica {name} still accepted the revoked key after 1 s"
        );
    }
}

#[tokio::test]
async fn clearing_a_base_url_needs_the_secret() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let ws = owner.workspace;
    let c = app
        .credential(
            &owner,
            ws,
            "openai",
            "proxied",
            json!({"api_key": "sk-proxied-1234567890", "base_url": "https://proxy.example.com/v1"}),
        )
        .await;
    let path = format!(
        "/api/v1/workspaces/{ws}/credentials/{}",
        c["id"].as_str().unwrap()
    );
    let masked = c["config"]["api_key"].as_str().unwrap().to_owned();
    for config in [
        json!({"base_url": null}),
        json!({"base_url": null, "api_key": masked}),
    ] {
        let r = app
            .patch(&path, &owner.token, json!({"config": config}))
            .await;
        r.assert_error(422, "secret_required");
        assert!(
            r.body["error"]["details"]["fields"]
                .get("config.api_key")
                .is_some(),
            "{}",
            r.body
        );
    }
    assert_eq!(
        app.get(&path, &owner.token).await.body["config"]["base_url"],
        "https://proxy.example.com/v1"
    );
    let r = app
        .patch(
            &path,
            &owner.token,
            json!({"config": {"base_url": null, "api_key": "sk-direct-1234567890"}}),
        )
        .await;
    r.assert(200);
    assert_eq!(r.body["config"]["base_url"], "https://api.openai.com/v1");
}

#[tokio::test]
async fn saas_mode_needs_a_saas_license() {
    let database_url = fresh_database().await;
    let base = [
        ("DATABASE_URL", database_url.clone()),
        ("ROTOR_MASTER_KEY", master_key(5)),
        ("ROTOR_JWT_SECRET", JWT_SECRET.to_owned()),
        ("ROTOR_LISTEN", format!("127.0.0.1:{}", free_port())),
        ("ROTOR_DEPLOYMENT", "saas".to_owned()),
        ("RUST_LOG", "off".to_owned()),
    ];
    for license in [
        None,
        Some(lb_license()),
        Some(license_token(&["saas"], -10, None)),
    ] {
        let mut cmd = std::process::Command::new(binary("rotor"));
        cmd.arg("serve")
            .env_clear()
            .envs(base.iter().map(|(k, v)| (*k, v.as_str())));
        if let Some(l) = &license {
            cmd.env("ROTOR_LICENSE", l);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("ROTOR_DEPLOYMENT"), "{stderr}");
    }
    // None of the refused licenses was stored, so the right one starts the instance.
    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM licenses")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    let mut vars: Vec<(&str, String)> = base
        .iter()
        .filter(|(k, _)| *k != "ROTOR_LISTEN")
        .cloned()
        .collect();
    vars.push(("ROTOR_LICENSE", saas_license()));
    let mut rotor = RotorProcess::start(&vars).await;
    assert!(rotor.terminate().success());
}

#[tokio::test]
async fn a_saas_license_alone_grants_no_load_balancing() {
    async fn feature(app: &TestApp, user: &TestUser) -> Value {
        let path = format!("/api/v1/workspaces/{}", user.workspace);
        app.get(&path, &user.token).await.body["features"]["load_balancing"].clone()
    }
    // Self-hosted with a saas license: plans still do nothing.
    let hosted = spawn_app_with(&[("ROTOR_LICENSE", &saas_license())]).await;
    let u = hosted.user("u").await;
    sqlx::query("UPDATE workspaces SET plan = 'team' WHERE id = $1")
        .bind(u.workspace)
        .execute(&hosted.db)
        .await
        .unwrap();
    assert_eq!(feature(&hosted, &u).await, false);
    // SaaS: the plan grants, the license alone does not; when it expires, plans stop granting.
    let short = license_token(&["saas"], 4, None);
    let saas = spawn_app_with(&[("ROTOR_DEPLOYMENT", "saas"), ("ROTOR_LICENSE", &short)]).await;
    let admin = saas.user("admin").await;
    let customer = saas.user("customer").await;
    assert_eq!(feature(&saas, &customer).await, false);
    saas.put(
        &format!("/api/v1/admin/workspaces/{}/plan", customer.workspace),
        &admin.token,
        json!({"plan": "team"}),
    )
    .await
    .assert(200);
    assert_eq!(feature(&saas, &customer).await, true);
    // A license without `saas` would leave the instance unable to start: refused.
    let before = saas.get("/api/v1/admin/license", &admin.token).await.body;
    saas.put(
        "/api/v1/admin/license",
        &admin.token,
        json!({"license": lb_license()}),
    )
    .await
    .assert_error(422, "license_not_saas");
    assert_eq!(
        saas.get("/api/v1/admin/license", &admin.token).await.body,
        before
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(feature(&saas, &customer).await, false);
}

#[tokio::test]
async fn metrics_are_not_for_whoever_a_local_proxy_forwards() {
    let app = spawn_app().await;
    let get = |app: &TestApp, headers: &[(&str, &str)]| {
        let mut r = app.req(Method::GET, "/metrics");
        for (k, v) in headers {
            r = r.header(k, v);
        }
        async move { r.send().await.status.as_u16() }
    };
    assert_eq!(get(&app, &[]).await, 200);
    assert_eq!(get(&app, &[("x-forwarded-for", "203.0.113.9")]).await, 401);
    assert_eq!(get(&app, &[("forwarded", "for=203.0.113.9")]).await, 401);
    let with_token = spawn_app_with(&[("ROTOR_METRICS_TOKEN", "metrics-token-123")]).await;
    let forwarded = [
        ("x-forwarded-for", "203.0.113.9"),
        ("authorization", "Bearer metrics-token-123"),
    ];
    assert_eq!(get(&with_token, &forwarded).await, 200);
    // The scheme is case-insensitive (RFC 9110), as everywhere else.
    let lower = [("authorization", "bearer metrics-token-123")];
    assert_eq!(get(&with_token, &lower).await, 200);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let app = spawn_app_with(&[("ROTOR_MAX_CONNECTIONS", "2")]).await;
    let health = || async {
        let client = reqwest::Client::new();
        tokio::time::timeout(
            Duration::from_secs(1),
            client.get(app.url("/healthz")).send(),
        )
        .await
    };
    assert!(health().await.is_ok_and(|r| r.is_ok()));
    // Two connections that say nothing hold both slots.
    let first = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let _second = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(health().await.is_err(), "a third connection was served");
    // One closes: the next connection is served.
    drop(first);
    let served = within(Duration::from_secs(3), || async {
        health()
            .await
            .is_ok_and(|r| r.is_ok_and(|r| r.status() == 200))
    })
    .await;
    assert!(served, "no connection was served after a slot came free");
}
