//! Faults through the real server: the database stopping under gateway load, upstreams that
//! refuse, reset or stall, and SIGTERM with requests and streams in flight.

use crate::helpers::*;
use rotor_tests::mock::MockUpstream;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn chat_body() -> Value {
    json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_database_outage_keeps_the_gateway_serving_and_recovers() {
    let pg = PgProcess::start();
    let app = spawn_app_on(&pg.url(), &[("ROTOR_LICENSE", &lb_license())]).await;
    let mock = MockUpstream::start().await.unwrap();
    let u = app.user("u").await;
    let a = app
        .compatible_credential(&u, u.workspace, "a", "sk_db_a", &mock.url("/v1"))
        .await;
    let b = app
        .compatible_credential(&u, u.workspace, "b", "sk_db_b", &mock.url("/v1"))
        .await;
    let model = app
        .model(&u, u.workspace, "openai_compatible", "gpt", a)
        .await;
    let path = TestApp::lb_path(u.workspace, model["id"].as_str().unwrap());
    app.put(
        &path,
        &u.token,
        json!({"enabled": true, "entries": [{"credential_id": a}, {"credential_id": b}]}),
    )
    .await
    .assert(200);
    let (_, key) = app.api_key(&u, u.workspace, "k").await;
    // An acknowledged write just before the outage.
    let renamed = app
        .patch(
            &format!("/api/v1/workspaces/{}", u.workspace),
            &u.token,
            json!({"name": "before the outage"}),
        )
        .await;
    renamed.assert(200);

    // Gateway traffic runs throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed, client, url, key) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            app.client.clone(),
            app.url("/v1/chat/completions"),
            key.clone(),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&chat_body())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    pg.stop();
    let during = ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = app
        .get(
            &format!("/api/v1/workspaces/{}/models", u.workspace),
            &u.token,
        )
        .await;
    r.assert_error(503, "database_unavailable");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        ok.load(Ordering::Relaxed) > during + 10,
        "the gateway stopped serving while the database was down"
    );

    pg.resume();
    let back = Instant::now();
    loop {
        let r = app
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/workspaces/{}", u.workspace),
                Some(&u.token),
                None,
            )
            .await;
        if r.status == 200 {
            assert_eq!(
                r.body["name"], "before the outage",
                "an acknowledged write was lost"
            );
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "management did not recover: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Writes work again, without a restart.
    app.patch(&path, &u.token, json!({"max_attempts": 2}))
        .await
        .assert(200);
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "gateway requests failed during the outage"
    );
}

/// A provider that accepts connections and then misbehaves at the HTTP level.
async fn broken_upstream(behaviour: &'static str) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                if behaviour == "reset-mid-headers" {
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: applica")
                        .await;
                }
                // A zero linger makes the close an immediate RST (it does not block).
                #[allow(deprecated)]
                let _ = sock.set_linger(Some(Duration::ZERO));

                drop(sock);
            });
        }
    });
    addr
}

