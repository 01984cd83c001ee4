//! Faults through the real server: the database stopping under gateway load, upstreams that
//! refuse, reset or stall, and SIGTERM with requests and streams in flight.

use crate::helpers::*;
use reqwest::Method;
use rotor_tests::mock::MockKey;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_database_outage_keeps_the_gateway_serving_and_recovers() {
    let pg = PgProcess::start();
    let app = spawn_app_on(&pg.url(), &[("ROTOR_LICENSE", &lb_license())]).await;
    let w = World::on(&app).await;
    let creds = w.creds(["sk_db_a", "sk_db_b"]).await;
    let path = w.lb_path(&w.pooled_model("gpt", &creds, 60).await);
    // An acknowledged write just before the outage.
    let renamed = app
        .patch(
            &w.w(""),
            &w.user.token,
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
            w.key.clone(),
        );
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&chat_body("gpt"))
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
    let r = app.get(&w.w("/models"), &w.user.token).await;
    r.assert_error(503, "database_unavailable");
    let ready = app.req(Method::GET, "/readyz").send().await;
    ready.assert(503);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        ok.load(Ordering::Relaxed) > during + 10,
        "the gateway stopped serving while the database was down"
    );

    pg.resume();
    let back = Instant::now();
    loop {
        let r = app.get(&w.w(""), &w.user.token).await;
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
    app.patch(&path, &w.user.token, json!({"max_attempts": 2}))
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

/// A server whose model `gpt` has one credential, keyed `key` at `base_url` (the world's mock
/// when `None`).
async fn single_credential(vars: &[(&str, &str)], key: MockKey, base_url: Option<&str>) -> World {
    let w = World::new(vars).await;
    let base_url = base_url.map_or_else(|| w.mock.url("/v1"), str::to_owned);
    let c = w.cred_at("c", key, &base_url).await;
    w.model("gpt", "gpt", c).await;
    w
}

#[tokio::test]
async fn upstream_faults_answer_cleanly() {
    // Connection refused.
    let closed = format!("http://127.0.0.1:{}/v1", free_port());
    let w = single_credential(&[], MockKey::new("sk_fault_key"), Some(&closed)).await;
    let r = w.chat("gpt").await;
    r.assert(502);
    assert_eq!(r.body["error"]["code"], "upstream_unavailable");

    // Reset in the middle of the headers.
    let addr = format!("http://{}/v1", broken_upstream("reset-mid-headers").await);
    let w = single_credential(&[], MockKey::new("sk_fault_key"), Some(&addr)).await;
    let r = w.chat("gpt").await;
    r.assert(502);
    assert_eq!(r.body["error"]["code"], "upstream_unavailable");

    // First byte slower than the timeout.
    let slow = MockKey::new("sk").delay_ms(2000);
    let w = single_credential(&[("ROTOR_UPSTREAM_TIMEOUT", "0.3")], slow, None).await;
    let started = Instant::now();
    let r = w.chat("gpt").await;
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
    let w = World::licensed().await;
    let bad = w
        .cred_at("bad", "sk_reset", &format!("http://{addr}/v1"))
        .await;
    let good = w.cred("good", "sk_good").await;
    let model = w.model("gpt", "gpt", bad).await;
    w.pool(&model, &[(Some(bad), 1), (Some(good), 1)], 60).await;
    let r = w.chat("gpt").await;
    r.assert(200);
    assert_eq!(r.attempts(), 2);
    let status = w.lb(&model).await;
    let entry = &status["entries"][0]["status"];
    assert_eq!(entry["state"], "cooling_down");
    assert_eq!(entry["reason"], "transient");
    assert!(entry["last_error"]["status"].is_null(), "{entry}");
    let remaining = entry["cooldown_remaining_s"].as_u64().unwrap();
    assert!((9..=10).contains(&remaining), "{remaining}");
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_and_streams_finish() {
    let database_url = fresh_database().await;
    let vars = vec![
        ("DATABASE_URL", database_url.clone()),
        ("ROTOR_MASTER_KEY", master_key(3)),
        ("ROTOR_JWT_SECRET", JWT_SECRET.to_owned()),
        ("ROTOR_SIGNUP", "open".to_owned()),
        ("ROTOR_UPSTREAM_ALLOW", "127.0.0.0/8".to_owned()),
    ];
    let mut rotor = RotorProcess::start(&vars).await;
    let w = World::on(&rotor.app(&database_url).await).await;
    let slow = w.cred("slow", MockKey::new("sk").delay_ms(1500)).await;
    let streaming = w
        .cred("stream", MockKey::new("sk").gap_ms(400).chunks(5))
        .await;
    w.model("slow", "slow", slow).await;
    w.model("streamer", "streamer", streaming).await;

    let in_flight = tokio::spawn(
        w.gw(Method::POST, "/v1/chat/completions")
            .json(json!({"model": "slow", "messages": []}))
            .send(),
    );
    let stream = tokio::spawn(
        w.gw(Method::POST, "/v1/chat/completions")
            .json(json!({"model": "streamer", "stream": true, "messages": []}))
            .send(),
    );
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

    let r = in_flight.await.unwrap();
    r.assert(200);
    assert!(r.text.contains("Hello from the mock."));
    let r = stream.await.unwrap();
    r.assert(200);
    assert!(
        r.text.contains("tok4") && r.text.trim_end().ends_with("data: [DONE]"),
        "the stream was cut: {}",
        r.text
    );
    let exit = rotor.terminate();
    assert!(exit.success(), "{exit:?}");
    assert!(stopping.elapsed() < Duration::from_secs(30));
}

/// A supervisor may stop an instance the moment its port opens (a rollout that is cancelled, a
/// health probe that connects first): that SIGTERM is a clean stop, never the default action.
#[tokio::test]
async fn a_sigterm_the_moment_the_port_opens_is_a_clean_stop() {
    let database_url = fresh_database().await;
    for round in 0..5 {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = rotor_command(
            &["serve"],
            &[
                ("DATABASE_URL", &database_url),
                ("ROTOR_MASTER_KEY", &master_key(6)),
                ("ROTOR_JWT_SECRET", JWT_SECRET),
                ("ROTOR_LISTEN", &listen),
                ("RUST_LOG", "off"),
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "round {round}: the port never opened"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "round {round}: exited early"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "round {round}: still running");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "round {round}: {status:?}");
    }
}