async fn single_credential_app(
    base_url: &str,
    extra: &[(&str, &str)],
) -> (TestApp, TestUser, String, String) {
    let app = spawn_app_with(extra).await;
    let u = app.user("u").await;
    let c = app
        .compatible_credential(&u, u.workspace, "c", "sk_fault_key", base_url)
        .await;
    let model = app
        .model(&u, u.workspace, "openai_compatible", "gpt", c)
        .await;
    let (_, key) = app.api_key(&u, u.workspace, "k").await;
    (app, u, key, model["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn upstream_faults_answer_cleanly() {
    // Connection refused.
    let closed = format!("http://127.0.0.1:{}/v1", free_port());
    let (app, _, key, _) = single_credential_app(&closed, &[]).await;
    let r = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    let r = TestApp::read_any(r).await;
    r.assert(502);
    assert_eq!(r.body["error"]["code"], "upstream_unavailable");

    // Reset in the middle of the headers.
    let addr = broken_upstream("reset-mid-headers").await;
    let (app, _, key, _) = single_credential_app(&format!("http://{addr}/v1"), &[]).await;
    let r = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    let r = TestApp::read_any(r).await;
    r.assert(502);
    assert_eq!(r.body["error"]["code"], "upstream_unavailable");

    // First byte slower than the timeout.
    let mock = MockUpstream::start().await.unwrap();
    let app = spawn_app_with(&[("ROTOR_UPSTREAM_TIMEOUT", "0.3")]).await;
    let u = app.user("u").await;
    let c = app
        .compatible_credential(&u, u.workspace, "slow", "sk_delay2000", &mock.url("/v1"))
        .await;
    app.model(&u, u.workspace, "openai_compatible", "gpt", c)
        .await;
    let (_, key) = app.api_key(&u, u.workspace, "k").await;
    let started = Instant::now();
    let r = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    let r = TestApp::read_any(r).await;
    r.assert(504);
    assert_eq!(r.body["error"]["code"], "upstream_timeout");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the timeout was not applied: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_reset_mid_headers_cools_the_credential_and_fails_over() {
    let addr = broken_upstream("reset-mid-headers").await;
    let mock = MockUpstream::start().await.unwrap();
    let app = spawn_app_with(&[("ROTOR_LICENSE", &lb_license())]).await;
    let u = app.user("u").await;
    let bad = app
        .compatible_credential(
            &u,
            u.workspace,
            "bad",
            "sk_reset",
            &format!("http://{addr}/v1"),
        )
        .await;
    let good = app
        .compatible_credential(&u, u.workspace, "good", "sk_good", &mock.url("/v1"))
        .await;
    let model = app
        .model(&u, u.workspace, "openai_compatible", "gpt", bad)
        .await;
    let path = TestApp::lb_path(u.workspace, model["id"].as_str().unwrap());
    app.put(
        &path,
        &u.token,
        json!({"enabled": true, "entries": [{"credential_id": bad}, {"credential_id": good}]}),
    )
    .await
    .assert(200);
    let (_, key) = app.api_key(&u, u.workspace, "k").await;
    let r = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-rotor-attempts"], "2");
    let status = app.get(&path, &u.token).await;
    let entry = &status.body["entries"][0]["status"];
    assert_eq!(entry["state"], "cooling_down");
    assert_eq!(entry["last_error"]["reason"], "unreachable");
    let remaining = entry["cooldown_remaining_s"].as_u64().unwrap();
    assert!((9..=10).contains(&remaining), "{remaining}");
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_and_streams_finish() {
    let mock = MockUpstream::start().await.unwrap();
    let database_url = fresh_database().await;
    let vars = vec![
        ("DATABASE_URL", database_url.clone()),
        ("ROTOR_MASTER_KEY", master_key(3)),
        ("ROTOR_JWT_SECRET", JWT_SECRET.to_owned()),
        ("ROTOR_SIGNUP", "open".to_owned()),
        ("ROTOR_UPSTREAM_ALLOW", "127.0.0.0/8".to_owned()),
    ];
    let mut rotor = RotorProcess::start(&vars).await;
    let admin = TestApp {
        addr: format!("127.0.0.1:{}", rotor.port).parse().unwrap(),
        db: sqlx::PgPool::connect(&database_url).await.unwrap(),
        database_url: database_url.clone(),
        client: reqwest::Client::new(),
    };
    let u = admin.user("u").await;
    let slow = admin
        .compatible_credential(&u, u.workspace, "slow", "sk_delay1500", &mock.url("/v1"))
        .await;
    let streaming = admin
        .compatible_credential(
            &u,
            u.workspace,
            "stream",
            "sk_gap400_chunks5",
            &mock.url("/v1"),
        )
        .await;
    admin
        .model(&u, u.workspace, "openai_compatible", "slow", slow)
        .await;
    admin
        .model(&u, u.workspace, "openai_compatible", "streamer", streaming)
        .await;
    let (_, key) = admin.api_key(&u, u.workspace, "k").await;

    let url = rotor.url("/v1/chat/completions");
    let client = reqwest::Client::new();
    let in_flight = {
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model": "slow", "messages": []}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let stream = {
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"model": "streamer", "stream": true, "messages": []}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stopping = Instant::now();
    let pid = rotor.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are refused once the server stopped accepting.
    let fresh = reqwest::Client::new()
        .get(rotor.url("/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        fresh.is_err(),
        "a new connection was accepted after SIGTERM"
    );

    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Hello from the mock."));
    let (status, body) = stream.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("tok4") && body.trim_end().ends_with("data: [DONE]"),
        "the stream was cut: {body}"
    );
    let exit = rotor.terminate();
    assert!(exit.success(), "{exit:?}");
    assert!(stopping.elapsed() < Duration::from_secs(30));
}
